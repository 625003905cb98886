import { ValidationPipe } from '@nestjs/common';
import fc from 'fast-check';
import { fastPathInstance, VALIDATOR_OPTIONS } from '../../common/validation';
import { RecordUsageDto } from './record-usage.dto';
import { BatchUsageItemDto, RecordUsageBatchDto, USAGE_BATCH_MAX } from './usage-batch.dto';

/**
 * The usage bodies' fast path (usage-body.fast-path.ts) held to class-transformer and
 * class-validator, as the global ValidationPipe runs them, on generated bodies: whatever the fast
 * path accepts, the pipe accepts too and builds the same instance. Bodies mix valid values,
 * values at and past each limit, wrong types, nulls, unknown keys, and the keys and characters
 * the two libraries treat their own way.
 */

const pipe = new ValidationPipe({ ...VALIDATOR_OPTIONS, transform: true });

/** The pipe's instance, or 'refused' (a 400: a validation error, or a TypeError the service's pipe turns into one). */
async function slow(type: new () => object, value: unknown): Promise<object | 'refused'> {
  try {
    return await pipe.transform(value, { type: 'body', metatype: type });
  } catch {
    return 'refused';
  }
}

const WRONG = [null, 0, 1.5, true, false, {}, [], [1], { a: 1 }, '', ' ', 'x'];
const texts = (max: number) => ['a', 'user-1', 'x'.repeat(max), 'x'.repeat(max + 1), '😀', 'a\uFE0F', '\uFE0F', 'é', ' padded '];

const FIELD_VALUES: Record<string, readonly unknown[]> = {
  amount: [0, -0, 0.0123, 25.5, 1e13, 1e13 + 0.5, 1e-10, 1e-11, -1, '0', '12.5', '1e3', '.5', '5.', ' 5', '0.00000000001', '10000000000000.0000000001', 'abc', ...WRONG],
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
  inputTokens: [0, 1200, 1e9, 1e9 + 1, -1, 1.5, '5', ...WRONG],
  outputTokens: [0, 350, 1e9, 1e9 + 1, -1, 2.5, '5', ...WRONG],
  cachedInputTokens: [0, 10, 1e9 + 1, -1, '5', ...WRONG],
  idempotencyKey: ['key-1', ...texts(200), ...WRONG],
};
const ODD_KEYS = ['unknown', 'budgetId', 'constructor', 'toString', 'amountUsd'];

const ABSENT = Symbol('absent');

/** A usage body: mostly valid values (so that the fast path is taken), each field sometimes odd or absent. */
const usageBody = (batchItem: boolean) =>
  fc
    .record(
      Object.fromEntries(
        Object.entries(FIELD_VALUES)
          .filter(([field]) => batchItem || field !== 'idempotencyKey')
          .map(([field, values]) => {
            const [absent, valid] = field === 'currency' ? [1, 30] : [12, 4];
            return [field, fc.oneof(
              { weight: absent, arbitrary: fc.constant(ABSENT) },
              { weight: valid, arbitrary: fc.constant(values[0]) },
              { weight: 1, arbitrary: fc.constantFrom(...values) },
            )];
          }),
      ),
    )
    .chain((fields) => fc.oneof({ weight: 19, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_KEYS) }).map((odd) => {
      const body = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== ABSENT));
      return odd === null ? body : { ...body, [odd]: 'x' };
    }));

/** The body as the service receives it: parsed from JSON (in this realm, unlike structuredClone's copies). */
const parsed = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

async function expectSame(type: new () => object, value: unknown): Promise<boolean> {
  const fast = fastPathInstance(type, parsed(value));
  if (fast === undefined) return false;
  const expected = await slow(type, parsed(value));
  expect({ value, result: expected }).toEqual({ value, result: expect.any(type) });
  expect(fast).toStrictEqual(expected);
  return true;
}

describe('usage bodies: the fast path and class-validator agree', () => {
  it('accepts the common bodies and builds the instance the pipe builds', async () => {
    const usage = { amount: 0.0123, currency: 'USD', modelId: 'gpt-4o', userId: 'user-1', source: 'gateway' };
    expect(await expectSame(RecordUsageDto, usage)).toBe(true);
    expect(await expectSame(RecordUsageDto, { ...usage, occurredAt: '2026-11-29T12:00:00+02:00', tags: ['chat', 'chat'],
      metadata: { requestId: 'req-1', nested: [1, { a: null }] }, inputTokens: 10, outputTokens: 2, provider: 'openai' })).toBe(true);
    const fast = fastPathInstance(RecordUsageDto, { ...usage, occurredAt: '2026-11-29T12:00:00+02:00' }) as RecordUsageDto;
    expect(fast.occurredAt).toBe('2026-11-29T10:00:00Z');
    expect(await expectSame(RecordUsageBatchDto, { records: [{ ...usage, idempotencyKey: 'k1' }, { ...usage, idempotencyKey: null }] })).toBe(true);
  });

  it('declines what it cannot vouch for, leaving it to class-validator', () => {
    const usage = { amount: 1, currency: 'USD' };
    for (const odd of [
      { ...usage, metadata: { constructor: 'x' } },
      { ...usage, metadata: { a: [{ toString: 1 }] } },
      { ...usage, userId: '😀' },
      { ...usage, unknown: 1 },
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
    // A subclass has no fast path of its own unless it is given one.
    expect(fastPathInstance(BatchUsageItemDto, usage)).toBeUndefined();
  });

  it.each([1, 2, 3])('single bodies, seed %i: whatever the fast path accepts, the pipe accepts as the same instance', async (seed) => {
    let accepted = 0;
    let refusedBySlow = 0;
    await fc.assert(
      fc.asyncProperty(usageBody(false), async (value) => {
        if (await expectSame(RecordUsageDto, value)) accepted++;
        else if ((await slow(RecordUsageDto, parsed(value))) === 'refused') refusedBySlow++;
      }),
      { seed, numRuns: 4000 },
    );
    // Neither side is vacuous: many bodies take the fast path, many are refused.
    expect(accepted).toBeGreaterThan(800);
    expect(refusedBySlow).toBeGreaterThan(800);
  });

  it.each([1, 2])('batch bodies, seed %i: whatever the fast path accepts, the pipe accepts as the same instance', async (seed) => {
    let accepted = 0;
    const element = fc.oneof({ weight: 30, arbitrary: usageBody(true) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 'x', [], 5) });
    const extra = fc.oneof({ weight: 19, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
    const batch = fc
      .tuple(fc.array(element, { minLength: 1, maxLength: 3 }), extra)
      .map(([records, odd]) => (odd ? { records, extra: 1 } : { records }));
    await fc.assert(
      fc.asyncProperty(batch, async (value) => {
        if (await expectSame(RecordUsageBatchDto, value)) accepted++;
      }),
      { seed, numRuns: 1500 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});
