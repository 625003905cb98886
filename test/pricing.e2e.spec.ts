import Decimal from 'decimal.js';
import fc from 'fast-check';
import { calcPrice, findProvider, waitForUpdate, type ModelInfo, type ModelPrice, type Provider } from '@pydantic/genai-prices';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { DomainError } from '../src/common/errors/domain-error';
import { toProblem } from '../src/common/errors/problem';
import { dataSourceOptions, MIGRATIONS } from '../src/database/data-source.options';
import { PriceCatalog1764303000000 } from '../migrations/1764303000000-PriceCatalog';
import { packageProviders, seedPrices } from '../src/pricing/genai-prices.data';
import { PriceCatalogRepository } from '../src/pricing/price-catalog.repository';
import { PriceCatalogSeeder } from '../src/pricing/price-catalog.seeder';
import { PriceCatalogService } from '../src/pricing/price-catalog.service';
import { createTestDatabase, databaseUrlFor, testDbPrefix } from './setup/test-database';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';

/**
 * SPEC §14 / issue 15, the price catalog: seeded at start-up from @pydantic/genai-prices, admin
 * overrides as new versions, provider resolution, tokens → exact cost, bad input refused.
 */

const PRICES = '/api/v1/prices';
const SOURCE = `@pydantic/genai-prices@${require('../package.json').dependencies['@pydantic/genai-prices']}`;
const EPOCH = '1970-01-01T00:00:00.000Z';

/** The test's own exact arithmetic, configured apart from the service's. */
const Exact = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP });

/** A problem+json answer (test/setup/problem.ts) with this stable code, leaking no table name either. */
function expectCodedProblem(res: TestResponse, status: number, code: string) {
  expectProblem(res, status);
  expect(res.body.code).toBe(code);
  expect(JSON.stringify(res.body)).not.toMatch(/model_prices/);
}

/** The fields a 400 names. */
const fieldsOf = (res: TestResponse) => (res.body.errors ?? []).map((e: { field: string }) => e.field);

/** The service's error as the API answers it. */
async function problemOf(promise: Promise<unknown>): Promise<{ status: number; code: string; detail: string; fields: string[] }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  const { body } = toProblem(error, '/in-process');
  return { status: body.status, code: body.code, detail: body.detail, fields: (body.errors ?? []).map((e) => e.field) };
}

/**
 * What a model costs at an instant, computed here from the package's raw data (not with the
 * service's code), by the rules docs/pricing.md states: the package's choice of entry (the last
 * one in list order that applies), except that a time-of-day entry is not limited to its hours
 * (each token kind at the highest price any applicable entry charges that day); tiered prices at
 * their base tier; numbers read as their shortest decimal and rounded to 10 decimals.
 */
function expectedCost(model: ModelInfo, at: Date, tokens: { inputTokens: number; outputTokens: number; cachedInputTokens: number }): string | undefined {
  const entries = Array.isArray(model.prices) ? model.prices : [{ prices: model.prices }];
  const applicable: ModelPrice[] = [];
  let i = entries.length - 1;
  for (; i >= 0; i--) {
    const constraint = entries[i].constraint;
    if (constraint?.type === 'time_of_date') applicable.push(entries[i].prices);
    else if (!constraint || at.getTime() >= Date.parse(`${constraint.start_date}T00:00:00Z`)) break;
  }
  applicable.push(entries[Math.max(i, 0)].prices);
  const rate = (value: ModelPrice[string]) =>
    value === undefined ? undefined : new Exact(String(typeof value === 'number' ? value : value.base)).toDecimalPlaces(10);
  const priced = applicable
    .map((prices) => ({ input: rate(prices.input_mtok), output: rate(prices.output_mtok), cached: rate(prices.cache_read_mtok) }))
    .filter((p) => p.input || p.output);
  if (!priced.length) return undefined;
  const max = (values: Decimal[]) => Exact.max(...values);
  const input = max(priced.map((p) => p.input ?? new Exact(0)));
  const output = max(priced.map((p) => p.output ?? new Exact(0)));
  const cached = priced.some((p) => p.cached) ? max(priced.map((p) => p.cached ?? p.input ?? new Exact(0))) : input;
  return new Exact(tokens.inputTokens)
    .times(input)
    .plus(new Exact(tokens.cachedInputTokens).times(cached))
    .plus(new Exact(tokens.outputTokens).times(output))
    .dividedBy(1_000_000)
    .toDecimalPlaces(10)
    .toFixed();
}

/** Whether the package's own (float) calcPrice prices these tokens the same way the catalog does. */
function packageAgrees(model: ModelInfo): boolean {
  const entries = Array.isArray(model.prices) ? model.prices : [{ prices: model.prices }];
  return entries.every(
    (entry) =>
      entry.constraint?.type !== 'time_of_date' &&
      Object.entries(entry.prices).every(([key, value]) => typeof value === 'number' && key !== 'requests_kcount'),
  );
}

describe('price catalog', () => {
  let t: TestApp;
  let catalog: PriceCatalogService;
  let providers: Provider[];
  const count = async (where = 'true', params: unknown[] = []) =>
    Number((await t.sql(`SELECT count(*)::int AS n FROM model_prices WHERE ${where}`, params))[0].n);

  beforeAll(async () => {
    t = await createTestApp();
    catalog = t.app.get(PriceCatalogService);
    providers = (await waitForUpdate())!;
  });

  afterAll(async () => {
    await t.close();
  });

  describe('seeded from the package at start-up', () => {
    it('names the pinned package version as the source of every seeded version', async () => {
      const sources = await t.sql(`SELECT source, count(*)::int AS n FROM model_prices GROUP BY source`);
      expect(sources).toEqual([{ source: SOURCE, n: expect.any(Number) }]);
      expect(sources[0].n).toBeGreaterThan(1000);
      const res = await t.request('GET', `${PRICES}?provider=openai&modelId=gpt-4o`, undefined, { authorization: `Bearer ${t.keys.viewer}` });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        data: [
          {
            id: expect.any(String), provider: 'openai', modelId: 'gpt-4o', inputPerMTok: '2.5', outputPerMTok: '10',
            cachedInputPerMTok: '1.25', currency: 'USD', effectiveFrom: EPOCH, effectiveTo: null, source: SOURCE,
            createdAt: expect.any(String), createdBy: null,
          },
        ],
        nextCursor: null,
      });
    });

    it('keeps the package\'s dated prices as versions (openai o3 from 10/40 to 2/8 on 2025-06-10)', async () => {
      const res = await t.request('GET', `${PRICES}?provider=openai&modelId=o3`);
      expect(res.body.data.map((v: any) => [v.effectiveFrom, v.effectiveTo, v.inputPerMTok, v.outputPerMTok])).toEqual([
        [EPOCH, '2025-06-10T00:00:00.000Z', '10', '40'],
        ['2025-06-10T00:00:00.000Z', null, '2', '8'],
      ]);
      // A dated entry that changes no token price (claude-opus-4-6 drops its long-context tiers) adds no version.
      const opus = await t.request('GET', `${PRICES}?provider=anthropic&modelId=claude-opus-4-6`);
      expect(opus.body.data.map((v: any) => [v.effectiveFrom, v.effectiveTo, v.inputPerMTok])).toEqual([[EPOCH, null, '5']]);
    });

    it('costOf equals an exact computation from the package\'s raw data for 200 random (model, tokens, instant) triples', async () => {
      const seeded: { provider: string; modelId: string }[] = await t.sql(
        `SELECT DISTINCT provider, model_id AS "modelId" FROM model_prices WHERE source = $1 ORDER BY 1, 2`,
        [SOURCE],
      );
      const modelOf = (provider: string, modelId: string) =>
        providers.find((p) => p.id === provider)!.models.find((m) => m.id === modelId)!;
      const startDates = [
        ...new Set(
          providers.flatMap((p) =>
            p.models.flatMap((m) => (Array.isArray(m.prices) ? m.prices : []).flatMap((e) => (e.constraint?.type === 'start_date' ? [e.constraint.start_date] : []))),
          ),
        ),
      ].map((day) => Date.parse(`${day}T00:00:00Z`));
      const instant = fc.oneof(
        fc.date({ min: new Date('2023-01-01T00:00:00Z'), max: new Date('2028-12-31T23:59:59Z'), noInvalidDate: true }),
        // Exactly at a price change, and the millisecond before it.
        fc.tuple(fc.constantFrom(...startDates), fc.constantFrom(0, -1)).map(([at, shift]) => new Date(at + shift)),
      );
      const tokenCount = fc.oneof(fc.integer({ min: 0, max: 1_000_000_000 }), fc.integer({ min: 0, max: 5_000 }), fc.constantFrom(0, 1, 999_999, 1_000_000_000));
      const triples = fc.sample(
        fc.record({ pick: fc.nat({ max: seeded.length - 1 }), at: instant, inputTokens: tokenCount, outputTokens: tokenCount, cachedInputTokens: tokenCount }),
        { seed: 15_2026, numRuns: 200 },
      );
      const mismatches: unknown[] = [];
      let crossChecked = 0;
      for (const { pick, at, ...tokens } of triples) {
        const { provider, modelId } = seeded[pick];
        const model = modelOf(provider, modelId);
        const expected = expectedCost(model, at, tokens);
        if (expected === undefined) {
          // No token price at that instant: the catalog has no version then either.
          const refused = await catalog.costOf({ provider, modelId, at, ...tokens }).then(
            (cost) => cost,
            (error: DomainError) => error.code,
          );
          if (refused !== 'PRICE_NOT_FOUND') mismatches.push({ provider, modelId, at, expected: 'PRICE_NOT_FOUND', got: refused });
          continue;
        }
        const cost = await catalog.costOf({ provider, modelId, at, ...tokens });
        if (cost.amount !== expected || cost.provider !== provider || cost.modelId !== modelId) {
          mismatches.push({ provider, modelId, at, tokens, expected, got: cost });
        }
        // The package's own float arithmetic agrees (to float precision) where its rules are the catalog's.
        if (packageAgrees(model)) {
          crossChecked++;
          // This very model (some canonical ids are not matched by their own model's rules).
          const only: Provider = { id: provider, name: provider, api_pattern: '', models: [{ ...model, match: { equals: modelId } }] };
          const floats = calcPrice(
            { input_tokens: tokens.inputTokens + tokens.cachedInputTokens, cache_read_tokens: tokens.cachedInputTokens, output_tokens: tokens.outputTokens },
            modelId,
            { provider: only, timestamp: at },
          );
          const tolerance = Math.max(1e-9, Number(expected) * 1e-9);
          if (!floats || Math.abs(floats.total_price - Number(expected)) > tolerance) {
            mismatches.push({ provider, modelId, at, tokens, expected, package: floats?.total_price });
          }
        }
      }
      expect(mismatches).toEqual([]);
      expect(crossChecked).toBeGreaterThan(100);
    });

    it('priceFor answers the version; a time-of-day price holds all day at its peak (deepseek-chat)', async () => {
      const peak = await catalog.priceFor({ provider: 'deepseek', modelId: 'deepseek-chat', at: new Date('2026-06-01T12:00:00Z') });
      const offPeak = await catalog.priceFor({ provider: 'deepseek', modelId: 'deepseek-chat', at: new Date('2026-06-01T20:00:00Z') });
      expect(offPeak).toEqual(peak);
      const model = providers.find((p) => p.id === 'deepseek')!.models.find((m) => m.id === 'deepseek-chat')!;
      const [base, daytime] = (model.prices as { prices: ModelPrice }[]).map((entry) => entry.prices);
      expect(Number(daytime.input_mtok)).toBeGreaterThan(Number(base.input_mtok));
      expect(peak).toEqual(expect.objectContaining({ inputPerMTok: String(daytime.input_mtok), outputPerMTok: String(daytime.output_mtok) }));
    });
  });

  describe('provider resolution without a provider', () => {
    const at = new Date('2026-06-01T00:00:00Z');
    const tokens = { inputTokens: 1_000_000, outputTokens: 0 };
    let listedBy: Map<string, string[]>;

    beforeAll(async () => {
      listedBy = new Map();
      for (const row of await t.sql(`SELECT model_id AS "modelId", array_agg(DISTINCT provider ORDER BY provider) AS providers FROM model_prices GROUP BY model_id`)) {
        listedBy.set(row.modelId, row.providers);
      }
    });

    it('a model id one provider lists resolves to it', async () => {
      const [modelId, [provider]] = [...listedBy].find(([id, list]) => list.length === 1 && findProvider({ modelId: id }) === undefined)!;
      expect(await catalog.costOf({ modelId, at, ...tokens })).toEqual(expect.objectContaining({ provider, modelId }));
    });

    it('several providers: the one the data marks as the maker (claude-3-5-sonnet → anthropic, gpt-4o → openai)', async () => {
      expect(listedBy.get('claude-3-5-sonnet')).toEqual(['anthropic', 'google']);
      expect(await catalog.costOf({ modelId: 'claude-3-5-sonnet', at, ...tokens })).toEqual(
        expect.objectContaining({ provider: 'anthropic', modelId: 'claude-3-5-sonnet', amount: '3' }),
      );
      expect(await catalog.costOf({ modelId: 'gpt-4o', at, ...tokens })).toEqual(expect.objectContaining({ provider: 'openai', amount: '2.5' }));
      expect(await catalog.costOf({ provider: 'google', modelId: 'claude-3-5-sonnet', at, ...tokens })).toEqual(expect.objectContaining({ provider: 'google' }));
    });

    it('several providers and no maker among them → 422 PROVIDER_REQUIRED naming the field', async () => {
      const [modelId, list] = [...listedBy].find(([id, l]) => l.length > 1 && !l.includes(findProvider({ modelId: id })?.id ?? ''))!;
      const problem = await problemOf(catalog.costOf({ modelId, at, ...tokens }));
      expect(problem).toEqual({ status: 422, code: 'PROVIDER_REQUIRED', detail: expect.stringContaining(modelId), fields: ['provider'] });
      expect(await catalog.costOf({ provider: list[0], modelId, at, ...tokens })).toEqual(expect.objectContaining({ provider: list[0] }));
    });

    it('dated and aliased ids resolve through the package\'s match rules to the catalog id', async () => {
      expect(await catalog.costOf({ modelId: 'gpt-4o-2024-08-06', at, ...tokens })).toEqual(expect.objectContaining({ provider: 'openai', modelId: 'gpt-4o' }));
      expect(await catalog.costOf({ modelId: 'claude-3-5-sonnet-20241022', at, ...tokens })).toEqual(
        expect.objectContaining({ provider: 'anthropic', modelId: 'claude-3-5-sonnet' }),
      );
      expect(await catalog.priceFor({ provider: 'azure', modelId: 'gpt-4o', at })).toEqual(expect.objectContaining({ provider: 'openai', modelId: 'gpt-4o' }));
    });

    it('no price → 422 PRICE_NOT_FOUND naming the model (unknown id, a provider that does not list it, before its first version)', async () => {
      for (const query of [
        { modelId: 'no-such-model-9000' },
        { provider: 'openai', modelId: 'claude-2' },
        { provider: 'nobody', modelId: 'gpt-4o' },
      ]) {
        const problem = await problemOf(catalog.costOf({ ...query, at, ...tokens }));
        expect(problem).toEqual({ status: 422, code: 'PRICE_NOT_FOUND', detail: expect.stringContaining(`"${query.modelId}"`), fields: ['modelId'] });
      }
    });
  });

  describe('admin overrides: PUT /prices/{provider}/{modelId}', () => {
    const T = '2026-12-01T00:00:00.000Z';
    const before = new Date(Date.parse(T) - 1);
    const after = new Date(T);
    const oneMillionIn = { inputTokens: 1_000_000, outputTokens: 1_000_000, cachedInputTokens: 1_000_000 };

    it('a new version at T: before T the old price, from T the new one, history kept', async () => {
      const res = await t.request('PUT', `${PRICES}/openai/gpt-4o-mini`, { inputPerMTok: '0.2', outputPerMTok: 0.8, effectiveFrom: '2026-12-01T01:00:00+01:00' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual(
        expect.objectContaining({
          provider: 'openai', modelId: 'gpt-4o-mini', inputPerMTok: '0.2', outputPerMTok: '0.8', cachedInputPerMTok: null,
          currency: 'USD', effectiveFrom: T, effectiveTo: null, source: 'admin', createdBy: 'test-admin',
        }),
      );
      const old = await catalog.costOf({ provider: 'openai', modelId: 'gpt-4o-mini', at: before, ...oneMillionIn });
      const now = await catalog.costOf({ provider: 'openai', modelId: 'gpt-4o-mini', at: after, ...oneMillionIn });
      // gpt-4o-mini in the package: 0.15 in, 0.075 cached, 0.6 out.
      expect(old).toEqual(expect.objectContaining({ amount: '0.825', effectiveFrom: EPOCH }));
      expect(now).toEqual({ amount: '1.2', currency: 'USD', priceId: res.body.id, provider: 'openai', modelId: 'gpt-4o-mini', effectiveFrom: T });
      const history = await t.request('GET', `${PRICES}?provider=openai&modelId=gpt-4o-mini`);
      expect(history.body.data.map((v: any) => [v.effectiveFrom, v.effectiveTo, v.inputPerMTok, v.source])).toEqual([
        [EPOCH, T, '0.15', SOURCE],
        [T, null, '0.2', 'admin'],
      ]);
      const at = await t.request('GET', `${PRICES}?provider=openai&modelId=gpt-4o-mini&at=${encodeURIComponent(before.toISOString())}`);
      expect(at.body.data.map((v: any) => v.inputPerMTok)).toEqual(['0.15']);
    });

    it('the same PUT again is a replay: 200, the same version, nothing added', async () => {
      const rows = await count();
      const body = { inputPerMTok: '0.20', outputPerMTok: '0.8', effectiveFrom: T, currency: 'USD' };
      const res = await t.request('PUT', `${PRICES}/openai/gpt-4o-mini`, body);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(expect.objectContaining({ effectiveFrom: T, inputPerMTok: '0.2' }));
      expect(await count()).toBe(rows);
    });

    it('an override overlapping a later version → 409 PRICE_VERSION_CONFLICT, nothing stored', async () => {
      const rows = await count();
      const snapshot = await t.sql(`SELECT * FROM model_prices WHERE provider = 'openai' AND model_id = 'gpt-4o-mini' ORDER BY effective_from`);
      for (const body of [
        { inputPerMTok: '0.3', outputPerMTok: '1', effectiveFrom: '2026-11-01T00:00:00Z' },
        { inputPerMTok: '0.3', outputPerMTok: '1', effectiveFrom: '2026-11-01T00:00:00Z', effectiveTo: '2026-12-02T00:00:00Z' },
        { inputPerMTok: '0.3', outputPerMTok: '1', effectiveFrom: T },
      ]) {
        const res = await t.request('PUT', `${PRICES}/openai/gpt-4o-mini`, body);
        expectCodedProblem(res, 409, 'PRICE_VERSION_CONFLICT');
        expect(res.body.detail).toContain(T);
      }
      expect(await count()).toBe(rows);
      expect(await t.sql(`SELECT * FROM model_prices WHERE provider = 'openai' AND model_id = 'gpt-4o-mini' ORDER BY effective_from`)).toEqual(snapshot);
    });

    it('a bounded override fits before a later version, and a temporary price resumes the old one after it', async () => {
      const gap = await t.request('PUT', `${PRICES}/openai/gpt-4o-mini`, {
        inputPerMTok: '0.1', outputPerMTok: '0.4', effectiveFrom: '2026-11-01T00:00:00Z', effectiveTo: '2026-11-08T00:00:00Z',
      });
      // gpt-4o-mini's seeded version ends at T now: it is bounded, so it is not cut.
      expectCodedProblem(gap, 409, 'PRICE_VERSION_CONFLICT');

      const promo = await t.request('PUT', `${PRICES}/anthropic/claude-3-haiku`, {
        inputPerMTok: '0.125', outputPerMTok: '0.625', cachedInputPerMTok: '0.01', effectiveFrom: '2026-07-01T00:00:00Z', effectiveTo: '2026-07-08T00:00:00Z',
      });
      expect(promo.status).toBe(201);
      const history = await t.request('GET', `${PRICES}?provider=anthropic&modelId=claude-3-haiku`);
      expect(history.body.data.map((v: any) => [v.effectiveFrom, v.effectiveTo, v.inputPerMTok, v.source])).toEqual([
        [EPOCH, '2026-07-01T00:00:00.000Z', '0.25', SOURCE],
        ['2026-07-01T00:00:00.000Z', '2026-07-08T00:00:00.000Z', '0.125', 'admin'],
        ['2026-07-08T00:00:00.000Z', null, '0.25', SOURCE],
      ]);
      const during = await catalog.costOf({ provider: 'anthropic', modelId: 'claude-3-haiku', at: new Date('2026-07-03T00:00:00Z'), ...oneMillionIn });
      expect(during.amount).toBe('0.76');
    });

    it('an override may add a model the catalog lacks (a / in the id is sent as %2F)', async () => {
      const res = await t.request('PUT', `${PRICES}/acme-llm/${encodeURIComponent('acme/pro-1')}`, {
        inputPerMTok: '1.0000000001', outputPerMTok: '3', effectiveFrom: '2026-01-01T00:00:00Z',
      });
      expect(res.status).toBe(201);
      expect(res.body).toEqual(expect.objectContaining({ provider: 'acme-llm', modelId: 'acme/pro-1', inputPerMTok: '1.0000000001' }));
      expect(await catalog.costOf({ modelId: 'acme/pro-1', at: new Date('2026-02-01T00:00:00Z'), inputTokens: 3, outputTokens: 0 })).toEqual(
        expect.objectContaining({ provider: 'acme-llm', amount: '0.000003' }),
      );
      // 3 × 1.0000000001 / 10^6 = 0.0000030000000003 → 10 decimals, half-up.
      const problem = await problemOf(catalog.costOf({ modelId: 'acme/pro-1', at: new Date('2025-12-31T23:59:59Z'), inputTokens: 3, outputTokens: 0 }));
      expect(problem.code).toBe('PRICE_NOT_FOUND');
    });

    it('lists with filters and a cursor: every version once, in (provider, model, effectiveFrom) order', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: TestResponse = await t.request('GET', `${PRICES}?provider=openai&limit=17${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        expect(page.body.data.length).toBeLessThanOrEqual(17);
        seen.push(...page.body.data.map((v: any) => `${v.provider}|${v.modelId}|${v.effectiveFrom}`));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(seen.length).toBe(await count(`provider = 'openai'`));
      expect(new Set(seen).size).toBe(seen.length);
      const ordered = await t.sql(
        `SELECT provider || '|' || model_id || '|' || to_char(effective_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS k
         FROM model_prices WHERE provider = 'openai' ORDER BY provider, model_id, effective_from`,
      );
      expect(seen).toEqual(ordered.map((r) => r.k));
      const atT = await t.request('GET', `${PRICES}?at=${encodeURIComponent(T)}&limit=500`);
      expect(atT.body.data.every((v: any) => v.effectiveFrom <= T && (v.effectiveTo === null || v.effectiveTo > T))).toBe(true);
    });

    it('reading needs viewer, writing admin', async () => {
      const body = { inputPerMTok: '1', outputPerMTok: '1', effectiveFrom: '2030-01-01T00:00:00Z' };
      for (const role of ['viewer', 'service'] as const) {
        expectProblem(await t.request('PUT', `${PRICES}/openai/gpt-4o`, body, { authorization: `Bearer ${t.keys[role]}` }), 403);
      }
      expect((await t.request('GET', PRICES, undefined, { authorization: `Bearer ${t.keys.viewer}` })).status).toBe(200);
      expectProblem(await t.request('GET', PRICES, undefined, { authorization: 'Bearer nope' }), 401);
    });
  });

  describe('bad input → 400/422/414 problem+json naming the field, nothing stored', () => {
    const good = { inputPerMTok: '1', outputPerMTok: '2', effectiveFrom: '2031-01-01T00:00:00Z' };
    const cases: [string, string, unknown, number, string[]][] = [
      ['more than 10 decimals', 'openai/gpt-4o', { ...good, inputPerMTok: '0.12345678901' }, 400, ['inputPerMTok']],
      ['more than 10 decimals (cached)', 'openai/gpt-4o', { ...good, cachedInputPerMTok: 1.00000000001 }, 400, ['cachedInputPerMTok']],
      ['negative price', 'openai/gpt-4o', { ...good, outputPerMTok: '-1' }, 400, ['outputPerMTok']],
      ['price too large', 'openai/gpt-4o', { ...good, outputPerMTok: '1e7' }, 400, ['outputPerMTok']],
      ['not a number', 'openai/gpt-4o', { ...good, inputPerMTok: 'cheap' }, 400, ['inputPerMTok']],
      ['a padded decimal string', 'openai/gpt-4o', { ...good, inputPerMTok: ' 5 ' }, 400, ['inputPerMTok']],
      ['missing price', 'openai/gpt-4o', { inputPerMTok: '1', effectiveFrom: good.effectiveFrom }, 400, ['outputPerMTok']],
      ['null price', 'openai/gpt-4o', { ...good, inputPerMTok: null }, 400, ['inputPerMTok']],
      ['malformed instant', 'openai/gpt-4o', { ...good, effectiveFrom: '2031-02-30T00:00:00Z' }, 400, ['effectiveFrom']],
      ['missing effectiveFrom', 'openai/gpt-4o', { inputPerMTok: '1', outputPerMTok: '1' }, 400, ['effectiveFrom']],
      ['effectiveTo not after effectiveFrom', 'openai/gpt-4o', { ...good, effectiveTo: good.effectiveFrom }, 400, ['effectiveTo']],
      ['another currency', 'openai/gpt-4o', { ...good, currency: 'EUR' }, 400, ['currency']],
      ['unknown field', 'openai/gpt-4o', { ...good, amount: 1 }, 400, ['amount']],
      ['bad provider', 'OpenAI/gpt-4o', good, 400, ['provider']],
      ['bad model id', `openai/${encodeURIComponent('gpt 4o')}`, good, 400, ['modelId']],
    ];

    it.each(cases)('PUT: %s', async (_, path, body, status, fields) => {
      const rows = await count();
      const res = await t.request('PUT', `${PRICES}/${path}`, body);
      expectCodedProblem(res, status, 'VALIDATION_FAILED');
      expect(fieldsOf(res)).toEqual(fields);
      expect(await count()).toBe(rows);
    });

    it('PUT: a model id longer than a path segment may be → 414 problem+json', async () => {
      const rows = await count();
      expectCodedProblem(await t.request('PUT', `${PRICES}/openai/${'m'.repeat(101)}`, good), 414, 'URI_TOO_LONG');
      expect(await count()).toBe(rows);
    });

    it.each([
      ['at=2026-13-01T00:00:00Z', 'at'],
      ['limit=0', 'limit'],
      ['provider=Open%20AI', 'provider'],
      ['modelId=%3Cscript%3E', 'modelId'],
      ['cursor=bm9wZQ', 'cursor'],
      [`cursor=${Buffer.from(JSON.stringify(['2026-01-01T00:00:00Z', 'openai'])).toString('base64url')}`, 'cursor'],
    ])('GET ?%s → 400 naming %s', async (query, field) => {
      const res = await t.request('GET', `${PRICES}?${query}`);
      expectProblem(res, 400);
      expect(fieldsOf(res)).toEqual([field]);
    });

    it.each([
      ['negative', { inputTokens: -1 }, 'inputTokens'],
      ['fractional', { outputTokens: 1.5 }, 'outputTokens'],
      ['above 10^9', { cachedInputTokens: 1_000_000_001 }, 'cachedInputTokens'],
      ['a string', { inputTokens: '5' }, 'inputTokens'],
      ['missing', { outputTokens: undefined }, 'outputTokens'],
      ['a bad provider', { provider: 'Open AI' }, 'provider'],
      ['a bad instant', { at: new Date('nope') }, 'at'],
    ])('costOf with %s tokens → 400 VALIDATION_FAILED naming the field', async (_, patch, field) => {
      const query = { modelId: 'gpt-4o', inputTokens: 10, outputTokens: 10, at: new Date('2026-01-01T00:00:00Z'), ...patch } as never;
      expect(await problemOf(catalog.costOf(query))).toEqual(expect.objectContaining({ status: 400, code: 'VALIDATION_FAILED', fields: [field] }));
    });
  });

  describe.each(['custom', 'generic'] as const)('lookups, %s plans', (mode) => {
    beforeAll(async () => {
      await t.sql('ANALYZE model_prices');
      await t.sql(`SET plan_cache_mode = ${mode === 'generic' ? 'force_generic_plan' : 'force_custom_plan'}`);
    });

    afterAll(async () => {
      await t.sql('RESET plan_cache_mode');
      await t.sql('DEALLOCATE ALL');
    });

    it.each([
      ['a provider\'s model at an instant (model_price_at)', ['provider', 'model_id', 'effective_from'], 'SELECT * FROM model_price_at($1, $2, $3::timestamptz)', ['openai', 'gpt-4o']],
      [
        'a model at an instant, any provider',
        ['model_id', 'effective_from'],
        'SELECT DISTINCT ON (v.provider) v.* FROM model_prices v WHERE v.model_id = $2 AND v.effective_from <= $3::timestamptz ORDER BY v.provider, v.effective_from DESC',
        [null, 'gpt-4o'],
      ],
    ])('%s: one btree probe keyed on %s', async (_, keys, sql, [provider, modelId]) => {
      const name = `lookup_${keys.length}`;
      const literal = (value: string | null) => (value === null ? 'NULL' : `'${value}'`);
      await t.sql(`PREPARE ${name}(text, text, text) AS ${sql}`);
      const [{ 'QUERY PLAN': [plan] }] = await t.sql(
        `EXPLAIN (FORMAT JSON) EXECUTE ${name}(${literal(provider)}, ${literal(modelId)}, '2026-06-01T00:00:00Z')`,
      );
      const scans: Record<string, unknown>[] = [];
      const walk = (node: Record<string, any>) => {
        if (node['Relation Name'] === 'model_prices') scans.push(node);
        (node.Plans ?? []).forEach(walk);
      };
      walk(plan.Plan);
      // A btree (not the exclusion constraint's GiST), every key of the lookup in its condition.
      expect(scans).toEqual([expect.objectContaining({ 'Node Type': 'Index Scan', 'Index Name': expect.stringMatching(/^model_prices_(lookup|list)_idx$/) })]);
      for (const key of keys) expect(String(scans[0]['Index Cond'])).toMatch(new RegExp(`\\b${key}\\b`));
    });
  });
});

describe('seeding', () => {
  it('two apps starting at once on an empty catalog leave one copy; a later start inserts nothing', async () => {
    const databaseUrl = await createTestDatabase();
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query('DELETE FROM model_prices');
      const [a, b] = await Promise.all([createTestApp({ databaseUrl }), createTestApp({ databaseUrl })]);
      try {
        const { rows } = await client.query(
          `SELECT count(*)::int AS n, count(DISTINCT (provider, model_id, effective_from))::int AS distinct_versions,
                  count(*) FILTER (WHERE source = $1)::int AS seeded
           FROM model_prices`,
          [SOURCE],
        );
        expect(rows[0].n).toBeGreaterThan(1000);
        expect(rows[0]).toEqual({ n: rows[0].n, distinct_versions: rows[0].n, seeded: rows[0].n });
        const again = await a.app.get(PriceCatalogSeeder).seed();
        // A seeded database costs one short read: the package data is not even mapped.
        expect(again).toEqual({ source: SOURCE, inserted: 0, ms: expect.any(Number) });
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    } finally {
      await client.end();
    }
  });

  it('a re-seed (a later package version) adds only the models the catalog lacks; overrides and history stay', async () => {
    const t = await createTestApp();
    try {
      const put = await t.request('PUT', `${PRICES}/openai/gpt-4o`, { inputPerMTok: '2', outputPerMTok: '8', effectiveFrom: '2026-12-01T00:00:00Z' });
      expect(put.status).toBe(201);
      const [gone] = await t.sql(
        `SELECT provider, model_id AS "modelId" FROM model_prices WHERE provider = 'mistral' GROUP BY 1, 2 HAVING count(*) = 1 ORDER BY 2 LIMIT 1`,
      );
      await t.sql(`DELETE FROM model_prices WHERE provider = $1 AND model_id = $2`, [gone.provider, gone.modelId]);
      const before = await t.sql(`SELECT * FROM model_prices ORDER BY id`);
      const inserted = await t.app.get(PriceCatalogRepository).insertSeed(seedPrices(await packageProviders()).prices, '@pydantic/genai-prices@9.9.9');
      expect(inserted).toBe(1);
      const afterRows = await t.sql(`SELECT * FROM model_prices ORDER BY id`);
      expect(afterRows.filter((row) => before.some((old) => old.id === row.id))).toEqual(before);
      expect(afterRows.filter((row) => !before.some((old) => old.id === row.id))).toEqual([
        expect.objectContaining({ provider: gone.provider, model_id: gone.modelId, source: '@pydantic/genai-prices@9.9.9' }),
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('migration PriceCatalog and btree_gist', () => {
  it('a database that had btree_gist before keeps it after down()', async () => {
    const serverUrl = process.env.TEST_PG_SERVER_URL!;
    const name = `${testDbPrefix()}gist_${Date.now()}`;
    const admin = new Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    const url = databaseUrlFor(serverUrl, name);
    const client = new Client({ connectionString: url });
    await client.connect();
    // The migrations up to this one (later ones, if any, are not this test's business).
    const upToPriceCatalog = MIGRATIONS.slice(0, MIGRATIONS.indexOf(PriceCatalog1764303000000) + 1);
    const ds = new DataSource({ ...dataSourceOptions({ url, poolSize: 1 }), migrations: upToPriceCatalog, logging: ['error'] });
    try {
      await client.query('CREATE EXTENSION btree_gist');
      await ds.initialize();
      await ds.runMigrations({ transaction: 'each' });
      expect(upToPriceCatalog[upToPriceCatalog.length - 1]).toBe(PriceCatalog1764303000000);
      await ds.undoLastMigration({ transaction: 'each' });
      const { rows } = await client.query(`SELECT extname FROM pg_extension WHERE extname = 'btree_gist'`);
      expect(rows).toEqual([{ extname: 'btree_gist' }]);
      expect((await client.query(`SELECT to_regclass('model_prices') AS t`)).rows).toEqual([{ t: null }]);
    } finally {
      if (ds.isInitialized) await ds.destroy();
      await client.end();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  });
});
