import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../src/common/clock';
import { ReservationService } from '../src/constraint/reservation.service';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * Issue 6 acceptance 2–4 and the reservation API (SPEC §3 "Reservations", §10):
 * - expiry: a hold with a 1-second TTL stops counting by itself, and the sweep tidies it up;
 * - crash: holds of a service process killed with SIGKILL expire and free the budget;
 * - settling: an actual cost below the estimate frees the difference at once, replays change
 *   nothing; DELETE /reservations/:id; roles; all-or-none holds over the ancestors.
 */

const API = '/api/v1';
const BUDGETS = `${API}/budgets`;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

describe('Reservations (holds)', () => {
  let t: TestApp;
  let seq = 0;

  const createBudget = async (body: Record<string, unknown>): Promise<{ id: string; name: string }> => {
    seq += 1;
    const res = await t.request('POST', BUDGETS, {
      name: `Reservations ${body.scopeType ?? 'team'} ${seq}`,
      scopeType: 'team',
      scopeId: `res-${seq}`,
      amount: 100,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      enforcement: 'hard',
      ...body,
    });
    expect(res.status).toBe(201);
    return res.body;
  };

  const service = () => ({ authorization: `Bearer ${t.keys.service}` });
  const viewer = () => ({ authorization: `Bearer ${t.keys.viewer}` });

  const check = (budgetId: string, body: Record<string, unknown>, headers = service()) =>
    t.request('POST', `${BUDGETS}/${budgetId}/check-constraints`, body, headers);
  const status = async (budgetId: string) => {
    const res = await t.request('GET', `${BUDGETS}/${budgetId}/status`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const holdCount = async () =>
    Number((await t.sql(`SELECT count(*)::int AS n FROM budget_reservation_holds`))[0].n);
  const reservationCount = async () => Number((await t.sql(`SELECT count(*)::int AS n FROM budget_reservations`))[0].n);

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterAll(async () => {
    await t?.close();
  });

  describe('expiry (acceptance 2)', () => {
    it('a hold with reservationTtlSeconds 1 stops counting after its expiry without any settle or sweep', async () => {
      const budget = await createBudget({});
      const held = await check(budget.id, { estimatedCost: 60, reserve: true, reservationTtlSeconds: 1 });
      expect(held.status).toBe(200);
      expect(held.body).toMatchObject({ canProceed: true, reservedAmount: 0, remaining: 100 });
      expect(held.body.reservationId).toEqual(expect.any(String));
      const expiresAt = Date.parse(held.body.reservationExpiresAt);
      expect(expiresAt - Date.now()).toBeLessThanOrEqual(1000);

      // While it lives it counts: in the status and in `after` of a later check.
      const during = await check(budget.id, { estimatedCost: 50 });
      expect(during.status).toBe(200);
      if (Date.now() < expiresAt - 50) {
        expect(during.body).toMatchObject({ canProceed: false, reservedAmount: 60, remaining: 40, percentUsedAfter: 110 });
      }

      await sleep(Math.max(0, expiresAt - Date.now()) + 150);
      const after = await status(budget.id);
      expect(after).toMatchObject({ reservedAmount: 0, currentAmount: 0, remaining: 100 });
      const room = await check(budget.id, { estimatedCost: 50 });
      expect(room.body).toMatchObject({ canProceed: true, reservedAmount: 0, remaining: 100, percentUsedAfter: 50 });
      // A reservation that needs the expired hold's room is granted too.
      const again = await check(budget.id, { estimatedCost: 95, reserve: true, reservationTtlSeconds: 60 });
      expect(again.body).toMatchObject({ canProceed: true, reservedAmount: 0 });
      expect(again.body.reservationId).toEqual(expect.any(String));
      expect((await status(budget.id)).reservedAmount).toBe(95);
      expect((await t.request('DELETE', `${API}/reservations/${again.body.reservationId}`, undefined, service())).status).toBe(204);
    });

    it('a 1-second hold on a child counts on every ancestor (status and hierarchy view), then on none', async () => {
      const org = await createBudget({ scopeType: 'organization', scopeId: 'res-exp-org' });
      const team = await createBudget({ scopeType: 'team', scopeId: 'res-exp-team', parentId: org.id });
      const user = await createBudget({ scopeType: 'user', scopeId: 'res-exp-user', parentId: team.id });
      const held = await check(user.id, { estimatedCost: 30, reserve: true, reservationTtlSeconds: 1 });
      expect(held.body).toMatchObject({ canProceed: true });
      const expiresAt = Date.parse(held.body.reservationExpiresAt);
      const [{ n }] = await t.sql(`SELECT count(*)::int AS n FROM budget_reservation_holds WHERE reservation_id = $1`, [
        held.body.reservationId,
      ]);
      expect(n).toBe(3);
      const tree = await t.request('GET', `${BUDGETS}/hierarchy/user/res-exp-user`);
      expect(tree.status).toBe(200);
      if (Date.now() < expiresAt - 50) {
        const family = tree.body.budgets[0];
        expect(family.budget.status.reservedAmount).toBe(30);
        expect(family.ancestors.map((node: any) => node.status.reservedAmount)).toEqual([30, 30]);
        // An org check must see the child's hold: 30 held + 75 > 100.
        expect((await check(org.id, { estimatedCost: 75 })).body).toMatchObject({ canProceed: false, reservedAmount: 30 });
      }
      await sleep(Math.max(0, expiresAt - Date.now()) + 150);
      for (const id of [user.id, team.id, org.id]) expect((await status(id)).reservedAmount).toBe(0);
      const treeAfter = await t.request('GET', `${BUDGETS}/hierarchy/user/res-exp-user`);
      expect(treeAfter.body.budgets[0].budget.status.reservedAmount).toBe(0);
      expect(treeAfter.body.budgets[0].ancestors.map((node: any) => node.status.reservedAmount)).toEqual([0, 0]);
      expect((await check(org.id, { estimatedCost: 75 })).body).toMatchObject({ canProceed: true, reservedAmount: 0 });
    });

    it('the sweep marks expired holds expired and deletes their hold rows, leaving live holds alone', async () => {
      const parent = await createBudget({ scopeType: 'organization', scopeId: 'res-sweep-org' });
      const budget = await createBudget({ scopeType: 'team', scopeId: 'res-sweep-team', parentId: parent.id });
      const short = await check(budget.id, { estimatedCost: 20, reserve: true, reservationTtlSeconds: 1 });
      const short2 = await check(budget.id, { estimatedCost: 5, reserve: true, reservationTtlSeconds: 1 });
      const long = await check(budget.id, { estimatedCost: 10, reserve: true, reservationTtlSeconds: 600 });
      for (const res of [short, short2, long]) expect(res.body.reservationId).toEqual(expect.any(String));
      await sleep(Math.max(0, Date.parse(short2.body.reservationExpiresAt) - Date.now()) + 150);

      const swept = await t.app.get(ReservationService).sweep();
      expect(swept).toBeGreaterThanOrEqual(0);
      const rows = await t.sql(
        `SELECT r.id, r.state, r.closed_at IS NOT NULL AS closed,
                (SELECT count(*)::int FROM budget_reservation_holds h WHERE h.reservation_id = r.id) AS holds
         FROM budget_reservations r WHERE r.id = ANY ($1::uuid[])`,
        [[short.body.reservationId, short2.body.reservationId, long.body.reservationId]],
      );
      const byId = Object.fromEntries(rows.map((row: any) => [row.id, row]));
      expect(byId[short.body.reservationId]).toMatchObject({ state: 'expired', closed: true, holds: 0 });
      expect(byId[short2.body.reservationId]).toMatchObject({ state: 'expired', closed: true, holds: 0 });
      expect(byId[long.body.reservationId]).toMatchObject({ state: 'held', closed: false, holds: 2 });
      expect((await status(budget.id)).reservedAmount).toBe(10);
      expect((await status(parent.id)).reservedAmount).toBe(10);

      // Nothing left to expire: a second sweep expires none, and an expired hold cannot be released.
      expect(await t.app.get(ReservationService).sweep()).toBe(0);
      const release = await t.request('DELETE', `${API}/reservations/${short.body.reservationId}`, undefined, service());
      expect(release.status).toBe(409);
      expect((await t.request('DELETE', `${API}/reservations/${long.body.reservationId}`, undefined, service())).status).toBe(204);

      // Closed reservations are forgotten after a day, so the table does not grow without bound.
      const clock = t.app.get(Clock);
      const tomorrow = new Date(Date.now() + 25 * 3600_000);
      const spy = jest.spyOn(clock, 'now').mockReturnValue(tomorrow);
      try {
        await t.app.get(ReservationService).sweep();
      } finally {
        spy.mockRestore();
      }
      const left = await t.sql(`SELECT id FROM budget_reservations WHERE id = ANY ($1::uuid[])`, [
        [short.body.reservationId, short2.body.reservationId, long.body.reservationId],
      ]);
      expect(left).toEqual([]);
    });

    it('the sweep is a scheduled job of the running service', () => {
      const intervals = t.app.get(SchedulerRegistry).getIntervals();
      expect(intervals.length).toBeGreaterThanOrEqual(1);
    });

    it('reservationTtlSeconds is an integer from 1 to 3600; reserve is a boolean', async () => {
      const budget = await createBudget({});
      const holdsBefore = await holdCount();
      for (const bad of [0, 3601, 1.5, '60', -1]) {
        const res = await check(budget.id, { estimatedCost: 1, reserve: true, reservationTtlSeconds: bad });
        expect([bad, res.status]).toEqual([bad, 400]);
        expect(res.body.errors.map((e: any) => e.field)).toContain('reservationTtlSeconds');
      }
      expect((await check(budget.id, { estimatedCost: 1, reserve: 'yes' })).status).toBe(400);
      expect(await holdCount()).toBe(holdsBefore);
      const max = await check(budget.id, { estimatedCost: 1, reserve: true, reservationTtlSeconds: 3600 });
      expect(max.status).toBe(200);
      const ttl = Date.parse(max.body.reservationExpiresAt) - Date.now();
      expect(ttl).toBeGreaterThan(3590_000);
      expect(ttl).toBeLessThanOrEqual(3600_000);
      expect((await t.request('DELETE', `${API}/reservations/${max.body.reservationId}`, undefined, service())).status).toBe(204);
    });
  });

  describe('crash (acceptance 3)', () => {
    const children = new Set<ChildProcess>();
    afterAll(() => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    it('holds made by a service process killed with SIGKILL expire and free the budget', async () => {
      const budget = await createBudget({});
      const port = await freePort();
      const adminKey = `crash-admin-${randomUUID()}`;
      const { ADMIN_API_KEY: _a, DATABASE_URL: _d, NODE_ENV: _n, PORT: _p, ...inherited } = process.env;
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
        cwd: resolve(__dirname, '..'),
        env: {
          ...inherited,
          TS_NODE_TRANSPILE_ONLY: 'true',
          DATABASE_URL: t.databaseUrl,
          PORT: String(port),
          HOST: '127.0.0.1',
          ADMIN_API_KEY: adminKey,
          NODE_ENV: 'test',
          DATABASE_POOL_SIZE: '4',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let output = '';
      child.stdout!.on('data', (chunk) => (output += chunk));
      child.stderr!.on('data', (chunk) => (output += chunk));
      const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, signal) => done(signal)));

      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 45_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`the service exited:\n${output}`);
        if (Date.now() > deadline) throw new Error(`the service did not become live:\n${output}`);
        const live = await fetch(`${base}/health/live`).then((res) => res.status, () => 0);
        if (live === 200) break;
        await sleep(100);
      }

      const reserve = await fetch(`${base}${BUDGETS}/${budget.id}/check-constraints`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
        body: JSON.stringify({ estimatedCost: 70, reserve: true, reservationTtlSeconds: 5 }),
      });
      expect(reserve.status).toBe(200);
      const held = await reserve.json();
      expect(held).toMatchObject({ canProceed: true, budgetId: budget.id });
      expect(held.reservationId).toEqual(expect.any(String));
      const expiresAt = Date.parse(held.reservationExpiresAt);

      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');

      // The dead process's hold still counts until its expiry (seen from the in-process app)…
      // (A 5-second hold leaves the read seconds before the expiry; the first line checks it did.)
      const during = await status(budget.id);
      const readBy = Date.now();
      expect(readBy).toBeLessThan(expiresAt - 100);
      expect(during.reservedAmount).toBe(70);
      const [row] = await t.sql(`SELECT state FROM budget_reservations WHERE id = $1`, [held.reservationId]);
      expect(row.state).toBe('held');

      // …and not a moment longer: no settle, no release, no sweep.
      await sleep(Math.max(0, expiresAt - Date.now()) + 150);
      expect(await status(budget.id)).toMatchObject({ reservedAmount: 0, currentAmount: 0, remaining: 100 });
      const needsRoom = await check(budget.id, { estimatedCost: 80 });
      expect(needsRoom.body).toMatchObject({ canProceed: true, reservedAmount: 0 });
      const reserveAgain = await check(budget.id, { estimatedCost: 80, reserve: true, reservationTtlSeconds: 30 });
      expect(reserveAgain.body).toMatchObject({ canProceed: true });
      expect(reserveAgain.body.reservationId).toEqual(expect.any(String));

      // The sweep of a surviving instance closes the dead one's reservation: nothing counts forever.
      await t.app.get(ReservationService).sweep();
      const [after] = await t.sql(
        `SELECT r.state, (SELECT count(*)::int FROM budget_reservation_holds h WHERE h.reservation_id = r.id) AS holds
         FROM budget_reservations r WHERE r.id = $1`,
        [held.reservationId],
      );
      expect(after).toEqual({ state: 'expired', holds: 0 });
      expect((await t.request('DELETE', `${API}/reservations/${reserveAgain.body.reservationId}`, undefined, service())).status).toBe(204);
    }, 60_000);
  });

  describe('settling (acceptance 4)', () => {
    it('settling 4 against a hold of 10 frees the difference at once; a replay changes nothing', async () => {
      const budget = await createBudget({});
      const held = await check(budget.id, { estimatedCost: 10, reserve: true });
      expect(held.status).toBe(200);
      expect(held.body).toMatchObject({ canProceed: true, estimatedCost: 10 });
      const reservationId = held.body.reservationId;
      expect(reservationId).toEqual(expect.any(String));
      // Default TTL 300 s.
      const ttl = Date.parse(held.body.reservationExpiresAt) - Date.now();
      expect(ttl).toBeGreaterThan(290_000);
      expect(ttl).toBeLessThanOrEqual(300_000);
      expect(await status(budget.id)).toMatchObject({ reservedAmount: 10, currentAmount: 0 });
      expect((await check(budget.id, { estimatedCost: 1 })).body).toMatchObject({ reservedAmount: 10, remaining: 90 });

      const body = { amount: 4, currency: 'USD', reservationId };
      const settled = await t.request('POST', `${BUDGETS}/${budget.id}/usage`, body, { ...service(), 'idempotency-key': 'settle-4' });
      expect(settled.status).toBe(201);
      expect(settled.body).toMatchObject({ amount: 4, reservationId });
      const afterSettle = await status(budget.id);
      expect(afterSettle).toMatchObject({ reservedAmount: 0, currentAmount: 4, remaining: 96, usageCount: 1 });
      const full = await check(budget.id, { estimatedCost: 96 });
      expect(full.body).toMatchObject({ canProceed: true, reservedAmount: 0, currentAmount: 4, remaining: 96, percentUsedAfter: 100 });
      expect((await check(budget.id, { estimatedCost: 96.01 })).body.canProceed).toBe(false);
      const [reservation] = await t.sql(`SELECT state FROM budget_reservations WHERE id = $1`, [reservationId]);
      expect(reservation.state).toBe('settled');

      // Settling twice: the same key and body replays, counts once, changes nothing.
      const replay = await t.request('POST', `${BUDGETS}/${budget.id}/usage`, body, { ...service(), 'idempotency-key': 'settle-4' });
      expect(replay.status).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body.id).toBe(settled.body.id);
      expect(await status(budget.id)).toMatchObject({ reservedAmount: 0, currentAmount: 4, remaining: 96, usageCount: 1 });
      const [{ n }] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_records WHERE budget_id = $1`, [budget.id]);
      expect(n).toBe(1);
      // A settled reservation can no longer be released.
      expect((await t.request('DELETE', `${API}/reservations/${reservationId}`, undefined, service())).status).toBe(409);
    });

    it('through the integration endpoints: settling below the estimate frees the difference on every ancestor', async () => {
      const org = await createBudget({ scopeType: 'organization', scopeId: 'res-int-org' });
      const team = await createBudget({ scopeType: 'team', scopeId: 'res-int-team', parentId: org.id });
      const user = await createBudget({ scopeType: 'user', scopeId: 'res-int-user', parentId: team.id });
      const scopes = { organizationId: 'res-int-org', teamId: 'res-int-team', userId: 'res-int-user' };
      const held = await t.request('POST', `${API}/integration/check-constraints`, {
        ...scopes, estimatedCost: 10, currency: 'USD', reserve: true,
      }, service());
      expect(held.status).toBe(200);
      expect(held.body.canProceed).toBe(true);
      expect(held.body.reservationId).toEqual(expect.any(String));
      expect(held.body.reservationExpiresAt).toEqual(expect.any(String));
      for (const id of [user.id, team.id, org.id]) expect((await status(id)).reservedAmount).toBe(10);
      // Later checks and the summary count the hold on every budget of the chain.
      const during = await t.request('POST', `${API}/integration/check-constraints`, { ...scopes, estimatedCost: 1, currency: 'USD' }, service());
      expect(during.body.results.map((r: any) => [r.budgetId, r.reservedAmount, r.remaining]).sort()).toEqual(
        [user.id, team.id, org.id].map((id) => [id, 10, 90]).sort(),
      );
      const summary = await t.request('GET', `${API}/integration/summary?organizationId=res-int-org&teamId=res-int-team&userId=res-int-user`);
      expect(summary.status).toBe(200);
      expect(summary.body.budgets.map((b: any) => b.status.reservedAmount)).toEqual([10, 10, 10]);

      const usage = { ...scopes, amount: 4, currency: 'USD', requestId: 'res-int-req-1', reservationId: held.body.reservationId };
      const settled = await t.request('POST', `${API}/integration/usage`, usage, service());
      expect(settled.status).toBe(201);
      for (const id of [user.id, team.id, org.id]) {
        expect(await status(id)).toMatchObject({ reservedAmount: 0, currentAmount: 4, remaining: 96 });
      }
      const replay = await t.request('POST', `${API}/integration/usage`, usage, service());
      expect(replay.status).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      for (const id of [user.id, team.id, org.id]) {
        expect(await status(id)).toMatchObject({ reservedAmount: 0, currentAmount: 4, remaining: 96, usageCount: 1 });
      }
      const room = await t.request('POST', `${API}/integration/check-constraints`, { ...scopes, estimatedCost: 96, currency: 'USD' }, service());
      expect(room.body.canProceed).toBe(true);
    });

    it('DELETE /reservations/:id: 204, then 409; unknown → 404; not a uuid → 400; the hold stops counting at once', async () => {
      const budget = await createBudget({});
      const held = await check(budget.id, { estimatedCost: 40, reserve: true });
      const id = held.body.reservationId;
      expect(id).toEqual(expect.any(String));
      expect((await status(budget.id)).reservedAmount).toBe(40);
      // A viewer may not release.
      expect((await t.request('DELETE', `${API}/reservations/${id}`, undefined, viewer())).status).toBe(403);
      expect((await status(budget.id)).reservedAmount).toBe(40);

      const released = await t.request('DELETE', `${API}/reservations/${id}`, undefined, service());
      expect(released.status).toBe(204);
      expect(await status(budget.id)).toMatchObject({ reservedAmount: 0, currentAmount: 0 });
      const [row] = await t.sql(
        `SELECT r.state, r.closed_at IS NOT NULL AS closed,
                (SELECT count(*)::int FROM budget_reservation_holds h WHERE h.reservation_id = r.id) AS holds
         FROM budget_reservations r WHERE r.id = $1`,
        [id],
      );
      expect(row).toEqual({ state: 'released', closed: true, holds: 0 });

      const again = await t.request('DELETE', `${API}/reservations/${id}`, undefined, service());
      expect(again.status).toBe(409);
      expect(again.headers['content-type']).toMatch(/application\/problem\+json/);
      const unknown = await t.request('DELETE', `${API}/reservations/${randomUUID()}`, undefined, service());
      expect(unknown.status).toBe(404);
      expect(unknown.headers['content-type']).toMatch(/application\/problem\+json/);
      expect((await t.request('DELETE', `${API}/reservations/not-a-uuid`, undefined, service())).status).toBe(400);
      expect((await t.request('DELETE', `${API}/reservations/${randomUUID()}`, undefined, { authorization: '' })).status).toBe(401);
    });

    it('releasing a hold past its expiry answers 409 "expired", before the sweep as after it', async () => {
      const budget = await createBudget({});
      const id = (await check(budget.id, { estimatedCost: 10, reserve: true, reservationTtlSeconds: 1 })).body.reservationId;
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const released = await t.request('DELETE', `${API}/reservations/${id}`, undefined, service());
      expect(released.status).toBe(409);
      expect(released.body.detail).toMatch(/expired/);
      expect((await t.sql(`SELECT state FROM budget_reservations WHERE id = $1`, [id]))[0].state).toBe('expired');
    });

    it('roles: a viewer reserving → 403 with no hold; a viewer checking without reserve → 200', async () => {
      const budget = await createBudget({ scopeType: 'team', scopeId: 'res-roles' });
      const holdsBefore = await holdCount();
      const reservationsBefore = await reservationCount();

      const denied = await check(budget.id, { estimatedCost: 5, reserve: true }, viewer());
      expect(denied.status).toBe(403);
      expect(denied.headers['content-type']).toMatch(/application\/problem\+json/);
      const deniedIntegration = await t.request('POST', `${API}/integration/check-constraints`, {
        teamId: 'res-roles', estimatedCost: 5, currency: 'USD', reserve: true,
      }, viewer());
      expect(deniedIntegration.status).toBe(403);
      expect(await holdCount()).toBe(holdsBefore);
      expect(await reservationCount()).toBe(reservationsBefore);

      const allowed = await check(budget.id, { estimatedCost: 5 }, viewer());
      expect(allowed.status).toBe(200);
      expect(allowed.body).toMatchObject({ canProceed: true });
      expect(allowed.body.reservationId).toBeUndefined();
      const allowedFalse = await check(budget.id, { estimatedCost: 5, reserve: false }, viewer());
      expect(allowedFalse.status).toBe(200);
      const allowedIntegration = await t.request('POST', `${API}/integration/check-constraints`, {
        teamId: 'res-roles', estimatedCost: 5, currency: 'USD',
      }, viewer());
      expect(allowedIntegration.status).toBe(200);
      expect(await holdCount()).toBe(holdsBefore);
    });

    it('a reservation whose ancestor lacks room is refused, names the ancestor, and places no hold anywhere', async () => {
      const org = await createBudget({ scopeType: 'organization', scopeId: 'res-anc-org' });
      const teamFull = await createBudget({ scopeType: 'team', scopeId: 'res-anc-team-1', parentId: org.id });
      const team = await createBudget({ scopeType: 'team', scopeId: 'res-anc-team-2', parentId: org.id });
      const user = await createBudget({ scopeType: 'user', scopeId: 'res-anc-user', parentId: team.id });
      const spent = await t.request('POST', `${BUDGETS}/${teamFull.id}/usage`, { amount: 95, currency: 'USD' }, {
        ...service(), 'idempotency-key': 'res-anc-spend',
      });
      expect(spent.status).toBe(201);
      const holdsBefore = await holdCount();
      const reservationsBefore = await reservationCount();

      // Through the API: the user and its team have room, the org (95 spent) does not.
      const refused = await check(user.id, { estimatedCost: 10, reserve: true });
      expect(refused.status).toBe(200);
      expect(refused.body.canProceed).toBe(false);
      expect(refused.body.blockedBy).toMatchObject({ budgetId: org.id, name: org.name, remaining: 5 });
      expect(refused.body.reservationId).toBeUndefined();
      const refusedIntegration = await t.request('POST', `${API}/integration/check-constraints`, {
        organizationId: 'res-anc-org', teamId: 'res-anc-team-2', userId: 'res-anc-user', estimatedCost: 10, currency: 'USD', reserve: true,
      }, service());
      expect(refusedIntegration.status).toBe(200);
      expect(refusedIntegration.body.canProceed).toBe(false);
      expect(refusedIntegration.body.blockedBy).toMatchObject({ budgetId: org.id });
      expect(refusedIntegration.body.reservationId).toBeUndefined();

      // In SQL, the statement a racing reserver runs: all or none, naming the org.
      const [placed] = await t.sql(
        `SELECT granted, reservation_id, blocking_budget_id
         FROM place_reservation(ARRAY[$1]::uuid[], '{}'::text[], '{}'::text[], 10, 'USD', 60, NULL, NULL, 'test')`,
        [user.id],
      );
      expect(placed).toEqual({ granted: false, reservation_id: null, blocking_budget_id: org.id });
      expect(await holdCount()).toBe(holdsBefore);
      expect(await reservationCount()).toBe(reservationsBefore);
      for (const id of [user.id, team.id, org.id]) expect((await status(id)).reservedAmount).toBe(0);

      // What fits the org (5) is granted, on the user, its team and the org.
      const fits = await check(user.id, { estimatedCost: 5, reserve: true });
      expect(fits.body.canProceed).toBe(true);
      const holds = await t.sql(`SELECT budget_id FROM budget_reservation_holds WHERE reservation_id = $1 ORDER BY budget_id`, [
        fits.body.reservationId,
      ]);
      expect(holds.map((h: any) => h.budget_id).sort()).toEqual([user.id, team.id, org.id].sort());
      // And now the org is full for anyone in it, held or not.
      expect((await check(teamFull.id, { estimatedCost: 0.01, reserve: true })).body).toMatchObject({
        canProceed: false,
        blockedBy: { budgetId: org.id },
      });
    });
  });
});
