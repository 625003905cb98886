import fc from 'fast-check';
import { canonicalJson, sha256Hex } from './hashing';

/**
 * Usage records store sha256(canonicalJson(body)) as their request hash; a retry with the same
 * key replays only when the hash is equal. So the canonical text must stay byte for byte what it
 * was when those records were written: the hashes below were computed with the hand-written
 * canonicalJson this library call replaced, and `formerCanonicalJson` is that function, kept
 * here as the reference the library is compared against.
 */
function formerCanonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(formerCanonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${formerCanonicalJson(v)}`).join(',')}}`;
}

const BODIES: Array<[string, unknown, string]> = [
  [
    'a usage write as the tracker hashes it (undefined fields left out)',
    {
      amount: '0.0125', currency: 'USD', source: 'api', description: null, modelId: 'gpt-4o', userId: 'user-7',
      teamId: null, projectId: null, requestId: 'req-1', metadata: null, occurredAt: undefined, reservationId: null,
      requestHash: undefined, idempotencyKey: undefined, budgetId: undefined,
    },
    'e73d9f061aee22652cd2240c023d8a898a14ecc388b04f0c1d42e8a907252c21',
  ],
  [
    'key order: code-unit order at every level, digits before capitals before underscore before lower case',
    { b: 1, a: 2, B: 3, _: 4, '10': 5, '2': 6, é: 7, z: { y: 1, x: [3, { d: 1, c: 2 }] } },
    'fa7850ae2738ec4fef02e696cff78549f015da1ba651bc17b1d5f7702d30d113',
  ],
  [
    'nested objects and arrays; undefined in an array is null',
    { outer: { inner: { deepest: [1, [2, [3, { k: 'v', j: null }]]] } }, list: [undefined, null, { u: undefined }] },
    '87957ba0c841f353d14c08538f2fb9d996ab0ab4534cdfd8829c8056a84ba546',
  ],
  [
    'unicode keys and values, escapes',
    {
      text: 'café – 日本語 – emoji 😀 – quote " backslash \\ – newline \n tab \t – nul-free \u0007',
      ключ: 'значение',
      '😀': '\ud83d\ude00',
    },
    'fcc5b65fc114734c0ac1e7773cf3dabe7c6db61de34373cf5f4aea0bdcb3423b',
  ],
  [
    'numbers: integers, fractions, exponents, -0, NaN and Infinity as JSON writes them',
    {
      int: 42, neg: -7, zero: 0, negZero: -0, frac: 0.1, sum: 0.1 + 0.2, big: 1e21, small: 1e-7,
      exp: 123456789012345680000, max: Number.MAX_SAFE_INTEGER, nan: NaN, inf: Infinity,
    },
    '1dfdadea6a38ae76a8a26217e4999f9bc2753b1488f4d42a4d5decb854b9d8f4',
  ],
  ['scalars in an array', ['a', true, false, null, 3.5], '676b96d2c2e27cbeeb9c76676ee656097b4311d9d85f94024ad74f1ae667a38a'],
];

describe('canonicalJson', () => {
  it.each(BODIES)('%s: the same bytes as before', (_name, body, hash) => {
    expect(sha256Hex(canonicalJson(body))).toBe(hash);
    expect(canonicalJson(body)).toBe(formerCanonicalJson(body));
  });

  it('writes the exact text expected for keys out of order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,1]},"b":1}');
    expect(canonicalJson({ '10': 1, '9': 2, a: 3, A: 4 })).toBe('{"10":1,"9":2,"A":4,"a":3}');
  });

  it('top-level undefined and null are "null"', () => {
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson(null)).toBe('null');
  });

  it('lone surrogates and long strings with escapes as before', () => {
    for (const text of ['\ud800', 'a\udfffb', '"'.repeat(6000), `${'x'.repeat(5000)}\n`]) {
      expect(canonicalJson({ text })).toBe(formerCanonicalJson({ text }));
    }
  });

  it('equals the former canonical text for any JSON body', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => canonicalJson(value) === formerCanonicalJson(value)),
      { numRuns: 2000 },
    );
  });

  it('refuses a circular value instead of hashing a placeholder', () => {
    const body: Record<string, unknown> = { a: 1 };
    body.self = body;
    expect(() => canonicalJson(body)).toThrow(TypeError);
  });
});
