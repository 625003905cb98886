import { expectCacheMatchesLedger } from './setup/ledger-checks';
import { postJson, type HttpAnswer } from './setup/http';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * Issue 6 acceptance 1 (SPEC §3 "Reservations"): the overshoot spec. A hard budget of 100 and 200
 * concurrent clients split over TWO service instances on ONE database, each looping "check with
 * reserve: true (1.7) → settle the reservation with a usage of 1.7" until it is refused. Holds are
 * the only thing standing between the check and the usage, so:
 *   committed spend ≤ 100, granted × 1.7 ≤ 100, granted ≥ 58 (⌊100 / 1.7⌋), no 5xx,
 *   cache == calculate_budget_status for every budget.
 * Run three ways: one budget; a 3-level hierarchy where the org's 100 binds two users in two
 * teams; the integration endpoints (scopes, requestId, reservationId).
 */

const API = '/api/v1';
const CLIENTS = 200;
const ESTIMATE = '1.7';
const LIMIT = 100;
/** 58 × 1.7 = 98.6 fits, 59 × 1.7 = 100.3 does not. */
const MAX_GRANTS = Math.floor(LIMIT / Number(ESTIMATE));
/** A client that is never refused would loop forever: this many grants per client is already a failure. */
const MAX_LOOPS_PER_CLIENT = 80;

interface Budget {
  id: string;
  parentId: string | null;
}

const post = postJson;

interface RunFigures {
  label: string;
  granted: number;
  refused: number;
  settled: number;
  checks: number;
  seconds: number;
  serverErrors: { status: number; text: string }[];
  unexpected: { step: string; status: number; text: string }[];
  grantsWithoutId: number;
}

/**
 * `check(base, client)` answers the check (200 with canProceed and reservationId), `settle(base,
 * reservationId, n)` the usage write. Clients alternate between the instances.
 */
async function overshootRun(
  label: string,
  bases: string[],
  check: (base: string, client: number) => Promise<HttpAnswer>,
  settle: (base: string, reservationId: string, n: string) => Promise<HttpAnswer>,
): Promise<RunFigures> {
  const figures: RunFigures = {
    label, granted: 0, refused: 0, settled: 0, checks: 0, seconds: 0, serverErrors: [], unexpected: [], grantsWithoutId: 0,
  };
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      const base = bases[client % bases.length];
      for (let loop = 0; loop < MAX_LOOPS_PER_CLIENT; loop += 1) {
        const answer = await check(base, client);
        figures.checks += 1;
        if (answer.status >= 500) figures.serverErrors.push({ status: answer.status, text: answer.text });
        if (answer.status !== 200) {
          figures.unexpected.push({ step: 'check', status: answer.status, text: answer.text.slice(0, 300) });
          return;
        }
        if (!answer.body.canProceed) {
          figures.refused += 1;
          return;
        }
        figures.granted += 1;
        const reservationId: string | undefined = answer.body.reservationId;
        if (!reservationId) {
          figures.grantsWithoutId += 1;
          return;
        }
        const usage = await settle(base, reservationId, `${label}-${client}-${loop}`);
        if (usage.status >= 500) figures.serverErrors.push({ status: usage.status, text: usage.text });
        if (usage.status !== 201) {
          figures.unexpected.push({ step: 'usage', status: usage.status, text: usage.text.slice(0, 300) });
          return;
        }
        figures.settled += 1;
      }
    }),
  );
  figures.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return figures;
}

describe('Reservations: overshoot-proof hard budgets across two service instances (real HTTP)', () => {
  let a: TestApp;
  let b: TestApp;
  let bases: string[];

  const createBudget = async (body: Record<string, unknown>): Promise<Budget> => {
    const res = await a.request('POST', `${API}/budgets`, {
      name: `Overshoot ${body.scopeType} ${body.scopeId}`,
      amount: LIMIT,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      enforcement: 'hard',
      ...body,
    });
    expect(res.status).toBe(201);
    return res.body;
  };

  /** Committed spend of a budget = the SQL sum of its subtree's records (exact, as text). */
  const committed = async (rootId: string): Promise<{ sum: string; n: number; settledIds: number }> => {
    const [row] = await a.sql(
      `WITH RECURSIVE tree AS (SELECT $1::uuid AS id UNION ALL
                               SELECT d.id FROM budget_definitions d JOIN tree t ON d.parent_id = t.id)
       SELECT trim_scale(coalesce(sum(u.amount), 0))::text AS sum, count(*)::int AS n,
              count(DISTINCT u.reservation_id)::int AS "settledIds"
       FROM budget_usage_records u WHERE u.budget_id IN (SELECT id FROM tree)`,
      [rootId],
    );
    return row;
  };

  const expectInvariants = async (figures: RunFigures, rootId: string, allIds: string[]) => {
    const spend = await committed(rootId);
    // eslint-disable-next-line no-console
    console.info(
      `overshoot [${figures.label}]: granted ${figures.granted}, refused ${figures.refused}, committed ${spend.sum} ` +
        `(${spend.n} records), ${figures.seconds.toFixed(2)} s; ${figures.checks} checks, ${CLIENTS} clients over 2 instances, ` +
        `5xx ${figures.serverErrors.length}, other unexpected ${figures.unexpected.length - figures.serverErrors.length}`,
    );
    expect(figures.serverErrors.slice(0, 3)).toEqual([]);
    expect(figures.unexpected.slice(0, 3)).toEqual([]);
    expect(figures.grantsWithoutId).toBe(0);
    // Every client ended on a refusal (none gave up after MAX_LOOPS_PER_CLIENT grants).
    expect(figures.refused).toBe(CLIENTS);
    // granted × 1.7 ≤ 100 and at least ⌊100 / 1.7⌋ = 58 granted: exactly 58.
    expect(figures.granted * Number(ESTIMATE)).toBeLessThanOrEqual(LIMIT);
    expect(figures.granted).toBeGreaterThanOrEqual(MAX_GRANTS);
    expect(figures.settled).toBe(figures.granted);

    expect(Number(spend.sum)).toBeLessThanOrEqual(LIMIT);
    expect(spend.n).toBe(figures.settled);
    expect(spend.settledIds).toBe(figures.settled);
    expect(spend.sum).toBe((figures.settled * 17 / 10).toFixed(1).replace(/\.0$/, ''));

    // Every reservation was settled: no hold is left, none counts.
    const [open] = await a.sql(
      `SELECT (SELECT count(*)::int FROM budget_reservation_holds WHERE budget_id = ANY ($1::uuid[])) AS holds,
              (SELECT count(*)::int FROM budget_reservations r
                WHERE r.id IN (SELECT reservation_id FROM budget_usage_records WHERE budget_id = ANY ($1::uuid[]))
                  AND r.state <> 'settled') AS unsettled`,
      [allIds],
    );
    expect(open).toEqual({ holds: 0, unsettled: 0 });
    await expectCacheMatchesLedger(a, allIds);

    const status = await a.request('GET', `${API}/budgets/${rootId}/status`);
    expect(status.status).toBe(200);
    expect(status.body.reservedAmount).toBe(0);
    expect(status.body.currentAmount).toBeLessThanOrEqual(LIMIT);
  };

  beforeAll(async () => {
    a = await createTestApp({ listen: true });
    b = await createTestApp({ listen: true, databaseUrl: a.databaseUrl });
    bases = [a.baseUrl!, b.baseUrl!];
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('one hard budget of 100: 200 clients reserving and settling 1.7 never overshoot, and 58 are granted', async () => {
    const budget = await createBudget({ scopeType: 'team', scopeId: 'overshoot-single' });
    const figures = await overshootRun(
      'single',
      bases,
      (base) => post(base, `/budgets/${budget.id}/check-constraints`, { estimatedCost: 1.7, reserve: true }, a.keys.service),
      (base, reservationId, n) =>
        post(base, `/budgets/${budget.id}/usage`, { amount: 1.7, currency: 'USD', reservationId }, a.keys.service, {
          'Idempotency-Key': `overshoot-${n}`,
        }),
    );
    await expectInvariants(figures, budget.id, [budget.id]);
  });

  it('3 levels (org 100 > team > user): two users of one org reserving at once never pass the org limit', async () => {
    const org = await createBudget({ scopeType: 'organization', scopeId: 'overshoot-org' });
    const teamA = await createBudget({ scopeType: 'team', scopeId: 'overshoot-team-a', parentId: org.id });
    const teamB = await createBudget({ scopeType: 'team', scopeId: 'overshoot-team-b', parentId: org.id });
    const userA = await createBudget({ scopeType: 'user', scopeId: 'overshoot-user-a', parentId: teamA.id });
    const userB = await createBudget({ scopeType: 'user', scopeId: 'overshoot-user-b', parentId: teamB.id });
    const users = [userA, userB];
    const figures = await overshootRun(
      'hierarchy',
      bases,
      // Clients 0,1 → instance A/B on user A; 2,3 → instance A/B on user B; and so on.
      (base, client) =>
        post(base, `/budgets/${users[Math.floor(client / 2) % 2].id}/check-constraints`, { estimatedCost: 1.7, reserve: true }, a.keys.service),
      (base, reservationId, n) => {
        const client = Number(n.split('-')[1]);
        return post(base, `/budgets/${users[Math.floor(client / 2) % 2].id}/usage`, { amount: 1.7, currency: 'USD', reservationId }, a.keys.service, {
          'Idempotency-Key': `hierarchy-${n}`,
        });
      },
    );
    await expectInvariants(figures, org.id, [org.id, teamA.id, teamB.id, userA.id, userB.id]);
    // Both users got some of the org's room (the split is free, the sum is not).
    const [perUser] = await a.sql(
      `SELECT count(*) FILTER (WHERE budget_id = $1)::int AS a, count(*) FILTER (WHERE budget_id = $2)::int AS b
       FROM budget_usage_records WHERE budget_id IN ($1, $2)`,
      [userA.id, userB.id],
    );
    expect(perUser.a + perUser.b).toBe(figures.granted);
    expect(perUser.a).toBeGreaterThan(0);
    expect(perUser.b).toBeGreaterThan(0);
  });

  it('integration endpoints: check with reserve: true and usage with reservationId never pass the org limit', async () => {
    const org = await createBudget({ scopeType: 'organization', scopeId: 'int-org' });
    const team = await createBudget({ scopeType: 'team', scopeId: 'int-team', parentId: org.id });
    const userA = await createBudget({ scopeType: 'user', scopeId: 'int-user-a', parentId: team.id });
    const userB = await createBudget({ scopeType: 'user', scopeId: 'int-user-b', parentId: team.id });
    const scopesOf = (client: number) => ({
      organizationId: 'int-org',
      teamId: 'int-team',
      userId: Math.floor(client / 2) % 2 === 0 ? 'int-user-a' : 'int-user-b',
    });
    const figures = await overshootRun(
      'integration',
      bases,
      (base, client) =>
        post(base, '/integration/check-constraints', { ...scopesOf(client), estimatedCost: 1.7, currency: 'USD', reserve: true }, a.keys.service),
      (base, reservationId, n) => {
        const client = Number(n.split('-')[1]);
        return post(
          base,
          '/integration/usage',
          { ...scopesOf(client), amount: 1.7, currency: 'USD', requestId: `int-${n}`, reservationId },
          a.keys.service,
        );
      },
    );
    await expectInvariants(figures, org.id, [org.id, team.id, userA.id, userB.id]);
  });
});
