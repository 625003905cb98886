import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { PoolClient } from 'pg';
import QueryStream from 'pg-query-stream';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { DataSource, EntityManager } from 'typeorm';
import type { AnomalySensitivity } from '../budget/budget.types';

/**
 * Every statement of the Budget Reporter. The usage of a budget is read only through
 * `budget_usage_rows(budget, from, to)`, the one definition of which ledger rows count toward a
 * budget, or through `budget_usage_sums(budget, from, to, …)`, its sums from the roll-ups (whole
 * hours and days; the ledger only for partial hours): totals read the roll-ups, so their cost
 * follows the buckets of a range rather than its rows, and only what needs the rows themselves
 * (the what-if replay, the export) reads them. Nothing here reads `budget_usage_records` by budget id.
 */

export interface WindowRow {
  ordinal: number;
  periodStart: Date;
  periodEnd: Date;
}

export interface PeriodRow extends WindowRow {
  spent: string;
  usageCount: string;
  alertsTriggered: string;
}

export interface BucketRow {
  /** floor(epoch seconds / bucket seconds). */
  bucket: string;
  total: string;
}

/** One budget the anomaly detector scores, with the spend of the hour and of the same hour on the days before. */
export interface AnomalyCandidateRow {
  budgetId: string;
  currency: string;
  limit: string;
  sensitivity: AnomalySensitivity | null;
  /** The hour's spend (index 0) and the same hour 1…7 days earlier, the days the budget existed. */
  sums: string[];
}

export interface AnomalyInsert {
  budgetId: string;
  hourStart: Date;
  observed: string;
  baselineMedian: string;
  baselineMad: string;
  baselineHours: number;
  score: number;
  sensitivity: AnomalySensitivity;
  threshold: number;
  currency: string;
}

export interface AnomalyRow extends AnomalyInsert {
  id: string;
  detectedAt: Date;
  /** hour_start with microseconds, the pagination key. */
  hourKey: string;
}

/** One exported ledger line: every value already text, as the CSV writes it. */
export interface ExportRow {
  id: string;
  budgetId: string;
  occurredAt: string;
  recordedAt: string;
  amount: string;
  currency: string;
  source: string;
  modelId: string | null;
  userId: string | null;
  teamId: string | null;
  projectId: string | null;
  requestId: string | null;
  reservationId: string | null;
  description: string | null;
  metadata: string | null;
}

export interface ReplayRow {
  amount: string;
  modelId: string | null;
  occurredAt: Date;
}

/** A server-side cursor over ledger rows, read in batches inside one read-only transaction. */
export interface LedgerCursor<T> {
  rows: Readable & AsyncIterable<T>;
  /** Ends the transaction and returns the connection; safe to call more than once. */
  close(): Promise<void>;
}

const UTC_MICROS = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const EXPORT_SQL = `
  SELECT r.id, r.budget_id AS "budgetId", ${UTC_MICROS('r.occurred_at')} AS "occurredAt",
         ${UTC_MICROS('r.recorded_at')} AS "recordedAt", r.amount::text AS amount, r.currency, r.source,
         r.model_id AS "modelId", r.user_id AS "userId", r.team_id AS "teamId", r.project_id AS "projectId",
         r.request_id AS "requestId", r.reservation_id AS "reservationId", r.description, r.metadata::text AS metadata
  FROM budget_usage_rows($1::uuid, $2::timestamptz, $3::timestamptz) r
  ORDER BY r.occurred_at, r.id`;

const REPLAY_SQL = `
  SELECT r.amount::text AS amount, r.model_id AS "modelId", r.occurred_at AS "occurredAt"
  FROM budget_usage_rows($1::uuid, $2::timestamptz, $3::timestamptz) r
  ORDER BY r.occurred_at, r.id
  LIMIT $4`;

const ANOMALY_COLUMNS = `
  a.id, a.budget_id AS "budgetId", a.hour_start AS "hourStart", a.observed::text AS observed,
  a.baseline_median::text AS "baselineMedian", a.baseline_mad::text AS "baselineMad", a.baseline_hours AS "baselineHours",
  a.score::float8 AS score, a.sensitivity, a.threshold::float8 AS threshold, a.currency, a.detected_at AS "detectedAt",
  ${UTC_MICROS('a.hour_start')} AS "hourKey"`;

/** The advisory lock the anomaly detector holds for its transaction: one instance scores at a time. */
const DETECTOR_LOCK = `hashtext('budget_anomalies.detector')`;

@Injectable()
export class ReportingRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The window containing `at` and up to count − 1 before it, newest first. */
  recentWindows(budgetId: string, at: Date, count: number): Promise<WindowRow[]> {
    return this.dataSource.query(
      `SELECT ordinal, period_start AS "periodStart", period_end AS "periodEnd"
       FROM budget_recent_windows($1::uuid, $2::timestamptz, $3::integer)`,
      [budgetId, at.toISOString(), count],
    );
  }

  /** Spend, record count and alerts fired of each of those windows, in one round trip. */
  periods(budgetId: string, at: Date, count: number): Promise<PeriodRow[]> {
    return this.dataSource.query(
      `SELECT w.ordinal, w.period_start AS "periodStart", w.period_end AS "periodEnd",
              u.spent::text AS spent, u.n::text AS "usageCount",
              (SELECT count(*) FROM budget_alert_history h
               WHERE h.budget_id = $1::uuid AND h.period_start = w.period_start)::text AS "alertsTriggered"
       FROM budget_recent_windows($1::uuid, $2::timestamptz, $3::integer) w
       CROSS JOIN LATERAL (
         SELECT coalesce(sum(s.amount), 0) AS spent, coalesce(sum(s.usage_count), 0) AS n
         FROM budget_usage_sums($1::uuid, w.period_start, w.period_end, 'total') s
       ) u
       ORDER BY w.ordinal`,
      [budgetId, at.toISOString(), count],
    );
  }

  /** Spend in [from, to). */
  async spent(budgetId: string, from: Date, to: Date): Promise<string> {
    const rows = await this.dataSource.query(
      `SELECT coalesce(sum(s.amount), 0)::text AS total FROM budget_usage_sums($1::uuid, $2::timestamptz, $3::timestamptz, 'total') s`,
      [budgetId, from.toISOString(), to.toISOString()],
    );
    return rows[0].total;
  }

  /** Spend per UTC hour or day (`bucketSeconds` 3600 or 86400) in [from, to); empty buckets are absent. */
  bucketTotals(budgetId: string, from: Date, to: Date, bucketSeconds: number): Promise<BucketRow[]> {
    return this.dataSource.query(
      `SELECT floor(extract(epoch FROM s.bucket) / $5::integer)::bigint::text AS bucket, sum(s.amount)::text AS total
       FROM budget_usage_sums($1::uuid, $2::timestamptz, $3::timestamptz, 'total', $4::text, 'UTC') s
       GROUP BY 1`,
      [budgetId, from.toISOString(), to.toISOString(), bucketSeconds === 3600 ? 'hour' : 'day', bucketSeconds],
    );
  }

  /** The ledger rows of [from, to) for a CSV export, oldest first, through a cursor. */
  exportCursor(budgetId: string, from: string, to: string, timeoutMs: number): Promise<LedgerCursor<ExportRow>> {
    return this.openCursor<ExportRow>(EXPORT_SQL, [budgetId, from, to], timeoutMs);
  }

  /** At most `limit` ledger rows of [from, to) for a replay, oldest first, through a cursor. */
  replayCursor(budgetId: string, from: Date, to: Date, limit: number, timeoutMs: number): Promise<LedgerCursor<ReplayRow>> {
    return this.openCursor<ReplayRow>(REPLAY_SQL, [budgetId, from.toISOString(), to.toISOString(), limit], timeoutMs);
  }

  /**
   * Runs the detector's work in one transaction that holds a transaction-level advisory lock
   * (PgBouncer in transaction mode keeps no session, so no session lock): `undefined` when
   * another instance holds it. `score` picks the spikes among the candidates; they are inserted
   * once per budget and hour (the unique key), and the rows inserted now are returned.
   */
  async detectAnomalies(hourStart: Date, score: (candidates: AnomalyCandidateRow[]) => AnomalyInsert[]): Promise<AnomalyRow[] | undefined> {
    return this.dataSource.transaction(async (manager) => {
      const [{ locked }] = await manager.query(`SELECT pg_try_advisory_xact_lock(${DETECTOR_LOCK}) AS locked`);
      if (!locked) return undefined;
      const candidates = await this.anomalyCandidates(manager, hourStart);
      const found = score(candidates);
      if (!found.length) return [];
      return manager.query(
        `WITH a AS (
           INSERT INTO budget_anomalies (budget_id, hour_start, observed, baseline_median, baseline_mad, baseline_hours,
                                         score, sensitivity, threshold, currency)
           SELECT x."budgetId", x."hourStart", x.observed, x."baselineMedian", x."baselineMad", x."baselineHours",
                  x.score, x.sensitivity, x.threshold, x.currency
           FROM jsonb_to_recordset($1::jsonb) AS x("budgetId" uuid, "hourStart" timestamptz, observed numeric,
                "baselineMedian" numeric, "baselineMad" numeric, "baselineHours" integer, score numeric,
                sensitivity text, threshold numeric, currency text)
           ON CONFLICT ON CONSTRAINT budget_anomalies_once DO NOTHING
           RETURNING *)
         SELECT ${ANOMALY_COLUMNS} FROM a`,
        [JSON.stringify(found)],
      );
    });
  }

  /** A budget's anomalies, newest hour first (keyset pagination on hour_start, id). */
  listAnomalies(budgetId: string, before: [string, string] | undefined, limit: number): Promise<AnomalyRow[]> {
    return this.dataSource.query(
      `SELECT ${ANOMALY_COLUMNS} FROM budget_anomalies a
       WHERE a.budget_id = $1::uuid AND ($2::timestamptz IS NULL OR (a.hour_start, a.id) < ($2::timestamptz, $3::uuid))
       ORDER BY a.hour_start DESC, a.id DESC
       LIMIT $4`,
      [budgetId, before?.[0] ?? null, before?.[1] ?? null, limit + 1],
    );
  }

  /**
   * The live budgets with detection on, active at the hour, each with the hour's spend and the
   * same hour's on the 7 days before (24-hour steps, so daylight saving moves nothing): only the
   * hours that start at or after the budget's start, so a young budget has a shorter baseline.
   */
  private anomalyCandidates(manager: EntityManager, hourStart: Date): Promise<AnomalyCandidateRow[]> {
    return manager.query(
      `SELECT b.id AS "budgetId", b.currency, b.amount::text AS "limit",
              b.anomaly_detection->>'sensitivity' AS sensitivity,
              ARRAY(
                SELECT (SELECT coalesce(sum(s.amount), 0)
                        FROM budget_usage_sums(b.id, h.at, h.at + interval '1 hour', 'total') s)::text
                FROM generate_series(0, 7) AS d(n)
                CROSS JOIN LATERAL (SELECT $1::timestamptz - d.n * interval '24 hours' AS at) h
                WHERE h.at >= b.start_date
                ORDER BY d.n) AS sums
       FROM budget_definitions b
       WHERE b.deleted_at IS NULL AND b.anomaly_detection @> '{"enabled": true}'
         AND b.start_date <= $1::timestamptz AND (b.end_date IS NULL OR b.end_date > $1::timestamptz)`,
      [hourStart.toISOString()],
    );
  }

  /**
   * A cursor in a REPEATABLE READ, READ ONLY transaction (one snapshot from the first row to the
   * last, and PgBouncer in transaction mode keeps the connection for the whole of it). The
   * statement may run longer than the pool's statement timeout: `timeoutMs` bounds it instead,
   * on the server (SET LOCAL) and in the driver's read timeout.
   */
  private async openCursor<T>(sql: string, params: unknown[], timeoutMs: number): Promise<LedgerCursor<T>> {
    const runner = this.dataSource.createQueryRunner();
    const client = (await runner.connect()) as PoolClient;
    let closed: Promise<void> | undefined;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(`SELECT set_config('statement_timeout', $1, true)`, [String(timeoutMs)]);
    } catch (error) {
      await runner.release();
      throw error;
    }
    const stream = new QueryStream(sql, params, { batchSize: 500, highWaterMark: 500 });
    // pg's read timeout (query_timeout) applies to a submitted stream too: it gets the same bound.
    Object.assign(stream, { query_timeout: timeoutMs + 1000 });
    client.query(stream);
    const close = () =>
      (closed ??= (async () => {
        if (!stream.destroyed) stream.destroy();
        await finished(stream).catch(() => undefined);
        try {
          // Read only: nothing to keep, whether the rows were read to the end or not.
          await client.query('ROLLBACK');
        } catch {
          // The connection is gone; releasing it lets the pool discard it.
        } finally {
          await runner.release();
        }
      })());
    return { rows: stream as unknown as Readable & AsyncIterable<T>, close };
  }
}
