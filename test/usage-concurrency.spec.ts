import { Clock } from '../src/common/clock';
import { cacheVersusTruth, deadlockCount } from './setup/ledger-checks';
import { createTestApp, type TestApp } from './setup/test-app';
import { fromMicros, micros } from './setup/micros';

/**
 * SPEC §2 "The cache" (cache == calculate_budget_status for every budget, always; no lost
 * updates), "Idempotency" under concurrency, §4 roll-up, and the period rollover of the cache:
 * issue 3 acceptance 2–5. Real HTTP on a listening server, many keep-alive clients at once.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;

interface Budget {
  id: string;
  name: string;
  parentId: string | null;
}

interface Sent {
  status: number;
  replayed: string | null;
  body: any;
}

/** A random amount of 0–9.999999 with up to 6 decimals, as a decimal string. */
const randomAmount = () => {
  const value = BigInt(Math.floor(Math.random() * 10_000_000));
  return fromMicros(value);
};
const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)];

describe('Usage under concurrency (real HTTP)', () => {
  let t: TestApp;
  let closed = false;
  let deadlocksAtStart = 0;
  let seq = 0;

  const deadlocks = async () =>
    Number((await t.sql(`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`))[0].n);

  const createBudget = async (patch: Record<string, unknown> = {}): Promise<Budget> => {
    seq += 1;
    const res = await t.request('POST', BUDGETS, {
      name: `Concurrency budget ${seq}`,
      scopeType: 'team',
      scopeId: `conc-${seq}`,
      amount: 1_000_000,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...patch,
    });
    expect(res.status).toBe(201);
    return res.body;
  };

  /** org → 2 teams → 2 users each. */
  const createTree = async () => {
    const org = await createBudget({ scopeType: 'organization' });
    const teams = [await createBudget({ parentId: org.id }), await createBudget({ parentId: org.id })];
    const users = [
      await createBudget({ scopeType: 'user', parentId: teams[0].id }),
      await createBudget({ scopeType: 'user', parentId: teams[0].id }),
      await createBudget({ scopeType: 'user', parentId: teams[1].id }),
      await createBudget({ scopeType: 'user', parentId: teams[1].id }),
    ];
    return { org, teams, users, all: [org, ...teams, ...users] };
  };

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Sent> => {
    const res = await fetch(`${t.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.service}`, ...headers },
      body: JSON.stringify(body),
      keepalive: true,
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: parsed };
  };

  const status = async (id: string) => {
    const res = await fetch(`${t.baseUrl}${BUDGETS}/${id}/status`, { headers: { authorization: `Bearer ${t.keys.viewer}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };

  /** Runs `jobs` through `clients` concurrent workers. */
  const runPool = async <J, R>(jobs: J[], clients: number, work: (job: J) => Promise<R>): Promise<R[]> => {
    const results: R[] = new Array(jobs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < jobs.length) {
          const index = next++;
          results[index] = await work(jobs[index]);
        }
      }),
    );
    return results;
  };

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
    deadlocksAtStart = await deadlocks();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  afterAll(async () => {
    if (!closed) await t.close();
  });

  it('64 clients record 5,000 usages over org → 2 teams → 4 users: 0 errors, cache == ledger exactly everywhere', async () => {
    const tree = await createTree();
    const before = await deadlocks();
    // Mostly leaves, some on the teams and the org itself.
    const targets = [...tree.users, ...tree.users, ...tree.users, ...tree.users, ...tree.teams, tree.org];
    const jobs = Array.from({ length: 5000 }, (_, i) => ({ budget: pick(targets), amount: randomAmount(), requestId: `load-${i}` }));
    // Interleaved with the writes: cache refreshes (which rewrite rows from the ledger while writers
    // add to them) and status reads, on random budgets of the tree.
    type Job = { kind: 'usage'; usage: (typeof jobs)[number] } | { kind: 'refresh' | 'status'; budget: Budget };
    const mixed: Job[] = [
      ...jobs.map((usage) => ({ kind: 'usage' as const, usage })),
      ...Array.from({ length: 200 }, () => ({ kind: 'refresh' as const, budget: pick(tree.all) })),
      ...Array.from({ length: 200 }, () => ({ kind: 'status' as const, budget: pick(tree.all) })),
    ];
    for (let i = mixed.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [mixed[i], mixed[j]] = [mixed[j], mixed[i]];
    }

    const started = process.hrtime.bigint();
    const results = await runPool(mixed, 64, async (job) => {
      if (job.kind === 'usage') {
        const { budget, amount, requestId } = job.usage;
        return { kind: job.kind, ...(await post(`${BUDGETS}/${budget.id}/usage`, { amount, currency: 'USD', requestId, modelId: 'gpt-4' })) };
      }
      if (job.kind === 'refresh') return { kind: job.kind, ...(await post(`${BUDGETS}/${job.budget.id}/refresh-cache`, {})) };
      const res = await fetch(`${t.baseUrl}${BUDGETS}/${job.budget.id}/status`, { headers: { authorization: `Bearer ${t.keys.viewer}` } });
      return { kind: job.kind, status: res.status, replayed: null, body: await res.text() };
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // eslint-disable-next-line no-console
    console.info(
      `usage load: ${jobs.length} usage writes + 400 refresh/status calls, 64 clients, ${seconds.toFixed(2)} s, ` +
        `${(jobs.length / seconds).toFixed(0)} writes/s (${(mixed.length / seconds).toFixed(0)} req/s overall)`,
    );

    expect(results.filter((r) => r.status >= 500).slice(0, 3)).toEqual([]);
    expect(results.filter((r) => r.kind === 'usage' && r.status !== 201).slice(0, 3)).toEqual([]);
    expect(results.filter((r) => r.kind !== 'usage' && r.status !== 200).slice(0, 3)).toEqual([]);

    // Expected per budget: the amounts recorded on it and on its descendants.
    const parentOf = new Map(tree.all.map((b) => [b.id, b.parentId]));
    const expected = new Map<string, { sum: bigint; n: number }>(tree.all.map((b) => [b.id, { sum: 0n, n: 0 }]));
    for (const job of jobs) {
      for (let id: string | null = job.budget.id; id; id = parentOf.get(id) ?? null) {
        const entry = expected.get(id)!;
        entry.sum += micros(job.amount);
        entry.n += 1;
      }
    }

    const compared = await cacheVersusTruth(t, tree.all.map((b) => b.id));
    expect(compared.length).toBe(7);
    for (const row of compared) {
      const want = expected.get(row.budget_id)!;
      expect(row).toEqual({
        budget_id: row.budget_id,
        cache_amount: fromMicros(want.sum),
        truth_amount: fromMicros(want.sum),
        cache_n: String(want.n),
        truth_n: String(want.n),
        same_window: true,
      });
    }

    // The root equals the SQL sum of every record of the tree.
    const [ledger] = await t.sql(
      `SELECT trim_scale(sum(amount))::text AS total, count(*)::text AS n FROM budget_usage_records WHERE budget_id = ANY ($1::uuid[])`,
      [tree.all.map((b) => b.id)],
    );
    expect(ledger).toEqual({ total: fromMicros(expected.get(tree.org.id)!.sum), n: '5000' });
    const rootStatus = await status(tree.org.id);
    expect(rootStatus.currentAmount).toBe(Number(ledger.total));
    expect(rootStatus.usageCount).toBe(5000);

    // Best effort here (other backends flush their counters lazily); the last test of the file
    // reads them again once every connection is closed.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await deadlocks()).toBe(before);
  });

  it('200 records each sent 3 times concurrently (same key, same body) → 200 rows, counted once, 200 × 201 and 400 × 200', async () => {
    const budget = await createBudget({ scopeType: 'project' });
    const distinct = Array.from({ length: 200 }, (_, i) => ({
      amount: randomAmount(),
      key: `dup-${i}`,
      // Half carry the key in the Idempotency-Key header, half as requestId.
      viaHeader: i % 2 === 0,
    }));
    const sends = distinct.flatMap((item) => [item, item, item]);
    // Shuffled, so the copies of one record are in flight together with everything else.
    for (let i = sends.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [sends[i], sends[j]] = [sends[j], sends[i]];
    }
    const results = await Promise.all(
      sends.map(async (item) => ({
        key: item.key,
        res: await post(
          `${BUDGETS}/${budget.id}/usage`,
          item.viaHeader ? { amount: item.amount, currency: 'USD' } : { amount: item.amount, currency: 'USD', requestId: item.key },
          item.viaHeader ? { 'Idempotency-Key': item.key } : {},
        ),
      })),
    );

    expect(results.filter((r) => ![200, 201].includes(r.res.status)).slice(0, 3)).toEqual([]);
    expect(results.filter((r) => r.res.status === 201).length).toBe(200);
    expect(results.filter((r) => r.res.status === 200).length).toBe(400);
    expect(results.filter((r) => r.res.status === 200).every((r) => r.res.replayed === 'true')).toBe(true);
    const idsByKey = new Map<string, Set<string>>();
    for (const r of results) idsByKey.set(r.key, (idsByKey.get(r.key) ?? new Set()).add(r.res.body.id));
    expect([...idsByKey.values()].every((ids) => ids.size === 1)).toBe(true);
    expect(idsByKey.size).toBe(200);

    const [rows] = await t.sql(
      `SELECT count(*)::int AS n, count(DISTINCT idempotency_key)::int AS keys, trim_scale(sum(amount))::text AS total
       FROM budget_usage_records WHERE budget_id = $1`,
      [budget.id],
    );
    const total = fromMicros(distinct.reduce((sum, item) => sum + micros(item.amount), 0n));
    expect(rows).toEqual({ n: 200, keys: 200, total });
    const [compared] = await cacheVersusTruth(t, [budget.id]);
    expect(compared).toEqual(
      expect.objectContaining({ cache_amount: total, truth_amount: total, cache_n: '200', truth_n: '200', same_window: true }),
    );
    const s = await status(budget.id);
    expect(s.usageCount).toBe(200);
    expect(s.currentAmount).toBe(Number(total));
  });

  it('roll-up: usage on a user moves its team and the org; the sibling user and the other team do not move', async () => {
    const tree = await createTree();
    const [u1, u2, u3] = tree.users;
    const before = new Map(await Promise.all(tree.all.map(async (b) => [b.id, (await status(b.id)).currentAmount] as const)));
    const res = await post(`${BUDGETS}/${u1.id}/usage`, { amount: '12.345678', currency: 'USD' });
    expect(res.status).toBe(201);
    const after = async (b: Budget) => (await status(b.id)).currentAmount;
    expect(await after(u1)).toBe(before.get(u1.id)! + 12.345678);
    expect(await after(tree.teams[0])).toBe(before.get(tree.teams[0].id)! + 12.345678);
    expect(await after(tree.org)).toBe(before.get(tree.org.id)! + 12.345678);
    expect(await after(u2)).toBe(before.get(u2.id));
    expect(await after(tree.teams[1])).toBe(before.get(tree.teams[1].id));
    expect(await after(u3)).toBe(before.get(u3.id));
    expect((await status(tree.org.id)).usageCount).toBe(1);
    expect((await status(u2.id)).usageCount).toBe(0);
  });

  it('window rollover: past the period end the status and the cache move to the new window; new usage counts there', async () => {
    const budget = await createBudget({ scopeType: 'user', amount: 100 });
    expect((await post(`${BUDGETS}/${budget.id}/usage`, { amount: '10.5', currency: 'USD' })).status).toBe(201);
    const old = await status(budget.id);
    expect(old.currentAmount).toBe(10.5);

    // One day past the end of the current window.
    const fakeNow = new Date(new Date(old.periodEnd).getTime() + 86_400_000);
    jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(fakeNow));

    const rolled = await status(budget.id);
    expect(rolled.periodStart).toBe(old.periodEnd);
    expect(new Date(rolled.periodEnd).getTime()).toBeGreaterThan(new Date(old.periodEnd).getTime());
    expect(rolled.currentAmount).toBe(0);
    expect(rolled.usageCount).toBe(0);
    expect(rolled.percentUsed).toBe(0);
    const [cacheRow] = await t.sql(
      `SELECT period_start, current_amount = 0 AS zero, usage_count::int AS n FROM budget_status_cache WHERE budget_id = $1`,
      [budget.id],
    );
    expect(cacheRow.period_start.toISOString()).toBe(old.periodEnd);
    expect(cacheRow).toEqual(expect.objectContaining({ zero: true, n: 0 }));

    // occurredAt defaults to the service's now: the new window.
    const res = await post(`${BUDGETS}/${budget.id}/usage`, { amount: '4.25', currency: 'USD' });
    expect(res.status).toBe(201);
    expect(res.body.occurredAt).toBe(fakeNow.toISOString());
    const now = await status(budget.id);
    expect(now.currentAmount).toBe(4.25);
    expect(now.usageCount).toBe(1);
    const [compared] = await cacheVersusTruth(t, [budget.id], fakeNow.toISOString());
    expect(compared).toEqual(expect.objectContaining({ cache_amount: '4.25', truth_amount: '4.25', cache_n: '1', same_window: true }));

    // The old window still holds its usage.
    const [oldTruth] = await t.sql(
      `SELECT trim_scale(current_amount)::text AS amount FROM calculate_budget_status($1, $2)`,
      [budget.id, old.periodStart],
    );
    expect(oldTruth.amount).toBe('10.5');
  });

  it('no deadlock in this file: pg_stat_database.deadlocks unchanged once every connection closed', async () => {
    const databaseUrl = t.databaseUrl;
    closed = true;
    await t.close();
    // Backends flush their statistics when they exit; give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await deadlockCount(databaseUrl)).toBe(deadlocksAtStart);
  });
});
