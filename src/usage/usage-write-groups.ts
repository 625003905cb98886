import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { WaitingLine, type Waiting } from '../common/waiting-line';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { UsageEvents, USAGE_WRITE_GROUP_COMMITTED, type FiredAlert, type UsageWriteGroupCommitted } from './usage.events';
import type { Scope } from '../budget/budget.types';
import { UsageRepository, type RecordedUsageRow, type UsageWrite } from './usage.repository';

/**
 * Groups in flight at once on one instance, per kind of write (the budget route's, the gateway's).
 * One would serialise every write of the instance behind
 * the slowest group; a few let a group wait for a busy budget's lock while the next one goes on,
 * and still leave the writes that arrive meanwhile enough time to gather into large groups.
 */
export const GROUPS_IN_FLIGHT = 2;

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

/** How one kind of write is committed alone and in a group. */
interface GroupCommitter<W, A> {
  /** The write alone, answered exactly as it is without groups (its error included). */
  alone(write: W): Promise<A>;
  /**
   * The writes in one transaction: per write its answer, or undefined for one the group did not
   * record (it is written again alone); and the alerts the group's transaction fired.
   */
  together(writes: W[]): Promise<{ answers: (A | undefined)[]; alerts: FiredAlert[] }>;
  /** Writes with the same key never share a group (null: no key). */
  key(write: W): string | null;
  /** A grouped write's answer carrying the group's alerts (given to one write of the group). */
  withAlerts(answer: A, alerts: FiredAlert[]): A;
}

/**
 * The scheduling of group commit, for one kind of write (see UsageWriteGroups for what each write
 * gets). Not a provider: each kind's service holds its own queue and slots.
 */
class WriteGroupQueue<W, A> {
  private readonly queue: WaitingLine<W, A>;
  private inFlight = 0;

  constructor(
    private readonly committer: GroupCommitter<W, A>,
    private readonly events: EventEmitter2,
    private readonly announcer: UsageEvents,
    private readonly maxSize: number,
    /** How long a write may wait for a slot (DATABASE_CONNECT_TIMEOUT_MS); then 503, as it was. */
    queueTimeoutMs: number,
  ) {
    this.queue = new WaitingLine(queueTimeoutMs);
  }

  /** Records one write, alone when a slot is free, else in a group with the writes that queue meanwhile. */
  record(write: W): Promise<A> {
    if (this.maxSize <= 1) return this.committer.alone(write);
    const answer = this.queue.wait(write);
    this.pump();
    return answer;
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

  /** The next group: the oldest writes, at most maxSize, no key twice. */
  private take(): Waiting<W, A>[] {
    const keys = new Set<string>();
    return this.queue.take(this.maxSize, (write) => {
      const key = this.committer.key(write);
      if (key === null) return true;
      if (keys.has(key)) return false;
      keys.add(key);
      return true;
    });
  }

  /** Commits one group and settles each of its writes; never throws. */
  private async commit(group: Waiting<W, A>[]): Promise<void> {
    this.events.emit(USAGE_WRITE_GROUP_COMMITTED, { size: group.length } satisfies UsageWriteGroupCommitted);
    if (group.length === 1) return this.alone(group[0]);
    let outcome: { answers: (A | undefined)[]; alerts: FiredAlert[] };
    try {
      outcome = await this.committer.together(group.map(({ item }) => item));
    } catch (error) {
      if (!recordLevelError(error)) {
        for (const pending of group) pending.reject(error);
        return;
      }
      await Promise.all(group.map((pending) => this.alone(pending)));
      return;
    }
    // The alerts the group's transaction fired go with the first write answered from the group,
    // so each is announced once.
    let alerts = outcome.alerts;
    const refused: Waiting<W, A>[] = [];
    group.forEach((pending, index) => {
      const answer = outcome.answers[index];
      if (answer === undefined) {
        refused.push(pending);
        return;
      }
      pending.resolve(this.committer.withAlerts(answer, alerts));
      alerts = [];
    });
    // No write of the group was answered from it: its alerts (if any) are announced here.
    this.announcer.announceAll(alerts);
    await Promise.all(refused.map((pending) => this.alone(pending)));
  }

  /** One write alone, settled with its own answer or error. */
  private async alone(pending: Waiting<W, A>): Promise<void> {
    try {
      pending.resolve(await this.committer.alone(pending.item));
    } catch (error) {
      pending.reject(error);
    }
  }
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
  private readonly queue: WriteGroupQueue<UsageWrite, RecordedUsageRow>;

  constructor(usage: UsageRepository, events: EventEmitter2, announcer: UsageEvents, @Inject(APP_CONFIG) config: AppConfig) {
    const committer: GroupCommitter<UsageWrite, RecordedUsageRow> = {
      alone: (write) => usage.record(write),
      together: async (writes) => {
        const rows = await usage.recordGroup(writes.map((write) => ({ ...write, id: randomUUID() })));
        const answers: (RecordedUsageRow | undefined)[] = writes.map(() => undefined);
        for (const row of rows) {
          if (row.recorded || row.replayed) answers[row.ordinal] = { ...row, matchedBudgetIds: null };
        }
        return { answers, alerts: rows[0]?.firedAlerts ?? [] };
      },
      key: ({ budgetId, idempotencyKey }) => (idempotencyKey === null ? null : `${budgetId} ${idempotencyKey}`),
      withAlerts: (row, alerts) => ({ ...row, firedAlerts: alerts }),
    };
    this.queue = new WriteGroupQueue(committer, events, announcer, config.usageGroupMax, config.connectionTimeoutMs);
  }

  /** Records one usage, alone when a slot is free, else in a group with the writes that queue meanwhile. */
  record(write: UsageWrite): Promise<RecordedUsageRow> {
    return this.queue.record(write);
  }
}

/** A gateway's usage write: the scopes it names and the record (`POST /integration/usage`). */
export interface ScopedWrite {
  scopes: Scope[];
  write: Omit<UsageWrite, 'budgetId' | 'idempotencyKey'>;
}

/**
 * Group commit of the gateway's usage writes (`POST /integration/usage`), scheduled as
 * UsageWriteGroups schedules the budget route's (its own queue and slots): alone through
 * `record_integration_usage` when a slot is free, else in a group through
 * `record_integration_usage_group` (migration IntegrationWriteGroups), one transaction and one
 * INSERT. A write the group did not record (a replay of its request id, a rule refusing it, no
 * budget matching it) is written again alone, so its answer is the single write's own; two writes
 * with one request id never share a group.
 */
@Injectable()
export class IntegrationWriteGroups {
  private readonly queue: WriteGroupQueue<ScopedWrite, RecordedUsageRow[]>;

  constructor(usage: UsageRepository, events: EventEmitter2, announcer: UsageEvents, @Inject(APP_CONFIG) config: AppConfig) {
    const committer: GroupCommitter<ScopedWrite, RecordedUsageRow[]> = {
      alone: ({ scopes, write }) => usage.recordForScopes(scopes, write),
      together: async (writes) => {
        const rows = await usage.recordScopedGroup(writes.map((scoped) => ({ ...scoped, id: randomUUID() })));
        const answers: (RecordedUsageRow[] | undefined)[] = writes.map(() => undefined);
        for (const row of rows) {
          if (row.recorded) answers[row.ordinal] = [row];
        }
        return { answers, alerts: rows[0]?.firedAlerts ?? [] };
      },
      key: ({ write }) => write.requestId,
      withAlerts: ([row, ...rest], alerts) => [{ ...row, firedAlerts: alerts }, ...rest],
    };
    this.queue = new WriteGroupQueue(committer, events, announcer, config.usageGroupMax, config.connectionTimeoutMs);
  }

  /** Records one gateway usage, alone when a slot is free, else in a group with the writes that queue meanwhile. */
  record(scopes: Scope[], write: ScopedWrite['write']): Promise<RecordedUsageRow[]> {
    return this.queue.record({ scopes, write });
  }
}
