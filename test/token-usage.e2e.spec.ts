import Decimal from 'decimal.js';
import { ConstraintRepository } from '../src/constraint/constraint.repository';
import { budgetMaker } from './setup/budgets';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';

/**
 * SPEC §14 / issue 15, token-priced usage and checks: usage writes (single, batch, integration)
 * carrying tokens instead of an amount are priced exactly from the catalog version in effect at
 * occurredAt and stored with it; checks take estimated tokens; bad input is refused, nothing stored.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;

/** The test's own exact arithmetic, configured apart from the service's. */
const Exact = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP });

interface Version {
  id: string;
  provider: string;
  modelId: string;
  input: string;
  output: string;
  cached: string | null;
  from: Date;
  to: Date | null;
}

interface Tokens {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
}

/** (input × in + cached × (cachedPrice ?? in) + output × out) / 10^6, half-up to 10 decimals: SPEC §14 computed here. */
function costAt(version: Pick<Version, 'input' | 'output' | 'cached'>, tokens: Tokens): string {
  return new Exact(tokens.inputTokens)
    .times(version.input)
    .plus(new Exact(tokens.cachedInputTokens ?? 0).times(version.cached ?? version.input))
    .plus(new Exact(tokens.outputTokens).times(version.output))
    .dividedBy(1_000_000)
    .toDecimalPlaces(10, Decimal.ROUND_HALF_UP)
    .toFixed();
}

/** A seeded generator (mulberry32), so a failing draw can be replayed. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (max: number) => Math.floor(next() * (max + 1));
  /** Token counts across magnitudes: 0, a few, thousands, up to 10^9. */
  const tokens = () => [0, int(9), int(99_999), int(1_000_000_000)][int(3)];
  return { next, int, tokens };
}

const fieldsOf = (res: TestResponse) => (res.body.errors ?? []).map((e: { field: string }) => e.field);

describe('Token-priced usage and checks (SPEC §14)', () => {
  let t: TestApp;
  const createBudget = budgetMaker(() => t, 'Tokens');
  /** A recurring monthly budget from 2020 with room for any amount: every past instant lies in one of its windows. */
  const roomyBudget = (patch: Record<string, unknown> = {}) =>
    createBudget<{ id: string }>({ amount: 1_000_000_000_000, startDate: '2020-01-01T00:00:00Z', ...patch });
  const record = (budgetId: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.request('POST', `${BUDGETS}/${budgetId}/usage`, { currency: 'USD', ...body }, headers);
  const ledger = (budgetId: string) =>
    t.sql<{ amount: string; price_id: string | null; input_tokens: number | null; provider: string | null }>(
      `SELECT trim_scale(amount)::text AS amount, price_id, input_tokens, output_tokens, cached_input_tokens, provider
       FROM budget_usage_records WHERE budget_id = $1 ORDER BY recorded_at, id`,
      [budgetId],
    );
  const putPrice = async (provider: string, modelId: string, body: Record<string, unknown>) => {
    const res = await t.request('PUT', `${API}/prices/${provider}/${encodeURIComponent(modelId)}`, body);
    expect([200, 201]).toContain(res.status);
    return res.body as { id: string };
  };

  beforeAll(async () => {
    t = await createTestApp();
    // A model of our own for the override and check specs, beside the seeded catalog.
    await putPrice('acme', 'tok-big', { inputPerMTok: '1000', outputPerMTok: '1000', effectiveFrom: '2020-01-01T00:00:00Z' });
    await putPrice('acme', 'tok-small', { inputPerMTok: '1', outputPerMTok: '2', cachedInputPerMTok: '0.5', effectiveFrom: '2020-01-01T00:00:00Z' });
  });

  afterAll(async () => {
    await t.close();
  });

  it('200 random (model, tokens, instant) triples from the seeded catalog: the stored amount is the exact cost at that version', async () => {
    const versions: Version[] = (
      await t.sql(
        `SELECT p.id, p.provider, p.model_id, p.input_per_mtok::text AS input, p.output_per_mtok::text AS output,
                p.cached_input_per_mtok::text AS cached, p.effective_from, p.effective_to,
                (SELECT count(DISTINCT q.provider) FROM model_prices q WHERE q.model_id = p.model_id)::int AS listed
         FROM model_prices p
         -- Versions a usage can fall in: a usage may not lie in the future.
         WHERE p.source LIKE '@pydantic/genai-prices@%' AND p.effective_from < now() - interval '1 minute'
         ORDER BY p.provider, p.model_id, p.effective_from`,
      )
    ).map((row) => ({
      id: row.id, provider: row.provider, modelId: row.model_id, input: row.input, output: row.output, cached: row.cached,
      from: row.effective_from, to: row.effective_to, listed: row.listed,
    }));
    expect(versions.length).toBeGreaterThan(1000);
    const rng = random(15);
    const budget = await roomyBudget();
    const earliest = Date.parse('2020-01-01T00:00:00Z');
    const latest = Date.now() - 60_000;
    const mismatches: unknown[] = [];
    for (let i = 0; i < 200; i++) {
      const version = versions[rng.int(versions.length - 1)] as Version & { listed: number };
      const from = Math.max(version.from.getTime(), earliest);
      const to = Math.min(version.to?.getTime() ?? latest, latest);
      const at = new Date(from + Math.floor(rng.next() * (to - from)));
      const tokens: Tokens = { inputTokens: rng.tokens(), outputTokens: rng.tokens(), ...(rng.int(1) ? { cachedInputTokens: rng.tokens() } : {}) };
      // A model id one provider lists resolves without naming it (SPEC §14); others name theirs.
      const provider = version.listed === 1 && rng.int(1) ? {} : { provider: version.provider };
      const res = await record(budget.id, { modelId: version.modelId, ...provider, ...tokens, occurredAt: at.toISOString() });
      const [stored] = await t.sql<{ amount: string; price_id: string }>(
        `SELECT trim_scale(amount)::text AS amount, price_id FROM budget_usage_records WHERE id = $1`,
        [res.body.id],
      );
      const expected = costAt(version, tokens);
      if (res.status !== 201 || stored?.amount !== expected || stored.price_id !== version.id || res.body.priceId !== version.id) {
        mismatches.push({ version, at, tokens, status: res.status, body: res.body, stored, expected });
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('the answer shows the tokens, provider and price version; a dated id resolves through the package\'s matching', async () => {
    const budget = await roomyBudget();
    const [gpt4o] = await t.sql(
      `SELECT id, input_per_mtok::text AS input, output_per_mtok::text AS output, cached_input_per_mtok::text AS cached
       FROM model_price_at('openai', 'gpt-4o', now())`,
    );
    const tokens = { inputTokens: 1200, outputTokens: 350, cachedInputTokens: 800 };
    const res = await record(budget.id, { modelId: 'gpt-4o-2024-08-06', ...tokens });
    expect(res.status).toBe(201);
    expect(res.body).toEqual(
      expect.objectContaining({ modelId: 'gpt-4o-2024-08-06', provider: 'openai', ...tokens, priceId: gpt4o.id, amount: Number(costAt(gpt4o, tokens)) }),
    );
    const history = await t.request('GET', `${BUDGETS}/${budget.id}/usage`);
    expect(history.body.data[0]).toEqual(expect.objectContaining({ provider: 'openai', ...tokens, priceId: gpt4o.id }));
  });

  it('amount and tokens both given: the amount wins, the tokens are kept (no price version)', async () => {
    const budget = await roomyBudget();
    const res = await record(budget.id, { amount: '0.5', modelId: 'no-such-model', provider: 'acme', inputTokens: 10, outputTokens: 20 });
    expect(res.status).toBe(201);
    expect(res.body).toEqual(expect.objectContaining({ amount: 0.5, provider: 'acme', inputTokens: 10, outputTokens: 20, cachedInputTokens: null, priceId: null }));
  });

  it('an override at T: usage before T keeps its amount, after T uses the new price; a replay after it answers the original amount', async () => {
    const modelId = 'tok-override';
    const v1 = await putPrice('acme', modelId, { inputPerMTok: '3', outputPerMTok: '15', effectiveFrom: '2024-01-01T00:00:00Z' });
    const T = new Date('2025-06-01T00:00:00Z');
    const before = new Date(T.getTime() - 86_400_000).toISOString();
    const after = new Date(T.getTime() + 3_600_000).toISOString();
    const tokens = { inputTokens: 123_457, outputTokens: 98_765 };
    const budget = await roomyBudget();
    const body = { modelId, provider: 'acme', ...tokens };

    const early = await record(budget.id, { ...body, occurredAt: before }, { 'Idempotency-Key': 'override-early' });
    const late = await record(budget.id, { ...body, occurredAt: after }, { 'Idempotency-Key': 'override-late' });
    const oldCost = costAt({ input: '3', output: '15', cached: null }, tokens);
    expect([early.status, late.status]).toEqual([201, 201]);
    expect([early.body.amount, late.body.amount]).toEqual([Number(oldCost), Number(oldCost)]);

    const v2 = await putPrice('acme', modelId, { inputPerMTok: '2.5', outputPerMTok: '10.0000000001', effectiveFrom: T.toISOString() });
    const newCost = costAt({ input: '2.5', output: '10.0000000001', cached: null }, tokens);
    expect(newCost).not.toBe(oldCost);

    const beforeT = await record(budget.id, { ...body, occurredAt: before });
    const afterT = await record(budget.id, { ...body, occurredAt: after });
    expect(beforeT.body).toEqual(expect.objectContaining({ amount: Number(oldCost), priceId: v1.id }));
    expect(afterT.body).toEqual(expect.objectContaining({ amount: Number(newCost), priceId: v2.id }));

    // The write after T recorded before the override: its replay answers what was stored.
    const replay = await record(budget.id, { ...body, occurredAt: after }, { 'Idempotency-Key': 'override-late' });
    expect(replay.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(expect.objectContaining({ id: late.body.id, amount: Number(oldCost), priceId: v1.id }));
    // Other tokens under the same key are another request.
    const reused = await record(budget.id, { ...body, inputTokens: 1, occurredAt: after }, { 'Idempotency-Key': 'override-late' });
    expectProblem(reused, 409);
    expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');

    const stored = await ledger(budget.id);
    expect(stored.map((row) => [row.amount, row.price_id])).toEqual([
      [oldCost, v1.id], [oldCost, v1.id], [oldCost, v1.id], [newCost, v2.id],
    ]);
    const status = await t.request('GET', `${BUDGETS}/${budget.id}/usage/summary?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z`);
    expect(new Exact(oldCost).times(3).plus(newCost).toNumber()).toBeCloseTo(status.body.total, 6);
  });

  it('batch: token-priced records are priced each at their instant; one the catalog cannot price fails alone', async () => {
    const budget = await roomyBudget();
    const tokens = { inputTokens: 1000, outputTokens: 2000, cachedInputTokens: 3000 };
    const res = await t.request('POST', `${BUDGETS}/${budget.id}/usage/batch`, {
      records: [
        { currency: 'USD', modelId: 'tok-small', ...tokens, idempotencyKey: 'batch-1' },
        { currency: 'USD', modelId: 'tok-unknown', inputTokens: 1, outputTokens: 1, idempotencyKey: 'batch-2' },
        { currency: 'USD', modelId: 'tok-small', provider: 'acme', amount: 7, inputTokens: 5, outputTokens: 6 },
        { currency: 'USD', modelId: 'tok-big', inputTokens: 500, outputTokens: 0, occurredAt: '2021-03-04T05:06:07Z' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expect.objectContaining({ recorded: 3, failed: 1 }));
    const [first, unknown, given, early] = res.body.results;
    expect(first.record).toEqual(expect.objectContaining({ amount: Number(costAt({ input: '1', output: '2', cached: '0.5' }, tokens)), provider: 'acme', ...tokens }));
    expect(unknown).toEqual(expect.objectContaining({ status: 422, error: { code: 'PRICE_NOT_FOUND', detail: expect.stringContaining('"tok-unknown"') } }));
    expect(given.record).toEqual(expect.objectContaining({ amount: 7, priceId: null, inputTokens: 5 }));
    expect(early.record).toEqual(expect.objectContaining({ amount: 0.5 }));
    expect(await ledger(budget.id)).toHaveLength(3);

    // A replay of the batch answers the stored lines; the failed one fails again.
    const again = await t.request('POST', `${BUDGETS}/${budget.id}/usage/batch`, {
      records: [
        { currency: 'USD', modelId: 'tok-small', ...tokens, idempotencyKey: 'batch-1' },
        { currency: 'USD', modelId: 'tok-small', ...tokens, inputTokens: 9, idempotencyKey: 'batch-1b' },
        { currency: 'USD', modelId: 'tok-small', ...tokens, outputTokens: 9, idempotencyKey: 'batch-1' },
      ],
    });
    expect(again.body.results.map((r: { status: number }) => r.status)).toEqual([200, 201, 409]);
    expect(again.body.results[0].record.id).toBe(first.record.id);
  });

  it('integration usage: tokens priced once for every budget the request matches; a replay answers the stored amount', async () => {
    await createBudget({ scopeType: 'project', scopeId: 'tok-project', amount: 1000 });
    const body = { projectId: 'tok-project', requestId: 'tok-integration-1', currency: 'USD', modelId: 'tok-small', inputTokens: 250_000, outputTokens: 125_000 };
    const res = await t.request('POST', `${API}/integration/usage`, body);
    expect(res.status).toBe(201);
    expect(res.body.records[0]).toEqual(expect.objectContaining({ amount: 0.5, provider: 'acme', inputTokens: 250_000, outputTokens: 125_000 }));
    const replay = await t.request('POST', `${API}/integration/usage`, body);
    expect(replay.status).toBe(200);
    expect(replay.body.records[0].id).toBe(res.body.records[0].id);
    const reused = await t.request('POST', `${API}/integration/usage`, { ...body, outputTokens: 1 });
    expectProblem(reused, 409);
    const unknown = await t.request('POST', `${API}/integration/usage`, { ...body, requestId: 'tok-integration-2', modelId: 'tok-unknown' });
    expectProblem(unknown, 422);
    expect(unknown.body).toEqual(expect.objectContaining({ code: 'PRICE_NOT_FOUND', detail: expect.stringContaining('"tok-unknown"') }));
    expect(fieldsOf(unknown)).toEqual(['modelId']);
    // Sent at once, the writes are committed in groups (IntegrationWriteGroups): each priced as alone.
    const many = await Promise.all([
      ...Array.from({ length: 40 }, (_, i) =>
        t.request('POST', `${API}/integration/usage`, { ...body, requestId: `tok-many-${i}`, inputTokens: 250_000 + i * 1_000_000 })),
      ...Array.from({ length: 3 }, (_, i) =>
        t.request('POST', `${API}/integration/usage`, { ...body, requestId: `tok-many-unknown-${i}`, modelId: 'tok-unknown' })),
    ]);
    many.slice(0, 40).forEach((r, i) => {
      expect(r.status).toBe(201);
      expect(r.body.records[0]).toEqual(expect.objectContaining({ amount: 0.5 + i, provider: 'acme', inputTokens: 250_000 + i * 1_000_000 }));
    });
    for (const r of many.slice(40)) expect(r.body).toEqual(expect.objectContaining({ status: 422, code: 'PRICE_NOT_FOUND' }));
  });

  describe('checks with estimated tokens', () => {
    it('single budget and integration: the answer shows the estimatedCost it used', async () => {
      const budget = await createBudget({ scopeType: 'project', scopeId: 'tok-check', amount: 100 });
      const res = await t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, {
        modelId: 'tok-small', estimatedInputTokens: 1_000_000, estimatedOutputTokens: 500_000,
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual(expect.objectContaining({ canProceed: true, estimatedCost: 2, percentUsedAfter: 2 }));
      expect(res.body.suggestedModelEstimatedCost).toBeUndefined();
      const integration = await t.request('POST', `${API}/integration/check-constraints`, {
        projectId: 'tok-check', currency: 'USD', modelId: 'tok-big', provider: 'acme', estimatedInputTokens: 60_000, estimatedOutputTokens: 50_000,
      });
      expect(integration.status).toBe(200);
      expect(integration.body).toEqual(expect.objectContaining({ canProceed: false, rule: 'hard-limit', estimatedCost: 110 }));
      // estimatedCost given too: it is the estimate.
      const both = await t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, {
        estimatedCost: 3, modelId: 'tok-small', estimatedInputTokens: 1, estimatedOutputTokens: 1,
      });
      expect(both.body.estimatedCost).toBe(3);
    });

    it('auto-downgrade also answers suggestedModelEstimatedCost, from the same catalog (null when it has no price)', async () => {
      const budget = await createBudget({
        alerts: [{ threshold: 50, actions: ['auto-downgrade'] }],
        modelPolicy: { downgrades: { 'tok-big': 'tok-small' } },
      });
      const tokens = { estimatedInputTokens: 30_000, estimatedOutputTokens: 30_000 };
      const res = await t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, { modelId: 'tok-big', ...tokens });
      expect(res.body).toEqual(
        expect.objectContaining({ canProceed: true, rule: 'auto-downgrade', suggestedModel: 'tok-small', estimatedCost: 60, suggestedModelEstimatedCost: 0.09 }),
      );
      const unpriced = await createBudget({
        alerts: [{ threshold: 50, actions: ['auto-downgrade'] }],
        modelPolicy: { downgrades: { 'tok-big': 'tok-unpriced' } },
      });
      const none = await t.request('POST', `${BUDGETS}/${unpriced.id}/check-constraints`, { modelId: 'tok-big', ...tokens });
      expect(none.body).toEqual(expect.objectContaining({ rule: 'auto-downgrade', suggestedModel: 'tok-unpriced', suggestedModelEstimatedCost: null }));
    });

    it('checks reuse the price a check read moments before, exactly; an override PUT applies to the next check at once', async () => {
      const modelId = 'tok-check-cache';
      await putPrice('acme', modelId, { inputPerMTok: '3', outputPerMTok: '15', effectiveFrom: '2024-01-01T00:00:00Z' });
      const budget = await createBudget({ amount: 1_000_000 });
      const check = (inputTokens: number, outputTokens: number) =>
        t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, { modelId, provider: 'acme', estimatedInputTokens: inputTokens, estimatedOutputTokens: outputTokens });
      const counts = [[1, 1], [123_457, 98_765], [999_999_999, 7], [0, 0]];
      for (const [input, output] of counts) {
        const res = await check(input, output);
        expect(res.body.estimatedCost).toBe(Number(costAt({ input: '3', output: '15', cached: null }, { inputTokens: input, outputTokens: output })));
      }
      await putPrice('acme', modelId, { inputPerMTok: '2.5', outputPerMTok: '10.0000000001', effectiveFrom: new Date(Date.now() - 1000).toISOString() });
      const after = await check(123_457, 98_765);
      expect(after.body.estimatedCost).toBe(Number(costAt({ input: '2.5', output: '10.0000000001', cached: null }, { inputTokens: 123_457, outputTokens: 98_765 })));
    });

    it('checks arriving while a check reads a model\'s price wait for it rather than each reading it; each answer is exact', async () => {
      const modelId = 'tok-check-herd';
      await putPrice('acme', modelId, { inputPerMTok: '1.25', outputPerMTok: '7', effectiveFrom: '2024-01-01T00:00:00Z' });
      const budget = await createBudget({ amount: 1_000_000 });
      const repository = t.app.get(ConstraintRepository);
      const reads = jest.spyOn(repository, 'pricedCheckContext');
      try {
        const answers = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, {
              modelId, provider: 'acme', estimatedInputTokens: 1_000 * (i + 1), estimatedOutputTokens: 77,
            })),
        );
        answers.forEach((res, i) => {
          expect(res.status).toBe(200);
          expect(res.body.estimatedCost).toBe(Number(costAt({ input: '1.25', output: '7', cached: null }, { inputTokens: 1_000 * (i + 1), outputTokens: 77 })));
        });
        // One check read the price; the others waited for it (a few may start before it began).
        expect(reads.mock.calls.length).toBeGreaterThanOrEqual(1);
        expect(reads.mock.calls.length).toBeLessThanOrEqual(3);
      } finally {
        reads.mockRestore();
      }
    });

    it('a reservation holds the tokens\' cost', async () => {
      const budget = await createBudget({ amount: 100 });
      const res = await t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, {
        modelId: 'tok-small', estimatedInputTokens: 2_000_000, estimatedOutputTokens: 0, reserve: true,
      });
      expect(res.body.reservationId).toEqual(expect.any(String));
      const [hold] = await t.sql(`SELECT trim_scale(amount)::text AS amount FROM budget_reservations WHERE id = $1`, [res.body.reservationId]);
      expect(hold.amount).toBe('2');
    });
  });

  describe('bad input: 400/422 naming the field, nothing stored', () => {
    const base = { modelId: 'tok-small', inputTokens: 10, outputTokens: 10 };
    const cases: [string, Record<string, unknown>, number, string][] = [
      ['negative tokens', { ...base, inputTokens: -1 }, 400, 'inputTokens'],
      ['fractional tokens', { ...base, outputTokens: 1.5 }, 400, 'outputTokens'],
      ['tokens above 10^9', { ...base, cachedInputTokens: 1_000_000_001 }, 400, 'cachedInputTokens'],
      ['tokens as a string', { ...base, inputTokens: '10' }, 400, 'inputTokens'],
      ['tokens as null', { ...base, outputTokens: null }, 400, 'outputTokens'],
      ['neither amount nor tokens', { modelId: 'tok-small' }, 400, 'amount'],
      ['input tokens without output tokens', { modelId: 'tok-small', inputTokens: 10 }, 400, 'outputTokens'],
      ['tokens without a model', { inputTokens: 10, outputTokens: 10 }, 400, 'modelId'],
      ['a malformed provider', { ...base, provider: 'Acme Inc' }, 400, 'provider'],
      ['an unknown model without amount', { ...base, modelId: 'tok-unknown' }, 422, 'modelId'],
      ['a provider that does not price the model', { ...base, provider: 'openai' }, 422, 'modelId'],
    ];
    it.each(cases)('usage with %s', async (_label, body, status, field) => {
      const budget = await roomyBudget();
      const res = await record(budget.id, body);
      expectProblem(res, status);
      expect(fieldsOf(res)).toContain(field);
      const batch = await t.request('POST', `${BUDGETS}/${budget.id}/usage/batch`, { records: [{ currency: 'USD', ...body }] });
      if (status === 400) {
        expectProblem(batch, 400);
        expect(JSON.stringify(batch.body.errors)).toContain(field);
      } else {
        expect(batch.body.results[0]).toEqual(expect.objectContaining({ status, error: expect.objectContaining({ code: 'PRICE_NOT_FOUND' }) }));
      }
      const integration = await t.request('POST', `${API}/integration/usage`, { projectId: 'tok-bad', requestId: `bad-${_label}`, currency: 'USD', ...body });
      expectProblem(integration, status);
      expect(fieldsOf(integration)).toContain(field);
      expect(await ledger(budget.id)).toEqual([]);
    });

    it('a model id several providers price and no maker among them → 422 PROVIDER_REQUIRED naming provider', async () => {
      await putPrice('acme', 'tok-shared', { inputPerMTok: '1', outputPerMTok: '1', effectiveFrom: '2020-01-01T00:00:00Z' });
      await putPrice('zeta', 'tok-shared', { inputPerMTok: '2', outputPerMTok: '2', effectiveFrom: '2020-01-01T00:00:00Z' });
      const budget = await roomyBudget();
      const res = await record(budget.id, { modelId: 'tok-shared', inputTokens: 1, outputTokens: 1 });
      expectProblem(res, 422);
      expect(res.body).toEqual(expect.objectContaining({ code: 'PROVIDER_REQUIRED', detail: expect.stringContaining('acme, zeta') }));
      expect(fieldsOf(res)).toEqual(['provider']);
      const named = await record(budget.id, { modelId: 'tok-shared', provider: 'zeta', inputTokens: 500_000, outputTokens: 0 });
      expect(named.body).toEqual(expect.objectContaining({ amount: 1, provider: 'zeta' }));
    });

    const checks: [string, Record<string, unknown>, number, string][] = [
      ['negative estimated tokens', { modelId: 'tok-small', estimatedInputTokens: -5, estimatedOutputTokens: 1 }, 400, 'estimatedInputTokens'],
      ['fractional estimated tokens', { modelId: 'tok-small', estimatedInputTokens: 5, estimatedOutputTokens: 0.5 }, 400, 'estimatedOutputTokens'],
      ['estimated tokens above 10^9', { modelId: 'tok-small', estimatedInputTokens: 2e9, estimatedOutputTokens: 1 }, 400, 'estimatedInputTokens'],
      ['estimated tokens as a string', { modelId: 'tok-small', estimatedInputTokens: '5', estimatedOutputTokens: 1 }, 400, 'estimatedInputTokens'],
      ['estimated tokens without a model', { estimatedInputTokens: 5, estimatedOutputTokens: 1 }, 400, 'modelId'],
      ['only input tokens', { modelId: 'tok-small', estimatedInputTokens: 5 }, 400, 'estimatedOutputTokens'],
      ['no estimate at all', { modelId: 'tok-small' }, 400, 'estimatedCost'],
      ['an unknown model', { modelId: 'tok-unknown', estimatedInputTokens: 5, estimatedOutputTokens: 1 }, 422, 'modelId'],
    ];
    it.each(checks)('check with %s', async (_label, body, status, field) => {
      const budget = await createBudget();
      const res = await t.request('POST', `${BUDGETS}/${budget.id}/check-constraints`, { ...body, reserve: true });
      expectProblem(res, status);
      expect(fieldsOf(res)).toContain(field);
      const integration = await t.request('POST', `${API}/integration/check-constraints`, { teamId: 'tok-any', currency: 'USD', ...body });
      expectProblem(integration, status);
      expect(fieldsOf(integration)).toContain(field);
      expect(await t.sql(`SELECT 1 FROM budget_reservations WHERE $1::uuid = ANY (budget_ids)`, [budget.id])).toEqual([]);
    });
  });
});
