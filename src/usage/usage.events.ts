import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';

/** The in-process event emitted for every alert history row a usage write inserts. */
export const BUDGET_ALERT_TRIGGERED = 'budget.alert.triggered';

/** Emitted once per group of single usage writes committed (usage-write-groups.ts), for the metrics; size 1: a write alone. */
export const USAGE_WRITE_GROUP_COMMITTED = 'usage.write-group.committed';

export interface UsageWriteGroupCommitted {
  size: number;
}

/** An alert history row inserted by a usage write (money and percents as PostgreSQL wrote them). */
export interface FiredAlert {
  id: string;
  budgetId: string;
  alertId: string;
  threshold: number;
  type: string;
  percentUsed: number;
  amount: number;
  actions: string[];
  notificationChannels: string[];
  periodStart: string;
  triggeredAt: string;
}

/** An alert triggered in a status row's window, as the status functions return it. */
export interface ActiveAlertJson {
  id: string;
  alertId: string;
  threshold: number | string;
  type: string;
  triggeredAt: string;
  percentUsed: number | string;
  amount: number | string;
  actions: string[];
  acknowledged: boolean;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

/** Announces what usage writes triggered: logged, and emitted in-process for whoever listens. */
@Injectable()
export class UsageEvents {
  private readonly logger = new Logger(UsageEvents.name);

  constructor(private readonly events: EventEmitter2) {}

  /** Each alert a write fired (none for a replay). */
  announceAll(alerts: FiredAlert[] | null | undefined): void {
    for (const alert of alerts ?? []) this.announce(alert);
  }

  announce(alert: FiredAlert): void {
    this.logger.warn(
      `Budget alert ${alert.alertId} fired on budget ${alert.budgetId} at ${alert.percentUsed}% (threshold ${alert.threshold}%, actions ${alert.actions.join(', ')})`,
    );
    this.events.emit(BUDGET_ALERT_TRIGGERED, alert);
  }
}
