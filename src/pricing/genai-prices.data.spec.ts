import { TieredPrices, type Provider } from '@pydantic/genai-prices';
import { CATALOG_EPOCH, makerOf, matchModel, packageProviders, packageSource, seedPrices } from './genai-prices.data';

const provider = (id: string, models: Provider['models']): Provider => ({ id, name: id, api_pattern: '', models });

describe('the @pydantic/genai-prices data as catalog versions', () => {
  it('names the installed package and its version as the source: the exact pin of package.json', () => {
    const pin: string = require('../../package.json').dependencies['@pydantic/genai-prices'];
    expect(pin).toMatch(/^\d+\.\d+\.\d+$/);
    expect(packageSource()).toBe(`@pydantic/genai-prices@${pin}`);
  });

  it('a plain price is one open-ended version from the epoch, numbers as their shortest decimal', () => {
    const { prices } = seedPrices([
      provider('openai', [{ id: 'gpt-4o', match: { equals: 'gpt-4o' }, prices: { input_mtok: 2.5, output_mtok: 10, cache_read_mtok: 1.25, web_searches_kcount: 10 } }]),
    ]);
    expect(prices).toEqual([
      { provider: 'openai', modelId: 'gpt-4o', inputPerMTok: '2.5', outputPerMTok: '10', cachedInputPerMTok: '1.25', effectiveFrom: CATALOG_EPOCH, effectiveTo: null },
    ]);
  });

  it('start dates become consecutive versions, equal neighbours merged', () => {
    const { prices } = seedPrices([
      provider('mistral', [{
        id: 'medium', match: { equals: 'medium' },
        prices: [
          { prices: { input_mtok: 1, output_mtok: 2 } },
          { constraint: { type: 'start_date', start_date: '2026-08-17' }, prices: { input_mtok: 0.5, output_mtok: 2, cache_read_mtok: 0.1 } },
          // Only a non-token price changes: the same token prices go on as one version.
          { constraint: { type: 'start_date', start_date: '2026-09-01' }, prices: { input_mtok: 0.5, output_mtok: 2, cache_read_mtok: 0.1, web_searches_kcount: 5 } },
        ],
      }]),
    ]);
    expect(prices.map((p) => [p.effectiveFrom, p.effectiveTo, p.inputPerMTok, p.cachedInputPerMTok])).toEqual([
      [CATALOG_EPOCH, '2026-08-17T00:00:00.000Z', '1', null],
      ['2026-08-17T00:00:00.000Z', null, '0.5', '0.1'],
    ]);
  });

  it('time-of-day prices fold in as the peak of each token kind, all day (deepseek-chat\'s layout)', () => {
    const { prices, report } = seedPrices([
      provider('deepseek', [{
        id: 'chat', match: { equals: 'chat' },
        prices: [
          { prices: { input_mtok: 0.135, cache_read_mtok: 0.035, output_mtok: 0.55 } },
          { constraint: { type: 'time_of_date', start_time: '00:30:00Z', end_time: '16:30:00Z' }, prices: { input_mtok: 0.27, output_mtok: 0.5 } },
        ],
      }]),
    ]);
    // Peak input 0.27, output 0.55 (the base's), cached 0.27: the peak entry lists no cache price, so it charges its input price.
    expect(prices.map((p) => [p.effectiveFrom, p.effectiveTo, p.inputPerMTok, p.outputPerMTok, p.cachedInputPerMTok])).toEqual([
      [CATALOG_EPOCH, null, '0.27', '0.55', '0.27'],
    ]);
    expect(report.timeOfDayEntries).toBe(1);
  });

  it('tiered prices keep the base tier; float residue is rounded to 10 decimals; output absent costs 0', () => {
    const { prices, report } = seedPrices([
      provider('google', [{
        id: 'gemini-pro', match: { equals: 'gemini-pro' },
        prices: { input_mtok: new TieredPrices({ base: 1.25, tiers: [{ start: 200000, price: 2.5 }] }), output_mtok: 0.18000000000000002 },
      }]),
      provider('voyageai', [{ id: 'voyage-3', match: { equals: 'voyage-3' }, prices: { input_mtok: 0.06 } }]),
    ]);
    expect(prices.map((p) => [p.modelId, p.inputPerMTok, p.outputPerMTok])).toEqual([['gemini-pro', '1.25', '0.18'], ['voyage-3', '0.06', '0']]);
    expect(report).toEqual(expect.objectContaining({ tieredPrices: 1, roundedPrices: 1 }));
  });

  it('models priced only in other units, duplicate ids and over-long ids are left out', () => {
    const { prices, report } = seedPrices([
      provider('mistral', [
        { id: 'ocr', match: { equals: 'ocr' }, prices: { input_document_kpages: 1 } },
        { id: 'small', match: { equals: 'small' }, prices: { input_mtok: 0.1, output_mtok: 0.3 } },
        { id: 'small', match: { equals: 'small' }, prices: { input_mtok: 9, output_mtok: 9 } },
        { id: 'x'.repeat(101), match: { equals: 'x' }, prices: { input_mtok: 1, output_mtok: 1 } },
      ]),
    ]);
    expect(prices.map((p) => [p.modelId, p.inputPerMTok])).toEqual([['small', '0.1']]);
    expect(report).toEqual(expect.objectContaining({ models: 1, withoutTokenPrices: 1, skippedIds: ['mistral/small', `mistral/${'x'.repeat(101)}`] }));
  });

  it('maps the real package data into versions that never overlap and stay within the column limits', async () => {
    const { prices, report } = seedPrices(await packageProviders());
    expect(report.models).toBeGreaterThan(1000);
    const spans = new Map<string, [string, string | null][]>();
    for (const price of prices) {
      expect(price.provider).toMatch(/^[a-z0-9][a-z0-9._-]{0,63}$/);
      for (const value of [price.inputPerMTok, price.outputPerMTok, price.cachedInputPerMTok ?? '0']) {
        expect(value).toMatch(/^\d{1,7}(\.\d{1,10})?$/);
      }
      const key = `${price.provider}/${price.modelId}`;
      spans.set(key, [...(spans.get(key) ?? []), [price.effectiveFrom, price.effectiveTo]]);
    }
    for (const [, list] of spans) {
      for (let i = 1; i < list.length; i++) expect(list[i - 1][1] !== null && list[i - 1][1]! <= list[i][0]).toBe(true);
    }
  });

  it('matches model ids as the package does: aliases, dated ids, case, fallback providers, makers', async () => {
    const providers = await packageProviders();
    expect(matchModel(providers, 'gpt-4o-2024-08-06')).toEqual({ provider: 'openai', modelId: 'gpt-4o' });
    expect(matchModel(providers, 'GPT-4o')).toEqual({ provider: 'openai', modelId: 'gpt-4o' });
    expect(matchModel(providers, 'claude-3-5-sonnet-20241022')).toEqual({ provider: 'anthropic', modelId: 'claude-3-5-sonnet' });
    expect(matchModel(providers, 'claude-3-5-sonnet-20241022', 'google')).toEqual({ provider: 'google', modelId: 'claude-3-5-sonnet' });
    // azure lists no gpt-4o of its own and falls back to openai's list.
    expect(matchModel(providers, 'gpt-4o', 'azure')).toEqual({ provider: 'openai', modelId: 'gpt-4o' });
    expect(matchModel(providers, 'no-such-model-anywhere')).toBeUndefined();
    expect(matchModel(providers, 'gpt-4o', 'no-such-provider')).toBeUndefined();
    expect(makerOf('gpt-4o')).toBe('openai');
    expect(makerOf('claude-opus-4-6')).toBe('anthropic');
    expect(makerOf('some-open-weights-model')).toBeUndefined();
  });
});
