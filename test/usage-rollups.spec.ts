import Decimal from 'decimal.js';
import { Client } from 'pg';
import { toMoneyNumber } from '../src/common/money';
import { ReportingRepository } from '../src/reporting/reporting.repository';
import { UsageRepository, type SummaryRow } from '../src/usage/usage.repository';
import { deadlockCount } from './setup/ledger-checks';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * The roll-ups (SPEC §17, docs/reporting.md "Roll-ups") are exact: random usage over 60 days on a
 * tree with attributions (integration writes matching several budgets), budgets in UTC,
 * America/New_York and Asia/Kolkata (a :30 zone, whose local midnight splits a UTC hour), and a
 * subtree moved half-way. For every budget, the summary, the periods and the forecast's buckets
 * equal the raw GROUP BY over budget_usage_rows, to the last decimal; the roll-up rows equal the
 * ledger grouped by their key; 16 concurrent writers into one tree leave them exact, with no deadlock.
 */

const API = '/api/v1';
const DAY = 86_400_000;

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function generator(seed: number) {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)],
  };
}

const MODELS = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'llama-3', null] as const;
const SOURCES = ['api', 'gateway', 'batch'] as const;
const USERS = ['alice', 'bob', 'carol', 'dave', null] as const;
const TAG_SETS = [null, [], ['prod'], ['prod', 'eu'], ['eval'], ['eu', 'eval', 'prod']] as const;

/** The roll-up rows recomputed from the ledger, grouped by their key, written independently of the migration. */
const RAW_ROLLUPS = `
  WITH lines AS (
    SELECT r.budget_id, r.matched_budget_ids, r.occurred_at, r.amount, x.dimension, x.value
    FROM budget_usage_records r
    CROSS JOIN LATERAL (
      SELECT 'total' AS dimension, NULL::text AS value
      UNION ALL SELECT 'model', r.model_id
      UNION ALL SELECT 'source', r.source
      UNION ALL SELECT 'user', r.user_id
      UNION ALL SELECT 'tag', t.tag FROM (SELECT 1) one LEFT JOIN LATERAL unnest(r.tags) t (tag) ON true) x
  )
  SELECT l.budget_id, l.matched_budget_ids, g.grain, l.dimension,
         date_trunc(g.grain, l.occurred_at, 'UTC') AS bucket, l.value, sum(l.amount) AS amount, count(*) AS usage_count
  FROM lines l CROSS JOIN (VALUES ('hour'), ('day'), ('month')) g (grain)
  GROUP BY 1, 2, 3, 4, 5, 6`;

const STORED_ROLLUPS = `
  SELECT l.budget_id, l.matched_budget_ids, r.grain, r.dimension, r.bucket, r.value, r.amount, r.usage_count
  FROM budget_usage_rollups r JOIN budget_usage_leaves l ON l.id = r.leaf_id`;

/** The summary as the raw query computes it (the GROUPING SETS of before the roll-ups, one set at a time). */
const RAW_SUMMARY = `
  WITH rows AS (SELECT * FROM budget_usage_rows($1::uuid, $2::timestamptz, $3::timestamptz))
  SELECT 'total' AS dimension, NULL AS key, sum(amount)::text AS total, count(*)::text AS count FROM rows HAVING count(*) > 0
  UNION ALL SELECT 'model', model_id, sum(amount)::text, count(*)::text FROM rows GROUP BY model_id
  UNION ALL SELECT 'source', source, sum(amount)::text, count(*)::text FROM rows GROUP BY source
  UNION ALL SELECT 'user', user_id, sum(amount)::text, count(*)::text FROM rows GROUP BY user_id
  UNION ALL SELECT 'day', to_char(occurred_at AT TIME ZONE $4, 'YYYY-MM-DD'), sum(amount)::text, count(*)::text FROM rows GROUP BY 2
  UNION ALL SELECT 'tag', t.tag, sum(amount)::text, count(*)::text
            FROM rows LEFT JOIN LATERAL unnest(rows.tags) t (tag) ON true GROUP BY t.tag`;

type Line = { dimension: string | null; key: string | null; total: string; count: string };

/** Lines in a stable order with exact decimals, so two summaries compare to the last digit. */
const canonical = (lines: Line[]) =>
  lines
    .filter((line) => line.dimension !== null)
    .map((line) => `${line.dimension}|${line.key}|${new Decimal(line.total).toFixed()}|${line.count}`)
    .sort();

describe('Usage roll-ups', () => {
  let t: TestApp;
  const budgets: Record<string, { id: string; timezone: string }> = {};
  const rnd = generator(19);
  const start = new Date(Date.now() - 100 * DAY).toISOString();
  let requestSeq = 0;

  const create = async (key: string, body: Record<string, unknown>) => {
    const res = await t.request('POST', `${API}/budgets`, {
      name: `rollups ${key}`, currency: 'USD', period: 'monthly', startDate: start, ...body,
    });
    expect(res.status).toBe(201);
    budgets[key] = { id: res.body.id, timezone: body.timezone as string };
  };

  /** A random usage at a random instant of the last 60 days (not on any hour boundary). */
  const randomUsage = () => ({
    amount: `${rnd.int(10_000)}.${String(rnd.int(10_000_000_000)).padStart(10, '0')}`,
    source: rnd.pick(SOURCES),
    model_id: rnd.pick(MODELS),
    user_id: rnd.pick(USERS),
    tags: rnd.pick(TAG_SETS),
    occurred_at: new Date(Date.now() - 60 * DAY + rnd.int(60 * DAY - 60_000)).toISOString(),
  });

  /**
   * `count` random records in statements of 1–200 rows, straight into the ledger (its trigger
   * keeps the roll-ups): single-budget rows and rows that matched several budgets across trees.
   */
  async function loadLedger(count: number): Promise<void> {
    const { org, team, user, project, other, customer } = budgets;
    const matchSets = [null, null, null, [user.id, project.id], [other.id, user.id], [customer.id, team.id, project.id], [project.id, org.id]];
    for (let done = 0; done < count; ) {
      const size = Math.min(count - done, 1 + rnd.int(200));
      const rows = Array.from({ length: size }, () => {
        const matched = rnd.pick(matchSets);
        const budgetId = matched ? matched[0] : rnd.pick(Object.values(budgets)).id;
        return { ...randomUsage(), budget_id: budgetId, matched_budget_ids: matched };
      });
      await t.sql(
        `INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, user_id, tags, occurred_at, matched_budget_ids)
         SELECT x.budget_id, x.amount, 'USD', x.source, x.model_id, x.user_id, x.tags, x.occurred_at, x.matched_budget_ids
         FROM jsonb_to_recordset($1::jsonb) AS x (budget_id uuid, amount numeric, source text, model_id text, user_id text,
                                                 tags text[], occurred_at timestamptz, matched_budget_ids uuid[])`,
        [JSON.stringify(rows)],
      );
      done += size;
    }
  }

  /** An integration usage through the API over several scopes (one ledger row counting toward each match). */
  const integrationUsage = async (occurredAt?: string) => {
    const usage = randomUsage();
    requestSeq += 1;
    const res = await t.request('POST', `${API}/integration/usage`, {
      requestId: `rollups-${requestSeq}`, currency: 'USD', amount: Number(usage.amount.slice(0, 12)),
      organizationId: 'ru-org', userId: rnd.pick(['ru-user', 'nobody']), projectId: rnd.pick(['ru-project', 'ru-other']),
      customerId: 'ru-customer', source: usage.source, ...(usage.model_id ? { modelId: usage.model_id } : {}),
      ...(usage.tags?.length ? { tags: usage.tags } : {}), occurredAt: occurredAt ?? usage.occurred_at,
    });
    expect(res.status).toBe(201);
  };

  async function expectRollupsEqualLedger(): Promise<void> {
    const [diff] = await t.sql(
      `SELECT (SELECT count(*) FROM ((${RAW_ROLLUPS}) EXCEPT (${STORED_ROLLUPS})) a)::int AS missing,
              (SELECT count(*) FROM ((${STORED_ROLLUPS}) EXCEPT (${RAW_ROLLUPS})) b)::int AS extra,
              (SELECT count(*) FROM budget_usage_rollups)::int AS stored`,
    );
    expect(diff.stored).toBeGreaterThan(0);
    expect({ missing: diff.missing, extra: diff.extra }).toEqual({ missing: 0, extra: 0 });
  }

  /** For every budget and range: the summary (SQL and HTTP) equals the raw query's. */
  async function expectSummariesExact(ranges: [string, string][]): Promise<void> {
    const repository = t.app.get(UsageRepository);
    let compared = 0;
    for (const [name, budget] of Object.entries(budgets)) {
      const [window] = await t.sql(`SELECT period_start, period_end FROM budget_recent_windows($1::uuid, now(), 1)`, [budget.id]);
      const windowRange: [string, string] = [window.period_start.toISOString(), window.period_end.toISOString()];
      for (const [from, to] of [windowRange, ...ranges]) {
        const raw = await t.sql<Line>(RAW_SUMMARY, [budget.id, from, to, budget.timezone]);
        const explicit = from === windowRange[0] && to === windowRange[1] ? [undefined, undefined] : [from, to];
        const rolled: SummaryRow[] = await repository.summary(budget.id, explicit[0], explicit[1], new Date());
        expect({ name, from, to, lines: canonical(rolled as Line[]) }).toEqual({ name, from, to, lines: canonical(raw) });
        compared += raw.length;

        const query = explicit[0] ? `?from=${from}&to=${to}` : '';
        const res = await t.request('GET', `${API}/budgets/${budget.id}/usage/summary${query}`);
        expect(res.status).toBe(200);
        const total = raw.find((line) => line.dimension === 'total');
        expect({ name, total: res.body.total, count: res.body.count }).toEqual({
          name, total: total ? toMoneyNumber(total.total) : 0, count: total ? Number(total.count) : 0,
        });
        const days = raw.filter((line) => line.dimension === 'day').sort((a, b) => String(a.key).localeCompare(String(b.key)));
        expect(res.body.byDay).toEqual(days.map((line) => ({ key: line.key, amount: toMoneyNumber(line.total), count: Number(line.count) })));
      }
    }
    // Lines of every dimension for every budget, not a comparison of empty sets.
    expect(compared).toBeGreaterThan(Object.keys(budgets).length * 20);
  }

  /** For every budget: the periods (SQL and HTTP) equal the raw sums of each window. */
  async function expectPeriodsExact(): Promise<void> {
    const reports = t.app.get(ReportingRepository);
    for (const [name, budget] of Object.entries(budgets)) {
      const rolled = await reports.periods(budget.id, new Date(), 4);
      const raw = await t.sql(
        `SELECT w.ordinal, coalesce(sum(r.amount), 0)::text AS spent, count(r.id)::text AS "usageCount"
         FROM budget_recent_windows($1::uuid, now(), 4) w
         LEFT JOIN LATERAL budget_usage_rows($1::uuid, w.period_start, w.period_end) r ON true
         GROUP BY w.ordinal ORDER BY w.ordinal`,
        [budget.id],
      );
      expect(rolled.length).toBe(4);
      expect({ name, periods: rolled.map((p) => [p.ordinal, new Decimal(p.spent).toFixed(), p.usageCount]) }).toEqual({
        name, periods: raw.map((p) => [p.ordinal, new Decimal(p.spent).toFixed(), p.usageCount]),
      });
      const res = await t.request('GET', `${API}/budgets/${budget.id}/periods?count=4`);
      expect(res.status).toBe(200);
      expect(res.body.data.map((p: { spent: number; usageCount: number }) => [p.spent, p.usageCount])).toEqual(
        raw.map((p) => [toMoneyNumber(p.spent), Number(p.usageCount)]),
      );
    }
  }

  /** The forecast's buckets (UTC hours over 7 days, UTC days over 28) equal the raw GROUP BY. */
  async function expectBucketsExact(): Promise<void> {
    const reports = t.app.get(ReportingRepository);
    const hourTo = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const dayTo = Math.floor(Date.now() / DAY) * DAY;
    for (const [name, budget] of Object.entries(budgets)) {
      for (const [seconds, to, span] of [[3600, hourTo, 7 * DAY], [86_400, dayTo, 28 * DAY]] as const) {
        const from = new Date(to - span);
        const rolled = await reports.bucketTotals(budget.id, from, new Date(to), seconds);
        const raw = await t.sql(
          `SELECT floor(extract(epoch FROM r.occurred_at) / $4::integer)::bigint::text AS bucket, sum(r.amount)::text AS total
           FROM budget_usage_rows($1::uuid, $2::timestamptz, $3::timestamptz) r GROUP BY 1`,
          [budget.id, from.toISOString(), new Date(to).toISOString(), seconds],
        );
        const text = (rows: { bucket: string; total: string }[]) => rows.map((row) => `${row.bucket}:${new Decimal(row.total).toFixed()}`).sort();
        expect(raw.length).toBeGreaterThan(0);
        expect({ name, seconds, buckets: text(rolled) }).toEqual({ name, seconds, buckets: text(raw) });
      }
    }
  }

  const oddRanges = (): [string, string][] => {
    const now = Date.now();
    return [
      [new Date(now - 45 * DAY + 1_003_517).toISOString(), new Date(now - 2 * DAY - 300_123).toISOString()],
      [new Date(now - 3 * DAY - 1_800_000).toISOString(), new Date(now - 3 * DAY + 1_200_000).toISOString()],
      ['2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z'],
    ];
  };

  beforeAll(async () => {
    t = await createTestApp();
    await create('org', { scopeType: 'organization', scopeId: 'ru-org', amount: 1e9, timezone: 'UTC' });
    await create('team', { scopeType: 'team', scopeId: 'ru-team', amount: 1e8, parentId: budgets.org.id, timezone: 'America/New_York' });
    await create('user', { scopeType: 'user', scopeId: 'ru-user', amount: 1e7, parentId: budgets.team.id, timezone: 'Asia/Kolkata' });
    await create('project', { scopeType: 'project', scopeId: 'ru-project', amount: 1e7, parentId: budgets.org.id, timezone: 'Asia/Kolkata' });
    await create('other', { scopeType: 'project', scopeId: 'ru-other', amount: 1e9, timezone: 'America/New_York' });
    await create('customer', { scopeType: 'customer', scopeId: 'ru-customer', amount: 1e9, timezone: 'UTC' });
    await loadLedger(3000);
    for (let n = 0; n < 40; n += 1) await integrationUsage();
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('roll-up rows equal the ledger grouped by leaf, grain, bucket, dimension and value', async () => {
    await expectRollupsEqualLedger();
  });

  it('the summary of every budget equals the raw GROUP BY over budget_usage_rows, in every time zone and range', async () => {
    await expectSummariesExact(oddRanges());
  });

  it('periods and the forecast buckets equal the raw sums', async () => {
    await expectPeriodsExact();
    await expectBucketsExact();
  });

  it('after a subtree moves (the project under the team), every budget still equals the raw sums', async () => {
    const moved = await t.request('PUT', `${API}/budgets/${budgets.project.id}`, { parentId: budgets.team.id });
    expect(moved.status).toBe(200);
    await loadLedger(1000);
    for (let n = 0; n < 10; n += 1) await integrationUsage();
    await expectRollupsEqualLedger();
    await expectSummariesExact(oddRanges());
    await expectPeriodsExact();
  });

  it('16 concurrent writers into one tree (single, batch and integration writes) leave the roll-ups exact, without deadlock', async () => {
    const deadlocksBefore = await deadlockCount(t.databaseUrl);
    const now = Date.now();
    // Writers share hours and dimension values on purpose: every one of them writes the last two
    // hours, so they contend on the same roll-up rows.
    const instant = () => new Date(now - rnd.int(2 * 3_600_000)).toISOString();
    const tree = [budgets.org, budgets.team, budgets.user, budgets.project];
    const writer = async (n: number) => {
      for (let k = 0; k < 12; k += 1) {
        const usage = randomUsage();
        const common = {
          amount: Number(usage.amount.slice(0, 10)), currency: 'USD', source: usage.source, occurredAt: instant(),
          ...(usage.model_id ? { modelId: usage.model_id } : {}), ...(usage.user_id ? { userId: usage.user_id } : {}),
          ...(usage.tags?.length ? { tags: usage.tags } : {}),
        };
        const kind = (n + k) % 3;
        const res =
          kind === 0
            ? await t.request('POST', `${API}/budgets/${rnd.pick(tree).id}/usage`, common)
            : kind === 1
              ? await t.request('POST', `${API}/budgets/${rnd.pick(tree).id}/usage/batch`, {
                  records: Array.from({ length: 5 }, () => ({ ...common, occurredAt: instant() })),
                })
              : await t.request('POST', `${API}/integration/usage`, {
                  ...common, requestId: `rollups-concurrent-${n}-${k}`, organizationId: 'ru-org', userId: 'ru-user',
                  projectId: rnd.pick(['ru-project', 'ru-other']), customerId: 'ru-customer',
                });
        expect([res.status, res.body.failed ?? 0]).toEqual([kind === 1 ? 200 : 201, 0]);
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, n) => writer(n)));
    expect(await deadlockCount(t.databaseUrl)).toBe(deadlocksBefore);
    await expectRollupsEqualLedger();
    await expectSummariesExact([]);
  }, 120_000);

  it('statements of one record racing to create their leaves, some naming a tag twice, leave the roll-ups exact', async () => {
    // A statement of one record has a roll-up step of its own (migration SingleRecordRollups): it
    // looks its leaf up and creates it only when missing. Eight connections write into a budget
    // with no leaf yet, alone and matched with the organization, so their first statements race to
    // create the same two leaves; a tag given twice counts twice, as in the general statement.
    await create('fresh', { scopeType: 'project', scopeId: 'ru-fresh', amount: 1e9, timezone: 'UTC' });
    const { fresh, org } = budgets;
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const client = new Client({ connectionString: t.databaseUrl });
        await client.connect();
        return client;
      }),
    );
    try {
      await Promise.all(
        clients.map(async (client, n) => {
          for (let k = 0; k < 6; k += 1) {
            const usage = randomUsage();
            await client.query(
              `INSERT INTO budget_usage_records (budget_id, amount, currency, source, model_id, user_id, tags, occurred_at, matched_budget_ids)
               VALUES ($1, $2, 'USD', $3, $4, $5, $6, $7, $8)`,
              [fresh.id, usage.amount, usage.source, usage.model_id, usage.user_id, k % 2 ? ['twice', 'twice'] : usage.tags,
               usage.occurred_at, (n + k) % 2 ? [fresh.id, org.id] : null],
            );
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
    const [leaves] = await t.sql(`SELECT count(*)::int AS n FROM budget_usage_leaves WHERE budget_id = $1`, [fresh.id]);
    expect(leaves.n).toBe(2);
    const [twice] = await t.sql(
      `SELECT count(*)::int AS n FROM budget_usage_rollups r JOIN budget_usage_leaves l ON l.id = r.leaf_id
       WHERE l.budget_id = $1 AND r.dimension = 'tag' AND r.value = 'twice'`,
      [fresh.id],
    );
    expect(twice.n).toBeGreaterThan(0);
    await expectRollupsEqualLedger();
  }, 60_000);
});
