import { deadlockCount, expectCacheMatchesLedger } from './setup/ledger-checks';
import { createTestApp, type TestApp } from './setup/test-app';
import { writeGroupSizes } from './setup/http';

/**
 * Group commit of single usage writes (issue 17, src/usage/usage-write-groups.ts): concurrent
 * writes to one budget commit together, each request is answered exactly as a write alone is,
 * and a single client's writes never wait for a group. Real HTTP on a listening server.
 */

const BUDGETS = '/api/v1/budgets';

interface Sent {
  status: number;
  replayed: string | null;
  body: any;
}

describe('Usage writes committed in groups', () => {
  let t: TestApp;
  let seq = 0;

  const createBudget = async (patch: Record<string, unknown> = {}) => {
    seq += 1;
    const res = await t.request('POST', BUDGETS, {
      name: `Group commit ${seq}`, scopeType: 'project', scopeId: `group-commit-${seq}`, amount: 1_000_000,
      currency: 'USD', period: 'monthly', startDate: '2025-01-01T00:00:00Z', ...patch,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string };
  };

  const post = async (budgetId: string, body: unknown, key?: string): Promise<Sent> => {
    const res = await fetch(`${t.baseUrl}${BUDGETS}/${budgetId}/usage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.service}`, ...(key ? { 'idempotency-key': key } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: await res.json() };
  };

  const groups = () => writeGroupSizes(t.baseUrl!);

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
  });

  afterAll(async () => {
    await t.close();
  });

  it('concurrent writes to one budget commit in groups; each answer is the one a write alone gets', async () => {
    const budget = await createBudget({ filter: { models: ['gpt-4o*'] } });
    const usage = (amount: string, extra: Record<string, unknown> = {}) => ({ amount, currency: 'USD', modelId: 'gpt-4o', ...extra });
    // A key recorded before, sent again below with another body: 409 whatever group it lands in.
    expect((await post(budget.id, usage('1.5'), 'reused')).status).toBe(201);

    type Job = { body: unknown; key?: string; expect: number };
    const jobs: Job[] = [
      ...Array.from({ length: 150 }, (_, i) => ({ body: usage(`0.${String(i + 1).padStart(4, '0')}`), key: `new-${i}`, expect: 201 })),
      ...Array.from({ length: 10 }, (_, i) => ({ body: usage(`2.${i}`), expect: 201 })),
      // The same key twice at once: one records, the other replays it (never two rows).
      ...Array.from({ length: 10 }, (_, i) => [
        { body: usage(`3.${i}`), key: `twice-${i}`, expect: 0 },
        { body: usage(`3.${i}`), key: `twice-${i}`, expect: 0 },
      ]).flat(),
      ...Array.from({ length: 5 }, () => ({ body: usage('9.99'), key: 'reused', expect: 409 })),
      ...Array.from({ length: 5 }, (_, i) => ({ body: usage('0.5', { currency: 'EUR' }), key: `eur-${i}`, expect: 422 })),
      ...Array.from({ length: 5 }, (_, i) => ({ body: usage('0.5', { modelId: 'claude-3' }), key: `filtered-${i}`, expect: 422 })),
    ];
    for (let i = jobs.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [jobs[i], jobs[j]] = [jobs[j], jobs[i]];
    }
    const before = await groups();
    const sent = await Promise.all(jobs.map((job) => post(budget.id, job.body, job.key)));
    const after = await groups();

    // Grouped: fewer transactions than writes.
    expect(after.sum - before.sum).toBe(jobs.length);
    expect(after.count - before.count).toBeLessThan(jobs.length);

    for (const [index, job] of jobs.entries()) {
      if (job.expect) expect({ index, status: sent[index].status }).toEqual({ index, status: job.expect });
    }
    for (let i = 0; i < 10; i++) {
      const pair = sent.filter((_, index) => jobs[index].key === `twice-${i}`);
      expect(pair.map((s) => s.status).sort()).toEqual([200, 201]);
      expect(pair.find((s) => s.status === 200)!.replayed).toBe('true');
      expect(pair[0].body.id).toBe(pair[1].body.id);
    }

    // Each refusal is the single write's own, word for word: sent again one at a time (each alone
    // in its group), the same status and body come back, and nothing was stored.
    for (const [index, job] of jobs.entries()) {
      if (job.expect < 400) continue;
      const alone = await post(budget.id, job.body, job.key);
      expect(alone.status).toBe(sent[index].status);
      expect(alone.body).toEqual({ ...sent[index].body, instance: alone.body.instance });
    }
    expect(sent.find((s, index) => jobs[index].key === 'reused')!.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(sent.find((s, index) => jobs[index].key === 'eur-0')!.body).toMatchObject({ code: 'CURRENCY_MISMATCH' });
    expect(sent.find((s, index) => jobs[index].key === 'filtered-0')!.body).toMatchObject({ code: 'FILTER_MISMATCH' });

    // A record answered from a group is the ledger's row, and the ledger holds exactly the 201s.
    const created = sent.filter((s) => s.status === 201).map((s) => s.body);
    const rows = await t.sql(`SELECT id, amount::text AS amount, idempotency_key FROM budget_usage_records WHERE budget_id = $1`, [budget.id]);
    expect(rows).toHaveLength(created.length + 1);
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const record of created) expect(Number(byId.get(record.id)?.amount)).toBe(record.amount);
    const keys = rows.map((row) => row.idempotency_key).filter((key) => key !== null);
    expect(new Set(keys).size).toBe(keys.length);
    await expectCacheMatchesLedger(t, [budget.id]);
  });

  it('a group mixes budgets: each write counts on its own budget, keys are per budget, refusals are their own', async () => {
    const usd = await createBudget();
    const eur = await createBudget({ currency: 'EUR' });
    const filtered = await createBudget({ filter: { models: ['gpt-4o*'] } });
    type Job = { budget: { id: string }; body: Record<string, unknown>; key: string; expect: number };
    const jobs: Job[] = [];
    for (let i = 0; i < 60; i++) {
      // The same key on two budgets is two requests.
      jobs.push({ budget: usd, body: { amount: '0.01', currency: 'USD' }, key: `mixed-${i}`, expect: 201 });
      jobs.push({ budget: eur, body: { amount: '0.02', currency: 'EUR' }, key: `mixed-${i}`, expect: 201 });
      if (i % 3 === 0) jobs.push({ budget: filtered, body: { amount: '0.03', currency: 'USD', modelId: 'gpt-4o-mini' }, key: `mixed-${i}`, expect: 201 });
      if (i % 10 === 0) jobs.push({ budget: eur, body: { amount: '0.02', currency: 'USD' }, key: `wrong-${i}`, expect: 422 });
      if (i % 10 === 5) jobs.push({ budget: filtered, body: { amount: '0.03', currency: 'USD', modelId: 'claude-3' }, key: `wrong-${i}`, expect: 422 });
    }
    const before = await groups();
    const sent = await Promise.all(jobs.map((job) => post(job.budget.id, job.body, job.key)));
    const after = await groups();
    expect(after.count - before.count).toBeLessThan(jobs.length);
    expect(sent.map((s) => s.status)).toEqual(jobs.map((job) => job.expect));
    for (const [index, job] of jobs.entries()) {
      if (job.expect === 201) {
        expect(sent[index].body).toMatchObject({ budgetId: job.budget.id, currency: job.body.currency, amount: Number(job.body.amount) });
        continue;
      }
      const alone = await post(job.budget.id, job.body, job.key);
      expect(alone.body).toEqual({ ...sent[index].body, instance: alone.body.instance });
    }
    const counts = await t.sql(
      `SELECT budget_id, count(*)::int AS n FROM budget_usage_records WHERE budget_id = ANY ($1::uuid[]) GROUP BY budget_id`,
      [[usd.id, eur.id, filtered.id]],
    );
    expect(Object.fromEntries(counts.map((row) => [row.budget_id, row.n]))).toEqual({ [usd.id]: 60, [eur.id]: 60, [filtered.id]: 20 });
    await expectCacheMatchesLedger(t, [usd.id, eur.id, filtered.id]);
  });

  it('two instances writing the leaves of one tree at once: every write recorded, no deadlock, cache == ledger', async () => {
    const other = await createTestApp({ listen: true, databaseUrl: t.databaseUrl });
    try {
      const org = await createBudget({ scopeType: 'organization' });
      const teams: { id: string }[] = [];
      for (let i = 0; i < 4; i++) teams.push(await createBudget({ scopeType: 'team', parentId: org.id }));
      const leaves: { id: string }[] = [];
      for (const team of teams) for (let i = 0; i < 4; i++) leaves.push(await createBudget({ scopeType: 'user', parentId: team.id }));
      const deadlocksBefore = await deadlockCount(t.databaseUrl);
      const before = await groups();
      // 64 clients on each instance, 1,600 writes in all, round-robin over the 16 leaves.
      const writes = Array.from({ length: 1600 }, (_, i) => ({ leaf: leaves[i % leaves.length], i }));
      let next = 0;
      const sent: Sent[] = [];
      const worker = async (base: string) => {
        while (next < writes.length) {
          const { leaf, i } = writes[next++];
          const res = await fetch(`${base}${BUDGETS}/${leaf.id}/usage`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.service}`, 'idempotency-key': `tree-${i}` },
            body: JSON.stringify({ amount: `0.${String((i % 97) + 1).padStart(3, '0')}`, currency: 'USD' }),
          });
          sent.push({ status: res.status, replayed: null, body: await res.json() });
        }
      };
      await Promise.all([
        ...Array.from({ length: 64 }, () => worker(t.baseUrl!)),
        ...Array.from({ length: 64 }, () => worker(other.baseUrl!)),
      ]);
      const after = await groups();
      expect(sent.filter((s) => s.status !== 201)).toEqual([]);
      expect(await deadlockCount(t.databaseUrl)).toBe(deadlocksBefore);
      // This instance's share went through its groups (how many shared one depends on timing).
      expect(after.sum - before.sum).toBeGreaterThan(0);
      await expectCacheMatchesLedger(t, [org, ...teams, ...leaves].map((b) => b.id));
      const [root] = await t.sql(`SELECT usage_count::int AS n FROM budget_status_cache WHERE budget_id = $1`, [org.id]);
      expect(root.n).toBe(1600);
    } finally {
      await other.close();
    }
  });

  it('one client writing one request at a time commits each write alone, without waiting for a group', async () => {
    const budget = await createBudget();
    const before = await groups();
    for (let i = 0; i < 20; i++) {
      const sent = await post(budget.id, { amount: '0.25', currency: 'USD' }, `alone-${i}`);
      expect(sent.status).toBe(201);
    }
    const after = await groups();
    expect({ groups: after.count - before.count, writes: after.sum - before.sum }).toEqual({ groups: 20, writes: 20 });
    const [status] = await t.sql(`SELECT usage_count::int AS n, current_amount::text AS amount FROM budget_status_cache WHERE budget_id = $1`, [budget.id]);
    expect(status).toEqual({ n: 20, amount: expect.stringMatching(/^5\.0*$/) });
  });

  it('a group refused as a whole (its budget was deleted) answers every write as a write alone: 404', async () => {
    const budget = await createBudget();
    expect((await t.request('DELETE', `${BUDGETS}/${budget.id}`)).status).toBe(204);
    const sent = await Promise.all(Array.from({ length: 40 }, (_, i) => post(budget.id, { amount: '1', currency: 'USD' }, `gone-${i}`)));
    const alone = await post(budget.id, { amount: '1', currency: 'USD' }, 'gone-alone');
    expect(alone.status).toBe(404);
    for (const s of sent) {
      expect(s.status).toBe(404);
      expect(s.body).toEqual({ ...alone.body, instance: s.body.instance });
    }
  });
});
