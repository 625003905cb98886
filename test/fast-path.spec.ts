import { ValidationPipe } from '@nestjs/common';
import fc from 'fast-check';
import { fastPathInstance } from '../src/common/fast-path';
import { IdParamDto } from '../src/common/dto/id-param.dto';
import { VALIDATOR_OPTIONS } from '../src/common/validation';
import { CheckConstraintsDto, IntegrationCheckDto, IntegrationUsageDto } from '../src/constraint/dto/check-constraints.dto';
import { RecordUsageDto } from '../src/usage/dto/record-usage.dto';
import { BatchUsageItemDto, RecordUsageBatchDto, USAGE_BATCH_MAX } from '../src/usage/dto/usage-batch.dto';

/**
 * The hot routes' fast paths (src/common/fast-path.ts) held to class-transformer and
 * class-validator, as the global ValidationPipe runs them, on generated bodies: whatever a fast
 * path accepts, the pipe accepts too and builds the same instance. Bodies mix valid values, values
 * at and past each limit, wrong types, nulls, unknown keys, and the keys and characters the two
 * libraries treat their own way. No database: the pipe alone.
 */

const pipe = new ValidationPipe({ ...VALIDATOR_OPTIONS, transform: true });

/** The pipe's instance, or 'refused' (a 400: a validation error, or a TypeError the service's pipe turns into one). */
async function slow(type: new () => object, value: unknown, kind: 'body' | 'param' = 'body'): Promise<object | 'refused'> {
  try {
    return await pipe.transform(value, { type: kind, metatype: type });
  } catch {
    return 'refused';
  }
}

/** The body as the service receives it: parsed from JSON (in this realm, unlike structuredClone's copies). */
const parsed = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** True when the fast path took the body; then the pipe must have built the same instance. */
async function expectSame(type: new () => object, value: unknown): Promise<boolean> {
  const fast = fastPathInstance(type, parsed(value));
  if (fast === undefined) return false;
  const expected = await slow(type, parsed(value));
  expect({ value, result: expected }).toEqual({ value, result: expect.any(type) });
  expect(fast).toStrictEqual(expected);
  return true;
}

// Each field's values: the first is valid (and most often drawn), the rest are anything.
const WRONG = [null, 0, 1.5, true, false, {}, [], [1], { a: 1 }, '', ' ', 'x'];
const texts = (max: number) => ['a', 'user-1', 'x'.repeat(max), 'x'.repeat(max + 1), '😀', 'a\uFE0F', '\uFE0F', 'é', ' padded '];
const MONEY = [0.0123, 0, -0, 25.5, 1e13, 1e13 + 0.5, 1e-10, 1e-11, -1, '0', '12.5', '1e3', '.5', '5.', ' 5', '0.00000000001',
  '10000000000000.0000000001', 'abc', ...WRONG];
const TOKENS = [1200, 0, 1e9, 1e9 + 1, -1, 1.5, '5', ...WRONG];
const SCOPE = ['org-acme', 'a.b_c:d@e-f', 'x'.repeat(200), 'x'.repeat(201), 'has space', 'é', '😀', ...WRONG];

const USAGE_FIELDS: Record<string, readonly unknown[]> = {
  amount: MONEY,
  currency: ['USD', 'EUR', 'usd', 'US', 'USDX', ...WRONG],
  source: [...texts(100), ...WRONG],
  description: [...texts(2000), ...WRONG],
  modelId: ['gpt-4o', ...texts(200), ...WRONG],
  userId: [...texts(200), ...WRONG],
  teamId: [...texts(200), ...WRONG],
  projectId: [...texts(200), ...WRONG],
  customerId: [...texts(200), ...WRONG],
  requestId: [...texts(200), ...WRONG],
  tags: [['chat'], ['a', 'a'], Array.from({ length: 20 }, (_, i) => `t${i}`), Array.from({ length: 21 }, (_, i) => `t${i}`),
    [''], ['x'.repeat(64)], ['x'.repeat(65)], ['😀'], [1], [['a']], [null], 'chat', ...WRONG],
  metadata: [{ requestId: 'req-1', modelId: 'gpt-4' }, { nested: { deep: [1, { x: 'y' }] } }, { list: [{ toString: 1 }] },
    { constructor: 'x' }, { toString: 'x' }, { valueOf: 1 }, { hasOwnProperty: true }, { nested: { constructor: { a: 1 } } },
    { requestId: 5 }, { big: 'x'.repeat(17 * 1024) }, { n: null }, ...WRONG],
  occurredAt: ['2026-11-29T10:00:00Z', '2026-11-29T10:00:00.123456Z', '2026-11-29T12:00:00+02:00', '2026-11-29T12:00+0200',
    '2026-02-30T00:00:00Z', '2026-11-29T24:00:00Z', '2026-11-29T10:00:00+24:00', '2026-11-29', '0000-01-01T00:00:00Z', 1764410000000, ...WRONG],
  reservationId: ['3f1c6a1e-2b7d-4c1a-9a51-0d6f1b2c3d4e', '00000000-0000-0000-0000-000000000000', '3F1C6A1E-2B7D-4C1A-9A51-0D6F1B2C3D4E',
    'not-a-uuid', ...WRONG],
  provider: ['openai', 'huggingface_together', 'OpenAI', 'a'.repeat(64), 'a'.repeat(65), '-x', ...WRONG],
  inputTokens: TOKENS,
  outputTokens: TOKENS,
  cachedInputTokens: TOKENS,
};
const CHECK_FIELDS: Record<string, readonly unknown[]> = {
  estimatedCost: MONEY,
  estimatedInputTokens: TOKENS,
  estimatedOutputTokens: TOKENS,
  provider: USAGE_FIELDS.provider,
  modelId: USAGE_FIELDS.modelId,
  tags: USAGE_FIELDS.tags,
  reserve: [true, false, 'true', 1, 0, ...WRONG],
  reservationTtlSeconds: [300, 1, 3600, 0, 3601, 1.5, '300', -5, ...WRONG],
};
const SCOPE_FIELDS = { organizationId: SCOPE, teamId: SCOPE, userId: SCOPE, projectId: SCOPE, customerId: SCOPE };
const { userId: _u, teamId: _t, projectId: _p, customerId: _c, requestId: _r, source: _s, ...USAGE_KEPT } = USAGE_FIELDS;
const ODD_KEYS = ['unknown', 'budgetId', 'constructor', 'toString', 'amountUsd'];

const ABSENT = Symbol('absent');
const rarely = <T>(odd: fc.Arbitrary<T>, usual: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 19, arbitrary: usual }, { weight: 1, arbitrary: odd });

/** A body: mostly valid values (so that the fast path is taken), each field sometimes odd or absent. */
function body(fields: Record<string, readonly unknown[]>, required: readonly string[]) {
  const field = (name: string, values: readonly unknown[]) => {
    const [absent, valid] = required.includes(name) ? [1, 30] : [12, 4];
    return fc.oneof(
      { weight: absent, arbitrary: fc.constant<unknown>(ABSENT) },
      { weight: valid, arbitrary: fc.constant(values[0]) },
      { weight: 1, arbitrary: fc.constantFrom(...values) },
    );
  };
  return fc
    .record(Object.fromEntries(Object.entries(fields).map(([name, values]) => [name, field(name, values)])))
    .chain((drawn) =>
      rarely(fc.constantFrom(...ODD_KEYS), fc.constant(null)).map((odd) => {
        const out = Object.fromEntries(Object.entries(drawn).filter(([, value]) => value !== ABSENT));
        return odd === null ? out : { ...out, [odd]: 'x' };
      }),
    );
}

const CASES = [
  { dto: RecordUsageDto, fields: USAGE_FIELDS, required: ['currency'] },
  { dto: CheckConstraintsDto, fields: CHECK_FIELDS, required: [] },
  { dto: IntegrationCheckDto, fields: { ...SCOPE_FIELDS, ...CHECK_FIELDS, currency: USAGE_FIELDS.currency }, required: ['currency'] },
  { dto: IntegrationUsageDto, fields: { ...SCOPE_FIELDS, ...USAGE_KEPT, requestId: ['req-789', ...texts(200), ...WRONG], source: USAGE_FIELDS.source },
    required: ['currency', 'requestId'] },
];

describe('fast paths: whatever one accepts, the ValidationPipe accepts as the same instance', () => {
  it('takes the common bodies, normalising instants as UtcInstant does', async () => {
    const usage = { amount: 0.0123, currency: 'USD', modelId: 'gpt-4o', userId: 'user-1', source: 'gateway' };
    expect(await expectSame(RecordUsageDto, usage)).toBe(true);
    expect(await expectSame(RecordUsageDto, { ...usage, occurredAt: '2026-11-29T12:00:00+02:00', tags: ['chat', 'chat'],
      metadata: { requestId: 'req-1', nested: [1, { a: null }] }, inputTokens: 10, outputTokens: 2, provider: 'openai' })).toBe(true);
    const fast = fastPathInstance(RecordUsageDto, { ...usage, occurredAt: '2026-11-29T12:00:00+02:00' }) as RecordUsageDto;
    expect(fast.occurredAt).toBe('2026-11-29T10:00:00Z');
    expect(await expectSame(RecordUsageBatchDto, { records: [{ ...usage, idempotencyKey: 'k1' }, { ...usage, idempotencyKey: null }] })).toBe(true);
    expect(await expectSame(CheckConstraintsDto, { estimatedCost: 25, modelId: 'gpt-4o', reserve: true, reservationTtlSeconds: 60 })).toBe(true);
    expect(await expectSame(IntegrationCheckDto, { organizationId: 'org-acme', userId: 'user-1', estimatedCost: 0.5, currency: 'USD' })).toBe(true);
    expect(await expectSame(IntegrationUsageDto, { organizationId: 'org-acme', requestId: 'req-1', amount: 0.5, currency: 'USD',
      occurredAt: '2026-11-29T10:00:00-05:00' })).toBe(true);
  });

  it('declines what it cannot vouch for, leaving it to the pipe', () => {
    const usage = { amount: 1, currency: 'USD' };
    for (const odd of [
      { ...usage, metadata: { constructor: 'x' } },
      { ...usage, metadata: { a: [{ toString: 1 }] } },
      { ...usage, userId: '😀' },
      { ...usage, unknown: 1 },
      { ...usage, constructor: 1 },
      { amount: 1 },
      { ...usage, amount: null },
      { ...usage, inputTokens: null },
    ]) {
      expect(fastPathInstance(RecordUsageDto, odd)).toBeUndefined();
    }
    expect(fastPathInstance(RecordUsageBatchDto, { records: [] })).toBeUndefined();
    expect(fastPathInstance(RecordUsageBatchDto, { records: [usage], extra: 1 })).toBeUndefined();
    expect(fastPathInstance(RecordUsageBatchDto, { records: [usage, [usage]] })).toBeUndefined();
    expect(fastPathInstance(RecordUsageBatchDto, { records: Array.from({ length: USAGE_BATCH_MAX + 1 }, () => usage) })).toBeUndefined();
    expect(fastPathInstance(RecordUsageBatchDto, { records: Array.from({ length: USAGE_BATCH_MAX }, () => usage) })).toBeDefined();
    expect(fastPathInstance(IntegrationUsageDto, { ...usage })).toBeUndefined(); // no requestId
    expect(fastPathInstance(IntegrationCheckDto, { estimatedCost: 1 })).toBeUndefined(); // no currency
    // A subclass has no fast path of its own unless it is given one.
    expect(fastPathInstance(BatchUsageItemDto, usage)).toBeUndefined();
  });

  describe.each(CASES)('$dto.name', ({ dto, fields, required }) => {
    it.each([1, 2, 3])('seed %i', async (seed) => {
      let accepted = 0;
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(body(fields, required), async (value) => {
          if (await expectSame(dto, value)) accepted++;
          else if ((await slow(dto, parsed(value))) === 'refused') refused++;
        }),
        { seed, numRuns: 2500 },
      );
      // Neither side is vacuous: many bodies take the fast path, many are refused.
      expect(accepted).toBeGreaterThan(400);
      expect(refused).toBeGreaterThan(400);
    });
  });

  it.each([1, 2])('IdParamDto (a path parameter), seed %i', async (seed) => {
    // Fastify's params objects have a prototype with a null prototype; so do these.
    function Params() {}
    Params.prototype = Object.create(null);
    const asParams = (fields: Record<string, unknown>) => Object.assign(new (Params as unknown as new () => object)(), fields);
    let accepted = 0;
    const params = body({ id: [...USAGE_FIELDS.reservationId, '3f1c6a1e2b7d4c1a9a510d6f1b2c3d4e', '{3f1c6a1e-2b7d-4c1a-9a51-0d6f1b2c3d4e}'] }, ['id']);
    await fc.assert(
      fc.asyncProperty(params, async (fields) => {
        const fast = fastPathInstance(IdParamDto, asParams(fields));
        if (fast === undefined) return;
        accepted++;
        expect(fast).toStrictEqual(await slow(IdParamDto, asParams(fields), 'param'));
      }),
      { seed, numRuns: 1000 },
    );
    expect(accepted).toBeGreaterThan(300);
    expect(fastPathInstance(IdParamDto, asParams({ id: 'not-a-uuid' }))).toBeUndefined();
  });

  it.each([1, 2])('RecordUsageBatchDto, seed %i', async (seed) => {
    let accepted = 0;
    const element = rarely(fc.constantFrom<unknown>(null, 'x', [], 5), body({ ...USAGE_FIELDS, idempotencyKey: ['key-1', ...texts(200), ...WRONG] }, ['currency']));
    const batch = fc
      .tuple(fc.array(element, { minLength: 1, maxLength: 3 }), rarely(fc.constant(true), fc.constant(false)))
      .map(([records, extra]) => (extra ? { records, extra: 1 } : { records }));
    await fc.assert(
      fc.asyncProperty(batch, async (value) => {
        if (await expectSame(RecordUsageBatchDto, value)) accepted++;
      }),
      { seed, numRuns: 1500 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});
