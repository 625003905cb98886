import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { UsageEvents } from './usage.events';
import { UsageRepository, type BatchRow, type RecordedUsageRow, type UsageWrite } from './usage.repository';

/** Emitted once per group committed, for the metrics (size 1: a write that found its budget idle). */
export const USAGE_WRITE_GROUP_COMMITTED = 'usage.write-group.committed';

export interface UsageWriteGroupCommitted {
  size: number;
}

interface Pending {
  write: UsageWrite;
  resolve(row: RecordedUsageRow): void;
  reject(error: unknown): void;
}

/** The writes of one budget: those waiting, while the lane's one group is in flight. */
interface Lane {
  queue: Pending[];
}

/**
 * An error PostgreSQL answered for the group's statement, which its transaction rolled back, and
 * which may belong to one record rather than the group: the rules our functions raise (RB<status>),
 * bad data (class 22), a constraint (class 23) or a raised exception (P0001). Each record is then
 * written alone, and answered exactly as a single write is. Any other error (the connection, a
 * timeout, an overloaded server) is the group's: every write in it gets that error, as it would
 * have alone; without an answer from PostgreSQL the group may have committed, so nothing is retried.
 */
function recordLevelError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^(RB\d{3}|22...|23...|P0001)$/.test(code);
}

/**
 * Group commit of single usage writes (`POST /budgets/:id/usage`), per budget. A write to a
 * budget with no write in flight on this instance goes at once, alone, through `record_usage`: a
 * single client never waits for a batch window. Writes arriving while one is in flight queue
 * behind it, and when it commits they go together as one group: one `record_usage_batch` call,
 * one transaction, one WAL flush, one update of each cache row of the chain, however many
 * records. Each request is answered only after its record committed (acknowledged = committed,
 * as before).
 *
 * What each request gets is what it would get alone:
 * - a new record: 201 with its row; a replay of its key: 200 with the original row;
 * - a record the batch refused (wrong currency, outside the period, filter, reservation, key
 *   reused or expired, price missing): written again alone through `record_usage`, so its error
 *   (or answer) is the single write's own, word for word;
 * - two writes with the same key never share a group: the second waits for the next one, where
 *   it replays the first (or conflicts with it), as two concurrent single writes do.
 *
 * Locks: a group is one budget's batch, which locks its chain in the order every writer uses,
 * so groups, single writes and batches of other instances wait for each other, never deadlock.
 */
@Injectable()
export class UsageWriteGroups {
  private readonly lanes = new Map<string, Lane>();
  private readonly enabled: boolean;
  private readonly maxSize: number;

  constructor(
    private readonly usage: UsageRepository,
    private readonly events: EventEmitter2,
    private readonly announcer: UsageEvents,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.enabled = config.usageGroupMax > 1;
    this.maxSize = config.usageGroupMax;
  }

  /** Records one usage, in a group with the writes to the same budget that arrive meanwhile. */
  record(write: UsageWrite): Promise<RecordedUsageRow> {
    if (!this.enabled) return this.usage.record(write);
    return new Promise<RecordedUsageRow>((resolve, reject) => {
      const lane = this.lanes.get(write.budgetId);
      if (lane) {
        lane.queue.push({ write, resolve, reject });
        return;
      }
      const fresh: Lane = { queue: [{ write, resolve, reject }] };
      this.lanes.set(write.budgetId, fresh);
      void this.drive(write.budgetId, fresh);
    });
  }

  /** Commits the lane's groups one after the other until nothing waits, then frees the lane. */
  private async drive(budgetId: string, lane: Lane): Promise<void> {
    try {
      while (lane.queue.length) await this.commit(budgetId, this.take(lane));
    } finally {
      this.lanes.delete(budgetId);
    }
  }

  /** The next group: the oldest writes, at most maxSize, no idempotency key twice. */
  private take(lane: Lane): Pending[] {
    const group: Pending[] = [];
    const keys = new Set<string>();
    const rest: Pending[] = [];
    for (const pending of lane.queue) {
      const key = pending.write.idempotencyKey;
      if (group.length >= this.maxSize || (key !== null && keys.has(key))) {
        rest.push(pending);
        continue;
      }
      if (key !== null) keys.add(key);
      group.push(pending);
    }
    lane.queue = rest;
    return group;
  }

  /** Commits one group and settles each of its writes; never throws. */
  private async commit(budgetId: string, group: Pending[]): Promise<void> {
    this.events.emit(USAGE_WRITE_GROUP_COMMITTED, { size: group.length } satisfies UsageWriteGroupCommitted);
    if (group.length === 1) return this.alone(group[0]);
    let rows: BatchRow[];
    try {
      rows = await this.usage.recordBatch(budgetId, group.map(({ write }) => ({ ...write, id: randomUUID() })));
    } catch (error) {
      if (!recordLevelError(error)) {
        for (const pending of group) pending.reject(error);
        return;
      }
      await Promise.all(group.map((pending) => this.alone(pending)));
      return;
    }
    // The alerts the group's transaction fired ride on its first line (record_usage_batch): they
    // go with the first write answered from the group, so each is announced once.
    let fired = rows[0]?.firedAlerts ?? [];
    const refused: Pending[] = [];
    for (const row of rows) {
      const pending = group[row.ordinal];
      if (row.errorCode) {
        refused.push(pending);
        continue;
      }
      pending.resolve({ ...row, matchedBudgetIds: null, firedAlerts: fired });
      fired = [];
    }
    // No write of the group was answered from it: its alerts (if any) are announced here.
    this.announcer.announceAll(fired);
    await Promise.all(refused.map((pending) => this.alone(pending)));
  }

  /** One write through `record_usage`, settled with its own answer or error. */
  private async alone(pending: Pending): Promise<void> {
    try {
      pending.resolve(await this.usage.record(pending.write));
    } catch (error) {
      pending.reject(error);
    }
  }
}
