import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { databaseUnavailable } from '../common/errors/postgres-errors';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { UsageEvents, USAGE_WRITE_GROUP_COMMITTED, type FiredAlert, type UsageWriteGroupCommitted } from './usage.events';
import { UsageRepository, type GroupRow, type RecordedUsageRow, type UsageWrite } from './usage.repository';

/**
 * Groups in flight at once on one instance. One would serialise every write of the instance behind
 * the slowest group; a few let a group wait for a busy budget's lock while the next one goes on,
 * and still leave the writes that arrive meanwhile enough time to gather into large groups.
 */
export const GROUPS_IN_FLIGHT = 2;

interface Pending {
  write: UsageWrite;
  resolve(row: RecordedUsageRow): void;
  reject(error: unknown): void;
  /** Answers 503 if the write is still queued when its wait for a slot runs out. */
  timer: NodeJS.Timeout;
}

/**
 * An error PostgreSQL answered for the group's statement, which its transaction rolled back, and
 * which may belong to one record rather than the group: the rules our functions raise (RB<status>),
 * bad data (class 22), a constraint (class 23) or a raised exception (P0001). The group's writes
 * are then committed again one by one, so each is answered exactly as a single write is. Any other
 * error (the connection, a timeout, an overloaded server) is the group's: every write in it gets
 * that error, as it would have alone; without an answer from PostgreSQL the group may have
 * committed, so nothing is retried.
 */
function recordLevelError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^(RB\d{3}|22...|23...|P0001)$/.test(code);
}

/**
 * Group commit of single usage writes (`POST /budgets/:id/usage`). A write that finds a free slot
 * (fewer than GROUPS_IN_FLIGHT groups in flight on this instance) goes at once, alone, through
 * `record_usage`: a single client never waits for a batch window. Writes arriving while the slots
 * are taken queue, and each slot that frees takes the oldest of them (up to USAGE_GROUP_MAX) as one
 * group: one `record_usage_group` call, one transaction, one INSERT, one WAL flush, one update of
 * each cache row their chains share, whatever budgets and trees they go to. Each request is
 * answered only after its record committed (acknowledged = committed, as before).
 *
 * What each request gets is what it would get alone:
 * - a new record: 201 with its row; a replay of its key: 200 with the original row;
 * - a record the group did not write (wrong currency, outside the period, filter, reservation, key
 *   reused or expired, price missing, budget deleted): written again alone through `record_usage`,
 *   so its error (or answer) is the single write's own, word for word;
 * - two writes to one budget with the same key never share a group: the second waits for a later
 *   one, where it replays the first (or conflicts with it), as two concurrent writes do.
 *
 * Locks: record_usage_group writes the whole group in one INSERT, whose trigger locks roll-ups and
 * then cache rows in the one global order every writer uses (migration UsageWriteGroups), so groups
 * and all other writers of any instance wait for each other, never in a cycle.
 */
@Injectable()
export class UsageWriteGroups {
  private queue: Pending[] = [];
  private inFlight = 0;
  private readonly enabled: boolean;
  private readonly maxSize: number;
  /**
   * How long a write may wait in the queue for a slot: DATABASE_CONNECT_TIMEOUT_MS, what a request
   * waited for a pooled connection before writes were grouped; then 503, as it was.
   */
  private readonly queueTimeoutMs: number;

  constructor(
    private readonly usage: UsageRepository,
    private readonly events: EventEmitter2,
    private readonly announcer: UsageEvents,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.enabled = config.usageGroupMax > 1;
    this.maxSize = config.usageGroupMax;
    this.queueTimeoutMs = config.connectionTimeoutMs;
  }

  /** Records one usage, alone when a slot is free, else in a group with the writes that queue meanwhile. */
  record(write: UsageWrite): Promise<RecordedUsageRow> {
    if (!this.enabled) return this.usage.record(write);
    return new Promise<RecordedUsageRow>((resolve, reject) => {
      const pending: Pending = {
        write,
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.queue.indexOf(pending);
          if (at < 0) return;
          this.queue.splice(at, 1);
          // Waited as long as a request waits for a pooled connection: never sent, safe to retry.
          reject(databaseUnavailable());
        }, this.queueTimeoutMs),
      };
      this.queue.push(pending);
      this.pump();
    });
  }

  /** Starts groups while slots are free and writes wait. */
  private pump(): void {
    while (this.inFlight < GROUPS_IN_FLIGHT && this.queue.length) {
      const group = this.take();
      this.inFlight += 1;
      void this.commit(group).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  /** The next group: the oldest writes, at most maxSize, no idempotency key twice on one budget. */
  private take(): Pending[] {
    const group: Pending[] = [];
    const keys = new Set<string>();
    const skipped: Pending[] = [];
    let next = 0;
    for (; next < this.queue.length && group.length < this.maxSize; next++) {
      const pending = this.queue[next];
      const { budgetId, idempotencyKey } = pending.write;
      const key = idempotencyKey === null ? null : `${budgetId} ${idempotencyKey}`;
      if (key !== null && keys.has(key)) {
        skipped.push(pending);
        continue;
      }
      if (key !== null) keys.add(key);
      clearTimeout(pending.timer);
      group.push(pending);
    }
    this.queue = [...skipped, ...this.queue.slice(next)];
    return group;
  }

  /** Commits one group and settles each of its writes; never throws. */
  private async commit(group: Pending[]): Promise<void> {
    this.events.emit(USAGE_WRITE_GROUP_COMMITTED, { size: group.length } satisfies UsageWriteGroupCommitted);
    if (group.length === 1) return this.alone(group[0]);
    let rows: GroupRow[];
    try {
      rows = await this.usage.recordGroup(group.map(({ write }) => ({ ...write, id: randomUUID() })));
    } catch (error) {
      if (!recordLevelError(error)) {
        for (const pending of group) pending.reject(error);
        return;
      }
      await Promise.all(group.map((pending) => this.alone(pending)));
      return;
    }
    // The alerts the group's transaction fired ride on its first line: they go with the first
    // write answered from the group, so each is announced once.
    let alerts: FiredAlert[] = rows[0]?.firedAlerts ?? [];
    const refused: Pending[] = [];
    for (const row of rows) {
      const pending = group[row.ordinal];
      if (!row.recorded && !row.replayed) {
        refused.push(pending);
        continue;
      }
      pending.resolve({ ...row, matchedBudgetIds: null, firedAlerts: alerts });
      alerts = [];
    }
    // No write of the group was answered from it: its alerts (if any) are announced here.
    this.announcer.announceAll(alerts);
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
