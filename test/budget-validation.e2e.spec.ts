import { createTestApp, type TestApp, type TestResponse } from './setup/test-app';
import { expectProblem } from './setup/problem';

/**
 * SPEC §2 Budget table, row by row: every bad value is refused with problem+json naming the field,
 * and nothing is stored (POST) or changed (PUT).
 */

const BUDGETS = '/api/v1/budgets';

const VALID = {
  name: 'Validation budget',
  scopeType: 'team',
  scopeId: 'team-validation',
  amount: 100,
  currency: 'USD',
  period: 'monthly',
  startDate: '2025-01-01T00:00:00Z',
};

const ALERT = { threshold: 80, actions: ['notify'] };

type Body = Record<string, unknown>;

interface BadCase {
  /** Test title. */
  title: string;
  /** Applied to VALID: keys set to `undefined` are removed. */
  patch: Body;
  /** Acceptable names for the field in `errors` (the first is the natural one). */
  field: string | string[];
  status?: 400 | 422;
  /** A missing-field case: meaningless for a partial update. */
  createOnly?: boolean;
}

const omit = (key: string): Body => ({ [key]: undefined });

function build(patch: Body): Body {
  const body: Body = { ...VALID, ...patch };
  for (const [key, value] of Object.entries(patch)) if (value === undefined) delete body[key];
  return body;
}

/** Replaced in beforeAll by the ids of budgets created for the parentId rows. */
const PARENT_IDS = { deleted: '' };

const CASES: BadCase[] = [
  // name: required, 1–200 chars, trimmed
  { title: 'name missing', patch: omit('name'), field: 'name', createOnly: true },
  { title: 'name empty', patch: { name: '' }, field: 'name' },
  { title: 'name whitespace only', patch: { name: '   \t ' }, field: 'name' },
  { title: 'name of 201 characters', patch: { name: 'n'.repeat(201) }, field: 'name' },
  { title: 'name of 201 characters after trimming', patch: { name: `  ${'n'.repeat(201)}  ` }, field: 'name' },
  { title: 'name a number', patch: { name: 123 }, field: 'name' },
  { title: 'name an array', patch: { name: ['a'] }, field: 'name' },
  { title: 'name null', patch: { name: null }, field: 'name' },
  { title: 'name with a NUL character', patch: { name: 'Budget\u0000name' }, field: 'name' },
  // description: ≤ 2000 chars
  { title: 'description of 2001 characters', patch: { description: 'd'.repeat(2001) }, field: 'description' },
  { title: 'description a number', patch: { description: 42 }, field: 'description' },
  { title: 'description with a NUL character', patch: { description: 'a\u0000b' }, field: 'description' },
  // scopeType
  { title: 'scopeType invalid', patch: { scopeType: 'department' }, field: 'scopeType' },
  { title: 'scopeType wrong case', patch: { scopeType: 'Team' }, field: 'scopeType' },
  { title: 'scopeType missing', patch: omit('scopeType'), field: 'scopeType', createOnly: true },
  // scopeId: 1–200 chars of [A-Za-z0-9._:@-]
  { title: 'scopeId empty', patch: { scopeId: '' }, field: 'scopeId' },
  { title: 'scopeId of 201 characters', patch: { scopeId: 's'.repeat(201) }, field: 'scopeId' },
  { title: 'scopeId with a space', patch: { scopeId: 'team engineering' }, field: 'scopeId' },
  { title: 'scopeId with a slash', patch: { scopeId: 'team/eng' }, field: 'scopeId' },
  { title: 'scopeId with a non-ASCII letter', patch: { scopeId: 'tëam' }, field: 'scopeId' },
  { title: 'scopeId a number', patch: { scopeId: 42 }, field: 'scopeId' },
  { title: 'scopeId missing', patch: omit('scopeId'), field: 'scopeId', createOnly: true },
  // parentId: uuid of another live budget
  { title: 'parentId not a uuid', patch: { parentId: 'not-a-uuid' }, field: 'parentId' },
  { title: 'parentId a number', patch: { parentId: 42 }, field: 'parentId' },
  { title: 'parentId an unknown uuid', patch: { parentId: '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b' }, field: 'parentId', status: 422 },
  { title: 'parentId of a deleted budget', patch: { parentId: 'DELETED' }, field: 'parentId', status: 422 },
  // amount: decimal > 0 and ≤ 1e13, at most 10 fractional digits
  { title: 'amount 0', patch: { amount: 0 }, field: 'amount' },
  { title: 'amount "0"', patch: { amount: '0' }, field: 'amount' },
  { title: 'amount negative', patch: { amount: -1 }, field: 'amount' },
  { title: 'amount negative string', patch: { amount: '-0.5' }, field: 'amount' },
  { title: 'amount just above 1e13 (number)', patch: { amount: 10000000000001 }, field: 'amount' },
  { title: 'amount just above 1e13 (string)', patch: { amount: '10000000000000.0000000001' }, field: 'amount' },
  { title: 'amount 1e14 in exponent form', patch: { amount: '1e14' }, field: 'amount' },
  { title: 'amount with 11 fractional digits (number)', patch: { amount: 0.12345678901 }, field: 'amount' },
  { title: 'amount with 11 fractional digits (string)', patch: { amount: '1.12345678901' }, field: 'amount' },
  { title: 'amount non-numeric string', patch: { amount: 'abc' }, field: 'amount' },
  { title: 'amount empty string', patch: { amount: '' }, field: 'amount' },
  { title: 'amount "NaN"', patch: { amount: 'NaN' }, field: 'amount' },
  { title: 'amount "Infinity"', patch: { amount: 'Infinity' }, field: 'amount' },
  { title: 'amount hexadecimal string', patch: { amount: '0x10' }, field: 'amount' },
  { title: 'amount with a decimal comma', patch: { amount: '1,5' }, field: 'amount' },
  { title: 'amount boolean', patch: { amount: true }, field: 'amount' },
  { title: 'amount an object', patch: { amount: { value: 5 } }, field: 'amount' },
  { title: 'amount null', patch: { amount: null }, field: 'amount' },
  { title: 'amount missing', patch: omit('amount'), field: 'amount', createOnly: true },
  // currency: 3 upper-case letters
  { title: 'currency lowercase', patch: { currency: 'usd' }, field: 'currency' },
  { title: 'currency of 2 letters', patch: { currency: 'US' }, field: 'currency' },
  { title: 'currency of 4 letters', patch: { currency: 'USDX' }, field: 'currency' },
  { title: 'currency with a digit', patch: { currency: 'US1' }, field: 'currency' },
  { title: 'currency a number', patch: { currency: 840 }, field: 'currency' },
  { title: 'currency missing', patch: omit('currency'), field: 'currency', createOnly: true },
  // period
  { title: 'period invalid', patch: { period: 'biweekly' }, field: 'period' },
  { title: 'period wrong case', patch: { period: 'Monthly' }, field: 'period' },
  { title: 'period missing', patch: omit('period'), field: 'period', createOnly: true },
  // customPeriodDays: required iff custom; integer 1–3660
  { title: 'customPeriodDays missing for a custom period', patch: { period: 'custom' }, field: 'customPeriodDays' },
  { title: 'customPeriodDays null for a custom period', patch: { period: 'custom', customPeriodDays: null }, field: 'customPeriodDays' },
  { title: 'customPeriodDays 0', patch: { period: 'custom', customPeriodDays: 0 }, field: 'customPeriodDays' },
  { title: 'customPeriodDays 3661', patch: { period: 'custom', customPeriodDays: 3661 }, field: 'customPeriodDays' },
  { title: 'customPeriodDays not an integer', patch: { period: 'custom', customPeriodDays: 1.5 }, field: 'customPeriodDays' },
  { title: 'customPeriodDays a string', patch: { period: 'custom', customPeriodDays: '10' }, field: 'customPeriodDays' },
  { title: 'customPeriodDays with a non-custom period', patch: { period: 'monthly', customPeriodDays: 10 }, field: 'customPeriodDays' },
  // startDate: ISO 8601 instant
  { title: 'startDate missing', patch: omit('startDate'), field: 'startDate', createOnly: true },
  { title: 'startDate not ISO', patch: { startDate: 'next monday' }, field: 'startDate' },
  { title: 'startDate a date without time or zone', patch: { startDate: '2025-01-01' }, field: 'startDate' },
  { title: 'startDate without a zone', patch: { startDate: '2025-01-01T00:00:00' }, field: 'startDate' },
  { title: 'startDate month 13', patch: { startDate: '2025-13-01T00:00:00Z' }, field: 'startDate' },
  { title: 'startDate on February 30', patch: { startDate: '2025-02-30T00:00:00Z' }, field: 'startDate' },
  { title: 'startDate in year 0', patch: { startDate: '0000-01-01T00:00:00Z' }, field: 'startDate' },
  { title: 'startDate epoch milliseconds', patch: { startDate: 1735689600000 }, field: 'startDate' },
  { title: 'startDate null', patch: { startDate: null }, field: 'startDate' },
  // endDate: after startDate
  { title: 'endDate before startDate', patch: { startDate: '2025-01-01T00:00:00Z', endDate: '2024-12-31T00:00:00Z' }, field: 'endDate' },
  { title: 'endDate equal to startDate', patch: { startDate: '2025-01-01T00:00:00Z', endDate: '2025-01-01T00:00:00Z' }, field: 'endDate' },
  { title: 'endDate equal to startDate in another offset', patch: { startDate: '2025-01-01T00:00:00Z', endDate: '2025-01-01T01:00:00+01:00' }, field: 'endDate' },
  { title: 'endDate not ISO', patch: { endDate: 'soon' }, field: 'endDate' },
  { title: 'endDate without a zone', patch: { endDate: '2025-06-01T00:00:00' }, field: 'endDate' },
  // recurring: boolean
  { title: 'recurring a string', patch: { recurring: 'yes' }, field: 'recurring' },
  { title: 'recurring a number', patch: { recurring: 1 }, field: 'recurring' },
  { title: 'recurring null', patch: { recurring: null }, field: 'recurring' },
  // timezone: IANA name
  { title: 'timezone unknown', patch: { timezone: 'Mars/Olympus' }, field: 'timezone' },
  { title: 'timezone misspelt', patch: { timezone: 'America/NewYork' }, field: 'timezone' },
  { title: 'timezone PostgreSQL does not know (US/Pacific-New)', patch: { timezone: 'US/Pacific-New' }, field: 'timezone' },
  { title: 'timezone empty', patch: { timezone: '' }, field: 'timezone' },
  { title: 'timezone a number', patch: { timezone: 5 }, field: 'timezone' },
  { title: 'timezone null', patch: { timezone: null }, field: 'timezone' },
  // enforcement
  { title: 'enforcement invalid', patch: { enforcement: 'strict' }, field: 'enforcement' },
  { title: 'enforcement null', patch: { enforcement: null }, field: 'enforcement' },
  // thresholds: 0 < warning < critical < 100
  { title: 'warningThreshold 0', patch: { warningThreshold: 0 }, field: 'warningThreshold' },
  { title: 'warningThreshold negative', patch: { warningThreshold: -5 }, field: 'warningThreshold' },
  { title: 'warningThreshold 100', patch: { warningThreshold: 100 }, field: 'warningThreshold' },
  { title: 'warningThreshold a string', patch: { warningThreshold: '75' }, field: 'warningThreshold' },
  {
    title: 'warningThreshold equal to criticalThreshold',
    patch: { warningThreshold: 80, criticalThreshold: 80 },
    field: ['warningThreshold', 'criticalThreshold'],
  },
  {
    title: 'warningThreshold above criticalThreshold',
    patch: { warningThreshold: 85, criticalThreshold: 80 },
    field: ['warningThreshold', 'criticalThreshold'],
  },
  {
    title: 'warningThreshold above the default criticalThreshold (90)',
    patch: { warningThreshold: 95 },
    field: ['warningThreshold', 'criticalThreshold'],
  },
  { title: 'criticalThreshold 100', patch: { criticalThreshold: 100 }, field: 'criticalThreshold' },
  { title: 'criticalThreshold 150', patch: { criticalThreshold: 150 }, field: 'criticalThreshold' },
  { title: 'criticalThreshold 0', patch: { criticalThreshold: 0 }, field: 'criticalThreshold' },
  {
    title: 'criticalThreshold below the default warningThreshold (75)',
    patch: { criticalThreshold: 70 },
    field: ['warningThreshold', 'criticalThreshold'],
  },
  // alerts
  { title: 'alerts not an array', patch: { alerts: 'notify at 80' }, field: 'alerts' },
  { title: 'alerts an object', patch: { alerts: { threshold: 80, actions: ['notify'] } }, field: 'alerts' },
  { title: 'alerts with a null item', patch: { alerts: [null] }, field: ['alerts.0', 'alerts'] },
  { title: 'alerts with a number item', patch: { alerts: [42] }, field: ['alerts.0', 'alerts'] },
  { title: 'alerts with an array item', patch: { alerts: [[ALERT]] }, field: ['alerts.0', 'alerts'] },
  { title: 'alert threshold 0', patch: { alerts: [{ ...ALERT, threshold: 0 }] }, field: 'alerts.0.threshold' },
  { title: 'alert threshold negative', patch: { alerts: [{ ...ALERT, threshold: -10 }] }, field: 'alerts.0.threshold' },
  { title: 'alert threshold 1001', patch: { alerts: [ALERT, { ...ALERT, threshold: 1001 }] }, field: 'alerts.1.threshold' },
  { title: 'alert threshold a string', patch: { alerts: [{ ...ALERT, threshold: '80' }] }, field: 'alerts.0.threshold' },
  { title: 'alert threshold missing', patch: { alerts: [{ actions: ['notify'] }] }, field: 'alerts.0.threshold' },
  { title: 'alert type invalid', patch: { alerts: [{ ...ALERT, type: 'predicted' }] }, field: 'alerts.0.type' },
  { title: 'alert action invalid', patch: { alerts: [{ ...ALERT, actions: ['notify', 'email'] }] }, field: 'alerts.0.actions' },
  { title: 'alert actions not an array', patch: { alerts: [{ ...ALERT, actions: 'notify' }] }, field: 'alerts.0.actions' },
  { title: 'alert actions missing', patch: { alerts: [{ threshold: 80 }] }, field: 'alerts.0.actions' },
  { title: 'alert actions repeated', patch: { alerts: [{ ...ALERT, actions: ['notify', 'notify'] }] }, field: 'alerts.0.actions' },
  {
    title: 'alert notificationChannels not an array',
    patch: { alerts: [{ ...ALERT, notificationChannels: 'email' }] },
    field: 'alerts.0.notificationChannels',
  },
  {
    title: 'alert notificationChannels with a non-string',
    patch: { alerts: [{ ...ALERT, notificationChannels: ['email', 7] }] },
    field: 'alerts.0.notificationChannels',
  },
  {
    title: 'alert notificationChannels with a NUL character',
    patch: { alerts: [{ ...ALERT, notificationChannels: ['email\u0000'] }] },
    field: 'alerts.0.notificationChannels',
  },
  { title: 'alert id empty', patch: { alerts: [{ ...ALERT, id: '' }] }, field: 'alerts.0.id' },
  {
    title: 'alert ids duplicated',
    patch: { alerts: [{ ...ALERT, id: 'eighty' }, { ...ALERT, threshold: 90, id: 'eighty' }] },
    field: 'alerts.1.id',
  },
  { title: 'alert with an unknown field', patch: { alerts: [{ ...ALERT, channel: 'email' }] }, field: 'alerts.0.channel' },
  // modelPolicy: { restrictedModels: string[], downgrades: { [model]: model } }
  { title: 'modelPolicy a string', patch: { modelPolicy: 'gpt-4' }, field: 'modelPolicy' },
  { title: 'modelPolicy a number', patch: { modelPolicy: 42 }, field: 'modelPolicy' },
  { title: 'modelPolicy an array', patch: { modelPolicy: [] }, field: 'modelPolicy' },
  {
    title: 'modelPolicy.restrictedModels not an array',
    patch: { modelPolicy: { restrictedModels: 'gpt-4' } },
    field: 'modelPolicy.restrictedModels',
  },
  {
    title: 'modelPolicy.restrictedModels with a non-string',
    patch: { modelPolicy: { restrictedModels: ['gpt-4', 4] } },
    field: 'modelPolicy.restrictedModels',
  },
  {
    title: 'modelPolicy.downgrades to a non-string',
    patch: { modelPolicy: { downgrades: { 'gpt-4': 4 } } },
    field: 'modelPolicy.downgrades',
  },
  { title: 'modelPolicy.downgrades an array', patch: { modelPolicy: { downgrades: ['gpt-4o-mini'] } }, field: 'modelPolicy.downgrades' },
  { title: 'modelPolicy.downgrades a string', patch: { modelPolicy: { downgrades: 'gpt-4o-mini' } }, field: 'modelPolicy.downgrades' },
  {
    title: 'modelPolicy.restrictedModels with a NUL character',
    patch: { modelPolicy: { restrictedModels: ['gpt\u00004'] } },
    field: 'modelPolicy.restrictedModels',
  },
  { title: 'modelPolicy with an unknown field', patch: { modelPolicy: { allowedModels: ['x'] } }, field: 'modelPolicy.allowedModels' },
  // metadata: JSON object ≤ 16 KiB
  { title: 'metadata over 16 KiB', patch: { metadata: { blob: 'm'.repeat(16 * 1024) } }, field: 'metadata' },
  { title: 'metadata an array', patch: { metadata: [{ a: 1 }] }, field: 'metadata' },
  { title: 'metadata a string', patch: { metadata: 'team=ai' }, field: 'metadata' },
  { title: 'metadata a number', patch: { metadata: 7 }, field: 'metadata' },
  { title: 'metadata with a NUL character in a value', patch: { metadata: { note: 'a\u0000b' } }, field: 'metadata' },
  { title: 'metadata with a NUL character in a key', patch: { metadata: { 'k\u0000': 1 } }, field: 'metadata' },
  // unknown fields
  { title: 'unknown top-level field', patch: { owner: 'alice' }, field: 'owner' },
  { title: 'server-kept field id sent', patch: { id: '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b' }, field: 'id' },
  { title: 'server-kept field version sent', patch: { version: 7 }, field: 'version' },
  { title: 'server-kept field createdBy sent', patch: { createdBy: 'mallory' }, field: 'createdBy' },
];

function fieldsOf(res: TestResponse): string[] {
  return Array.isArray(res.body?.errors) ? res.body.errors.map((e: { field: string }) => e.field) : [];
}

function expectFieldError(res: TestResponse, bad: BadCase) {
  const status = bad.status ?? 400;
  const accepted = Array.isArray(bad.field) ? bad.field : [bad.field];
  if (status === 400) {
    expect(res.body.errors).toEqual(expect.any(Array));
    for (const error of res.body.errors) {
      expect(error).toEqual({ field: expect.any(String), message: expect.any(String) });
    }
    expect(fieldsOf(res).some((f) => accepted.includes(f))).toBe(true);
  } else {
    // A business rule (422): the answer names the field, or the rule in terms of the parent.
    const named = fieldsOf(res).some((f) => accepted.includes(f)) || /parent/i.test(res.body.detail);
    expect(named).toBe(true);
  }
}

describe('Budget validation (SPEC §2 Budget table)', () => {
  let t: TestApp;

  const count = async () => Number((await t.sql('SELECT count(*)::int AS n FROM budget_definitions'))[0].n);
  const snapshot = async (id: string) =>
    (await t.sql('SELECT to_jsonb(b) AS row FROM budget_definitions b WHERE id = $1', [id]))[0].row;

  const resolve = (bad: BadCase): Body => (bad.patch.parentId === 'DELETED' ? { ...bad.patch, parentId: PARENT_IDS.deleted } : bad.patch);

  beforeAll(async () => {
    t = await createTestApp();
    const parent = await t.request('POST', BUDGETS, { ...VALID, name: 'Deleted parent', amount: 1000 });
    expect(parent.status).toBe(201);
    expect((await t.request('DELETE', `${BUDGETS}/${parent.body.id}`)).status).toBe(204);
    PARENT_IDS.deleted = parent.body.id;
  });

  afterAll(async () => {
    await t.close();
  });

  it('the valid body used as the base is accepted', async () => {
    const res = await t.request('POST', BUDGETS, VALID);
    expect(res.status).toBe(201);
  });

  describe('POST /budgets refuses each bad value and stores nothing', () => {
    it.each(CASES.map((c) => [c.title, c] as const))('%s', async (_title, bad) => {
      const before = await count();
      const res = await t.request('POST', BUDGETS, build(resolve(bad)));
      expectProblem(res, bad.status ?? 400, BUDGETS);
      expectFieldError(res, bad);
      expect(await count()).toBe(before);
    });
  });

  describe('PUT /budgets/:id refuses each bad value and leaves the budget unchanged', () => {
    /** A budget of its own for each test, so one accepted bad update cannot spoil the next test. */
    const fresh = async (patch: Body = {}) => {
      const res = await t.request('POST', BUDGETS, { ...VALID, name: 'Target of bad updates', ...patch });
      expect(res.status).toBe(201);
      return { id: res.body.id as string, stored: await snapshot(res.body.id) };
    };

    const updatable = CASES.filter((c) => !c.createOnly);

    it.each(updatable.map((c) => [c.title, c] as const))('%s', async (_title, bad) => {
      const { id, stored } = await fresh();
      const res = await t.request('PUT', `${BUDGETS}/${id}`, resolve(bad));
      expectProblem(res, bad.status ?? 400, `${BUDGETS}/${id}`);
      expectFieldError(res, bad);
      expect(await snapshot(id)).toEqual(stored);
    });

    it.each(['name', 'scopeType', 'scopeId', 'amount', 'currency', 'period', 'startDate', 'recurring', 'alerts'])(
      'PUT with %s: null → 400 naming it, version unchanged',
      async (field) => {
        const { id, stored } = await fresh();
        const res = await t.request('PUT', `${BUDGETS}/${id}`, { [field]: null });
        expectProblem(res, 400, `${BUDGETS}/${id}`);
        expect(fieldsOf(res)).toContain(field);
        expect(await snapshot(id)).toEqual(stored);
        const get = await t.request('GET', `${BUDGETS}/${id}`);
        expect(get.body.version).toBe(1);
        expect(get.headers.etag).toBe('"1"');
      },
    );

    it('PUT customPeriodDays alone on a monthly budget → 400 naming it', async () => {
      const { id, stored } = await fresh();
      const res = await t.request('PUT', `${BUDGETS}/${id}`, { customPeriodDays: 10 });
      expectProblem(res, 400, `${BUDGETS}/${id}`);
      expect(fieldsOf(res)).toContain('customPeriodDays');
      expect(await snapshot(id)).toEqual(stored);
    });

    it('PUT endDate before the stored startDate → 400 naming endDate', async () => {
      const { id, stored } = await fresh();
      const res = await t.request('PUT', `${BUDGETS}/${id}`, { endDate: '2024-06-01T00:00:00Z' });
      expectProblem(res, 400, `${BUDGETS}/${id}`);
      expect(fieldsOf(res)).toContain('endDate');
      expect(await snapshot(id)).toEqual(stored);
    });

    it('PUT startDate after the stored endDate → 400 naming a date field', async () => {
      const { id, stored } = await fresh({ endDate: '2025-06-01T00:00:00Z' });
      const res = await t.request('PUT', `${BUDGETS}/${id}`, { startDate: '2025-07-01T00:00:00Z' });
      expectProblem(res, 400, `${BUDGETS}/${id}`);
      expect(fieldsOf(res).some((f) => f === 'startDate' || f === 'endDate')).toBe(true);
      expect(await snapshot(id)).toEqual(stored);
    });

    it('PUT warningThreshold above the stored criticalThreshold → 400 naming a threshold', async () => {
      const { id, stored } = await fresh();
      const res = await t.request('PUT', `${BUDGETS}/${id}`, { warningThreshold: 92 });
      expectProblem(res, 400, `${BUDGETS}/${id}`);
      expect(fieldsOf(res).some((f) => f === 'warningThreshold' || f === 'criticalThreshold')).toBe(true);
      expect(await snapshot(id)).toEqual(stored);
    });

    it('PUT with several bad fields lists every one and changes nothing', async () => {
      const { id, stored } = await fresh();
      const res = await t.request('PUT', `${BUDGETS}/${id}`, { name: '', amount: -1, currency: 'eur', bogus: true });
      expectProblem(res, 400, `${BUDGETS}/${id}`);
      expect(fieldsOf(res)).toEqual(expect.arrayContaining(['name', 'amount', 'currency', 'bogus']));
      expect(await snapshot(id)).toEqual(stored);
    });
  });

  it('a body with several bad fields lists every one of them', async () => {
    const before = await count();
    const res = await t.request('POST', BUDGETS, {
      name: ' ',
      scopeType: 'galaxy',
      scopeId: 'has space',
      amount: 0,
      currency: 'usd',
      period: 'hourly',
      startDate: 'tomorrow',
      timezone: 'Nowhere/City',
      enforcement: 'maybe',
      warningThreshold: 0,
      criticalThreshold: 100,
      alerts: [{ threshold: 0, type: 'guess', actions: ['shout'], extra: 1 }],
      metadata: [],
      surprise: 1,
    });
    expectProblem(res, 400, BUDGETS);
    expect(fieldsOf(res)).toEqual(
      expect.arrayContaining([
        'name', 'scopeType', 'scopeId', 'amount', 'currency', 'period', 'startDate', 'timezone', 'enforcement',
        'warningThreshold', 'criticalThreshold', 'alerts.0.threshold', 'alerts.0.type', 'alerts.0.actions',
        'alerts.0.extra', 'metadata', 'surprise',
      ]),
    );
    expect(res.body.detail).toEqual(expect.any(String));
    expect(await count()).toBe(before);
  });

  describe('no input makes a 500: either refused naming the field, or stored intact', () => {
    const nested = (levels: number) => {
      let json = '1';
      for (let i = 0; i < levels; i++) json = `{"a":${json}}`;
      return json;
    };
    const raw = (extra: string) => JSON.stringify(VALID).replace(/}$/, `,${extra}}`);

    it.each([
      ['metadata nested 3000 levels deep (under 16 KiB)', raw(`"metadata":${nested(3000)}`), 'metadata'],
      ['an unknown field nested 20000 levels deep', raw(`"extra":${nested(20000)}`), 'extra'],
      ['alerts nested 50000 arrays deep', raw(`"alerts":${'['.repeat(50000)}${']'.repeat(50000)}`), 'alerts'],
      ['name of 150 emoji with variation selectors (300 code points)', JSON.stringify({ ...VALID, name: '\u263A\uFE0F'.repeat(150) }), 'name'],
      [
        'description of 1500 emoji with variation selectors (3000 code points)',
        JSON.stringify({ ...VALID, description: '\u263A\uFE0F'.repeat(1500) }),
        'description',
      ],
    ])('%s', async (_title, payload, field) => {
      const before = await count();
      const res = await t.request('POST', BUDGETS, payload, { 'content-type': 'application/json' });
      expect(res.status).toBeLessThan(500);
      if (res.status === 201) {
        expect(await count()).toBe(before + 1);
      } else {
        expectProblem(res, 400, BUDGETS);
        expect(fieldsOf(res).some((f) => f === field || f.startsWith(`${field}.`))).toBe(true);
        expect(await count()).toBe(before);
      }
    });
  });

  describe('valid edge values are accepted', () => {
    it.each([
      ['decimal string with 10 fractional digits', { amount: '1234.5678901234' }, { amount: 1234.5678901234 }],
      ['exactly 1e13 as a number', { amount: 10000000000000 }, { amount: 10000000000000 }],
      ['exactly 1e13 as a string', { amount: '10000000000000' }, { amount: 10000000000000 }],
      ['the smallest amount', { amount: '0.0000000001' }, { amount: 0.0000000001 }],
      ['name of 200 characters', { name: 'n'.repeat(200) }, { name: 'n'.repeat(200) }],
      ['name trimmed', { name: '  Padded name  ' }, { name: 'Padded name' }],
      ['description of 2000 characters', { description: 'd'.repeat(2000) }, { description: 'd'.repeat(2000) }],
      ['scopeId of 200 allowed characters', { scopeId: `a.b_c:d@e-${'z'.repeat(190)}` }, { scopeId: `a.b_c:d@e-${'z'.repeat(190)}` }],
      ['customPeriodDays 1', { period: 'custom', customPeriodDays: 1 }, { customPeriodDays: 1 }],
      ['customPeriodDays 3660', { period: 'custom', customPeriodDays: 3660 }, { customPeriodDays: 3660 }],
      ['startDate with an offset', { startDate: '2025-01-01T09:00:00+09:00' }, { startDate: '2025-01-01T00:00:00.000Z' }],
      ['thresholds at their limits', { warningThreshold: 0.01, criticalThreshold: 99.99 }, { warningThreshold: 0.01, criticalThreshold: 99.99 }],
      ['alert threshold 1000', { alerts: [{ threshold: 1000, actions: ['block-all'] }] }, {}],
      ['metadata of almost 16 KiB', { metadata: { blob: 'm'.repeat(16 * 1024 - 20) } }, {}],
    ])('%s', async (_title, patch, expected) => {
      const res = await t.request('POST', BUDGETS, { ...VALID, ...patch });
      expect(res.status).toBe(201);
      expect(res.body).toEqual(expect.objectContaining(expected));
    });

    it('a decimal-string amount is stored and returned exactly', async () => {
      const res = await t.request('POST', BUDGETS, { ...VALID, amount: '1234.5678901234' });
      expect(res.status).toBe(201);
      expect(res.body.amount).toBe(1234.5678901234);
      const [row] = await t.sql('SELECT trim_scale(amount)::text AS amount FROM budget_definitions WHERE id = $1', [res.body.id]);
      expect(row.amount).toBe('1234.5678901234');
      const get = await t.request('GET', `${BUDGETS}/${res.body.id}`);
      expect(get.body.amount).toBe(1234.5678901234);
    });
  });
});
