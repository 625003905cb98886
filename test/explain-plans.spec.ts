import { Client } from 'pg';
import { UsageRepository } from '../src/usage/usage.repository';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * The hot-path reads use the intended indexes on budget_usage_records (issue 7, acceptance 3).
 *
 * ~200,000 usage records over a small hierarchy and a few standalone budgets, plus 2,000 other
 * budgets, then VACUUM ANALYZE (as autovacuum would have done), then:
 * - the statements PostgreSQL really runs inside get_budget_status / budget_check_context
 *   (calculate_budget_status's window sum when the cache row is stale, and the fresh path), captured
 *   with auto_explain (log_nested_statements, sent to this session as LOG messages), under both
 *   custom and generic plans (plpgsql switches to a cached generic plan after five calls);
 * - the history statements of UsageRepository, captured from the repository itself (so this test
 *   follows the source) and explained with EXPLAIN (FORMAT JSON), custom and generic;
 * - the summary statement, captured the same way and run with auto_explain: it reads the roll-ups
 *   (budget_usage_sums), keyed on leaf and bucket range, and the ledger only for partial hours.
 *
 * Intended index: budget_usage_records_budget_time_idx (budget_id, occurred_at, id)
 * INCLUDE (amount, model_id, source, user_id), with budget_id in the index condition (not only
 * occurred_at: a range on occurred_at alone reads every budget's records of that period).
 */

type PlanNode = Record<string, any> & { Plans?: PlanNode[] };

const USAGE = 'budget_usage_records';
/** The summary reads sums from the roll-ups (by leaf and bucket range), the ledger only for partial hours. */
const ROLLUPS = 'budget_usage_rollups';
const INTENDED_INDEX = 'budget_usage_records_budget_time_idx';

/**
 * The ledger and its attributions are partitioned by month (SPEC §17): a plan scans partitions
 * through their own indexes. Each is named here by the table or index it is a partition of
 * (filled from pg_inherits once the data is loaded), so the rules below read the same. A scan of
 * a partition that holds no rows (the months ahead) is left out: the planner rightly reads an
 * empty table without an index, and it costs nothing.
 */
const partitionParents: Record<string, string> = {};
const emptyPartitions = new Set<string>();

function nodes(plan: PlanNode): PlanNode[] {
  const named = { ...plan };
  for (const field of ['Relation Name', 'Index Name']) {
    if (plan[field] in partitionParents) named[field] = partitionParents[plan[field]];
  }
  const children = (plan.Plans ?? []).flatMap(nodes);
  return emptyPartitions.has(plan['Relation Name']) ? children : [named, ...children];
}

function usageScans(plan: PlanNode): PlanNode[] {
  return nodes(plan).filter((node) => node['Relation Name'] === USAGE);
}

function describeScan(node: PlanNode): string {
  return `${node['Node Type']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''}` +
    `${node['Index Cond'] ? ` [${node['Index Cond']}]` : ''}${node.Filter ? ` filter ${node.Filter}` : ''}`;
}

/** The node that probes an index for a scan: itself, or the Bitmap Index Scan under a Bitmap Heap Scan. */
function probe(scan: PlanNode): PlanNode {
  if (scan['Node Type'] !== 'Bitmap Heap Scan') return scan;
  return (scan.Plans ?? []).find((child) => child['Parent Relationship'] === 'Outer') ?? scan;
}

/** The ledger rows an attribution row points to are fetched by primary key, one probe each. */
const LOOKUP_INDEX = 'budget_usage_records_pkey';

/**
 * Every scan of the usage records goes through the intended index, keyed on budget_id, except the
 * fetch of an attributed request by its id; and every scan of the attribution rows is keyed on
 * budget_id too (SPEC §12.2: a budget's requests stay an index range per budget).
 */
function expectIntendedIndex(plan: PlanNode, label: string): void {
  const attributions = nodes(plan).filter((node) => node['Relation Name'] === 'budget_usage_attributions');
  for (const scan of attributions) {
    expect({ label, plan: describeScan(scan), keyedOnBudget: /\bbudget_id\b/.test(String(scan['Index Cond'] ?? '')) }).toEqual({
      label, plan: describeScan(scan), keyedOnBudget: true,
    });
  }
  const lookups = usageScans(plan).filter((scan) => scan['Index Name'] === LOOKUP_INDEX);
  for (const scan of lookups) expect({ label, plan: describeScan(scan) }).toEqual({ label, plan: expect.stringMatching(/\[\(*(r\.)?id = /) });
  const scans = usageScans(plan).filter((scan) => scan['Index Name'] !== LOOKUP_INDEX);
  const report = `${label}: ${scans.map(describeScan).join('; ') || 'no scan of budget_usage_records'}`;
  expect(scans.length).toBeGreaterThan(0);
  for (const scan of scans.map(probe)) {
    expect({ report, type: scan['Node Type'] }).not.toEqual({ report, type: 'Seq Scan' });
    expect({ report, index: scan['Index Name'] }).toEqual({ report, index: INTENDED_INDEX });
    expect({ report, keyedOnBudget: /\bbudget_id\b/.test(String(scan['Index Cond'] ?? '')) }).toEqual({
      report,
      keyedOnBudget: true,
    });
  }
}

describe('EXPLAIN plans of the hot-path reads (budget_usage_records)', () => {
  let t: TestApp;
  let client: Client;
  let autoExplain = true;
  const ids: Record<'org' | 'team' | 'user' | 'big' | 'other', string> = {} as never;
  const start = new Date(Date.now() - 60 * 86_400_000);

  const literal = (value: unknown): string => {
    if (value === null || value === undefined) return 'NULL';
    if (typeof value === 'boolean' || typeof value === 'number') return String(value);
    return client.escapeLiteral(Array.isArray(value) ? `{${value.join(',')}}` : String(value));
  };

  /** The plans auto_explain logs for every statement (nested ones included) that `run` executes. */
  async function nestedPlans(run: () => Promise<unknown>): Promise<{ text: string; plan: PlanNode }[]> {
    const plans: { text: string; plan: PlanNode }[] = [];
    const onNotice = (notice: { message?: string }) => {
      const message = notice.message ?? '';
      const json = message.indexOf('{');
      if (!message.startsWith('duration:') || json < 0) return;
      const parsed = JSON.parse(message.slice(json));
      plans.push({ text: parsed['Query Text'], plan: parsed.Plan });
    };
    client.on('notice', onNotice);
    try {
      await client.query(`SET client_min_messages = log`);
      await run();
    } finally {
      await client.query(`SET client_min_messages = notice`);
      client.off('notice', onNotice);
    }
    return plans;
  }

  /** EXPLAIN (FORMAT JSON) of a parameterised statement, as a custom or a generic plan. */
  async function explain(sql: string, params: unknown[], mode: 'custom' | 'generic'): Promise<PlanNode> {
    const name = `explained_${Math.random().toString(36).slice(2)}`;
    await client.query(`PREPARE ${name} AS ${sql}`);
    try {
      await client.query(`SET plan_cache_mode = force_${mode}_plan`);
      const result = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE ${name}(${params.map(literal).join(', ')})`);
      return result.rows[0]['QUERY PLAN'][0].Plan;
    } finally {
      await client.query(`RESET plan_cache_mode`);
      await client.query(`DEALLOCATE ${name}`);
    }
  }

  /** The SQL and parameters a UsageRepository method sends (nothing is executed). */
  async function captured(call: (repository: UsageRepository) => Promise<unknown>): Promise<{ sql: string; params: unknown[] }> {
    let statement: { sql: string; params: unknown[] } | undefined;
    const dataSource = {
      query: async (sql: string, params: unknown[]) => {
        statement = { sql, params };
        return [];
      },
    };
    await call(new UsageRepository(dataSource as never));
    if (!statement) throw new Error('the repository sent no statement');
    return statement;
  }

  beforeAll(async () => {
    t = await createTestApp();
    const create = async (scopeType: string, scopeId: string, parentId?: string) => {
      const response = await t.request('POST', '/api/v1/budgets', {
        name: `explain ${scopeId}`,
        scopeType,
        scopeId,
        ...(parentId ? { parentId } : {}),
        amount: 1_000_000_000,
        currency: 'USD',
        period: 'monthly',
        startDate: start.toISOString(),
        alerts: [{ threshold: 80, actions: ['notify'], notificationChannels: ['email'] }],
      });
      expect(response.status).toBe(201);
      return response.body.id as string;
    };
    ids.org = await create('organization', 'explain-org');
    ids.team = await create('team', 'explain-team', ids.org);
    ids.user = await create('user', 'explain-user', ids.team);
    ids.big = await create('project', 'explain-big');
    ids.other = await create('project', 'explain-other');

    client = new Client({ connectionString: t.databaseUrl });
    await client.connect();
    // Other budgets, so that budget_definitions is not a one-page table.
    await client.query(`
      INSERT INTO budget_definitions (name, scope_type, scope_id, amount, currency, period, start_date, created_by)
      SELECT 'filler ' || g, 'project', 'filler-' || g, 1000, 'USD', 'monthly', $1::timestamptz, 'explain-plans'
      FROM generate_series(1, 2000) g`, [start.toISOString()]);
    // 200,000 records over the last 50 days (the current monthly window holds part of them).
    const load = (budgetId: string, rows: number) =>
      client.query(
        `INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, user_id, idempotency_key, occurred_at)
         SELECT $1::uuid, ((g % 997) + 1) / 10000.0, 'USD', (ARRAY['api', 'gateway', 'batch'])[g % 3 + 1],
                'model-' || (g % 7), 'user-' || (g % 50), 'seed-' || g,
                now() - interval '50 days' + g * (interval '50 days' / $2::int)
         FROM generate_series(1, $2::int) g`,
        [budgetId, rows],
      );
    await load(ids.big, 100_000);
    await load(ids.other, 40_000);
    await load(ids.user, 30_000);
    await load(ids.team, 20_000);
    // 20,000 integration records that matched two trees (SPEC §12.2): first 'other', then 'big' and
    // the user, so 'big' and the user's chain count them through attribution rows.
    await client.query(
      `INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, user_id, request_id, occurred_at,
                                         matched_budget_ids)
       SELECT $1::uuid, ((g % 997) + 1) / 10000.0, 'USD', 'relaycore', 'model-' || (g % 7), 'user-' || (g % 50),
              'attributed-' || g, now() - interval '50 days' + g * (interval '50 days' / 20000),
              CASE WHEN g % 2 = 0 THEN ARRAY[$1::uuid, $2::uuid] ELSE ARRAY[$1::uuid, $3::uuid] END
       FROM generate_series(1, 20000) g`,
      [ids.other, ids.big, ids.user],
    );
    // 40,000 more over the filler budgets, so that a budget's attribution rows are a small share
    // of a month's partition, as they are with many budgets (with two, a month's scan is half of it).
    await client.query(
      `INSERT INTO budget_usage_records (budget_id, amount, currency, source, request_id, occurred_at, matched_budget_ids)
       SELECT f.ids[g % 2000 + 1], 0.01, 'USD', 'relaycore', 'filler-attributed-' || g,
              now() - interval '50 days' + g * (interval '50 days' / 40000),
              ARRAY[f.ids[g % 2000 + 1], f.ids[(g + 1000) % 2000 + 1]]
       FROM generate_series(1, 40000) g,
            (SELECT array_agg(id ORDER BY id) AS ids FROM budget_definitions WHERE created_by = 'explain-plans') f`,
    );
    await load(ids.org, 10_000);
    await client.query(`VACUUM (ANALYZE) budget_usage_records`);
    await client.query(`VACUUM (ANALYZE) budget_usage_attributions`);
    await client.query(`ANALYZE budget_definitions`);
    await client.query(`ANALYZE budget_status_cache`);
    const inherited = await client.query(`
      SELECT c.relname AS child, p.relname AS parent
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname LIKE 'budget\\_usage\\_%'`);
    for (const row of inherited.rows) partitionParents[row.child] = row.parent;
    const empty = await client.query(`SELECT relname FROM pg_class WHERE relispartition AND relkind = 'r' AND reltuples = 0`);
    for (const row of empty.rows) emptyPartitions.add(row.relname);
    try {
      await client.query(`LOAD 'auto_explain'`);
      await client.query(`SET auto_explain.log_min_duration = 0`);
      await client.query(`SET auto_explain.log_nested_statements = on`);
      await client.query(`SET auto_explain.log_format = json`);
    } catch {
      autoExplain = false; // a server without the contrib module: those cases are skipped below
    }
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await t?.close();
  });

  it('loaded the records and the statistics', async () => {
    const [row] = (await client.query(`SELECT count(*)::int AS n FROM budget_usage_records`)).rows;
    expect(row.n).toBe(260_000);
  });

  describe.each(['custom', 'generic'] as const)('%s plans', (mode) => {
    beforeEach(async () => {
      await client.query(`SET plan_cache_mode = force_${mode}_plan`);
    });
    afterEach(async () => {
      await client.query(`RESET plan_cache_mode`);
    });

    it('status read with a stale cache row: calculate_budget_status sums each budget of the tree through the index', async () => {
      if (!autoExplain) return;
      // Stale rows (older than 5 minutes) make the read recompute them from the ledger.
      await client.query(`UPDATE budget_status_cache SET updated_at = now() - interval '1 hour' WHERE budget_id = ANY ($1::uuid[])`, [
        [ids.org, ids.big],
      ]);
      const plans = await nestedPlans(async () => {
        await client.query(`SELECT * FROM get_budget_status($1::uuid, now())`, [ids.org]);
        await client.query(`SELECT * FROM get_budget_status($1::uuid, now())`, [ids.big]);
      });
      const sums = plans.filter((p) => usageScans(p.plan).length > 0);
      expect(sums.length).toBeGreaterThanOrEqual(2);
      for (const sum of sums) expectIntendedIndex(sum.plan, `status window sum: ${sum.text.replace(/\s+/g, ' ').slice(0, 120)}`);
    });

    it('status read with a fresh cache row does not read the usage records at all', async () => {
      if (!autoExplain) return;
      await client.query(`SELECT * FROM get_budget_status($1::uuid, now())`, [ids.big]); // refreshes if stale
      const plans = await nestedPlans(() => client.query(`SELECT * FROM get_budget_status($1::uuid, now())`, [ids.big]));
      expect(plans.length).toBeGreaterThan(0);
      expect(plans.flatMap((p) => usageScans(p.plan)).map(describeScan)).toEqual([]);
    });

    it('check context (stale chain): every usage read inside budget_check_context uses the index', async () => {
      if (!autoExplain) return;
      await client.query(`UPDATE budget_status_cache SET updated_at = now() - interval '1 hour' WHERE budget_id = ANY ($1::uuid[])`, [
        [ids.org, ids.team, ids.user],
      ]);
      const plans = await nestedPlans(() =>
        client.query(`SELECT * FROM budget_check_context($1::uuid[], $2::text[], $3::text[], now())`, [[ids.user], [], []]),
      );
      const sums = plans.filter((p) => usageScans(p.plan).length > 0);
      expect(sums.length).toBeGreaterThanOrEqual(3); // the user, the team and the org were stale
      for (const sum of sums) expectIntendedIndex(sum.plan, `check context: ${sum.text.replace(/\s+/g, ' ').slice(0, 120)}`);
    });

    const freshCheckPlans = async () => {
      await client.query(`SELECT * FROM budget_check_context($1::uuid[], $2::text[], $3::text[], now())`, [[ids.user], [], []]);
      return nestedPlans(() =>
        client.query(`SELECT * FROM budget_check_context($1::uuid[], $2::text[], $3::text[], now())`, [
          [],
          ['organization', 'team', 'user'],
          ['explain-org', 'explain-team', 'explain-user'],
        ]),
      );
    };

    it('check context (fresh cache): no read of the usage records', async () => {
      if (!autoExplain) return;
      const plans = await freshCheckPlans();
      expect(plans.length).toBeGreaterThan(0);
      expect(plans.flatMap((p) => usageScans(p.plan)).map(describeScan)).toEqual([]);
    });

    it('check context (fresh cache): budgets found by key, no Seq Scan of budget_definitions', async () => {
      if (!autoExplain) throw new Error('auto_explain unavailable');
      const plans = await freshCheckPlans();
      const definitionScans = plans.flatMap((p) =>
        nodes(p.plan)
          .filter((node) => node['Relation Name'] === 'budget_definitions' && node['Node Type'] === 'Seq Scan')
          .map((node) => `${p.text.replace(/\s+/g, ' ').slice(0, 160)} → ${describeScan(node)}`),
      );
      expect(definitionScans).toEqual([]);
    });

    const summaryStatements = async () => [
      {
        label: 'summary (big, explicit range)',
        ...(await captured((repository) =>
          repository.summary(ids.big, new Date(Date.now() - 40 * 86_400_000).toISOString(), new Date().toISOString(), new Date()),
        )),
      },
      { label: 'summary (org tree, default window)', ...(await captured((repository) => repository.summary(ids.org, undefined, undefined, new Date()))) },
    ];

    it('usage summary (one budget, and a parent with descendants): roll-ups by leaf and bucket range, no Seq Scan', async () => {
      if (!autoExplain) return;
      for (const { label, sql, params } of await summaryStatements()) {
        const plans = await nestedPlans(() => client.query(sql, params));
        const rollups = plans.flatMap((p) => nodes(p.plan).filter((node) => node['Relation Name'] === ROLLUPS));
        expect({ label, rollupScans: rollups.length > 0 }).toEqual({ label, rollupScans: true });
        // A Bitmap Heap Scan's key is on the Bitmap Index Scan under it, as for the ledger's scans.
        for (const scan of rollups.map(probe)) {
          const cond = String(scan['Index Cond'] ?? '');
          expect({ label, plan: describeScan(scan), keyed: /\bleaf_id\b/.test(cond) && /\bbucket\b/.test(cond) }).toEqual({
            label, plan: describeScan(scan), keyed: true,
          });
        }
      }
    });

    it('usage summary: its ledger reads (the partial hours at the range edges) are index ranges keyed on budget_id', async () => {
      if (!autoExplain) return;
      const [explicit] = await summaryStatements();
      const plans = await nestedPlans(() => client.query(explicit.sql, explicit.params));
      const reads = plans.filter((p) => usageScans(p.plan).length > 0);
      expect(reads.length).toBeGreaterThan(0);
      for (const read of reads) expectIntendedIndex(read.plan, `${explicit.label}: ${read.text.replace(/\s+/g, ' ').slice(0, 120)}`);
    });

    it('usage history, first page, newest first: the index scanned backwards, no sort of the whole ledger', async () => {
      const { sql, params } = await captured((repository) =>
        repository.history({ budgetId: ids.big, includeDescendants: false, limit: 50 }),
      );
      const plan = await explain(sql, params, mode);
      expectIntendedIndex(plan, 'history (big, first page)');
    });

    it('usage history, next page of a parent with descendants', async () => {
      const { sql, params } = await captured((repository) =>
        repository.history({
          budgetId: ids.org,
          includeDescendants: true,
          before: [new Date(Date.now() - 86_400_000).toISOString(), '00000000-0000-0000-0000-000000000000'],
          limit: 50,
        }),
      );
      expectIntendedIndex(await explain(sql, params, mode), 'history (org tree, next page)');
    });
  });
});
