import { Clock } from '../src/common/clock';
import { LedgerMaintenanceService, PARTITION_MONTHS_AHEAD } from '../src/usage/ledger-maintenance.service';
import { budgetMaker } from './setup/budgets';
import { expectCacheMatchesLedger } from './setup/ledger-checks';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * SPEC §17, issue 19: the ledger partitioned by month (migration 1764310000000). Idempotency is
 * global per budget across partitions (budget_usage_keys); a usage of a month without a partition
 * lands in the default partition and moves out when its month is created; retention drops whole
 * months while 32 clients write, never a month a budget's open window reaches into, and keeps
 * the keys of dropped rows for the replay horizon.
 */

const API = '/api/v1';

/** The first instant of the UTC month `offset` months from the current one. */
function monthStart(offset: number, from = new Date()): Date {
  return new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + offset, 1));
}

/** The middle of that month (the 15th, noon UTC). */
const midMonth = (offset: number) => new Date(monthStart(offset).getTime() + 14 * 86_400_000 + 12 * 3_600_000);

/** `budget_usage_records_p202611` for the month `offset` months from now. */
const partitionOf = (table: string, offset: number) => {
  const start = monthStart(offset);
  return `${table}_p${start.getUTCFullYear()}${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
};

async function partitions(t: TestApp, table: string): Promise<string[]> {
  const rows = await t.sql(`SELECT relid::text AS name FROM pg_partition_tree($1::regclass) WHERE isleaf ORDER BY 1`, [table]);
  return rows.map((row) => row.name);
}

async function whereIs(t: TestApp, usageId: string): Promise<string> {
  const [row] = await t.sql(`SELECT tableoid::regclass::text AS part FROM budget_usage_records WHERE id = $1`, [usageId]);
  return row?.part;
}

describe('Partitioned ledger: keys, the default partition, new months', () => {
  let t: TestApp;
  let maintenance: LedgerMaintenanceService;
  const createBudget = budgetMaker(() => t, 'Partitions');
  const record = (budgetId: string, body: Record<string, unknown>, key?: string) =>
    t.request('POST', `${API}/budgets/${budgetId}/usage`, { currency: 'USD', ...body }, key ? { 'Idempotency-Key': key } : {});

  beforeAll(async () => {
    t = await createTestApp();
    maintenance = t.app.get(LedgerMaintenanceService);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('the ledger and its attributions are partitioned by month, with a default partition and the months ahead', async () => {
    const [shape] = await t.sql(`
      SELECT pg_get_partkeydef('budget_usage_records'::regclass) AS ledger,
             pg_get_partkeydef('budget_usage_attributions'::regclass) AS attributions,
             (SELECT array_agg(tgname::text) FROM pg_trigger WHERE tgrelid = 'budget_usage_records'::regclass AND NOT tgisinternal) AS triggers`);
    expect(shape).toEqual({ ledger: 'RANGE (occurred_at)', attributions: 'RANGE (occurred_at)', triggers: ['budget_usage_records_rollup'] });
    for (const table of ['budget_usage_records', 'budget_usage_attributions']) {
      const found = await partitions(t, table);
      expect(found).toContain(`${table}_default`);
      for (let month = 0; month <= PARTITION_MONTHS_AHEAD; month += 1) expect(found).toContain(partitionOf(table, month));
    }
  });

  it('a usage of a month without a partition is stored in the default partition, then moved when the month is created', async () => {
    const org = await createBudget({ scopeType: 'organization', scopeId: 'part-org', amount: 1000, startDate: monthStart(-12).toISOString() });
    const project = await createBudget({ scopeType: 'project', scopeId: 'part-project', amount: 1000, startDate: monthStart(-12).toISOString() });
    const old = midMonth(-7);
    const single = await record(org.id, { amount: 5, occurredAt: old.toISOString() }, 'part-old-1');
    expect(single.status).toBe(201);
    // An integration usage matching two trees: its attribution row goes to that month too.
    const integration = await t.request('POST', `${API}/integration/usage`, {
      requestId: 'part-old-integration', organizationId: 'part-org', projectId: 'part-project', amount: 2, currency: 'USD',
      occurredAt: old.toISOString(),
    });
    expect(integration.status).toBe(201);
    expect(await whereIs(t, single.body.id)).toBe('budget_usage_records_default');
    const [attribution] = await t.sql(`SELECT tableoid::regclass::text AS part FROM budget_usage_attributions WHERE usage_id = $1`, [
      integration.body.records[0].id,
    ]);
    expect(attribution.part).toBe('budget_usage_attributions_default');
    // PostgreSQL itself refuses a partition whose range the default partition holds rows of.
    const start = monthStart(-7).toISOString();
    const end = monthStart(-6).toISOString();
    await expect(
      t.sql(`CREATE TABLE refused_partition PARTITION OF budget_usage_records FOR VALUES FROM ('${start}') TO ('${end}')`),
    ).rejects.toThrow(/would be violated by some row/);

    const totalsBefore = await t.sql(`SELECT count(*)::int AS n, sum(amount)::text AS total FROM budget_usage_records`);
    const outcome = await maintenance.maintain();
    expect(outcome.created).toEqual(
      expect.arrayContaining([partitionOf('budget_usage_records', -7), partitionOf('budget_usage_attributions', -7)]),
    );
    expect(await whereIs(t, single.body.id)).toBe(partitionOf('budget_usage_records', -7));
    const [moved] = await t.sql(`SELECT tableoid::regclass::text AS part FROM budget_usage_attributions WHERE usage_id = $1`, [
      integration.body.records[0].id,
    ]);
    expect(moved.part).toBe(partitionOf('budget_usage_attributions', -7));
    const [defaults] = await t.sql(`
      SELECT (SELECT count(*) FROM budget_usage_records_default)::int AS ledger,
             (SELECT count(*) FROM budget_usage_attributions_default)::int AS attributions`);
    expect(defaults).toEqual({ ledger: 0, attributions: 0 });
    expect(await t.sql(`SELECT count(*)::int AS n, sum(amount)::text AS total FROM budget_usage_records`)).toEqual(totalsBefore);
    // Moving rows counts nothing again, and the key still finds its row.
    await expectCacheMatchesLedger(t, [org.id, project.id]);
    const replay = await record(org.id, { amount: 5, occurredAt: old.toISOString() }, 'part-old-1');
    expect(replay.status).toBe(200);
    expect(replay.body.id).toBe(single.body.id);
    // A second run finds every month there.
    expect((await maintenance.maintain()).created).toEqual([]);
  });

  it('idempotency is global per budget across partitions: same key in another month → 409, same request → replay', async () => {
    const budget = await createBudget({ amount: 1000, startDate: monthStart(-12).toISOString() });
    const first = await record(budget.id, { amount: 3, occurredAt: midMonth(0).toISOString() }, 'across-1');
    expect(first.status).toBe(201);
    expect(await whereIs(t, first.body.id)).toBe(partitionOf('budget_usage_records', 0));
    // The same key for a usage in another month (another partition): a different request.
    const elsewhere = await record(budget.id, { amount: 3, occurredAt: midMonth(-2).toISOString() }, 'across-1');
    expectProblem(elsewhere, 409);
    expect(elsewhere.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const again = await record(budget.id, { amount: 3, occurredAt: midMonth(0).toISOString() }, 'across-1');
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    // A key first used for an earlier month, then in a batch.
    const earlier = await record(budget.id, { amount: 4, occurredAt: midMonth(-1).toISOString() }, 'across-2');
    expect(earlier.status).toBe(201);
    const batch = await t.request('POST', `${API}/budgets/${budget.id}/usage/batch`, {
      records: [
        { amount: 4, currency: 'USD', occurredAt: midMonth(-1).toISOString(), idempotencyKey: 'across-2' },
        { amount: 4, currency: 'USD', occurredAt: midMonth(0).toISOString(), idempotencyKey: 'across-2' },
        { amount: 6, currency: 'USD', occurredAt: midMonth(0).toISOString(), idempotencyKey: 'across-3' },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: any) => [r.status, r.replayed, r.record?.id ?? r.error?.code])).toEqual([
      [200, true, earlier.body.id],
      [409, false, 'IDEMPOTENCY_KEY_REUSED'],
      [201, false, expect.any(String)],
    ]);
    const keys = await t.sql(`SELECT idempotency_key, usage_id FROM budget_usage_keys WHERE budget_id = $1 ORDER BY 1`, [budget.id]);
    expect(keys).toEqual([
      { idempotency_key: 'across-1', usage_id: first.body.id },
      { idempotency_key: 'across-2', usage_id: earlier.body.id },
      { idempotency_key: 'across-3', usage_id: batch.body.results[2].record.id },
    ]);
    await expectCacheMatchesLedger(t, [budget.id]);
  });

  it('a retry without occurredAt a month later replays the row in the earlier month\'s partition', async () => {
    const budget = await createBudget({ amount: 1000, startDate: monthStart(-12).toISOString() });
    const clock = t.app.get(Clock);
    const realNow = clock.now.bind(clock);
    try {
      clock.now = () => midMonth(-1);
      const first = await record(budget.id, { amount: 2 }, 'retry-next-month');
      expect(first.status).toBe(201);
      clock.now = () => midMonth(0);
      const retry = await record(budget.id, { amount: 2 }, 'retry-next-month');
      expect(retry.status).toBe(200);
      expect(retry.body.id).toBe(first.body.id);
      expect(retry.body.occurredAt).toBe(midMonth(-1).toISOString());
    } finally {
      clock.now = realNow;
    }
  });

  it('concurrent requests with one key across months record one row', async () => {
    const budget = await createBudget({ amount: 1000, startDate: monthStart(-12).toISOString() });
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => record(budget.id, { amount: 1, occurredAt: midMonth(-1).toISOString() }, 'race-1')),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.every((a) => [200, 201].includes(a.status) && a.body.id === answers[0].body.id)).toBe(true);
    const [row] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1`, [budget.id]);
    expect(row.n).toBe(1);
  });
});

describe('Retention (USAGE_RETENTION_MONTHS = 2) while 32 clients write', () => {
  let t: TestApp;
  let maintenance: LedgerMaintenanceService;
  const createBudget = budgetMaker(() => t, 'Retention');
  const ids: Record<'monthly' | 'annual' | 'team' | 'spare', string> = {} as never;
  /** Keys of the usage recorded in the months retention drops (-9 … -6). */
  const expiredKeys: { budgetId: string; key: string; occurredAt: string }[] = [];

  beforeAll(async () => {
    t = await createTestApp({ config: { usageRetentionMonths: 2 } });
    maintenance = t.app.get(LedgerMaintenanceService);
    ids.monthly = (await createBudget({ scopeType: 'organization', scopeId: 'ret-org', amount: 1_000_000, startDate: monthStart(-10).toISOString(),
      alerts: [{ threshold: 50, actions: ['notify'], notificationChannels: ['email'] }] })).id;
    // An annual window opened 5 months ago keeps months -5 … 0 whatever the retention says.
    ids.annual = (await createBudget({ scopeType: 'project', scopeId: 'ret-annual', amount: 1_000_000, period: 'annual',
      startDate: monthStart(-5).toISOString() })).id;
    ids.team = (await createBudget({ scopeId: 'ret-team', parentId: ids.monthly, amount: 1_000_000, startDate: monthStart(-10).toISOString() })).id;
    ids.spare = (await createBudget({ scopeId: 'ret-spare', amount: 1_000_000, startDate: monthStart(-10).toISOString() })).id;
    for (let month = -9; month <= 0; month += 1) {
      for (const budgetId of [ids.monthly, ids.team, ...(month >= -5 ? [ids.annual] : [])]) {
        const key = `ret-${budgetId.slice(0, 8)}-${month}`;
        const occurredAt = midMonth(month).toISOString();
        const res = await t.request('POST', `${API}/budgets/${budgetId}/usage`, { amount: 10, currency: 'USD', occurredAt }, { 'Idempotency-Key': key });
        expect(res.status).toBe(201);
        if (month <= -6) expiredKeys.push({ budgetId, key, occurredAt });
      }
    }
    // The months of those rows get their partitions (as the service's start-up run would).
    await t.sql(`SELECT budget_usage_partitions_ensure(now(), 3)`);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it('drops the expired months with 0 errors and 0 lost acknowledged writes; open windows and status unaffected', async () => {
    const statusBefore = await t.sql(`SELECT budget_id, current_amount::text, usage_count::text FROM budget_status_cache WHERE budget_id = ANY ($1::uuid[]) ORDER BY 1`, [
      Object.values(ids),
    ]);
    const alertsBefore = await t.sql(`SELECT id FROM budget_alert_history ORDER BY id`);
    const writeTargets = Object.values(ids);
    const acknowledged: { id: string; budgetId: string; amount: number }[] = [];
    const failures: string[] = [];
    const latencies: { started: number; ended: number }[] = [];
    let writing = true;
    let n = 0;
    const writer = async (client: number) => {
      while (writing) {
        n += 1;
        const budgetId = writeTargets[(client + n) % writeTargets.length];
        const amount = (n % 7) + 1;
        const started = performance.now();
        const res = await t.request('POST', `${API}/budgets/${budgetId}/usage`, { amount, currency: 'USD' }, { 'Idempotency-Key': `w-${client}-${n}` });
        latencies.push({ started, ended: performance.now() });
        if (res.status === 201) acknowledged.push({ id: res.body.id, budgetId, amount });
        else failures.push(`${res.status} ${JSON.stringify(res.body)}`);
      }
    };
    const writers = Array.from({ length: 32 }, (_, client) => writer(client));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const retentionStarted = performance.now();
    const outcome = await maintenance.maintain();
    const retentionEnded = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    writing = false;
    await Promise.all(writers);

    expect(failures).toEqual([]);
    const dropped = [-9, -8, -7, -6].map((month) => partitionOf('budget_usage_records', month));
    expect(outcome.dropped).toEqual(expect.arrayContaining(dropped));
    expect(outcome.dropped.filter((name) => name.startsWith('budget_usage_records_'))).toHaveLength(4);
    const left = await partitions(t, 'budget_usage_records');
    for (const name of dropped) expect(left).not.toContain(name);
    // The annual window opened at month -5: its months stay, though older than two months.
    for (let month = -5; month <= PARTITION_MONTHS_AHEAD; month += 1) expect(left).toContain(partitionOf('budget_usage_records', month));

    const stored = await t.sql(`SELECT id FROM budget_usage_records WHERE id = ANY ($1::uuid[])`, [acknowledged.map((a) => a.id)]);
    expect(stored.length).toBe(acknowledged.length);
    // Status is what it was plus exactly the acknowledged writes; the cache equals the ledger.
    const statusAfter = await t.sql(`SELECT budget_id, current_amount::text, usage_count::text FROM budget_status_cache WHERE budget_id = ANY ($1::uuid[]) ORDER BY 1`, [
      Object.values(ids),
    ]);
    const added = (budgetId: string) => {
      const own = [budgetId, ...(budgetId === ids.monthly ? [ids.team] : [])];
      const writes = acknowledged.filter((a) => own.includes(a.budgetId));
      return { amount: writes.reduce((sum, a) => sum + a.amount, 0), count: writes.length };
    };
    for (const before of statusBefore) {
      const after = statusAfter.find((row) => row.budget_id === before.budget_id);
      const { amount, count } = added(before.budget_id);
      expect({ id: before.budget_id, amount: Number(after.current_amount), count: Number(after.usage_count) }).toEqual({
        id: before.budget_id, amount: Number(before.current_amount) + amount, count: Number(before.usage_count) + count,
      });
    }
    await expectCacheMatchesLedger(t, Object.values(ids));
    const alertsAfter = await t.sql(`SELECT id FROM budget_alert_history ORDER BY id`);
    expect(alertsAfter).toEqual(expect.arrayContaining(alertsBefore));

    const during = latencies.filter((l) => l.ended >= retentionStarted && l.started <= retentionEnded);
    const outside = latencies.filter((l) => !during.includes(l));
    const longest = (list: typeof latencies) => Math.max(0, ...list.map((l) => l.ended - l.started));
    const median = (list: typeof latencies) => list.map((l) => l.ended - l.started).sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
    console.log(
      `retention with 32 writers: ${acknowledged.length} writes acknowledged, 0 failed; maintenance (drop included) took ` +
        `${(retentionEnded - retentionStarted).toFixed(0)} ms; writes overlapping it: ${during.length}, longest ` +
        `${longest(during).toFixed(0)} ms, median ${median(during).toFixed(0)} ms; other writes: longest ` +
        `${longest(outside).toFixed(0)} ms, median ${median(outside).toFixed(0)} ms`,
    );
  }, 60_000);

  it('a replay of a dropped row answers 409 USAGE_RECORD_EXPIRED while its key is within the replay horizon', async () => {
    const { budgetId, key, occurredAt } = expiredKeys[0];
    const res = await t.request('POST', `${API}/budgets/${budgetId}/usage`, { amount: 10, currency: 'USD', occurredAt }, { 'Idempotency-Key': key });
    expectProblem(res, 409);
    expect(res.body.code).toBe('USAGE_RECORD_EXPIRED');
    const batch = await t.request('POST', `${API}/budgets/${budgetId}/usage/batch`, {
      records: [{ amount: 10, currency: 'USD', occurredAt, idempotencyKey: key }],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.results[0]).toMatchObject({ status: 409, replayed: false, error: { code: 'USAGE_RECORD_EXPIRED' } });
    const [row] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE idempotency_key = $1`, [key]);
    expect(row.n).toBe(0);
  });

  it('keys of dropped rows go once they are older than the horizon; keys of kept rows stay', async () => {
    const keysOfKept = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_keys k
      WHERE EXISTS (SELECT 1 FROM budget_usage_records u WHERE u.id = k.usage_id AND u.occurred_at = k.occurred_at)`);
    expect((await maintenance.maintain()).keysPurged).toBe(0);
    await t.sql(`UPDATE budget_usage_keys SET recorded_at = now() - interval '1 year'`);
    const outcome = await maintenance.maintain();
    expect(outcome.keysPurged).toBe(expiredKeys.length);
    const [left] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_keys`);
    expect(left.n).toBe(keysOfKept[0].n);
  });

  it('gateway request ids of dropped rows: a replay answers 409 USAGE_RECORD_EXPIRED, then the id goes past the horizon; ids of kept rows stay', async () => {
    // An integration usage in a month retention drops (it waits in the default partition until the
    // next run creates that month, which the same run then drops), and one of this month.
    const old = { teamId: 'ret-team', amount: 5, currency: 'USD', requestId: 'ret-int-old', occurredAt: midMonth(-8).toISOString() };
    const kept = { teamId: 'ret-team', amount: 5, currency: 'USD', requestId: 'ret-int-kept' };
    for (const body of [old, kept]) expect((await t.request('POST', `${API}/integration/usage`, body)).status).toBe(201);
    const ids = async () =>
      (await t.sql(`SELECT request_id FROM budget_integration_requests WHERE request_id LIKE 'ret-int-%' ORDER BY 1`)).map(
        (row: { request_id: string }) => row.request_id,
      );

    const first = await maintenance.maintain();
    expect(first.integrationRequestsPurged).toBe(0); // its row is gone, but it was recorded just now
    const [gone] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id = 'ret-int-old'`);
    expect(gone.n).toBe(0);
    expect(await ids()).toEqual(['ret-int-kept', 'ret-int-old']);
    // Within the horizon its replay is refused, as on the budget route, and records nothing.
    const early = await t.request('POST', `${API}/integration/usage`, old);
    expectProblem(early, 409);
    expect(early.body.code).toBe('USAGE_RECORD_EXPIRED');
    expect(early.body.detail).toContain('ret-int-old');
    const [still] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id = 'ret-int-old'`);
    expect(still.n).toBe(0);

    await t.sql(`UPDATE budget_integration_requests SET recorded_at = now() - interval '1 year' WHERE request_id LIKE 'ret-int-%'`);
    expect((await maintenance.maintain()).integrationRequestsPurged).toBe(1);
    expect(await ids()).toEqual(['ret-int-kept']);
    // A kept id still replays; past the horizon a purged id is free again, as an idempotency key
    // is: a retry of a request that old records it anew.
    expect((await t.request('POST', `${API}/integration/usage`, kept)).status).toBe(200);
    expect((await t.request('POST', `${API}/integration/usage`, old)).status).toBe(201);
  });
});
