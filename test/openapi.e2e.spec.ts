import { SEED_CREATE_BUDGET_EXAMPLE } from './setup/seed-examples';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * Issue 2 acceptance 6: /docs-json lists every budget endpoint with request/response schemas and
 * error responses. Under jest the @nestjs/swagger CLI plugin does not run (only `nest build`
 * applies it), so these checks stop at what the explicit decorators guarantee.
 */

type Json = Record<string, any>;

const BUDGET_OPERATIONS: { method: string; path: string; operationId: string; success: string; errors: string[] }[] = [
  { method: 'post', path: '/api/v1/budgets', operationId: 'createBudget', success: '201', errors: ['400', '409', '413', '415', '422'] },
  { method: 'get', path: '/api/v1/budgets', operationId: 'listBudgets', success: '200', errors: ['400'] },
  { method: 'get', path: '/api/v1/budgets/{id}', operationId: 'getBudget', success: '200', errors: ['400', '404'] },
  {
    method: 'put',
    path: '/api/v1/budgets/{id}',
    operationId: 'updateBudget',
    success: '200',
    errors: ['400', '404', '409', '412', '413', '415', '422'],
  },
  { method: 'delete', path: '/api/v1/budgets/{id}', operationId: 'deleteBudget', success: '204', errors: ['400', '404', '409'] },
  { method: 'get', path: '/api/v1/budgets/scope/{type}/{id}', operationId: 'listBudgetsForScope', success: '200', errors: ['400'] },
  {
    method: 'get',
    path: '/api/v1/budgets/hierarchy/{type}/{id}',
    operationId: 'getBudgetHierarchy',
    success: '200',
    errors: ['400'],
  },
];

/** Every field of the SPEC Budget table a client may send. */
const WRITABLE_FIELDS = [
  'name', 'description', 'scopeType', 'scopeId', 'parentId', 'amount', 'currency', 'period', 'customPeriodDays',
  'startDate', 'endDate', 'recurring', 'timezone', 'enforcement', 'warningThreshold', 'criticalThreshold', 'alerts',
  'modelPolicy', 'filter', 'anomalyDetection', 'metadata',
];

describe('OpenAPI document', () => {
  let t: TestApp;
  let doc: Json;

  /** Follows `$ref`, `allOf` of one schema and array items down to an object schema. */
  const resolve = (schema: Json | undefined): Json => {
    if (!schema) throw new Error('no schema');
    if (schema.$ref) {
      const name = String(schema.$ref).replace('#/components/schemas/', '');
      const target = doc.components?.schemas?.[name];
      if (!target) throw new Error(`dangling $ref ${schema.$ref}`);
      return resolve(target);
    }
    if (Array.isArray(schema.allOf) && schema.allOf.length === 1) return resolve(schema.allOf[0]);
    return schema;
  };

  const operation = (method: string, path: string): Json => doc.paths?.[path]?.[method];

  beforeAll(async () => {
    t = await createTestApp();
    // No API key: the documentation is public (SPEC §10).
    const res = await t.app.inject({ method: 'GET', url: '/docs-json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = JSON.parse(res.body);
  });

  afterAll(async () => {
    await t.close();
  });

  it('is an OpenAPI 3 document with API-key security schemes', () => {
    expect(String(doc.openapi)).toMatch(/^3\./);
    expect(doc.info).toEqual(expect.objectContaining({ title: expect.any(String), version: expect.any(String) }));
    const schemes = Object.values(doc.components?.securitySchemes ?? {}) as Json[];
    expect(schemes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'http', scheme: 'bearer' }),
        expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
      ]),
    );
  });

  it('/docs serves the Swagger UI as HTML, without a key', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/swagger/i);
  });

  describe.each(BUDGET_OPERATIONS)('$method $path', ({ method, path, operationId, success, errors }) => {
    it(`has operationId ${operationId}, a summary and the Budgets tag`, () => {
      const op = operation(method, path);
      expect(op).toBeDefined();
      expect(op.operationId).toBe(operationId);
      expect(op.summary).toEqual(expect.any(String));
      expect(op.tags).toContain('Budgets');
    });

    it(`documents its ${success} response`, () => {
      const response = operation(method, path).responses?.[success];
      expect(response).toBeDefined();
      if (success === '204') {
        expect(response.content).toBeUndefined();
      } else {
        const schema = response.content?.['application/json']?.schema;
        expect(schema).toBeDefined();
        const resolved = resolve(schema.type === 'array' ? schema.items : schema);
        expect(Object.keys(resolved.properties ?? {}).length).toBeGreaterThan(0);
      }
    });

    it(`documents its errors (${errors.join(', ')}, 401, 403) as problem+json`, () => {
      const responses = operation(method, path).responses ?? {};
      for (const status of [...errors, '401', '403']) {
        const response = responses[status];
        expect({ status, documented: response !== undefined }).toEqual({ status, documented: true });
        expect(response.description).toEqual(expect.any(String));
        const schema = response.content?.['application/problem+json']?.schema;
        expect(schema).toBeDefined();
        expect(resolve(schema).properties).toEqual(
          expect.objectContaining({ type: expect.any(Object), title: expect.any(Object), status: expect.any(Object), detail: expect.any(Object), instance: expect.any(Object) }),
        );
      }
    });
  });

  it('operationIds are unique across the whole document', () => {
    const ids: string[] = [];
    for (const ops of Object.values(doc.paths as Json)) {
      for (const op of Object.values(ops as Json)) if ((op as Json).operationId) ids.push((op as Json).operationId);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every /api/v1 route the app serves is documented with an operationId', () => {
    const served = t.routes
      .filter((r) => r.url.startsWith('/api/v1/') && !['HEAD', 'OPTIONS'].includes(r.method))
      .map((r) => `${r.method.toLowerCase()} ${r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    expect(served.length).toBeGreaterThanOrEqual(BUDGET_OPERATIONS.length);
    const undocumented = served.filter((route) => {
      const [method, path] = route.split(' ');
      return !operation(method, path)?.operationId;
    });
    expect(undocumented).toEqual([]);
  });

  it('the problem+json schema has the RFC 9457 members and the field errors', () => {
    const problem = resolve({ $ref: '#/components/schemas/ProblemDetailsDto' });
    expect(Object.keys(problem.properties)).toEqual(expect.arrayContaining(['type', 'title', 'status', 'detail', 'instance', 'errors']));
    const fieldError = resolve(problem.properties.errors.items);
    expect(Object.keys(fieldError.properties)).toEqual(expect.arrayContaining(['field', 'message']));
  });

  describe('request bodies', () => {
    const bodySchema = (method: string, path: string) => {
      const body = operation(method, path).requestBody;
      expect(body).toBeDefined();
      const schema = body.content?.['application/json']?.schema;
      expect(schema).toBeDefined();
      return resolve(schema);
    };

    it('POST /budgets takes every writable field of the Budget table', () => {
      const schema = bodySchema('post', '/api/v1/budgets');
      expect(operation('post', '/api/v1/budgets').requestBody.required).toBe(true);
      expect(Object.keys(schema.properties).sort()).toEqual([...WRITABLE_FIELDS].sort());
      expect(schema.required).toEqual(
        expect.arrayContaining(['name', 'scopeType', 'scopeId', 'amount', 'currency', 'period', 'startDate']),
      );
      for (const optional of ['description', 'parentId', 'customPeriodDays', 'endDate', 'alerts', 'modelPolicy', 'anomalyDetection', 'metadata']) {
        expect(schema.required ?? []).not.toContain(optional);
      }
    });

    it('POST /budgets documents the enums, limits and formats of the SPEC', () => {
      const p = bodySchema('post', '/api/v1/budgets').properties;
      expect(p.scopeType.enum).toEqual(['organization', 'team', 'user', 'project', 'customer']);
      expect(p.period.enum).toEqual(['daily', 'weekly', 'monthly', 'quarterly', 'annual', 'custom']);
      expect(p.enforcement.enum).toEqual(['hard', 'soft']);
      expect(p.enforcement.default).toBe('hard');
      expect(p.timezone.default).toBe('UTC');
      expect(p.recurring.default).toBe(true);
      expect(p.warningThreshold.default).toBe(75);
      expect(p.criticalThreshold.default).toBe(90);
      expect(p.name).toEqual(expect.objectContaining({ minLength: 1, maxLength: 200 }));
      expect(p.description.maxLength).toBe(2000);
      expect(p.customPeriodDays).toEqual(expect.objectContaining({ minimum: 1, maximum: 3660 }));
      expect(p.parentId.format).toBe('uuid');
      expect(p.startDate.format).toBe('date-time');
      expect(p.endDate.format).toBe('date-time');
      expect(new RegExp(p.scopeId.pattern).test('team-engineering-ai')).toBe(true);
      expect(new RegExp(p.scopeId.pattern).test('has space')).toBe(false);
      expect(new RegExp(p.currency.pattern).test('USD')).toBe(true);
      expect(new RegExp(p.currency.pattern).test('usd')).toBe(false);
      // Money takes a number or a decimal string.
      expect(p.amount.oneOf).toEqual(expect.arrayContaining([{ type: 'number' }, { type: 'string' }]));
      expect(p.metadata.type).toBe('object');
    });

    it("POST /budgets carries the seed's CreateBudgetRequest as its example", () => {
      const p = bodySchema('post', '/api/v1/budgets').properties;
      const seed = SEED_CREATE_BUDGET_EXAMPLE;
      expect({
        name: p.name.example,
        description: p.description.example,
        scopeType: p.scopeType.example,
        scopeId: p.scopeId.example,
        amount: p.amount.example,
        currency: p.currency.example,
        period: p.period.example,
        startDate: p.startDate.example,
        recurring: p.recurring.example,
      }).toEqual({
        name: seed.name,
        description: seed.description,
        scopeType: seed.scopeType,
        scopeId: seed.scopeId,
        amount: seed.amount,
        currency: seed.currency,
        period: seed.period,
        startDate: seed.startDate,
        recurring: seed.recurring,
      });
      const alert = resolve(p.alerts.items).properties;
      expect(alert.threshold.example).toBe(seed.alerts[0].threshold);
      expect(alert.actions.items.enum).toEqual(['notify', 'restrict-models', 'require-approval', 'block-all', 'auto-downgrade']);
      expect(alert.type.enum).toEqual(['actual', 'forecast']);
      expect(alert.notificationChannels.example).toEqual(seed.alerts[0].notificationChannels);
    });

    it('PUT /budgets/:id takes the same fields, none required', () => {
      const schema = bodySchema('put', '/api/v1/budgets/{id}');
      expect(Object.keys(schema.properties).sort()).toEqual([...WRITABLE_FIELDS].sort());
      expect(schema.required ?? []).toEqual([]);
    });

    it('PUT /budgets/:id documents the If-Match header', () => {
      const params = operation('put', '/api/v1/budgets/{id}').parameters as Json[];
      expect(params).toEqual(expect.arrayContaining([expect.objectContaining({ in: 'header', name: 'If-Match' })]));
    });
  });

  describe('parameters and responses', () => {
    it.each(['get', 'put', 'delete'])('%s /budgets/{id} documents id as a uuid path parameter', (method) => {
      const params = operation(method, '/api/v1/budgets/{id}').parameters as Json[];
      const id = params.find((p) => p.in === 'path' && p.name === 'id');
      expect(id).toEqual(expect.objectContaining({ required: true }));
      expect(id!.schema.format).toBe('uuid');
    });

    it.each(['/api/v1/budgets/scope/{type}/{id}', '/api/v1/budgets/hierarchy/{type}/{id}'])(
      '%s documents the scope type enum',
      (path) => {
        const params = operation('get', path).parameters as Json[];
        const type = params.find((p) => p.in === 'path' && p.name === 'type');
        // `id` carries no @ApiProperty: only the CLI plugin (nest build) documents it.
        expect(type!.schema.enum).toEqual(['organization', 'team', 'user', 'project', 'customer']);
        expect(type!.required).toBe(true);
      },
    );

    it('GET /budgets documents its decorated filters', () => {
      const params = operation('get', '/api/v1/budgets').parameters as Json[];
      const byName = Object.fromEntries(params.filter((p) => p.in === 'query').map((p) => [p.name, p]));
      expect(byName.scopeType.schema.enum).toEqual(['organization', 'team', 'user', 'project', 'customer']);
      expect(byName.parentId.schema.format).toBe('uuid');
    });

    it('the budget response documents its decorated fields', () => {
      const budget = resolve(operation('get', '/api/v1/budgets/{id}').responses['200'].content['application/json'].schema);
      expect(Object.keys(budget.properties)).toEqual(
        expect.arrayContaining([
          'id', 'description', 'scopeType', 'parentId', 'period', 'customPeriodDays', 'startDate', 'endDate',
          'enforcement', 'alerts', 'modelPolicy', 'metadata', 'createdAt', 'updatedAt',
        ]),
      );
      expect(budget.properties.id.format).toBe('uuid');
      expect(budget.properties.period.enum).toEqual(['daily', 'weekly', 'monthly', 'quarterly', 'annual', 'custom']);
      expect(budget.properties.parentId.nullable).toBe(true);
      expect(budget.properties.endDate.nullable).toBe(true);
      const alert = resolve(budget.properties.alerts.items);
      expect(alert.properties.type.enum).toEqual(['actual', 'forecast']);
    });

    it('the list response is { data: Budget[], nextCursor: string | null }', () => {
      const page = resolve(operation('get', '/api/v1/budgets').responses['200'].content['application/json'].schema);
      expect(page.properties.data.type).toBe('array');
      expect(resolve(page.properties.data.items).properties.id).toBeDefined();
      expect(page.properties.nextCursor).toEqual(expect.objectContaining({ type: 'string', nullable: true }));
    });

    it('the scope list is an array of budgets; the hierarchy lists families with ancestors and subtree', () => {
      const scope = operation('get', '/api/v1/budgets/scope/{type}/{id}').responses['200'].content['application/json'].schema;
      expect(scope.type).toBe('array');
      expect(resolve(scope.items).properties.id).toBeDefined();

      const hierarchy = resolve(operation('get', '/api/v1/budgets/hierarchy/{type}/{id}').responses['200'].content['application/json'].schema);
      expect(hierarchy.properties.budgets.type).toBe('array');
      const family = resolve(hierarchy.properties.budgets.items);
      expect(family.properties.ancestors.type).toBe('array');
      const node = resolve(family.properties.ancestors.items);
      expect(node.properties).toEqual(expect.objectContaining({ id: expect.any(Object), status: expect.any(Object) }));
    });
  });
  describe('the price catalog (SPEC §14)', () => {
    const PRICE_OPERATIONS = [
      { method: 'get', path: '/api/v1/prices', operationId: 'listPrices', success: ['200'], errors: ['400'] },
      { method: 'put', path: '/api/v1/prices/{provider}/{modelId}', operationId: 'putModelPrice', success: ['201', '200'], errors: ['400', '409', '413', '415'] },
    ];

    it.each(PRICE_OPERATIONS)('$method $path: $operationId, tag Prices, its answers and problem+json errors', ({ method, path, operationId, success, errors }) => {
      const op = operation(method, path);
      expect(op).toEqual(expect.objectContaining({ operationId, summary: expect.any(String), tags: ['Prices'] }));
      for (const status of success) {
        expect(Object.keys(resolve(op.responses[status].content['application/json'].schema).properties ?? {}).length).toBeGreaterThan(0);
      }
      for (const status of [...errors, '401', '403']) {
        expect({ status, schema: op.responses[status]?.content?.['application/problem+json']?.schema }).toEqual({ status, schema: expect.any(Object) });
      }
    });

    it('PUT takes decimal-string prices with examples; effectiveFrom and both prices are required', () => {
      const body = resolve(operation('put', '/api/v1/prices/{provider}/{modelId}').requestBody.content['application/json'].schema);
      expect(Object.keys(body.properties).sort()).toEqual(['cachedInputPerMTok', 'currency', 'effectiveFrom', 'effectiveTo', 'inputPerMTok', 'outputPerMTok']);
      expect([...body.required].sort()).toEqual(['effectiveFrom', 'inputPerMTok', 'outputPerMTok']);
      expect(body.properties.inputPerMTok).toEqual(expect.objectContaining({ example: '2.5', oneOf: expect.arrayContaining([{ type: 'string' }]) }));
      expect(body.properties.effectiveFrom.format).toBe('date-time');
      expect(body.properties.currency.enum).toEqual(['USD']);
    });

    it('a price version answers its prices as decimal strings, with the filters of the list documented', () => {
      const page = resolve(operation('get', '/api/v1/prices').responses['200'].content['application/json'].schema);
      const version = resolve(page.properties.data.items);
      expect(version.properties.inputPerMTok).toEqual(expect.objectContaining({ type: 'string', example: '2.5' }));
      expect(version.properties.cachedInputPerMTok.nullable).toBe(true);
      const query = (operation('get', '/api/v1/prices').parameters as Json[]).filter((p) => p.in === 'query').map((p) => p.name);
      expect(query).toEqual(expect.arrayContaining(['provider', 'modelId', 'at', 'limit', 'cursor']));
    });
  });
});
