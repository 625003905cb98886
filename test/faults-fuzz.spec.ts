/**
 * Fault spec (3): 10,000 requests generated from the OpenAPI document (/docs-json) with fast-check:
 * every operation, path and query parameters and bodies from the schemas (examples, wrong types,
 * out-of-range, unknown fields, missing required ones, random JSON, broken JSON, wrong content
 * types, odd keys). No answer may be a 5xx, and every error must be application/problem+json.
 */
import fc from 'fast-check';
import { createTestApp, type TestApp } from './setup/test-app';

const REQUESTS = 10_000;
const CONCURRENCY = 8;
const SEED = Number(process.env.FUZZ_SEED ?? 20261128);

type Schema = Record<string, any>;
interface Operation {
  method: string;
  path: string;
  query: { name: string; schema: Schema }[];
  headers: { name: string; schema: Schema }[];
  body?: Schema;
}
interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('', ' ', '0', '-1', '1e309', 'NaN', 'null', 'true', '[]', '{}', '../..', '%00', "' OR 1=1 --", 'x'.repeat(300), '\u0000', '2025-13-45T99:99:99Z'),
);
const number = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1e308, -1e308, 1e13, 1e-11, 2 ** 53 + 1, 0.1 + 0.2));
const anyJson = fc.jsonValue({ maxDepth: 3 });

function resolveRef(document: any, schema: Schema | undefined): Schema {
  let current = schema ?? {};
  for (let i = 0; current.$ref && i < 10; i++) current = document.components.schemas[current.$ref.split('/').pop()];
  return current;
}

/** A value for a schema: often plausible (its example, its type), often wrong on purpose. */
function valueFor(document: any, raw: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  const schema = resolveRef(document, raw);
  const wrong = fc.oneof(text, number, fc.boolean(), fc.constant(null), depth < 2 ? anyJson : fc.constant([]));
  const variants: fc.Arbitrary<unknown>[] = [wrong];
  if (schema.example !== undefined) variants.push(fc.constant(schema.example));
  if (schema.enum) variants.push(fc.constantFrom(...schema.enum));
  if (schema.oneOf) variants.push(...schema.oneOf.map((s: Schema) => valueFor(document, s, depth + 1)));
  if (schema.allOf?.[0]) variants.push(valueFor(document, schema.allOf[0], depth + 1));
  switch (schema.type) {
    case 'string':
      variants.push(
        schema.format === 'uuid' ? fc.uuid() : schema.format === 'date-time' ? fc.date({ noInvalidDate: true }).map((d) => d.toISOString()) : text,
      );
      break;
    case 'number':
    case 'integer':
      variants.push(number, fc.integer({ min: -5, max: 2000 }));
      break;
    case 'boolean':
      variants.push(fc.boolean());
      break;
    case 'array':
      if (depth < 3) variants.push(fc.array(valueFor(document, schema.items, depth + 1), { maxLength: 4 }));
      break;
    case 'object':
    default:
      if (schema.properties && depth < 3) variants.push(objectFor(document, schema, depth + 1), objectFor(document, schema, depth + 1));
  }
  return fc.oneof(...variants);
}

/** Each property present or not (required ones usually present), plus now and then an unknown one. */
function objectFor(document: any, schema: Schema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const required = new Set<string>(schema.required ?? []);
  const entries = Object.entries(schema.properties ?? {}).map(([name, property]) =>
    fc
      .tuple(fc.constant(name), valueFor(document, property as Schema, depth), fc.integer({ min: 0, max: 9 }))
      .map(([key, value, dice]) => (dice < (required.has(key) ? 9 : 5) ? ([key, value] as const) : undefined)),
  );
  return fc
    .tuple(fc.tuple(...entries), fc.option(fc.tuple(fc.constantFrom('unknownField', '__proto__', 'constructor', 'id', ''), anyJson)))
    .map(([pairs, extra]) => {
      const object: Record<string, unknown> = {};
      for (const pair of pairs) if (pair) object[pair[0]] = pair[1];
      if (extra) Object.defineProperty(object, extra[0], { value: extra[1], enumerable: true });
      return object;
    });
}

function operationsOf(document: any): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<any>(document.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const parameters: any[] = op.parameters ?? [];
      operations.push({
        method: method.toUpperCase(),
        path,
        query: parameters.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        headers: parameters.filter((p) => p.in === 'header').map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        body: op.requestBody?.content?.['application/json']?.schema,
      });
    }
  }
  return operations;
}

function requestArbitrary(document: any, operations: Operation[], knownIds: string[], keys: TestApp['keys']): fc.Arbitrary<FuzzRequest> {
  const pathValue = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...knownIds) },
    { weight: 2, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: fc.constantFrom('team', 'user', 'organization', 'project', 'model') },
    { weight: 3, arbitrary: text.map((s) => encodeURIComponent(s)) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '..', '%2e%2e', '%00', '%E2%82') },
  );
  const auth = fc.oneof(
    { weight: 8, arbitrary: fc.constant({ authorization: `Bearer ${keys.admin}` }) },
    { weight: 1, arbitrary: fc.constantFrom<Record<string, string>>({ authorization: `Bearer ${keys.viewer}` }, { 'x-api-key': keys.service }) },
    { weight: 1, arbitrary: fc.constantFrom<Record<string, string>>({}, { authorization: 'Bearer nope' }, { authorization: 'Basic abc' }, { 'x-api-key': 'rcb_' }) },
  );
  return fc.constantFrom(...operations).chain((op) => {
    const names = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    const query = fc.tuple(
      ...op.query.map(({ name, schema }) => fc.option(fc.tuple(fc.constant(name), valueFor(document, schema)), { freq: 2 })),
      fc.option(fc.tuple(fc.constantFrom('unknown', 'limit', '__proto__'), text)),
    );
    const body = op.body
      ? fc.oneof(
          { weight: 6, arbitrary: valueFor(document, op.body).map((value) => ({ payload: JSON.stringify(value) ?? 'null', type: 'application/json' })) },
          { weight: 1, arbitrary: anyJson.map((value) => ({ payload: JSON.stringify(value), type: 'application/json' })) },
          { weight: 1, arbitrary: fc.constantFrom('{', '{"amount":', '[1,2', '', 'nul', '{"a":1}}').map((payload) => ({ payload, type: 'application/json' })) },
          { weight: 1, arbitrary: fc.tuple(text, fc.constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'application/json; charset=latin1')).map(([payload, type]) => ({ payload, type })) },
        )
      : fc.option(fc.constant({ payload: '{"unexpected":true}', type: 'application/json' }), { freq: 10 });
    const headers = fc.tuple(...op.headers.map(({ name, schema }) => fc.option(fc.tuple(fc.constant(name), valueFor(document, schema)))));
    return fc.record({ params: fc.tuple(...names.map(() => pathValue)), query, body, headers, auth }).map(({ params, query, body, headers, auth }) => {
      let path = op.path;
      names.forEach((name, i) => (path = path.replace(`{${name}}`, params[i])));
      const search = new URLSearchParams();
      for (const entry of query) if (entry) search.append(entry[0], typeof entry[1] === 'string' ? entry[1] : JSON.stringify(entry[1]) ?? '');
      const extraHeaders: Record<string, string> = {};
      for (const entry of headers) if (entry) extraHeaders[entry[0].toLowerCase()] = String(typeof entry[1] === 'string' ? entry[1] : JSON.stringify(entry[1])).replace(/[^\x20-\x7e]/g, '?');
      return {
        method: op.method,
        url: `${path}${search.size ? `?${search}` : ''}`,
        headers: { ...auth, ...extraHeaders, ...(body ? { 'content-type': body.type } : {}) },
        payload: body?.payload,
      };
    });
  });
}

it(`${REQUESTS} requests generated from the OpenAPI document: no 5xx, every error problem+json`, async () => {
  const document = (await t.request('GET', '/docs-json')).body;
  const operations = operationsOf(document);
  const knownIds: string[] = [];
  for (let i = 0; i < 4; i++) {
    const budget = await t.request('POST', '/api/v1/budgets', {
      name: `Fuzz ${i}`, scopeType: 'team', scopeId: `team-fuzz-${i}`, amount: 100, currency: 'USD', period: 'monthly',
      startDate: '2025-01-01T00:00:00Z', alerts: [{ threshold: 1, actions: ['notify'] }],
    });
    expect(budget.status).toBe(201);
    knownIds.push(budget.body.id);
    await t.request('POST', `/api/v1/budgets/${budget.body.id}/usage`, { amount: 5, currency: 'USD' });
  }
  const alerts = await t.request('GET', `/api/v1/budgets/${knownIds[0]}/alerts`);
  for (const alert of alerts.body ?? []) knownIds.push(alert.id);

  const requests = fc.sample(requestArbitrary(document, operations, knownIds, t.keys), { numRuns: REQUESTS, seed: SEED });
  const statuses: Record<string, number> = {};
  const violations: { request: FuzzRequest; status: number; contentType: string; body: string }[] = [];
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const request = requests[next++];
      const response = await t.app.inject({ method: request.method as any, url: request.url, headers: request.headers, payload: request.payload });
      const key = `${Math.floor(response.statusCode / 100)}xx`;
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      statuses[key] = (statuses[key] ?? 0) + 1;
      const contentType = String(response.headers['content-type'] ?? '');
      const problem = response.statusCode < 400 || (contentType.startsWith('application/problem+json') && response.json().status === response.statusCode);
      if (response.statusCode >= 500 || !problem) {
        violations.push({ request, status: response.statusCode, contentType, body: response.body.slice(0, 300) });
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const byFamily = ['2xx', '3xx', '4xx', '5xx'].map((k) => `${k} ${statuses[k] ?? 0}`).join(', ');
  const codes = Object.entries(statuses).filter(([k]) => /^\d+$/.test(k)).map(([k, v]) => `${k}×${v}`).join(' ');
  console.log(
    [
      'fault spec (3) — requests generated from the OpenAPI document',
      `  ${requests.length} requests over ${operations.length} operations in ${Date.now() - started} ms (seed ${SEED})`,
      `  ${byFamily}; by status ${codes}`,
      `  violations (5xx or an error that is not problem+json): ${violations.length}`,
      ...violations.slice(0, 5).map((v) => `    ${v.request.method} ${v.request.url} → ${v.status} ${v.contentType} ${v.body}`),
    ].join('\n'),
  );
  expect(violations).toEqual([]);
});
