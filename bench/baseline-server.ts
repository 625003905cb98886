/**
 * The physical baselines of `npm run bench`: a bare Fastify + pg server on the same database and
 * machine as the service, with nothing but the one statement each hot path cannot avoid.
 *
 *   GET  /live       `{ ok: true }`, no database: the bare Fastify route, the floor under every
 *                    request's latency (HTTP parse, routing, JSON reply) that the single-client
 *                    figures subtract
 *   GET  /read/:id   one read of one row by primary key (a budget_definitions row)
 *   POST /write      one durable single-statement insert-and-update: a CTE that inserts a ledger
 *                    row and adds it to one counter row, committed (synchronous_commit as the
 *                    server has it), like a usage write on one budget (header X-Counter picks
 *                    the counter row, 1 by default, for runs spread over several rows)
 *
 * Named (prepared) statements, a pool of the service's size, no auth, no validation, no logging.
 * Env: DATABASE_URL, PORT, POOL_SIZE.
 */
import Fastify from 'fastify';
import { Pool } from 'pg';

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE ?? 20) });
  await pool.query(`
    CREATE TABLE IF NOT EXISTS bench_baseline_ledger (
      id bigserial PRIMARY KEY, amount numeric NOT NULL, idempotency_key text NOT NULL UNIQUE,
      occurred_at timestamptz NOT NULL DEFAULT now())`);
  await pool.query(`
    CREATE TABLE IF NOT EXISTS bench_baseline_counter (id int PRIMARY KEY, total numeric NOT NULL, n bigint NOT NULL)`);
  // Counter 1 is the hot row of a single-budget run; 1..16 serve runs spread over several rows.
  await pool.query(`INSERT INTO bench_baseline_counter SELECT g, 0, 0 FROM generate_series(1, 16) g ON CONFLICT DO NOTHING`);

  const app = Fastify({ logger: false });
  app.get('/live', async () => ({ ok: true }));
  app.get<{ Params: { id: string } }>('/read/:id', async (request, reply) => {
    const result = await pool.query({
      name: 'baseline_read',
      text: 'SELECT id, name, amount::text AS amount, currency, period, start_date FROM budget_definitions WHERE id = $1',
      values: [request.params.id],
    });
    if (!result.rows[0]) return reply.code(404).send({ error: 'not found' });
    return result.rows[0];
  });
  app.post<{ Body: { amount: string }; Headers: { 'idempotency-key'?: string; 'x-counter'?: string } }>('/write', async (request, reply) => {
    const result = await pool.query({
      name: 'baseline_write',
      text: `WITH ins AS (
               INSERT INTO bench_baseline_ledger (amount, idempotency_key) VALUES ($1::numeric, $2) RETURNING amount
             )
             UPDATE bench_baseline_counter c SET total = c.total + ins.amount, n = c.n + 1
             FROM ins WHERE c.id = $3 RETURNING c.total::text AS total, c.n::text AS n`,
      values: [request.body.amount, request.headers['idempotency-key'], Number(request.headers['x-counter'] ?? 1)],
    });
    return reply.code(201).send(result.rows[0]);
  });
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
  const stop = async () => {
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((error) => {
  console.error('baseline server:', error);
  process.exit(1);
});
