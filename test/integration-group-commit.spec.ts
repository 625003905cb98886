import { deadlockCount, expectCacheMatchesLedger } from './setup/ledger-checks';
import { createTestApp, type TestApp } from './setup/test-app';
import { writeGroupSizes } from './setup/http';

/**
 * Group commit of the gateway's usage writes (`POST /integration/usage`, issue 17; migration
 * IntegrationWriteGroups, src/usage/usage-write-groups.ts): concurrent writes named by scopes commit
 * together, each request is answered exactly as a write alone is, every record counts once on each
 * budget it matches and their ancestors, and two instances writing one tree never deadlock. Real
 * HTTP on a listening server.
 */

interface Sent {
  status: number;
  replayed: string | null;
  body: any;
}

describe('Gateway usage writes committed in groups', () => {
  let t: TestApp;
  let seq = 0;

  const createBudget = async (patch: Record<string, unknown>) => {
    seq += 1;
    const res = await t.request('POST', '/api/v1/budgets', {
      name: `Gateway group ${seq}`, scopeId: `gateway-group-${seq}`, amount: 1_000_000, currency: 'USD',
      period: 'monthly', startDate: '2025-01-01T00:00:00Z', ...patch,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; scopeId: string };
  };

  const post = async (body: unknown, base = t.baseUrl!): Promise<Sent> => {
    const res = await fetch(`${base}/api/v1/integration/usage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.service}` },
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

  it('concurrent gateway writes commit in groups; each answer is the one a write alone gets', async () => {
    const org = await createBudget({ scopeType: 'organization' });
    const team = await createBudget({ scopeType: 'team', parentId: org.id });
    const user = await createBudget({ scopeType: 'user', parentId: team.id });
    const project = await createBudget({ scopeType: 'project', filter: { models: ['gpt-4o*'] } });
    const customer = await createBudget({ scopeType: 'customer' });
    const euros = await createBudget({ scopeType: 'team', currency: 'EUR' });
    const scopes = { organizationId: org.scopeId, teamId: team.scopeId, userId: user.scopeId };
    const usage = (requestId: string, amount: string, extra: Record<string, unknown> = {}) =>
      ({ requestId, amount, currency: 'USD', modelId: 'gpt-4o', ...scopes, ...extra });
    // A request id recorded before, sent again below with another body: 409 whatever group it lands in.
    expect((await post(usage('reused', '1.5'))).status).toBe(201);

    type Job = { body: Record<string, any>; expect: number; counts: string[] };
    const chain = [user.id, team.id, org.id];
    const jobs: Job[] = [
      ...Array.from({ length: 120 }, (_, i) => ({
        body: usage(`new-${i}`, `0.${String(i + 1).padStart(4, '0')}`, {
          ...(i % 2 ? { projectId: project.scopeId } : {}),
          ...(i % 3 ? {} : { customerId: customer.scopeId }),
        }),
        expect: 201,
        counts: [...chain, ...(i % 2 ? [project.id] : []), ...(i % 3 ? [] : [customer.id])],
      })),
      // The same request twice at once: one records, the other replays it (never two rows).
      ...Array.from({ length: 10 }, (_, i) => [
        { body: usage(`twice-${i}`, `3.${i}`), expect: 0, counts: chain },
        { body: usage(`twice-${i}`, `3.${i}`), expect: 0, counts: chain },
      ]).flat(),
      ...Array.from({ length: 5 }, () => ({ body: usage('reused', '9.99'), expect: 409, counts: [] })),
      // A budget of the scopes counts in EUR: the request is refused, not counted anywhere.
      ...Array.from({ length: 5 }, (_, i) => ({ body: usage(`euros-${i}`, '0.5', { teamId: euros.scopeId }), expect: 422, counts: [] })),
      // No budget for these scopes: 201 with no records.
      ...Array.from({ length: 5 }, (_, i) => ({ body: usage(`nobody-${i}`, '0.5', { organizationId: 'nobody', teamId: undefined, userId: undefined }), expect: 201, counts: [] })),
      // The project's filter refuses another model: counted on the chain only.
      ...Array.from({ length: 5 }, (_, i) => ({ body: usage(`claude-${i}`, '0.25', { modelId: 'claude-3', projectId: project.scopeId }), expect: 201, counts: chain })),
    ];
    for (let i = jobs.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [jobs[i], jobs[j]] = [jobs[j], jobs[i]];
    }
    const before = await groups();
    const sent = await Promise.all(jobs.map((job) => post(job.body)));
    const after = await groups();

    // Grouped: fewer transactions than writes.
    expect(after.sum - before.sum).toBe(jobs.length);
    expect(after.count - before.count).toBeLessThan(jobs.length);

    for (const [index, job] of jobs.entries()) {
      if (job.expect) expect({ index, status: sent[index].status }).toEqual({ index, status: job.expect });
      if (job.expect !== 201) continue;
      const records = sent[index].body.records;
      expect(records).toHaveLength(job.counts.length ? 1 : 0);
      if (records.length) {
        expect(records[0]).toMatchObject({ requestId: job.body.requestId, amount: Number(job.body.amount), currency: 'USD' });
        expect(job.counts).toContain(records[0].budgetId);
      }
    }
    for (let i = 0; i < 10; i++) {
      const pair = sent.filter((_, index) => jobs[index].body.requestId === `twice-${i}`);
      expect(pair.map((s) => s.status).sort()).toEqual([200, 201]);
      expect(pair.find((s) => s.status === 200)!.replayed).toBe('true');
      expect(pair[0].body.records[0].id).toBe(pair[1].body.records[0].id);
    }

    // Each refusal, and each write that matched no budget, is the single write's own, word for
    // word: sent again one at a time (each alone in its group), the same status and body come back.
    for (const [index, job] of jobs.entries()) {
      if (job.expect >= 400 || (job.expect === 201 && job.counts.length === 0)) {
        const alone = await post(job.body);
        expect(alone.status).toBe(sent[index].status);
        expect(alone.body).toEqual(alone.status >= 400 ? { ...sent[index].body, instance: alone.body.instance } : sent[index].body);
      }
    }
    expect(sent.find((s, index) => jobs[index].body.requestId === 'reused')!.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(sent.find((s, index) => jobs[index].body.requestId === 'euros-0')!.body).toMatchObject({ code: 'CURRENCY_MISMATCH' });

    // Every budget counted exactly the records that match it: one ledger row per request, and an
    // attribution row for each further budget it matched.
    const expected = new Map<string, number>();
    for (const job of jobs) {
      if (job.expect === 409 || job.expect === 422) continue;
      if (job.expect === 0 && job.body.requestId.startsWith('twice-') && jobs.findIndex((j) => j.body.requestId === job.body.requestId) !== jobs.indexOf(job)) continue;
      for (const id of job.counts) expected.set(id, (expected.get(id) ?? 0) + 1);
    }
    expected.set(user.id, (expected.get(user.id) ?? 0) + 1); // 'reused'
    expected.set(team.id, (expected.get(team.id) ?? 0) + 1);
    expected.set(org.id, (expected.get(org.id) ?? 0) + 1);
    const counted = await t.sql(
      `SELECT budget_id, usage_count::int AS n FROM budget_status_cache WHERE budget_id = ANY ($1::uuid[])`,
      [[org.id, team.id, user.id, project.id, customer.id, euros.id]],
    );
    expect(Object.fromEntries(counted.map((row) => [row.budget_id, row.n]))).toEqual({
      [org.id]: expected.get(org.id), [team.id]: expected.get(team.id), [user.id]: expected.get(user.id),
      [project.id]: expected.get(project.id), [customer.id]: expected.get(customer.id), [euros.id]: 0,
    });
    // Recorded by the groups themselves (rows of one transaction share its recorded_at), not only
    // by the writes a group handed back to be written alone.
    // (Two transactions alone may start in one microsecond; five never do.)
    const [shared] = await t.sql(
      `SELECT sum(n)::int AS n, max(n)::int AS largest
       FROM (SELECT count(*) AS n FROM budget_usage_records WHERE request_id LIKE 'new-%' GROUP BY recorded_at) g`,
    );
    expect(shared.n).toBe(120);
    expect(shared.largest).toBeGreaterThanOrEqual(5);
    const requests = await t.sql(`SELECT count(*)::int AS n FROM budget_integration_requests`);
    const rows = await t.sql(`SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS ids FROM budget_usage_records WHERE request_id IS NOT NULL`);
    expect(rows[0]).toEqual({ n: requests[0].n, ids: requests[0].n });
    await expectCacheMatchesLedger(t, [org.id, team.id, user.id, project.id, customer.id, euros.id]);
  });

  it('two instances writing gateway usage into one tree at once: every write recorded once, no deadlock, cache == ledger', async () => {
    const other = await createTestApp({ listen: true, databaseUrl: t.databaseUrl });
    try {
      const org = await createBudget({ scopeType: 'organization' });
      const teams: { id: string; scopeId: string }[] = [];
      for (let i = 0; i < 4; i++) teams.push(await createBudget({ scopeType: 'team', parentId: org.id }));
      const users: { id: string; scopeId: string; team: { scopeId: string } }[] = [];
      for (const team of teams) for (let i = 0; i < 4; i++) users.push({ ...(await createBudget({ scopeType: 'user', parentId: team.id })), team });
      const project = await createBudget({ scopeType: 'project' });
      const deadlocksBefore = await deadlockCount(t.databaseUrl);
      const writes = Array.from({ length: 1200 }, (_, i) => ({ user: users[i % users.length], i }));
      let next = 0;
      const sent: Sent[] = [];
      const worker = async (base: string) => {
        while (next < writes.length) {
          const { user, i } = writes[next++];
          sent.push(await post({
            requestId: `tree-${i}`, amount: `0.${String((i % 97) + 1).padStart(3, '0')}`, currency: 'USD',
            organizationId: org.scopeId, teamId: user.team.scopeId, userId: user.scopeId,
            // Every third request also names a budget of another tree: two chains in one record.
            ...(i % 3 === 0 ? { projectId: project.scopeId } : {}),
          }, base));
        }
      };
      await Promise.all([
        ...Array.from({ length: 48 }, () => worker(t.baseUrl!)),
        ...Array.from({ length: 48 }, () => worker(other.baseUrl!)),
      ]);
      expect(sent.filter((s) => s.status !== 201 || s.body.records.length !== 1)).toEqual([]);
      expect(await deadlockCount(t.databaseUrl)).toBe(deadlocksBefore);
      const ids = [org, ...teams, ...users, project].map((b) => b.id);
      await expectCacheMatchesLedger(t, ids);
      const [root] = await t.sql(`SELECT usage_count::int AS n FROM budget_status_cache WHERE budget_id = $1`, [org.id]);
      expect(root.n).toBe(1200);
      const [shared] = await t.sql(
        `SELECT max(n)::int AS largest
         FROM (SELECT count(*) AS n FROM budget_usage_records WHERE request_id LIKE 'tree-%' GROUP BY recorded_at) g`,
      );
      expect(shared.largest).toBeGreaterThanOrEqual(5);
      const [side] = await t.sql(`SELECT usage_count::int AS n FROM budget_status_cache WHERE budget_id = $1`, [project.id]);
      expect(side.n).toBe(400);
    } finally {
      await other.close();
    }
  });

  it('one client writing one request at a time commits each write alone, and replays answer as before', async () => {
    const org = await createBudget({ scopeType: 'organization' });
    const before = await groups();
    for (let i = 0; i < 10; i++) {
      const sent = await post({ requestId: `alone-${seq}-${i}`, amount: '0.25', currency: 'USD', organizationId: org.scopeId });
      expect(sent.status).toBe(201);
    }
    const replay = await post({ requestId: `alone-${seq}-0`, amount: '0.25', currency: 'USD', organizationId: org.scopeId });
    expect(replay).toMatchObject({ status: 200, replayed: 'true' });
    const after = await groups();
    expect({ groups: after.count - before.count, writes: after.sum - before.sum }).toEqual({ groups: 11, writes: 11 });
    const [status] = await t.sql(`SELECT usage_count::int AS n, current_amount::text AS amount FROM budget_status_cache WHERE budget_id = $1`, [org.id]);
    expect(status).toEqual({ n: 10, amount: expect.stringMatching(/^2\.50*$/) });
  });
});
