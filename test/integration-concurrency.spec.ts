import { deadlockCount, expectCacheMatchesLedger } from './setup/ledger-checks';
import { createTestApp, type TestApp } from './setup/test-app';
import { fromMicros, micros } from './setup/micros';

/**
 * Issue 4 acceptance 4: the integration usage path under load. 32 clients for 10 s over
 * overlapping scope sets (one org → two teams → two users each, plus two project budgets); each
 * request names a random user, its team, the org and a random project, so every request writes
 * into two budget trees and all of them meet on the org's and the projects' cache rows.
 * Afterwards: no 5xx, no deadlock, cache == calculate_budget_status for every budget, and each
 * tree root's cache equals the SQL sum of its tree's records.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;
const CLIENTS = 32;
const DURATION_MS = 10_000;

interface Budget {
  id: string;
  parentId: string | null;
}

const randomAmount = () => fromMicros(BigInt(Math.floor(Math.random() * 5_000_000)));
const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)];

describe('Integration usage under concurrency (real HTTP)', () => {
  let t: TestApp;
  let closed = false;
  let deadlocksAtStart = 0;

  const deadlocks = async () =>
    Number((await t.sql(`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`))[0].n);

  const createBudget = async (body: Record<string, unknown>): Promise<Budget> => {
    const res = await t.request('POST', BUDGETS, {
      name: `Integration load ${body.scopeType} ${body.scopeId}`,
      amount: 10_000_000,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...body,
    });
    expect(res.status).toBe(201);
    return res.body;
  };

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
    deadlocksAtStart = await deadlocks();
  });

  afterAll(async () => {
    if (!closed) await t.close();
  });

  it(`${CLIENTS} clients for ${DURATION_MS / 1000} s over overlapping scopes: no 5xx, no deadlock, cache == ledger`, async () => {
    const org = await createBudget({ scopeType: 'organization', scopeId: 'load-org' });
    const teams = {
      'load-team-a': await createBudget({ scopeType: 'team', scopeId: 'load-team-a', parentId: org.id }),
      'load-team-b': await createBudget({ scopeType: 'team', scopeId: 'load-team-b', parentId: org.id }),
    };
    const userTeam: Record<string, keyof typeof teams> = {
      'load-user-a1': 'load-team-a',
      'load-user-a2': 'load-team-a',
      'load-user-b1': 'load-team-b',
      'load-user-b2': 'load-team-b',
    };
    const users: Record<string, Budget> = {};
    for (const [userId, teamId] of Object.entries(userTeam)) {
      users[userId] = await createBudget({ scopeType: 'user', scopeId: userId, parentId: teams[teamId].id });
    }
    const projects = {
      'load-proj-1': await createBudget({ scopeType: 'project', scopeId: 'load-proj-1' }),
      'load-proj-2': await createBudget({ scopeType: 'project', scopeId: 'load-proj-2' }),
    };
    const all = [org, ...Object.values(teams), ...Object.values(users), ...Object.values(projects)];
    const before = await deadlocks();

    type Body = { organizationId: string; teamId: string; userId: string; projectId: string; amount: string; currency: string; requestId: string };
    const sent: Body[] = [];
    const statuses = new Map<number, number>();
    const serverErrors: { status: number; body: string }[] = [];
    let replays = 0;
    let requests = 0;
    const deadline = Date.now() + DURATION_MS;
    const started = process.hrtime.bigint();

    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (Date.now() < deadline) {
          let body: Body;
          if (sent.length > 20 && Math.random() < 0.1) {
            body = pick(sent);
            replays += 1;
          } else {
            const userId = pick(Object.keys(userTeam));
            body = {
              organizationId: 'load-org',
              teamId: userTeam[userId],
              userId,
              projectId: pick(Object.keys(projects)),
              amount: randomAmount(),
              currency: 'USD',
              requestId: `load-${sent.length}-${Math.random().toString(36).slice(2, 10)}`,
            };
            sent.push(body);
          }
          const res = await fetch(`${t.baseUrl}${API}/integration/usage`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.service}` },
            body: JSON.stringify(body),
          });
          const text = await res.text();
          requests += 1;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500) serverErrors.push({ status: res.status, body: text });
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // eslint-disable-next-line no-console
    console.info(
      `integration load: ${requests} requests (${sent.length} distinct, ${replays} replays), ${CLIENTS} clients, ` +
        `${seconds.toFixed(2)} s, ${(requests / seconds).toFixed(0)} req/s; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );

    expect(serverErrors.slice(0, 3)).toEqual([]);
    expect([...statuses.keys()].filter((code) => code !== 200 && code !== 201)).toEqual([]);
    // Every distinct request was recorded once (a replay racing its original may also be the one answering 201).
    expect(statuses.get(201)).toBe(sent.length);
    expect(requests).toBeGreaterThan(CLIENTS);

    // The ledger: one record per request (SPEC §12.2), counted in both trees.
    const [ledger] = await t.sql(
      `SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS requests FROM budget_usage_records WHERE budget_id = ANY ($1::uuid[])`,
      [all.map((b) => b.id)],
    );
    expect(ledger).toEqual({ n: sent.length, requests: sent.length });

    // cache == calculate_budget_status, exactly, for every budget.
    const compared = await expectCacheMatchesLedger(t, all.map((b) => b.id));

    // Expected figures from what was sent, independently of the database.
    const expected = new Map<string, { sum: bigint; n: number }>(all.map((b) => [b.id, { sum: 0n, n: 0 }]));
    const add = (id: string, amount: string) => {
      const entry = expected.get(id)!;
      entry.sum += micros(amount);
      entry.n += 1;
    };
    for (const body of sent) {
      for (const id of [users[body.userId].id, teams[userTeam[body.userId]].id, org.id, projects[body.projectId as keyof typeof projects].id]) {
        add(id, body.amount);
      }
    }
    for (const row of compared) {
      const want = expected.get(row.budget_id)!;
      expect([row.budget_id, row.cache_amount, row.cache_n]).toEqual([row.budget_id, fromMicros(want.sum), String(want.n)]);
    }

    // Each tree root's cache equals the SQL sum of the records that count toward it.
    for (const root of [org, ...Object.values(projects)]) {
      const [row] = await t.sql(
        `SELECT (SELECT trim_scale(current_amount)::text FROM budget_status_cache WHERE budget_id = $1) AS cache,
                (SELECT trim_scale(coalesce(sum(amount), 0))::text FROM budget_usage_rows($1, '-infinity', 'infinity')) AS ledger`,
        [root.id],
      );
      expect(row.cache).toBe(row.ledger);
    }
    const [projectsTotal] = await t.sql(
      `SELECT trim_scale(sum(current_amount))::text AS projects FROM budget_status_cache WHERE budget_id = ANY ($1::uuid[])`,
      [Object.values(projects).map((b) => b.id)],
    );
    expect(projectsTotal.projects).toBe(fromMicros(expected.get(org.id)!.sum));

    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await deadlocks()).toBe(before);
  }, 120_000);

  it('no deadlock in this file: pg_stat_database.deadlocks unchanged once every connection closed', async () => {
    const databaseUrl = t.databaseUrl;
    closed = true;
    await t.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await deadlockCount(databaseUrl)).toBe(deadlocksAtStart);
  });
});
