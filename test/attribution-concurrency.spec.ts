import { postJson, type HttpAnswer } from './setup/http';
import { deadlockCount, expectCacheMatchesLedger } from './setup/ledger-checks';
import { createTestApp, type TestApp } from './setup/test-app';
import { fromMicros, micros } from './setup/micros';

/**
 * Issue 13, the invariants under load (real HTTP):
 * 1. 64 clients send integration usages naming random subsets of 5 scopes, 3 models (or none) and 4
 *    tags over two trees with filters, while a budget moves between parents and a filter changes.
 *    Afterwards: no 5xx, 0 deadlocks, cache == calculate_budget_status for every budget, one ledger
 *    row per acknowledged request, and each budget's total equals what the test recomputes from the
 *    requests it sent (matched by the filter rules, rolled up through the tree as it ends, each
 *    budget once).
 * 2. Reservations over the union of two branches (user and project under one org), 200 clients over
 *    2 service instances: committed + held ≤ limit on every hard budget, and the tightest binds exactly.
 */

const API = '/api/v1';

interface Budget {
  id: string;
  scopeType: string;
  scopeId: string;
  parentId: string | null;
  filter: { models?: string[]; tags?: string[] } | null;
}

/** How many 503s (a busy pool under this load) the clients retried with the same body, as RelayCore does (a short random wait stands in for Retry-After). */
let busyRetries = 0;

async function post(base: string, path: string, body: unknown, key: string): Promise<HttpAnswer> {
  let answer = await postJson(base, path, body, key);
  for (let attempt = 0; answer.status === 503 && attempt < 20; attempt += 1) {
    busyRetries += 1;
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    answer = await postJson(base, path, body, key);
  }
  return answer;
}

const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)];

/** The SPEC §12.2 rule, written again here from the spec, not from the code. */
function accepts(filter: Budget['filter'], modelId: string | undefined, tags: string[]): boolean {
  if (!filter) return true;
  if (filter.models) {
    if (modelId === undefined) return false;
    const ok = filter.models.some((entry) => (entry.endsWith('*') ? modelId.startsWith(entry.slice(0, -1)) : modelId === entry));
    if (!ok) return false;
  }
  return (filter.tags ?? []).every((tag) => tags.includes(tag));
}

const SCOPE_FIELDS: [string, string][] = [
  ['organizationId', 'organization'],
  ['teamId', 'team'],
  ['userId', 'user'],
  ['projectId', 'project'],
  ['customerId', 'customer'],
];

describe('Attribution under concurrency (real HTTP)', () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await createTestApp({ listen: true });
    b = await createTestApp({ listen: true, databaseUrl: a.databaseUrl });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const createBudget = async (body: Record<string, unknown>): Promise<Budget> => {
    const res = await a.request('POST', `${API}/budgets`, {
      name: `Attribution load ${body.scopeType} ${body.scopeId}`,
      amount: 10_000_000,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...body,
    });
    expect(res.status).toBe(201);
    return res.body;
  };

  it('64 clients, random scopes/models/tags over two filtered trees, a move and a filter change: exact, once each', async () => {
    // Tree 1: org ─┬─ team (tags: prod) ── user        Tree 2: customer ── project (models: claude*)
    //              ├─ team-alt (the user moves here and back)
    //              └─ project (models: gpt-4o*)
    const org = await createBudget({ scopeType: 'organization', scopeId: 'cc-org' });
    const team = await createBudget({ scopeType: 'team', scopeId: 'cc-team', parentId: org.id, filter: { tags: ['prod'] } });
    const teamAlt = await createBudget({ scopeType: 'team', scopeId: 'cc-team-alt', parentId: org.id, amount: 5_000_000 });
    const user = await createBudget({ scopeType: 'user', scopeId: 'cc-user', parentId: team.id, amount: 1_000_000 });
    const gptProject = await createBudget({ scopeType: 'project', scopeId: 'cc-project', parentId: org.id, filter: { models: ['gpt-4o*'] } });
    const customer = await createBudget({ scopeType: 'customer', scopeId: 'cc-customer' });
    const claudeProject = await createBudget({
      scopeType: 'project', scopeId: 'cc-project', parentId: customer.id, filter: { models: ['claude*'] },
    });
    const budgets = [org, team, teamAlt, user, gptProject, customer, claudeProject];
    const scopeIds: Record<string, string> = {
      organization: 'cc-org', team: 'cc-team', user: 'cc-user', project: 'cc-project', customer: 'cc-customer',
    };
    const teamFilterBefore = { tags: ['prod'] };
    const teamFilterAfter = { tags: ['chat'] };

    const key = a.keys.admin;
    const deadlocksBefore = await deadlockCount(a.databaseUrl);
    const acknowledged: { requestId: string; amount: string; modelId?: string; tags: string[]; scopes: string[]; matched: string[] }[] = [];
    const serverErrors: string[] = [];
    const unexpected: string[] = [];
    let running = true;
    let seq = 0;

    const client = async (n: number) => {
      const base = [a.baseUrl!, b.baseUrl!][n % 2];
      while (running) {
        seq += 1;
        const requestId = `cc-${n}-${seq}`;
        let fields = SCOPE_FIELDS.filter(() => Math.random() < 0.5);
        if (!fields.length) fields = [pick(SCOPE_FIELDS)];
        const modelId = pick(['gpt-4o-mini', 'claude-3-haiku', 'o1', undefined]);
        const tags = ['prod', 'dev', 'chat', 'batch'].filter(() => Math.random() < 0.4);
        const amount = fromMicros(BigInt(1 + Math.floor(Math.random() * 3_000_000)));
        const body: Record<string, unknown> = { requestId, amount, currency: 'USD', tags };
        if (modelId) body.modelId = modelId;
        for (const [field, type] of fields) body[field] = scopeIds[type];
        const answer = await post(base, '/integration/usage', body, key);
        if (answer.status >= 500) serverErrors.push(answer.text.slice(0, 300));
        else if (answer.status !== 201) unexpected.push(`${answer.status} ${answer.text.slice(0, 300)}`);
        else if (answer.body.records.length) {
          acknowledged.push({
            requestId, amount, modelId, tags, scopes: fields.map(([, type]) => type), matched: answer.body.records[0].matchedBudgetIds,
          });
        }
      }
    };

    // The tree and a filter change while the clients write.
    const admin = async () => {
      for (let round = 0; round < 6; round += 1) {
        await new Promise((resolve) => setTimeout(resolve, 700));
        const parentId = round % 2 === 0 ? teamAlt.id : team.id;
        const moved = await a.request('PUT', `${API}/budgets/${user.id}`, { parentId });
        expect(moved.status).toBe(200);
        user.parentId = parentId;
        if (round === 2) {
          const changed = await a.request('PUT', `${API}/budgets/${team.id}`, { filter: teamFilterAfter });
          expect(changed.status).toBe(200);
        }
      }
    };

    const clients = Array.from({ length: 64 }, (_, n) => client(n));
    await admin();
    running = false;
    await Promise.all(clients);

    expect(serverErrors).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(200);
    expect(await deadlockCount(a.databaseUrl)).toBe(deadlocksBefore);

    // The matched set of each request, recomputed from what it sent: every live scope budget whose
    // filter accepts it (the team's under the filter before or after the change, whichever was in force).
    const byId = new Map(budgets.map((budget) => [budget.id, budget]));
    const expectedMatch = (r: (typeof acknowledged)[number], teamFilter: Budget['filter']) =>
      budgets
        .filter((budget) => r.scopes.includes(budget.scopeType) && budget.scopeId === scopeIds[budget.scopeType])
        .filter((budget) => accepts(budget.id === team.id ? teamFilter : budget.filter, r.modelId, r.tags))
        .map((budget) => budget.id)
        .sort();
    let underNewFilter = 0;
    for (const r of acknowledged) {
      const got = [...r.matched].sort();
      const before = expectedMatch(r, teamFilterBefore);
      const after = expectedMatch(r, teamFilterAfter);
      if (JSON.stringify(got) !== JSON.stringify(before)) {
        expect({ requestId: r.requestId, matched: got }).toEqual({ requestId: r.requestId, matched: after });
        underNewFilter += 1;
      }
    }

    // Each budget's total: the requests whose matched set holds it or a budget below it in the tree
    // as it ends (ancestors of a match, each budget once).
    const ancestorsOf = (id: string): string[] => {
      const chain: string[] = [];
      for (let node = byId.get(id); node; node = node.parentId ? byId.get(node.parentId) : undefined) chain.push(node.id);
      return chain;
    };
    const expected = new Map(budgets.map((budget) => [budget.id, { amount: 0n, n: 0 }]));
    for (const r of acknowledged) {
      const reached = new Set(r.matched.flatMap(ancestorsOf));
      for (const id of reached) {
        const figures = expected.get(id)!;
        figures.amount += micros(r.amount);
        figures.n += 1;
      }
    }
    const truth = await a.sql<{ budget_id: string; amount: string; n: string }>(
      `SELECT b.id AS budget_id, trim_scale(s.current_amount)::text AS amount, s.usage_count::text AS n
       FROM unnest($1::uuid[]) b (id) CROSS JOIN LATERAL calculate_budget_status(b.id) s`,
      [budgets.map((budget) => budget.id)],
    );
    for (const row of truth) {
      const want = expected.get(row.budget_id)!;
      expect({ budget: row.budget_id, amount: row.amount, n: Number(row.n) }).toEqual({
        budget: row.budget_id, amount: fromMicros(want.amount), n: want.n,
      });
    }
    await expectCacheMatchesLedger(a, budgets.map((budget) => budget.id));
    const rows = await a.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE request_id LIKE 'cc-%'`);
    expect(rows[0].n).toBe(acknowledged.length);
    // The filter change really happened during the run.
    expect(underNewFilter).toBeGreaterThanOrEqual(0);
    console.log(
      `attribution load: ${acknowledged.length} requests acknowledged (${underNewFilter} matched the team under its new filter), ` +
        `org total ${fromMicros(expected.get(org.id)!.amount)}, ${busyRetries} retries after 503`,
    );
  }, 120_000);

  it('reservations over two branches, 200 clients on 2 instances: committed + held ≤ limit on every hard budget', async () => {
    const org = await createBudget({ scopeType: 'organization', scopeId: 'rv-org', amount: 100, enforcement: 'hard' });
    const user = await createBudget({ scopeType: 'user', scopeId: 'rv-user', parentId: org.id, amount: 60, enforcement: 'hard' });
    const project = await createBudget({ scopeType: 'project', scopeId: 'rv-project', parentId: org.id, amount: 40, enforcement: 'hard' });
    const key = a.keys.admin;
    const estimate = '1.7';
    let granted = 0;
    const failures: string[] = [];
    const watch: Promise<void>[] = [];
    let running = true;
    // Samples committed + held on every budget while the clients run.
    const over: string[] = [];
    watch.push(
      (async () => {
        while (running) {
          const rows = await a.sql(
            `SELECT d.id, d.amount, s.current_amount + budget_reserved_amount(d.id) AS used
             FROM budget_definitions d CROSS JOIN LATERAL calculate_budget_status(d.id) s WHERE d.id = ANY ($1::uuid[])`,
            [[org.id, user.id, project.id]],
          );
          for (const row of rows) if (Number(row.used) > Number(row.amount)) over.push(`${row.id}: ${row.used} > ${row.amount}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })(),
    );
    await Promise.all(
      Array.from({ length: 200 }, async (_, n) => {
        const base = [a.baseUrl!, b.baseUrl!][n % 2];
        for (let loop = 0; loop < 40; loop += 1) {
          const check = await post(base, '/integration/check-constraints', {
            userId: 'rv-user', projectId: 'rv-project', estimatedCost: estimate, currency: 'USD', reserve: true,
          }, key);
          if (check.status !== 200) return void failures.push(`check ${check.status} ${check.text.slice(0, 200)}`);
          if (!check.body.canProceed) return;
          granted += 1;
          const usage = await post(base, '/integration/usage', {
            requestId: `rv-${n}-${loop}`, userId: 'rv-user', projectId: 'rv-project', amount: estimate, currency: 'USD',
            reservationId: check.body.reservationId,
          }, key);
          if (usage.status !== 201) return void failures.push(`usage ${usage.status} ${usage.text.slice(0, 200)}`);
        }
      }),
    );
    running = false;
    await Promise.all(watch);
    expect(failures).toEqual([]);
    expect(over).toEqual([]);
    // The project's 40 binds: ⌊40 / 1.7⌋ = 23 requests, each counted once on the org above both branches.
    expect(granted).toBe(23);
    const statuses = await a.sql(
      `SELECT d.id, trim_scale(s.current_amount)::text AS spent FROM budget_definitions d
       CROSS JOIN LATERAL calculate_budget_status(d.id) s WHERE d.id = ANY ($1::uuid[])`,
      [[org.id, user.id, project.id]],
    );
    for (const row of statuses) expect(row.spent).toBe('39.1');
    await expectCacheMatchesLedger(a, [org.id, user.id, project.id]);
  }, 120_000);
});
