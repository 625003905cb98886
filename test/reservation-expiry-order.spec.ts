import { Client } from 'pg';
import { createTestDatabase } from './setup/test-database';

/**
 * Reservations are locked in id order by everyone who locks several: a group commit settles its
 * writes' reservations in id order (record_usage_group, record_integration_usage_group), and the
 * expiry sweep (`expire_reservations`, migration ReservationExpiryOrder) takes its expired ones in
 * id order too. Before, the sweep's UPDATE took them in the table's physical order, so a group
 * settling A then B and a sweep that had taken B first waited for each other: a deadlock, which
 * PostgreSQL breaks after deadlock_timeout while the group holds its tree's cache rows.
 */
describe('expire_reservations locks in id order', () => {
  let url: string;
  const clients: Client[] = [];
  const connect = async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    url = await createTestDatabase();
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.end()));
  });

  it('a group settling two expired-but-held reservations and the sweep never deadlock', async () => {
    const setup = await connect();
    const [budget] = (
      await setup.query(
        `INSERT INTO budget_definitions (name, scope_type, scope_id, amount, currency, period, start_date, created_by)
         VALUES ('expiry order', 'project', 'expiry-order', 100, 'USD', 'monthly', now() - interval '1 day', 'spec') RETURNING id`,
      )
    ).rows;
    const place = async (requestId: string) =>
      (await setup.query(
        `SELECT reservation_id AS id FROM place_reservation(ARRAY[$1::uuid], '{}', '{}', 1, 'USD', 3600, NULL, $2, 'spec')`,
        [budget.id, requestId],
      )).rows[0].id as string;
    const [a, b] = [await place('r-1'), await place('r-2')].sort();
    // Both past their time, still held (the sweep has not run); A rewritten last, so the table's
    // physical order is B, then A: an unordered sweep takes B first.
    for (const id of [b, a]) {
      await setup.query(`UPDATE budget_reservations SET expires_at = now() - interval '1 minute' WHERE id = $1`, [id]);
      await setup.query(`UPDATE budget_reservation_holds SET expires_at = now() - interval '1 minute' WHERE reservation_id = $1`, [id]);
    }

    const group = await connect();
    const sweep = await connect();
    await group.query(`SET deadlock_timeout = '200ms'`);
    await sweep.query(`SET deadlock_timeout = '200ms'`);
    await group.query('BEGIN');
    await group.query(`SELECT close_reservation($1, 'settled')`, [a]);
    const swept = sweep.query(`SELECT expire_reservations(now()) AS expired`).then(
      (result) => ({ expired: result.rows[0].expired as number }),
      (error: { code?: string }) => ({ error: error.code }),
    );
    // Let the sweep reach its first lock wait.
    for (let i = 0; i < 50; i++) {
      const waiting = await setup.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%expire_reservations%'`,
      );
      if (waiting.rows[0].n > 0) break;
      await new Promise((done) => setTimeout(done, 20));
    }
    const settled = await group.query(`SELECT close_reservation($1, 'settled') AS previous`, [b]).then(
      (result) => ({ previous: result.rows[0].previous as string }),
      (error: { code?: string }) => ({ error: error.code }),
    );
    await group.query('error' in settled ? 'ROLLBACK' : 'COMMIT');
    const sweepOutcome = await swept;

    expect(settled).toEqual({ previous: 'held' });
    expect(sweepOutcome).toEqual({ expired: 0 });
    const states = await setup.query(`SELECT id, state FROM budget_reservations WHERE id = ANY ($1::uuid[]) ORDER BY id`, [[a, b]]);
    expect(states.rows.map((row) => row.state)).toEqual(['settled', 'settled']);
  });
});
