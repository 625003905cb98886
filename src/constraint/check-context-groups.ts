import { Inject, Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { RequestTraits } from '../budget/budget.types';
import { WaitingLine, type Waiting } from '../common/waiting-line';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { CHECK_GROUP_READ, type CheckGroupRead } from './constraint.events';
import { ConstraintRepository, type CheckContextRow, type CheckTarget, type GroupedCheck } from './constraint.repository';

/**
 * Statements in flight at once per queue (checks by id, checks by scopes) on one instance: two
 * keep both of PostgreSQL's cores of a small server busy while the checks arriving meanwhile
 * gather into the next statements.
 */
export const CHECK_GROUPS_IN_FLIGHT = 2;

type Pending = Waiting<GroupedCheck, CheckContextRow[]>;

/**
 * An error that is the statement's, not one check's: anything but an answer from PostgreSQL (no
 * SQLSTATE: the driver or the socket failed, e.g. ECONNRESET or "Connection terminated"), or an
 * answer of a connection, resource or operator class (08, 53, 57: the server going away, out of
 * memory or connections, a statement timeout). Every check of the group gets it, as each would
 * have alone. Any other error PostgreSQL answered is read again check by check.
 */
function statementError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
  return !sqlState || /^(08|53|57)/.test(code);
}

/** One queue of checks of one kind (by id, or by scopes), read alone or together. */
class CheckQueue {
  private readonly queue: WaitingLine<GroupedCheck, CheckContextRow[]>;
  private inFlight = 0;

  constructor(
    private readonly repository: ConstraintRepository,
    private readonly events: EventEmitter2,
    private readonly maxSize: number,
    /** How long a check may wait for a slot (DATABASE_CONNECT_TIMEOUT_MS); then 503, as before groups. */
    queueTimeoutMs: number,
  ) {
    this.queue = new WaitingLine(queueTimeoutMs);
  }

  read(check: GroupedCheck): Promise<CheckContextRow[]> {
    if (this.maxSize <= 1) return this.alone(check);
    const rows = this.queue.wait(check);
    this.pump();
    return rows;
  }

  private alone({ target, at, traits }: GroupedCheck): Promise<CheckContextRow[]> {
    return this.repository.checkContext(target, at, traits);
  }

  /** Starts statements while slots are free and checks wait. */
  private pump(): void {
    while (this.inFlight < CHECK_GROUPS_IN_FLIGHT && this.queue.length) {
      const group = this.queue.take(this.maxSize);
      this.inFlight += 1;
      void this.settle(group).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  /** Reads one group and settles each of its checks; never throws. */
  private async settle(group: Pending[]): Promise<void> {
    if (group.length === 1) return this.settleAlone(group[0]);
    let answers: (CheckContextRow[] | undefined)[];
    try {
      answers = await this.repository.checkContexts(group.map(({ item }) => item));
    } catch (error) {
      if (statementError(error)) {
        this.events.emit(CHECK_GROUP_READ, { size: group.length, readAgain: 0 } satisfies CheckGroupRead);
        for (const pending of group) pending.reject(error);
        return;
      }
      answers = group.map(() => undefined);
    }
    const again: Pending[] = [];
    group.forEach((pending, index) => {
      const rows = answers[index];
      if (rows) pending.resolve(rows);
      else again.push(pending);
    });
    this.events.emit(CHECK_GROUP_READ, { size: group.length, readAgain: again.length } satisfies CheckGroupRead);
    await Promise.all(again.map((pending) => this.settleAlone(pending)));
  }

  private async settleAlone(pending: Pending): Promise<void> {
    try {
      pending.resolve(await this.alone(pending.item));
    } catch (error) {
      pending.reject(error);
    }
  }
}

/**
 * The check's share of group commit: the contexts of checks that arrive together are read by one
 * statement. A check that finds a free slot (fewer than CHECK_GROUPS_IN_FLIGHT statements of its
 * kind in flight on this instance) is read at once, alone, through ConstraintRepository.checkContext:
 * a single client never waits for a window. Checks arriving while the slots are taken queue, and
 * each slot that frees reads the oldest of them (up to CHECK_GROUP_MAX) in one statement,
 * `budget_check_contexts_of` or `budget_check_contexts_of_scopes` (migration CheckContextGroups).
 *
 * What each check gets is what it would get alone:
 * - a check whose chains are all fresh: the rows its single statement reads, from a snapshot taken
 *   after it arrived (the group's statement starts after the check queued);
 * - any other (a cache row to refresh, a rolled-over window, an unknown budget, no budget for its
 *   scopes), and every check of a group whose statement PostgreSQL refused: read again alone, so
 *   its rows, refresh or error are the single read's own. A group only reads: the refreshes, which
 *   lock cache rows, stay in single statements.
 *
 * Behind a transaction-mode pooler (DATABASE_POOL_MODE=transaction) checks are read alone: there
 * every statement is planned anew, and these are worth grouping only when prepared once.
 */
@Injectable()
export class CheckContextGroups {
  private readonly byId: CheckQueue;
  private readonly byScopes: CheckQueue;

  constructor(repository: ConstraintRepository, events: EventEmitter2, @Inject(APP_CONFIG) config: AppConfig) {
    const maxSize = config.databasePoolMode === 'session' ? config.checkGroupMax : 1;
    this.byId = new CheckQueue(repository, events, maxSize, config.connectionTimeoutMs);
    this.byScopes = new CheckQueue(repository, events, maxSize, config.connectionTimeoutMs);
  }

  /** The rows of ConstraintRepository.checkContext, read alone when a slot is free, else with the checks queued meanwhile. */
  checkContext(target: CheckTarget, at: Date, traits: RequestTraits): Promise<CheckContextRow[]> {
    return ('budgetId' in target ? this.byId : this.byScopes).read({ target, at, traits });
  }
}
