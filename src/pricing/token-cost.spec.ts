import { tokenCost } from './token-cost';

/** The cost arithmetic of SPEC §14, exact with decimal.js and rounded half-up to 10 decimals. */
describe('tokenCost', () => {
  const gpt4o = { inputPerMTok: '2.5', outputPerMTok: '10', cachedInputPerMTok: '1.25' };

  it('prices uncached input, cached input and output at their own rates, per million tokens', () => {
    // 600 × 2.5 + 400 × 1.25 + 10 × 10 = 2100 → 0.0021
    expect(tokenCost(gpt4o, { inputTokens: 600, cachedInputTokens: 400, outputTokens: 10 })).toBe('0.0021');
  });

  it('prices cached input at the input price when the model lists no cached price', () => {
    const rates = { inputPerMTok: '8', outputPerMTok: '24', cachedInputPerMTok: null };
    expect(tokenCost(rates, { inputTokens: 600, cachedInputTokens: 400, outputTokens: 10 })).toBe('0.00824');
    expect(tokenCost(rates, { inputTokens: 1000, outputTokens: 10 })).toBe('0.00824');
  });

  it('treats missing cached tokens as none, and zero tokens cost zero (never "-0")', () => {
    expect(tokenCost(gpt4o, { inputTokens: 1_000_000, outputTokens: 0 })).toBe('2.5');
    expect(tokenCost(gpt4o, { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 })).toBe('0');
    expect(tokenCost(gpt4o, { inputTokens: -0, outputTokens: -0 })).toBe('0');
  });

  it('rounds half-up at the 10th decimal, not before', () => {
    // 1 token at 0.00005 $/MTok = 5e-11 → rounds up to 1e-10; at 0.00004 → 4e-11 → 0.
    expect(tokenCost({ inputPerMTok: '0.00005', outputPerMTok: '0', cachedInputPerMTok: null }, { inputTokens: 1, outputTokens: 0 })).toBe('0.0000000001');
    expect(tokenCost({ inputPerMTok: '0.00004', outputPerMTok: '0', cachedInputPerMTok: null }, { inputTokens: 1, outputTokens: 0 })).toBe('0');
    // 3 tokens at 0.1 = 3e-7 exactly; 7 tokens at 0.0123456789 → 8.64197523e-8
    expect(tokenCost({ inputPerMTok: '0.0123456789', outputPerMTok: '0', cachedInputPerMTok: null }, { inputTokens: 7, outputTokens: 0 })).toBe('0.0000000864');
  });

  it('is exact at the largest inputs: 10^9 tokens of each kind at 10^6 $/MTok with 10 fractional digits', () => {
    const rates = { inputPerMTok: '999999.9999999999', outputPerMTok: '999999.9999999999', cachedInputPerMTok: '0.0000000001' };
    const tokens = { inputTokens: 1_000_000_000, outputTokens: 1_000_000_000, cachedInputTokens: 1_000_000_000 };
    // (2 × 999999999999999.9 + 0.1) / 10^6 = 1999999999999999.9 / 10^6 (a float would print 2000000000)
    expect(tokenCost(rates, tokens)).toBe('1999999999.9999999');
  });

  it('never goes through binary floating point (0.1 + 0.2 style sums stay exact)', () => {
    const rates = { inputPerMTok: '0.1', outputPerMTok: '0.2', cachedInputPerMTok: null };
    expect(tokenCost(rates, { inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBe('0.3');
  });
});
