/**
 * Issue 11: requests derived from the OpenAPI document the running app serves (/docs-json), for
 * every operation it documents. Each request is built from the operation's path, query, header and
 * body schemas (nested objects and array items included), leaf by leaf either plausible (so the
 * request gets past the validator and into the services and SQL) or odd on purpose:
 *   - money as padded (" 5 "), exponent, hexadecimal or over-precise strings, huge, negative and
 *     NaN-ish numbers, integer literals no double can hold;
 *   - instants with offsets up to ±23:59 (+16:00 is valid and beyond PostgreSQL's own limit) and
 *     malformed ones, in bodies, query strings and tampered cursors;
 *   - wrong types at every level (an array where an object is expected, `records[0]` an array),
 *     unicode oddities (lone surrogates, NUL, bidi marks), unknown fields, missing required ones;
 *   - If-Match and Idempotency-Key headers, several roles and bad credentials, broken JSON and
 *     wrong content types.
 * Path parameters mix the ids of real budgets, API keys, reservations and alerts created first
 * with random and malformed ones.
 *
 * Asserted for every answer: the status is below 500, and a 4xx is application/problem+json with
 * type, title, status (the response's), detail, instance and an UPPER_SNAKE code. GET /metrics
 * and the health routes take no input that could be wrong, so they may answer 200 to anything
 * (they are still fuzzed and must not 5xx; the database stays up, so they are never pushed into
 * their 503). Every other operation must also be reached deep enough to succeed at least once.
 *
 * Reproduce a run with OPENAPI_FUZZ_SEED=<seed> (and OPENAPI_FUZZ_REQUESTS=<n>); a failure prints
 * each distinct failing request (method, URL, headers, body) and the error the service logged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@nestjs/common';
import fc from 'fast-check';
import { DASHBOARD_PREFIX } from '../src/dashboard/dashboard.module';
import { createTestApp, type TestApp } from './setup/test-app';

const REQUESTS = Number(process.env.OPENAPI_FUZZ_REQUESTS ?? 10_000);
const SEED = Number(process.env.OPENAPI_FUZZ_SEED ?? 11_2026);
const CONCURRENCY = 6;
/** Operations with no client error to give: any input may get their 200. */
const NO_CLIENT_ERRORS = new Set(['GET /metrics', 'GET /health/live', 'GET /health/ready']);

type Schema = Record<string, any>;
type Role = 'admin' | 'service' | 'viewer' | 'none' | 'bad';

interface Parameter {
  name: string;
  schema: Schema;
}

interface Operation {
  key: string;
  method: string;
  path: string;
  pathParams: Parameter[];
  query: Parameter[];
  headers: Parameter[];
  body?: Schema;
}

interface FuzzRequest {
  operation: string;
  method: string;
  url: string;
  role: Role;
  headers: Record<string, string>;
  payload?: string;
}

/** What the setup created: the ids and values a plausible request refers to. */
interface World {
  stableBudgets: string[];
  disposableBudgets: string[];
  scopeIds: string[];
  apiKeyIds: string[];
  reservationIds: string[];
  /** Triggered alerts (history rows) with their budgets. */
  alerts: { budgetId: string; alertId: string }[];
  alertRuleIds: string[];
  cursors: string[];
  /** Notification channels kept for the run, and some to delete; deliveries (failed, so retriable). */
  channelIds: string[];
  disposableChannelIds: string[];
  deliveryIds: string[];
}

// ---------------------------------------------------------------------------------------------
// Leaf values

/** A literal spliced into the JSON text as is (numbers JSON.stringify cannot write). */
const RAW = '\uE000';
const raw = (literal: string) => `${RAW}${literal}${RAW}`;
const serialise = (value: unknown): string =>
  (JSON.stringify(value) ?? 'null').replace(new RegExp(`"${RAW}([^${RAW}]*)${RAW}"`, 'g'), '$1');

const ODD_TEXT = [
  '', ' ', '  padded  ', '\t\n', '\u0000', 'a\u0000b', '\uD800', '\uDFFF', 'a\uD83Dz', '\uDE00\uD83D', '\uFEFFbom',
  '\u202Eevil', 'e\u0301', '\u2028', '\uFFFF', '🙂', '𝔘𝔫𝔦', 'x'.repeat(201), 'x'.repeat(2001), 'ä'.repeat(150),
  "' OR 1=1 --", '%s%n', '${x}', '__proto__', 'null', 'true', '[]', '{}', '../..', '0', '-1', 'NaN',
];
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  { weight: 3, arbitrary: fc.constantFrom(...ODD_TEXT) },
);

const ODD_NUMBERS: unknown[] = [
  0, -0, -1, -5, 1.5, 0.1 + 0.2, 1e-7, 1e-11, 5e-324, 2 ** 53 + 1, 1e13, 1e13 + 0.002, 1e21, 1e308, -1e308,
  raw('1e400'), raw('-1e400'), raw('123456789012345678901234567890'), raw('0.00000000000000000000001'), raw('1E2'),
];
const ODD_NUMERIC_STRINGS = [
  ' 5 ', '5 ', ' 5', '\t5\n', '\u00A05', '5.', '.5', '05', '00005', '-0', '-5', '+5', '5e0', '1e3', '1E-3', '1e13', '1e14',
  '10000000000000.0000000001', '0.00000000001', '0.0000000001', '0x10', '0b1', '1_000', '1,5', '١٢', '５', 'NaN',
  'Infinity', '-Infinity', '', ' ', '5e', 'e5', '--5', '5-', '9'.repeat(400), `0.${'0'.repeat(300)}1`, '1e-400', '1e400',
];
const oddNumber = fc.oneof(
  fc.constantFrom(...ODD_NUMBERS),
  fc.constantFrom(...ODD_NUMERIC_STRINGS),
  fc.double(),
  fc.integer(),
  fc.integer({ min: -3, max: 3 }).map((n) => ` ${n} `),
);

/** Percent-encodes a URL component; a lone surrogate becomes its (invalid) three UTF-8 bytes. */
function encodeComponent(value: string): string {
  let out = '';
  for (const char of value) {
    const unit = char.charCodeAt(0);
    out +=
      char.length === 1 && unit >= 0xd800 && unit <= 0xdfff
        ? [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 63), 0x80 | (unit & 63)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')
        : encodeURIComponent(char);
  }
  return out;
}

/** Over the 1 MiB body limit (413). */
const OVERSIZED_BODY = JSON.stringify({ description: 'x'.repeat(1024 * 1024) });

const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, '0');
/** `ms` written in local time at `offsetMinutes` (which may exceed what PostgreSQL accepts). */
function instantAt(ms: number, offsetMinutes: number, zulu = false): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19);
  if (zulu && offsetMinutes === 0) return `${local}Z`;
  return `${local}${offsetMinutes < 0 ? '-' : '+'}${pad(Math.trunc(offsetMinutes / 60))}:${pad(offsetMinutes % 60)}`;
}
/** Valid RFC 3339 offsets, the ones past ±15:59 included. */
const offset = fc.oneof(
  fc.constantFrom(0, 0, 330, -300, 840, -720, 959, -959, 960, -960, 1020, -1080, 1439, -1439),
  fc.integer({ min: -1439, max: 1439 }),
);
const ODD_INSTANTS = [
  '2025-01-01T00:00:00+24:00', '2025-01-01T00:00:00+99:99', '2025-01-01T00:00:00+16', '2025-01-01T00:00:00+1600',
  '2025-01-01T00:00:00-2359', '2025-01-01T00:00:00+16:60', '2025-01-01T00:00:00z', '2025-01-01T00:00:00',
  '2025-01-01', '2025-01-01 00:00:00Z', ' 2025-01-01T00:00:00Z ', '2025-01-01T23:59:60Z', '2025-01-01T24:00:00Z',
  '2025-02-29T00:00:00Z', '2024-02-30T00:00:00Z', '0000-01-01T00:00:00Z', '0001-01-01T00:00:00+23:59',
  '0001-01-01T00:00:00+16:00', '9999-12-31T23:59:59-23:59', '9999-12-31T23:59:59-16:00', '+275760-09-13T00:00:00Z',
  '2025-01-01T00:00:00.1234567891Z', '2025-01-01T00:00:00.Z', '2025-13-45T99:99:99Z', '2025-01-01T00:00:00Z\u0000',
  '２０２５-01-01T00:00:00Z', '2025-W01-1T00:00:00Z', 'T', 'now', '', '1735689600', '2026-11-01T01:30:00-04:00',
];
const oddInstant = fc.oneof(
  fc.constantFrom(...ODD_INSTANTS),
  fc
    .tuple(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: -29, max: 29 }),
      fc.integer({ min: 0, max: 69 }),
    )
    .map(([y, mo, d, h, mi, oh, om]) => `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:00${oh < 0 ? '-' : '+'}${pad(oh)}:${pad(om)}`),
);

const DAY = 86_400_000;
/** Instants near now (usage may be dated up to five minutes ahead), in any valid offset. */
const recentInstant = (now: number) =>
  fc.tuple(fc.integer({ min: now - 40 * DAY, max: now + 4 * 60_000 }), offset, fc.boolean()).map(([ms, off, z]) => instantAt(ms, off, z));
/** Budget anchors and range bounds: the past year, the near future, the edges of time. */
const anchorInstant = (now: number) =>
  fc.oneof(
    fc.tuple(fc.integer({ min: now - 400 * DAY, max: now + 60 * DAY }), offset, fc.boolean()).map(([ms, off, z]) => instantAt(ms, off, z)),
    fc.constantFrom('2025-01-01T00:00:00Z', '2025-01-31T00:00:00+16:00', '2026-01-01T00:00:00+16:00', '2025-03-09T02:30:00-05:00',
      '2026-11-01T01:30:00-04:00', '1970-01-01T00:00:00Z', '2100-01-01T00:00:00-23:59'),
  );

/** `arb`'s value with probability `p`, else null. */
const sometimes = <T>(arb: fc.Arbitrary<T>, p: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: Math.round(p * 100), arbitrary: arb }, { weight: Math.round((1 - p) * 100), arbitrary: fc.constant(null) });

const wrongType = (depth: number): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constantFrom<unknown>(null, true, false, 0, 1, -1, '', 'text', [], {}, [[]], [{}], [null], { '0': 1 }),
    depth < 3 ? fc.jsonValue({ maxDepth: 2 }) : fc.constant([1, 2]),
  );

// ---------------------------------------------------------------------------------------------
// Values for schemas

const MODELS = ['gpt-4', 'gpt-4o', 'gpt-4o-mini', 'claude-opus', 'claude-3-haiku', 'o1'];
/** IANA names, some with odd rules (half-hour DST, negative DST, +14:00), some JavaScript knows and PostgreSQL does not. */
const TIME_ZONES = [
  'UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Pacific/Kiritimati', 'Etc/GMT+12', 'Etc/GMT-14', 'Australia/Lord_Howe',
  'Antarctica/Troll', 'Africa/Casablanca', 'America/St_Johns', 'EST5EDT', 'GMT0', 'US/Pacific-New', 'America/Ciudad_Juarez',
];
const ODD_TIME_ZONES = ['Mars/Olympus', 'utc', 'EST5EDT', '+16:00', 'Etc/GMT+15', 'posixrules', 'localtime', 'x'.repeat(65), 'America/New York'];
const IDEMPOTENCY_KEYS = ['fuzz-key-1', 'fuzz-key-2', 'fuzz-key-3', 'req-789', 'collector-1'];
const UNKNOWN_KEYS = ['unknownField', '__proto__', 'constructor', 'prototype', '', 'id', 'version', 'createdAt', 'createdBy', 'budgetId', 'recordedAt'];

class SchemaFuzzer {
  constructor(
    private readonly document: any,
    private readonly world: World,
    private readonly now: number,
  ) {}

  resolve(schema: Schema | undefined): Schema {
    let current = schema ?? {};
    for (let i = 0; current.$ref && i < 10; i++) current = this.document.components.schemas[String(current.$ref).split('/').pop()!];
    if (Array.isArray(current.allOf) && current.allOf.length === 1) {
      const { allOf, ...rest } = current;
      return { ...rest, ...this.resolve(allOf[0]) };
    }
    return current;
  }

  /**
   * What a schema is meant to hold. Without the Swagger CLI plugin (jest does not run it) an
   * optional `string | null` shows up as `type: object` carrying a string example or format.
   */
  kindOf(schema: Schema): string {
    if (schema.oneOf) return 'oneOf';
    if (schema.enum) return 'enum';
    if (schema.format === 'date-time') return 'instant';
    if (schema.format === 'uuid') return 'uuid';
    if (schema.type === 'object' && !schema.properties && !schema.additionalProperties) {
      return typeof schema.example === 'string' || schema.maxLength !== undefined ? 'string' : 'record';
    }
    if (schema.type === 'object' || schema.properties) return schema.properties ? 'object' : 'record';
    return schema.type ?? 'any';
  }

  /** A value for `raw`: plausible with probability 1 - odd, else odd for its kind or of the wrong type. */
  value(raw: Schema | undefined, name: string, odd: number, depth = 0): fc.Arbitrary<unknown> {
    const schema = this.resolve(raw);
    const plausible = this.plausible(schema, name, odd, depth);
    if (odd <= 0) return plausible;
    return fc.oneof(
      { weight: Math.round((1 - odd) * 100), arbitrary: plausible },
      { weight: Math.round(odd * 60), arbitrary: this.odd(schema, name, depth) },
      { weight: Math.round(odd * 40), arbitrary: this.wrongShape(schema, name, odd, depth) },
    );
  }

  /** An array where an object is expected (and the reverse), or any other type. */
  private wrongShape(schema: Schema, name: string, odd: number, depth: number): fc.Arbitrary<unknown> {
    const kind = this.kindOf(schema);
    if (kind === 'object' && depth < 3) {
      const object = this.object(schema, odd / 2, depth + 1);
      return fc.oneof(object.map((o) => [o]), fc.tuple(object, object), wrongType(depth));
    }
    if (kind === 'array' && depth < 3) {
      return fc.oneof(this.value(schema.items, name, odd / 2, depth + 1).map((item) => ({ '0': item })), wrongType(depth));
    }
    return wrongType(depth);
  }

  private odd(schema: Schema, name: string, depth: number): fc.Arbitrary<unknown> {
    switch (this.kindOf(schema)) {
      case 'oneOf':
      case 'number':
      case 'integer':
        return oddNumber;
      case 'instant':
        return fc.oneof(oddInstant, recentInstant(this.now).map((s) => s.replace('T', ' ')), fc.integer());
      case 'uuid':
        return fc.oneof(
          fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'not-a-uuid', ''),
          // Spellings of real ids (the upper-case one is valid): of budgets a DELETE may remove.
          fc.constantFrom(...this.world.disposableBudgets).chain((id) => fc.constantFrom(id.toUpperCase(), id.replace(/-/g, ''), `{${id}}`, ` ${id} `, `${id}x`)),
        );
      case 'enum':
        return fc.oneof(
          fc.constantFrom<unknown>(...schema.enum).chain((v) => (typeof v === 'string' ? fc.constantFrom(v.toUpperCase(), ` ${v} `, `${v}\u0000`, v[0]) : fc.constant(v))),
          fc.constantFrom('customer', 'other', ''),
        );
      case 'boolean':
        return fc.constantFrom('true', 'false', 1, 0, 'yes', null);
      case 'array':
        return depth < 3
          ? fc.oneof(
              { weight: 2, arbitrary: fc.constant([]) },
              { weight: 6, arbitrary: fc.array(this.value(schema.items, name, 0.5, depth + 1), { minLength: 1, maxLength: 6 }) },
              { weight: 1, arbitrary: this.value(schema.items, name, 0, depth + 1).map((item) => Array.from({ length: (schema.maxItems ?? 100) + 1 }, () => item)) },
            )
          : fc.constant([]);
      case 'object':
        return depth < 3 ? this.object(schema, 0.6, depth + 1) : fc.constant({});
      case 'record':
        return fc.oneof(
          fc.dictionary(text, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
          fc.constant({ big: 'x'.repeat(17 * 1024) }),
          fc.constant({ deep: JSON.parse('['.repeat(40) + ']'.repeat(40)) }),
          fc.constant({ 'nul\u0000key': 1, lone: '\uD800' }),
        );
      case 'string':
      default:
        return name === 'timezone' ? fc.oneof(fc.constantFrom(...ODD_TIME_ZONES), text) : fc.oneof(text, oddNumber.map(String));
    }
  }

  private plausible(schema: Schema, name: string, odd: number, depth: number): fc.Arbitrary<unknown> {
    const hint = this.hint(name);
    if (hint) return hint;
    switch (this.kindOf(schema)) {
      case 'oneOf':
        return fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constantFrom('0.5', '2.25', '10', '0.0000000001'), fc.double({ min: 0.001, max: 20, noNaN: true }).map((n) => Math.round(n * 1e4) / 1e4));
      case 'enum':
        return fc.constantFrom(...schema.enum);
      case 'instant':
        return anchorInstant(this.now);
      case 'uuid':
        return fc.oneof(fc.constantFrom(...this.world.stableBudgets), fc.uuid());
      case 'number':
      case 'integer': {
        const min = schema.minimum ?? 0;
        const max = schema.maximum ?? 1000;
        return fc.integer({ min: Math.ceil(min) + (schema.exclusiveMinimum ? 1 : 0), max: Math.floor(max) - (schema.exclusiveMaximum ? 1 : 0) });
      }
      case 'boolean':
        return fc.boolean();
      case 'array':
        return depth < 3
          ? fc.array(this.value(schema.items, name, odd, depth + 1), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 3, 3) })
          : fc.constant([]);
      case 'object':
        return depth < 3 ? this.object(schema, odd, depth + 1) : fc.constant({});
      case 'record':
        if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
          return fc.dictionary(fc.constantFrom(...MODELS), this.value(schema.additionalProperties, name, odd, depth + 1), { maxKeys: 3 });
        }
        // Free-form JSON; the keys the seed lifts into columns (requestId, modelId…) carry ids.
        return fc.dictionary(
          fc.constantFrom('requestId', 'modelId', 'userId', 'teamId', 'env', 'tags'),
          fc.constantFrom(...IDEMPOTENCY_KEYS, ...MODELS, ...this.world.scopeIds),
          { maxKeys: 4 },
        ).chain((known) => fc.dictionary(fc.constantFrom('env', 'tags', 'trace'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }).map((free) => ({ ...known, ...free })));
      case 'string':
      default:
        if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
        if (schema.example !== undefined) return fc.oneof(fc.constant(schema.example), fc.string({ minLength: 1, maxLength: 20 }));
        return fc.string({ minLength: 1, maxLength: 20 });
    }
  }

  /** Values that reach past the validator by name: the ids, scopes, currencies the setup made. */
  private hint(name: string): fc.Arbitrary<unknown> | undefined {
    const w = this.world;
    switch (name) {
      case 'currency':
        return fc.constantFrom('USD', 'USD', 'USD', 'EUR', 'JPY');
      case 'scopeId':
      case 'organizationId':
      case 'teamId':
      case 'userId':
      case 'projectId':
        return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...w.scopeIds) }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:@-]{1,12}$/) });
      case 'parentId':
        return fc.oneof(fc.constantFrom(...w.stableBudgets), madeId('budget'), fc.uuid(), fc.constant(null));
      case 'reservationId':
        return fc.oneof(fc.constantFrom(...w.reservationIds), madeId('reservation'), fc.uuid());
      case 'timezone':
        return fc.constantFrom(...TIME_ZONES);
      case 'modelId':
        return fc.constantFrom(...MODELS);
      case 'requestId':
      case 'idempotencyKey':
        return fc.oneof(fc.constantFrom(...IDEMPOTENCY_KEYS), fc.uuid());
      case 'occurredAt':
        return recentInstant(this.now);
      case 'startDate':
      case 'endDate':
      case 'from':
      case 'to':
        return anchorInstant(this.now);
      case 'cursor':
        return this.cursor();
      case 'threshold':
        return fc.oneof(fc.integer({ min: 1, max: 150 }), fc.constantFrom(0.5, 99.99, 1000));
      case 'amount':
      case 'estimatedCost':
        return fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constantFrom('0.5', '1.25', '0.0000000001', 5000, 2_000_000), fc.double({ min: 0.001, max: 20, noNaN: true }).map((n) => Math.round(n * 1e4) / 1e4));
      case 'limit':
        return fc.integer({ min: 1, max: 5 });
      default:
        return undefined;
    }
  }

  /** Cursors the service returned, and tampered ones (odd instants, odd ids, wrong arity). */
  cursor(): fc.Arbitrary<string> {
    const encode = (key: unknown) => Buffer.from(JSON.stringify(key) ?? 'null').toString('base64url');
    const id = fc.oneof(fc.constantFrom(...this.world.stableBudgets), fc.uuid(), text);
    return fc.oneof(
      fc.constantFrom(...this.world.cursors),
      fc.tuple(fc.oneof(oddInstant, recentInstant(this.now)), id).map(encode),
      fc.oneof(fc.tuple(id), fc.tuple(id, id, id), fc.jsonValue({ maxDepth: 2 })).map(encode),
      fc.tuple(fc.integer(), fc.integer()).map(encode),
      fc.constantFrom('', '!!!', '%%%', '=', 'bnVsbA', 'W10', 'x'.repeat(501)),
    );
  }

  /** Each property present or not (required ones usually present), and now and then an unknown one. */
  object(schema: Schema, odd: number, depth: number): fc.Arbitrary<Record<string, unknown>> {
    const required = new Set<string>(schema.required ?? []);
    const entries = Object.entries<Schema>(schema.properties ?? {}).map(([name, property]) =>
      fc
        .tuple(this.value(property, name, odd, depth), fc.double({ min: 0, max: 1, noNaN: true }))
        .map(([value, dice]) => {
          // Plausible bodies carry few optional fields: a partial update changes a thing or two.
          const keep = required.has(name) ? 1 - odd / 4 : odd ? 0.5 : 0.2;
          return dice < keep ? ([name, value] as const) : undefined;
        }),
    );
    return fc
      .tuple(fc.tuple(...entries), sometimes(fc.tuple(fc.constantFrom(...UNKNOWN_KEYS), fc.jsonValue({ maxDepth: 1 })), odd / 2))
      .map(([pairs, extra]) => {
        const object: Record<string, unknown> = {};
        for (const pair of pairs) if (pair) object[pair[0]] = pair[1];
        if (extra) Object.defineProperty(object, extra[0], { value: extra[1], enumerable: true, writable: true, configurable: true });
        return object;
      });
  }
}

/**
 * The cross-field rules of SPEC §2 the document cannot express (customPeriodDays iff custom,
 * warning < critical, endDate after startDate), applied to plausible bodies so that many pass.
 */
function coherent(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(coherent);
  if (value === null || typeof value !== 'object') return value;
  const object: Record<string, any> = {};
  for (const [key, child] of Object.entries(value)) {
    Object.defineProperty(object, key, { value: coherent(child), enumerable: true, writable: true, configurable: true });
  }
  if (object.period === 'custom' && object.customPeriodDays === undefined) object.customPeriodDays = 7;
  if (object.period !== 'custom' && typeof object.customPeriodDays === 'number') delete object.customPeriodDays;
  const { warningThreshold: warning, criticalThreshold: critical } = object;
  if (typeof warning === 'number' && typeof critical === 'number' && warning >= critical) {
    [object.warningThreshold, object.criticalThreshold] = warning === critical ? [critical / 2, critical] : [critical, warning];
  }
  if (typeof object.startDate === 'string' && typeof object.endDate === 'string' && !(Date.parse(object.endDate) > Date.parse(object.startDate))) {
    delete object.endDate;
  }
  return object;
}

/**
 * Ids made during the run (budgets the fuzzer created, holds its checks placed), referred to as
 * `@budget:n@` and `@reservation:n@` and resolved to one of the 50 newest when the request is sent:
 * so paths and bodies also reach budgets with the odd settings the fuzzer gave them.
 */
const made: Record<'budget' | 'reservation', string[]> = { budget: [], reservation: [] };
const madeId = (kind: keyof typeof made) => fc.nat({ max: 10_000 }).map((n) => `@${kind}:${n}@`);
const resolveMade = (text: string) =>
  text.replace(/@(budget|reservation):(\d+)@/g, (_, kind: keyof typeof made, n: string) => {
    const ids = made[kind];
    return ids.length ? ids[ids.length - 1 - (Number(n) % Math.min(ids.length, 50))] : '00000000-0000-4000-8000-000000000000';
  });

/** Stands for the resource's ETag at the time the request is sent (read just before it). */
const CURRENT_ETAG = '<current ETag>';

const INSTANT_ZONE = /(Z|[+-]\d{2}:?\d{2})$/;
const isNumeric = (x: unknown) => typeof x === 'number' || (typeof x === 'string' && x.trim() !== '' && Number.isFinite(Number(x)));

/** What one mutation may make of a node, by what the node is. */
function mutationsOf(x: unknown): unknown[] {
  const shapes = [[x], null, 'x'];
  if (Array.isArray(x)) return [...shapes, x[0] ?? {}, {}, [[]], [x], { '0': x[0] ?? null }];
  if (x !== null && typeof x === 'object') return [...shapes, [], [[]], {}, JSON.stringify(x), Object.values(x)[0] ?? null];
  if (isNumeric(x)) {
    const written = String(x).trim();
    return [...shapes, ` ${written} `, `${written} `, `\t${written}`, written === String(x) ? Number(x) : written, raw('1e400'), `-${written}`, 0, []];
  }
  if (typeof x === 'string') {
    const zoned = INSTANT_ZONE.test(x) ? [x.replace(INSTANT_ZONE, '+16:00'), x.replace(INSTANT_ZONE, '-23:59'), x.replace(INSTANT_ZONE, '+24:00')] : [];
    return [...shapes, ...zoned, ` ${x} `, `${x}\uD800`, `${x}\u0000`, '', 0, x.toUpperCase()];
  }
  return [...shapes, String(x), 0, 1];
}

/**
 * A valid body with one thing wrong somewhere: one node of it (the body itself included) dropped
 * or replaced by what `mutationsOf` offers for it (a padded number, an object wrapped in an array…).
 */
function mutateOnce(value: unknown, at: number, choice: number): unknown {
  const copy = JSON.parse(JSON.stringify(value) ?? 'null');
  const nodes: { parent?: any; key?: string | number }[] = [{}];
  const walk = (node: unknown) => {
    if (node === null || typeof node !== 'object') return;
    for (const [key, child] of Object.entries(node)) {
      nodes.push({ parent: node, key: Array.isArray(node) ? Number(key) : key });
      walk(child);
    }
  };
  walk(copy);
  const { parent, key } = nodes[at % nodes.length];
  const current = parent === undefined ? copy : parent[key!];
  const options = mutationsOf(current);
  if (parent === undefined) return options[choice % options.length];
  if (choice % (options.length + 1) === options.length) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key!];
  } else {
    parent[key!] = options[choice % (options.length + 1)];
  }
  return copy;
}

// ---------------------------------------------------------------------------------------------
// Requests

function operationsOf(document: any): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<any>(document.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const parameters: any[] = op.parameters ?? [];
      const documented = (where: string) => parameters.filter((p) => p.in === where).map((p) => ({ name: String(p.name), schema: p.schema ?? {} }));
      // Every `{name}` of the template, documented or not (the jest build lacks the CLI plugin).
      const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map(
        ([, name]) => documented('path').find((p) => p.name === name) ?? { name, schema: { type: 'string' } },
      );
      operations.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        pathParams,
        query: documented('query'),
        headers: documented('header'),
        body: op.requestBody?.content?.['application/json']?.schema,
      });
    }
  }
  return operations;
}

function requestArbitrary(fuzzer: SchemaFuzzer, document: any, operations: Operation[], world: World): fc.Arbitrary<FuzzRequest> {
  const stringify = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value) ?? '');
  const junkSegment = fc.oneof(
    text.map(encodeComponent),
    fc.constantFrom('%', '%zz', '..', '%2e%2e', '%00', '%E2%82', '%F0%9F%98', 'x'.repeat(101), '%20', '-1', '0', 'null'),
  );
  /** Known ids of the right family, random uuids, malformed ones. */
  const pathValue = (op: Operation, param: Parameter): fc.Arbitrary<string> => {
    let known: string[];
    let fresh: fc.Arbitrary<string> | undefined;
    if (param.schema.enum) known = param.schema.enum;
    else if (op.path.includes('/api-keys/')) known = world.apiKeyIds;
    else if (op.path.includes('/reservations/')) [known, fresh] = [world.reservationIds, madeId('reservation')];
    else if (op.path.includes('/notification-channels/')) known = op.method === 'DELETE' ? world.disposableChannelIds : world.channelIds;
    else if (op.path.includes('/notification-deliveries/')) known = world.deliveryIds;
    else if (param.name === 'alertId') known = [...world.alerts.map((a) => a.alertId), ...world.alertRuleIds];
    else if (/\/(scope|hierarchy)\//.test(op.path)) known = world.scopeIds;
    else if (op.method === 'DELETE') [known, fresh] = [world.disposableBudgets, madeId('budget')];
    else [known, fresh] = [[...world.stableBudgets, ...world.disposableBudgets.slice(0, 2)], madeId('budget')];
    return fc.oneof(
      { weight: fresh ? 8 : 12, arbitrary: fc.constantFrom(...known).map(encodeComponent) },
      { weight: fresh ? 4 : 0, arbitrary: fresh ?? fc.constant('') },
      { weight: 2, arbitrary: fc.uuid() },
      { weight: 1, arbitrary: fuzzer.value(param.schema, param.name, 1).map((v) => encodeComponent(stringify(v))) },
      { weight: 1, arbitrary: junkSegment },
    );
  };
  // Query names of every operation and body field names: filters the document may not list (the
  // jest build lacks the CLI plugin), and parameters that belong elsewhere.
  const foreignQueryNames = [
    ...new Set([
      ...operations.flatMap((op) => op.query.map((p) => p.name)),
      ...Object.values<Schema>(document.components.schemas).flatMap((s) => Object.keys(s.properties ?? {})),
    ]),
  ];
  const auth = fc.oneof(
    { weight: 34, arbitrary: fc.constant<Role>('admin') },
    { weight: 3, arbitrary: fc.constant<Role>('service') },
    { weight: 2, arbitrary: fc.constant<Role>('viewer') },
    { weight: 1, arbitrary: fc.constantFrom<Role>('none', 'bad') },
  );
  const byKey = (op: Operation) => (NO_CLIENT_ERRORS.has(op.key) ? 1 : 4);

  const forOperation = (op: Operation): fc.Arbitrary<FuzzRequest> => {
    // Per request, the query is plausible throughout, a little odd, or very odd.
    const queryFor = (odd: number) =>
      fc.tuple(
        ...op.query.map((p) =>
          sometimes(
            fc.oneof(
              { weight: 8, arbitrary: fuzzer.value(p.schema, p.name, odd).map((v) => [[p.name, v]] as [string, unknown][]) },
              // Repeated: Fastify hands the DTO an array.
              { weight: odd ? 1 : 0, arbitrary: fc.tuple(fuzzer.value(p.schema, p.name, odd), fuzzer.value(p.schema, p.name, odd)).map(([a, b]) => [[p.name, a], [p.name, b]] as [string, unknown][]) },
            ),
            0.5,
          ),
        ),
        sometimes(fc.tuple(fc.constantFrom(...foreignQueryNames), fc.oneof(fuzzer.value({ type: 'string' }, 'x', 0.5), fuzzer.cursor(), oddInstant)), odd / 2),
      );
    const query = fc.oneof(queryFor(0), queryFor(0.1), queryFor(0.4));
    const bodyOf = (schema: Schema) =>
      fc.oneof(
        { weight: 5, arbitrary: fuzzer.value(schema, 'body', 0).map(coherent) },
        { weight: 6, arbitrary: fc.tuple(fuzzer.value(schema, 'body', 0).map(coherent), fc.nat(), fc.nat()).map(([v, at, choice]) => mutateOnce(v, at, choice)) },
        { weight: 4, arbitrary: fuzzer.value(schema, 'body', 0.08).map(coherent) },
        { weight: 3, arbitrary: fuzzer.value(schema, 'body', 0.3) },
      );
    const body: fc.Arbitrary<{ payload: string; type: string } | null> = op.body
      ? fc.oneof(
          {
            weight: 28,
            arbitrary: fc.tuple(bodyOf(op.body), fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', 'Application/JSON'))
              .map(([value, type]) => ({ payload: serialise(value), type })),
          },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => ({ payload: JSON.stringify(value), type: 'application/json' })) },
          { weight: 1, arbitrary: fc.constantFrom('{', '{"amount":', '[1,2', '', 'nul', '{"a":1}}', '\uFEFF{}', '{"a":"\\ud800"}', '{"__proto__":{"x":1}}', OVERSIZED_BODY).map((payload) => ({ payload, type: 'application/json' })) },
          {
            weight: 1,
            arbitrary: fc
              .tuple(bodyOf(op.body), fc.constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/problem+json', 'multipart/form-data'))
              .map(([value, type]) => ({ payload: serialise(value), type })),
          },
        )
      : sometimes(fc.constantFrom({ payload: '{"unexpected":true}', type: 'application/json' }, { payload: '[]', type: 'application/json' }), 0.1);
    const header = (p: Parameter) => {
      if (/if-match/i.test(p.name)) {
        const version = fc.integer({ min: 0, max: 12 });
        return fc.oneof(
          { weight: 4, arbitrary: fc.constant(CURRENT_ETAG) },
          version.map((v) => `"${v}"`),
          version.map(String),
          version.map((v) => `W/"${v}"`),
          fc.constantFrom('*', '', ' ', '"abc"', '"-1"', '"1e3"', '" 5 "', '"99999999999999999999"', ' "1" ', '"1", "2"', 'W/"x"', '"'),
        );
      }
      return fc.oneof(fc.constantFrom(...IDEMPOTENCY_KEYS), fc.uuid(), fc.constantFrom('', ' ', 'x'.repeat(300), 'ä'), text);
    };
    const headers = fc.tuple(...op.headers.map((p) => sometimes(fc.tuple(fc.constant(p.name.toLowerCase()), header(p)), 0.6)));
    const independent: fc.Arbitrary<string[]> = fc.tuple(...op.pathParams.map((p) => pathValue(op, p)));
    // An alert is found under its own budget only: half the time the pair is a real one.
    const params = op.pathParams.some((p) => p.name === 'alertId')
      ? fc.oneof(independent, fc.constantFrom(...world.alerts).map((a) => op.pathParams.map((p) => (p.name === 'alertId' ? a.alertId : a.budgetId))))
      : independent;
    return fc
      .record({ params, query, body, headers, role: auth, requestId: sometimes(fc.oneof(fc.uuid(), text, fc.constant('x'.repeat(300))), 0.05) })
      .map(({ params, query, body, headers, role, requestId }) => {
        let path = op.path;
        op.pathParams.forEach((p, i) => (path = path.replace(`{${p.name}}`, params[i])));
        const pairs = (query.slice(0, -1) as ([string, unknown][] | null)[]).flatMap((entries) => entries ?? []);
        const foreign = query[query.length - 1] as [string, unknown] | null;
        if (foreign) pairs.push(foreign);
        const search = pairs.map(([name, value]) => `${encodeComponent(name)}=${encodeComponent(stringify(value))}`).join('&');
        const sent: Record<string, string> = {};
        // Header values travel as latin1 text: anything else is replaced before sending.
        for (const entry of headers) if (entry) sent[entry[0]] = entry[1].replace(/[^\x20-\x7e]/g, '?');
        if (body) sent['content-type'] = body.type;
        if (requestId) sent['x-request-id'] = requestId.replace(/[^\x20-\x7e]/g, '?');
        return {
          operation: op.key,
          method: op.method,
          url: `${path}${search ? `?${search}` : ''}`,
          role,
          headers: sent,
          payload: body?.payload,
        };
      });
  };
  return fc.oneof(...operations.map((op) => ({ weight: byKey(op), arbitrary: forOperation(op) })));
}

// ---------------------------------------------------------------------------------------------
// The world the requests refer to

let t: TestApp;
/** The request being served, so the error the service logs for it (a 500's cause) lands on it. */
const serving = new AsyncLocalStorage<{ logged?: string }>();

beforeAll(async () => {
  jest.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => {
    const store = serving.getStore();
    if (store) store.logged = String(message).replace(/^Unhandled error on \S+: /, '').split('\n').slice(0, 4).join(' | ');
  });
  t = await createTestApp({ config: { logLevel: 'fatal' } });
});
afterAll(async () => {
  jest.restoreAllMocks();
  await t?.close();
});

async function created(method: string, path: string, body?: unknown): Promise<any> {
  const response = await t.request(method, path, body);
  expect([200, 201]).toContain(response.status);
  return response.body;
}

/** A small hierarchy in three currencies with every alert action, plus leaves to delete. */
async function buildWorld(): Promise<World> {
  const now = Date.now();
  const startOfYear = `${new Date(now).getUTCFullYear()}-01-01T00:00:00Z`;
  const base = { amount: 1000, currency: 'USD', period: 'monthly', startDate: startOfYear };
  const org = await created('POST', '/api/v1/budgets', { ...base, name: 'Fuzz org', scopeType: 'organization', scopeId: 'org-fuzz', amount: 100_000 });
  const team = await created('POST', '/api/v1/budgets', {
    ...base, name: 'Fuzz team', scopeType: 'team', scopeId: 'team-fuzz', parentId: org.id, amount: 5000,
    alerts: [
      { threshold: 1, actions: ['notify', 'auto-downgrade'], notificationChannels: ['email'] },
      { threshold: 50, actions: ['restrict-models'] },
      { threshold: 400, actions: ['require-approval'] },
      { threshold: 900, type: 'forecast', actions: ['block-all'] },
    ],
    modelPolicy: { restrictedModels: ['gpt-4', 'claude-opus'], downgrades: { 'gpt-4': 'gpt-4o', 'gpt-4o': 'gpt-4o-mini' } },
  });
  const user = await created('POST', '/api/v1/budgets', {
    ...base, name: 'Fuzz user', scopeType: 'user', scopeId: 'user-fuzz', parentId: team.id, amount: 200, period: 'daily',
    timezone: 'America/New_York', enforcement: 'soft', alerts: [{ threshold: 10, actions: ['notify'] }],
  });
  const project = await created('POST', '/api/v1/budgets', {
    ...base, name: 'Fuzz project', scopeType: 'project', scopeId: 'project-fuzz', amount: 50, currency: 'EUR', period: 'custom',
    customPeriodDays: 10, alerts: [{ threshold: 80, actions: ['block-all'] }],
  });
  const ended = await created('POST', '/api/v1/budgets', {
    ...base, name: 'Fuzz ended', scopeType: 'team', scopeId: 'team-fuzz', amount: 30, currency: 'JPY', recurring: false,
    startDate: '2025-01-01T00:00:00Z', endDate: '2025-02-01T00:00:00Z',
  });
  const future = await created('POST', '/api/v1/budgets', {
    ...base, name: 'Fuzz future', scopeType: 'project', scopeId: 'project-fuzz', startDate: new Date(now + 30 * DAY).toISOString(), period: 'weekly',
  });
  const stable = [org, team, user, project, ended, future];
  const disposable: any[] = [];
  for (let i = 0; i < 16; i++) {
    disposable.push(
      await created('POST', '/api/v1/budgets', {
        ...base, name: `Fuzz leaf ${i}`, scopeType: 'user', scopeId: `user-leaf-${i}`, amount: 10 + i, parentId: i % 2 ? team.id : undefined,
      }),
    );
  }
  const occurredAt = new Date(now - 60_000).toISOString();
  for (const [budget, amount, currency] of [[team, 60, 'USD'], [user, 25, 'USD'], [project, 45, 'EUR'], [disposable[0], 5, 'USD']] as const) {
    await created('POST', `/api/v1/budgets/${budget.id}/usage`, { amount, currency, modelId: 'gpt-4o', userId: 'user-fuzz', occurredAt });
  }
  const reservations: string[] = [];
  for (const budget of [org, team, user, ...disposable.slice(1, 8), org, team, user, team]) {
    const check = await created('POST', `/api/v1/budgets/${budget.id}/check-constraints`, { estimatedCost: 1, modelId: 'gpt-4o-mini', reserve: true });
    if (check.reservationId) reservations.push(check.reservationId);
  }
  const alerts: World['alerts'] = [];
  for (const budget of stable) {
    for (const alert of (await created('GET', `/api/v1/budgets/${budget.id}/alerts?all=true`)) as any[]) alerts.push({ budgetId: budget.id, alertId: alert.id });
  }
  const apiKeyIds: string[] = [];
  for (let i = 0; i < 8; i++) apiKeyIds.push((await t.createKey('viewer', `fuzz-disposable-${i}`)).id);
  const cursors = [
    (await created('GET', '/api/v1/budgets?limit=1')).nextCursor,
    (await created('GET', `/api/v1/budgets/${team.id}/usage?limit=1&includeDescendants=true`)).nextCursor,
    (await created('GET', '/api/v1/api-keys?limit=1')).nextCursor,
  ];
  const channel = (body: Record<string, unknown>) => created('POST', '/api/v1/notification-channels', body);
  const channels = [
    await channel({ name: 'fuzz-hook', type: 'webhook', url: 'https://hooks.example.com/fuzz' }),
    await channel({ name: 'fuzz-slack', type: 'slack', url: 'https://hooks.slack.example.com/services/T0/B0/x' }),
    await channel({ name: 'fuzz-mail', type: 'email', recipients: ['finance@example.com'] }),
  ];
  const disposableChannels: any[] = [];
  for (let i = 0; i < 6; i++) disposableChannels.push(await channel({ name: `fuzz-gone-${i}`, type: 'webhook', url: 'https://hooks.example.com/gone' }));
  const deliveryIds: string[] = [];
  for (const c of [...channels, ...channels, ...channels]) {
    const queued = await t.request('POST', `/api/v1/notification-channels/${c.id}/test`);
    expect(queued.status).toBe(202);
    deliveryIds.push(queued.body.deliveryId);
  }
  // Failed, so that a retry can succeed (the relay is off in specs: nothing sends them).
  await t.sql(`UPDATE notification_deliveries SET status = 'failed', last_error = 'fuzz'`);
  expect(reservations.length).toBeGreaterThan(0);
  expect(alerts.length).toBeGreaterThan(0);
  expect(cursors.every((c) => typeof c === 'string')).toBe(true);
  return {
    stableBudgets: stable.map((b) => b.id),
    disposableBudgets: disposable.map((b) => b.id),
    scopeIds: ['org-fuzz', 'team-fuzz', 'user-fuzz', 'project-fuzz', 'user-leaf-1', 'nobody'],
    apiKeyIds,
    reservationIds: reservations,
    alerts,
    alertRuleIds: [...team.alerts, ...project.alerts].map((a: any) => a.id),
    cursors,
    channelIds: channels.map((c) => c.id),
    disposableChannelIds: disposableChannels.map((c) => c.id),
    deliveryIds,
  };
}

// ---------------------------------------------------------------------------------------------
// Sending and judging

interface Outcome {
  status: number;
  /** What the service logged while serving it (the stack of an unhandled error). */
  logged?: string;
  violation?: string;
  contentType: string;
  body: string;
}

const UPPER_SNAKE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;

/** Why an answer breaks the contract (SPEC §6), or undefined when it keeps it. */
function violationOf(status: number, contentType: string, body: string): string | undefined {
  if (status >= 500) return `status ${status}`;
  if (status < 400) return undefined;
  if (!contentType.startsWith('application/problem+json')) return `a ${status} as ${contentType || 'no content type'}`;
  let problem: any;
  try {
    problem = JSON.parse(body);
  } catch {
    return `a ${status} whose body is not JSON`;
  }
  const missing = ['type', 'title', 'detail', 'instance'].filter((m) => typeof problem?.[m] !== 'string' || !problem[m]);
  if (missing.length) return `a ${status} without ${missing.join(', ')}`;
  if (problem.status !== status) return `a ${status} whose problem says status ${problem.status}`;
  if (typeof problem.code !== 'string' || !UPPER_SNAKE.test(problem.code)) return `a ${status} with code ${JSON.stringify(problem.code)}`;
  if (problem.errors !== undefined && !(Array.isArray(problem.errors) && problem.errors.every((e: any) => typeof e?.field === 'string' && typeof e?.message === 'string'))) {
    return `a ${status} whose errors are not [{ field, message }]`;
  }
  return undefined;
}

async function send(request: FuzzRequest): Promise<Outcome> {
  const credentials: Record<Role, Record<string, string>> = {
    admin: { authorization: `Bearer ${t.keys.admin}` },
    service: { 'x-api-key': t.keys.service },
    viewer: { authorization: `Bearer ${t.keys.viewer}` },
    none: {},
    bad: { authorization: 'Bearer rcb_not-a-key' },
  };
  request.url = resolveMade(request.url);
  if (request.payload !== undefined) request.payload = resolveMade(request.payload);
  if (request.headers['if-match'] === CURRENT_ETAG) {
    const current = await t.app.inject({ method: 'GET', url: request.url, headers: credentials.admin });
    request.headers['if-match'] = String(current.headers.etag ?? '"0"');
  }
  const store: { logged?: string } = {};
  // inject() starts when awaited: inside run(), so the service's work happens in `store`'s context.
  const response = await serving.run(store, async () =>
    await t.app.inject({
      method: request.method as any,
      url: request.url,
      headers: { ...credentials[request.role], ...request.headers },
      payload: request.payload,
    }),
  );
  if (response.statusCode === 201 && request.operation === 'POST /api/v1/budgets') made.budget.push(response.json().id);
  if (response.statusCode === 200 && request.operation.endsWith('/check-constraints')) {
    const reservationId = response.json().reservationId;
    if (reservationId) made.reservation.push(reservationId);
  }
  const contentType = String(response.headers['content-type'] ?? '');
  const violation = violationOf(response.statusCode, contentType, response.body);
  return { status: response.statusCode, contentType, body: response.body, violation, logged: store.logged };
}

const shorten = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s);

function describeFailure(request: FuzzRequest, outcome: Outcome): string {
  const lines = [
    `${request.method} ${shorten(request.url, 400)}  [${request.role}${Object.entries(request.headers).map(([k, v]) => `, ${k}: ${shorten(v, 60)}`).join('')}]`,
  ];
  if (request.payload !== undefined) lines.push(`  body: ${shorten(request.payload, 1500)}`);
  lines.push(`  → ${outcome.status} ${outcome.contentType} ${shorten(outcome.body, 300)}`);
  if (outcome.logged) lines.push(`  logged: ${shorten(outcome.logged, 600)}`);
  return lines.join('\n');
}

it(`${REQUESTS} requests derived from the OpenAPI document: no 5xx, every 4xx problem+json (seed ${SEED})`, async () => {
  const docs = await t.app.inject({ method: 'GET', url: '/docs-json' });
  expect(docs.statusCode).toBe(200);
  const document = JSON.parse(docs.body);
  const operations = operationsOf(document);
  // Nothing the app serves escapes: every route but Swagger UI's own and the dashboard's files is a documented operation.
  const served = t.routes
    .filter((r) => !['HEAD', 'OPTIONS'].includes(r.method) && !r.url.startsWith('/docs') && !r.url.startsWith(DASHBOARD_PREFIX))
    .map((r) => `${r.method} ${r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
  expect(served.filter((route) => !operations.some((op) => op.key === route))).toEqual([]);
  const world = await buildWorld();
  const fuzzer = new SchemaFuzzer(document, world, Date.now());
  const requests = fc.sample(requestArbitrary(fuzzer, document, operations, world), { numRuns: REQUESTS, seed: SEED });

  const started = Date.now();
  const tally = new Map<string, Record<string, number>>(operations.map((op) => [op.key, {}]));
  const failures = new Map<string, { count: number; examples: string[] }>();
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const request = requests[next++];
      const outcome = await send(request);
      const counts = tally.get(request.operation)!;
      const family = `${Math.floor(outcome.status / 100)}xx`;
      counts[family] = (counts[family] ?? 0) + 1;
      const code = outcome.status >= 400 ? /"code":"([A-Z0-9_]+)"/.exec(outcome.body)?.[1] : undefined;
      if (code) counts[code] = (counts[code] ?? 0) + 1;
      if (outcome.violation) {
        // One group per operation and cause: the logged error's first line, its values elided.
        const cause = outcome.logged?.split(' | ')[0].replace(/"[^"]*"|\b[0-9a-f-]{36}\b|\d+(\.\d+)?/g, '…').replace(/[\s…]*…[\s…]*/g, ' … ').trim() ?? code ?? '';
        const group = `${request.operation} → ${outcome.violation}: ${cause}`;
        const entry = failures.get(group) ?? { count: 0, examples: [] };
        entry.count++;
        if (entry.examples.length < 3) entry.examples.push(describeFailure(request, outcome));
        failures.set(group, entry);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const groups = [...failures].map(([group, { count }]) => `${group} (×${count})`);
  console.log(
    [
      `OpenAPI fuzz: ${requests.length} requests over ${operations.length} operations in ${Date.now() - started} ms (seed ${SEED})`,
      ...[...tally].map(([op, c]) => {
        const families = ['2xx', '4xx', '5xx'].map((f) => `${f} ${c[f] ?? 0}`.padEnd(9)).join(' ');
        const codes = Object.entries(c).filter(([k]) => !/xx$/.test(k)).sort((a, b) => b[1] - a[1]).slice(0, 4);
        return `  ${op.padEnd(54)} ${families} ${codes.map(([k, n]) => `${k} ${n}`).join(', ')}`;
      }),
      `violations: ${[...failures.values()].reduce((n, f) => n + f.count, 0)} in ${failures.size} groups`,
      ...[...failures].map(([group, { count, examples }]) => `${group} (×${count})\n${examples.join('\n')}`),
    ].join('\n'),
  );
  // Every operation was exercised, and deep enough to succeed at least once.
  const unreached = [...tally].filter(([, c]) => !c['2xx']).map(([op]) => op);
  expect(unreached).toEqual([]);
  // The failing requests themselves are printed above.
  expect(groups).toEqual([]);
});
