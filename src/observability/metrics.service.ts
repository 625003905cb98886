import { Inject, Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { InjectDataSource } from '@nestjs/typeorm';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import {
  NOTIFICATION_ATTEMPT_FINISHED, NOTIFICATION_QUEUE_SAMPLED, type NotificationAttemptFinished, type NotificationQueueSample,
} from '../notification/notification.events';
import { CHECK_GROUP_READ, type CheckGroupRead } from '../constraint/constraint.events';
import { BUDGET_ALERT_TRIGGERED, USAGE_WRITE_GROUP_COMMITTED, type UsageWriteGroupCommitted } from '../usage/usage.events';

/** The route label of a request that matched no route (a 404): raw URLs would explode the label set. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Prometheus metrics of one application instance, in a registry of its own (not prom-client's
 * global one, so several apps in one process, as in the tests, never collide).
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  private readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly checks = new Counter({
    name: 'budget_checks_total',
    help: 'Constraint checks answered, by outcome (allowed/blocked) and the rule that decided',
    labelNames: ['outcome', 'rule'] as const,
    registers: [this.registry],
  });

  private readonly usageAmount = new Counter({
    name: 'budget_usage_amount_total',
    help: 'Sum of usage amounts recorded (new records only, not replays), by currency',
    labelNames: ['currency'] as const,
    registers: [this.registry],
  });

  private readonly usageRecords = new Counter({
    name: 'budget_usage_records_total',
    help: 'Usage records written (new records only, not replays)',
    registers: [this.registry],
  });

  private readonly alertsFired = new Counter({
    name: 'budget_alerts_fired_total',
    help: 'Budget alerts triggered',
    registers: [this.registry],
  });

  private readonly transientRetries = new Counter({
    name: 'db_transient_retries_total',
    help: 'Statements or transactions run again after a deadlock (40P01) or serialization failure (40001)',
    labelNames: ['sqlstate'] as const,
    registers: [this.registry],
  });

  private readonly usageWriteGroups = new Histogram({
    name: 'usage_write_group_size',
    help: 'Single usage writes committed together in one transaction (group commit; 1 = a write alone)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });

  private readonly checkGroups = new Histogram({
    name: 'check_group_size',
    help: 'Checks whose contexts one statement read together (checks alone are not counted)',
    buckets: [2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });

  private readonly checkGroupRereads = new Counter({
    name: 'check_group_read_again_total',
    help: 'Checks of a group read again alone (a cache row to refresh, an unknown budget, a refused statement)',
    registers: [this.registry],
  });

  private readonly notificationAttempts = new Counter({
    name: 'notification_deliveries_total',
    help: 'Alert delivery attempts by channel type and outcome (delivered, retry, failed)',
    labelNames: ['channel_type', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly notificationAttemptDuration = new Histogram({
    name: 'notification_attempt_duration_seconds',
    help: 'Duration of one delivery attempt (webhook, Slack, email), by channel type',
    labelNames: ['channel_type'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
    registers: [this.registry],
  });

  private readonly notificationQueueDepth = new Gauge({
    name: 'notification_queue_depth',
    help: "Deliveries pending in the outbox, as of this instance's last relay poll",
    registers: [this.registry],
  });

  private readonly notificationOldestPending = new Gauge({
    name: 'notification_oldest_pending_seconds',
    help: "Age of the oldest pending delivery, as of this instance's last relay poll",
    registers: [this.registry],
  });

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    collectDefaultMetrics({ register: this.registry });
    const pool = () => (this.dataSource.driver as unknown as { master?: Pool }).master;
    const poolGauge = (name: string, help: string, read: (p: Pool) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const p = pool();
          this.set(p ? read(p) : 0);
        },
      });
    poolGauge('db_pool_connections_in_use', 'Pooled PostgreSQL connections checked out', (p) => p.totalCount - p.idleCount);
    poolGauge('db_pool_connections_idle', 'Pooled PostgreSQL connections idle', (p) => p.idleCount);
    poolGauge('db_pool_requests_waiting', 'Queries waiting for a pooled connection', (p) => p.waitingCount);
    poolGauge('db_pool_connections_max', 'Pool size (DATABASE_POOL_SIZE)', () => this.config.databasePoolSize);
  }

  observeRequest(method: string, route: string | undefined, statusCode: number, seconds: number): void {
    this.httpDuration.observe({ method, route: route ?? UNMATCHED_ROUTE, status_code: String(statusCode) }, seconds);
  }

  countCheck(allowed: boolean, rule: string): void {
    this.checks.inc({ outcome: allowed ? 'allowed' : 'blocked', rule });
  }

  countUsage(amount: number, currency: string): void {
    this.usageRecords.inc();
    if (Number.isFinite(amount) && amount >= 0) this.usageAmount.inc({ currency }, amount);
  }

  @OnEvent(BUDGET_ALERT_TRIGGERED)
  countAlert(): void {
    this.alertsFired.inc();
  }

  @OnEvent(USAGE_WRITE_GROUP_COMMITTED)
  observeUsageWriteGroup(group: UsageWriteGroupCommitted): void {
    this.usageWriteGroups.observe(group.size);
  }

  @OnEvent(CHECK_GROUP_READ)
  observeCheckGroup(group: CheckGroupRead): void {
    this.checkGroups.observe(group.size);
    this.checkGroupRereads.inc(group.readAgain);
  }

  @OnEvent(NOTIFICATION_ATTEMPT_FINISHED)
  countNotificationAttempt(attempt: NotificationAttemptFinished): void {
    this.notificationAttempts.inc({ channel_type: attempt.channelType, outcome: attempt.outcome });
    this.notificationAttemptDuration.observe({ channel_type: attempt.channelType }, attempt.durationSeconds);
  }

  @OnEvent(NOTIFICATION_QUEUE_SAMPLED)
  sampleNotificationQueue(sample: NotificationQueueSample): void {
    this.notificationQueueDepth.set(sample.depth);
    this.notificationOldestPending.set(sample.oldestPendingSeconds);
  }

  countTransientRetry(sqlState: string): void {
    this.transientRetries.inc({ sqlstate: sqlState });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
