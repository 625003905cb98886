import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { CHANNEL_COLUMNS, mapChannelRow, type ChannelRow } from './channel.repository';
import type { ChannelType, DeliveryStatus } from './notification.types';

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** A delivery this instance holds a lease on, with what it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  claimToken: string;
  /** Attempts made so far in this round; this one is attemptCount + 1. */
  attemptCount: number;
  event: { id: string; type: string; occurredAt: Date; data: Record<string, unknown> };
  /** enabled is false once the channel was disabled or deleted. */
  channel: ChannelRow;
}

export interface AttemptRecord {
  /** The delivery's status after this attempt. */
  status: DeliveryStatus;
  /** For `pending`: seconds until the next attempt. */
  delaySeconds?: number;
  attemptedAt: Date;
  durationMs: number;
  httpStatus?: number;
  error?: string;
  outcome: 'delivered' | 'retry' | 'failed';
}

export interface DeliveryAttemptRow {
  attemptedAt: string;
  httpStatus: number | null;
  error: string | null;
  durationMs: number;
  outcome: string;
}

export interface DeliveryRow {
  id: string;
  eventId: string;
  eventType: string;
  channelId: string;
  channelType: ChannelType;
  channelName: string;
  budgetId: string | null;
  status: DeliveryStatus;
  attemptCount: number;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
  lastError: string | null;
  createdAt: Date;
  createdKey: string;
  attempts: DeliveryAttemptRow[];
}

export interface DeliveryFilter {
  id?: string;
  channelId?: string;
  budgetId?: string;
  status?: DeliveryStatus;
  before?: [string, string];
  limit: number;
}

function mapDeliveryRow(row: Record<string, any>): DeliveryRow {
  return {
    id: row.id,
    eventId: row.event_id,
    eventType: row.event_type,
    channelId: row.channel_id,
    channelType: row.channel_type,
    channelName: row.channel_name,
    budgetId: row.budget_id,
    status: row.status,
    attemptCount: row.attempt_count,
    nextAttemptAt: row.next_attempt_at,
    deliveredAt: row.delivered_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    createdKey: row.created_key,
    attempts: row.attempts,
  };
}

/** The outbox: deliveries, their claims (lease + token) and their attempts. */
@Injectable()
export class DeliveryRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Claims up to `limit` due deliveries for `leaseSeconds`. SKIP LOCKED lets instances claim side
   * by side without waiting on each other; the lease keeps a claimed delivery away from every
   * other instance until this one records its attempt or the lease runs out (the instance died).
   */
  async claimDue(limit: number, leaseSeconds: number): Promise<ClaimedDelivery[]> {
    const rows = await this.dataSource.query(
      `WITH due AS (
         SELECT d.id FROM notification_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= now()
           AND (d.claimed_until IS NULL OR d.claimed_until <= now())
         ORDER BY d.next_attempt_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED),
       claimed AS (
         UPDATE notification_deliveries d
            SET claim_token = gen_random_uuid(), claimed_until = now() + make_interval(secs => $2), updated_at = now()
           FROM due WHERE d.id = due.id
         RETURNING d.id, d.claim_token, d.attempt_count, d.event_id, d.channel_id)
       SELECT cl.id AS delivery_id, cl.claim_token, cl.attempt_count,
              e.id AS event_id, e.type AS event_type, e.occurred_at, e.data, ${CHANNEL_COLUMNS}
         FROM claimed cl
         JOIN notification_events e ON e.id = cl.event_id
         JOIN notification_channels c ON c.id = cl.channel_id`,
      [limit, leaseSeconds],
    );
    return rows.map((row: Record<string, any>) => ({
      id: row.delivery_id,
      claimToken: row.claim_token,
      attemptCount: row.attempt_count,
      event: { id: row.event_id, type: row.event_type, occurredAt: row.occurred_at, data: row.data },
      channel: mapChannelRow(row),
    }));
  }

  /**
   * Records a batch's attempts and each delivery's new state, and releases the claims, in one
   * statement (one commit for the batch, not one per delivery); only where the claim is still
   * ours. Answers the ids recorded: a missing one's lease ran out and another instance took it over.
   */
  async recordAttempts(attempts: { id: string; claimToken: string; attempt: AttemptRecord }[]): Promise<Set<string>> {
    if (!attempts.length) return new Set();
    const rows: { id: string }[] = await this.dataSource.query(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x (id uuid, claim_token uuid, status text, delay_seconds float8,
                                                            error text, attempted_at timestamptz, duration_ms integer,
                                                            http_status integer, outcome text)),
       d AS (
         UPDATE notification_deliveries n SET
           status = x.status,
           attempt_count = n.attempt_count + 1,
           next_attempt_at = CASE WHEN x.status = 'pending' THEN now() + make_interval(secs => x.delay_seconds) ELSE n.next_attempt_at END,
           delivered_at = CASE WHEN x.status = 'delivered' THEN now() END,
           last_error = x.error, claim_token = NULL, claimed_until = NULL, updated_at = now()
         FROM x
         WHERE n.id = x.id AND n.claim_token = x.claim_token
         RETURNING n.id),
       a AS (
         INSERT INTO notification_attempts (delivery_id, attempted_at, duration_ms, http_status, error, outcome)
         SELECT x.id, x.attempted_at, x.duration_ms, x.http_status, x.error, x.outcome FROM x JOIN d ON d.id = x.id
         ORDER BY x.attempted_at, x.id)
       SELECT id FROM d`,
      [
        JSON.stringify(
          attempts.map(({ id, claimToken, attempt }) => ({
            id,
            claim_token: claimToken,
            status: attempt.status,
            delay_seconds: attempt.delaySeconds ?? 0,
            error: attempt.error?.slice(0, 1000) ?? null,
            attempted_at: attempt.attemptedAt.toISOString(),
            duration_ms: Math.max(0, Math.round(attempt.durationMs)),
            http_status: attempt.httpStatus ?? null,
            outcome: attempt.outcome,
          })),
        ),
      ],
    );
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Deletes up to `limit` events older than `days` whose deliveries are all finished (delivered or
   * failed), with their deliveries and attempts, in one statement (the foreign keys are checked at
   * its end, when all three are gone). SKIP LOCKED: instances purging together take different
   * events. Answers how many events went.
   */
  async purgeFinished(days: number, limit: number): Promise<number> {
    const rows = await this.dataSource.query(
      `WITH old AS (
         SELECT e.id FROM notification_events e
         WHERE e.occurred_at < now() - make_interval(days => $1)
           AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
         ORDER BY e.occurred_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED),
       attempts AS (
         DELETE FROM notification_attempts a USING notification_deliveries d, old
         WHERE a.delivery_id = d.id AND d.event_id = old.id),
       deliveries AS (
         DELETE FROM notification_deliveries d USING old WHERE d.event_id = old.id),
       events AS (
         DELETE FROM notification_events e USING old WHERE e.id = old.id RETURNING e.id)
       SELECT count(*)::int AS purged FROM events`,
      [days, limit],
    );
    return rows[0].purged;
  }

  /** Writes a `notification.test` event routed to one channel; its delivery's id. */
  async enqueueTest(channelId: string, data: Record<string, unknown>): Promise<string | undefined> {
    return this.dataSource.transaction(async (manager) => {
      const [event] = await manager.query(`SELECT notification_enqueue('notification.test', $1::jsonb, jsonb_build_array($2::text)) AS id`, [
        JSON.stringify(data),
        channelId,
      ]);
      const rows = await manager.query(`SELECT id FROM notification_deliveries WHERE event_id = $1 AND channel_id = $2`, [event.id, channelId]);
      return rows[0]?.id;
    });
  }

  /** Newest first, each with its attempts (oldest first). */
  async list(filter: DeliveryFilter): Promise<DeliveryRow[]> {
    const rows = await this.dataSource.query(
      `SELECT d.id, d.event_id, e.type AS event_type, d.channel_id, c.type AS channel_type, c.name AS channel_name,
              e.budget_id, d.status, d.attempt_count, d.next_attempt_at, d.delivered_at, d.last_error, d.created_at,
              to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key,
              coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'attemptedAt', to_char(a.attempted_at AT TIME ZONE 'UTC', ${ISO}),
                                 'httpStatus', a.http_status, 'error', a.error,
                                 'durationMs', a.duration_ms, 'outcome', a.outcome) ORDER BY a.id)
                          FROM notification_attempts a WHERE a.delivery_id = d.id), '[]') AS attempts
         FROM notification_deliveries d
         JOIN notification_events e ON e.id = d.event_id
         JOIN notification_channels c ON c.id = d.channel_id
        WHERE ($1::uuid IS NULL OR d.id = $1)
          AND ($2::uuid IS NULL OR d.channel_id = $2)
          AND ($3::uuid IS NULL OR e.budget_id = $3)
          AND ($4::text IS NULL OR d.status = $4)
          AND ($5::timestamptz IS NULL OR (d.created_at, d.id) < ($5::timestamptz, $6::uuid))
        ORDER BY d.created_at DESC, d.id DESC
        LIMIT $7`,
      [filter.id ?? null, filter.channelId ?? null, filter.budgetId ?? null, filter.status ?? null,
        filter.before?.[0] ?? null, filter.before?.[1] ?? null, filter.limit + 1],
    );
    return rows.map(mapDeliveryRow);
  }

  /** Queues a failed delivery again with a fresh schedule; false when it is not failed (or absent). */
  async requeueFailed(id: string): Promise<boolean> {
    const rows = await this.dataSource.query(
      `WITH d AS (
         UPDATE notification_deliveries SET status = 'pending', attempt_count = 0, next_attempt_at = now(), updated_at = now()
         WHERE id = $1 AND status = 'failed' RETURNING id)
       SELECT id FROM d`,
      [id],
    );
    return rows.length > 0;
  }

  /** Pending deliveries and the age in seconds of the oldest, for the metrics. */
  async queueStats(): Promise<{ depth: number; oldestPendingSeconds: number }> {
    const rows = await this.dataSource.query(
      `SELECT count(*)::int AS depth, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
         FROM notification_deliveries WHERE status = 'pending'`,
    );
    return { depth: rows[0].depth, oldestPendingSeconds: rows[0].oldest };
  }
}
