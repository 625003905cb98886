import { performance } from 'node:perf_hooks';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { RequestLoad } from '../common/request-load';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { ChannelRepository } from './channel.repository';
import { ChannelSenders } from './channel-senders';
import { decideAfterAttempt, type AttemptDecision, type AttemptResult } from './delivery-policy';
import { DeliveryRepository, type AttemptRecord, type ClaimedDelivery } from './delivery.repository';
import {
  NOTIFICATION_ATTEMPT_FINISHED, NOTIFICATION_QUEUE_SAMPLED, type NotificationAttemptFinished, type NotificationQueueSample,
} from './notification.events';

const STATUS_AFTER = { delivered: 'delivered', retry: 'pending', failed: 'failed' } as const;

/** A sent delivery, what its answer means, and the attempt to record. */
interface Attempted {
  delivery: ClaimedDelivery;
  decision: AttemptDecision;
  record: AttemptRecord;
}

/** The outbox is purged this often, at most PURGE_BATCH events a statement. */
const PURGE_INTERVAL_MS = 3_600_000;
const PURGE_BATCH = 5_000;

/** Polls without a bound in one call would never return while a receiver answers 5xx with a 0 s schedule. */
const MAX_BATCHES_PER_CALL = 100;

/**
 * HTTP requests in flight on this instance from which a timed poll leaves the rest of the outbox
 * to the next poll after each batch: checks and usage writes come first (docs/notifications.md,
 * "Under load").
 */
export const RELAY_YIELD_REQUESTS = 8;

export interface DeliverOptions {
  /** Stop after a batch once RELAY_YIELD_REQUESTS requests are in flight (timed polls do). */
  yieldWhenBusy?: boolean;
}

/**
 * The outbox relay. Every instance polls (no LISTEN, so it works behind PgBouncer in
 * transaction mode), claims due deliveries with a lease, sends them and records each attempt.
 * At least once: a delivery is marked delivered only after a 2xx (or an accepted mail), and a
 * claim whose instance died is taken again when its lease ends.
 */
@Injectable()
export class DeliveryRelay implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Notification');
  private timer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopping = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly deliveries: DeliveryRepository,
    private readonly channels: ChannelRepository,
    private readonly senders: ChannelSenders,
    private readonly events: EventEmitter2,
    private readonly load: RequestLoad,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.notify.relayEnabled) return;
    this.timer = setInterval(() => void this.poll(), this.config.notify.pollIntervalMs);
    if (this.config.notify.retentionDays > 0) {
      this.purgeTimer = setInterval(() => {
        this.purgeFinished().catch((error: unknown) => this.logger.warn(`Outbox purge failed (retried in an hour): ${(error as Error).message}`));
      }, PURGE_INTERVAL_MS);
    }
  }

  /**
   * Removes finished events older than NOTIFY_RETENTION_DAYS with their deliveries and attempts,
   * a batch at a time; the number of events removed. Pending deliveries are never touched.
   */
  async purgeFinished(): Promise<number> {
    const { retentionDays } = this.config.notify;
    if (retentionDays === 0) return 0;
    let purged = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_CALL && !this.stopping; batch++) {
      const removed = await this.deliveries.purgeFinished(retentionDays, PURGE_BATCH);
      purged += removed;
      if (removed < PURGE_BATCH) break;
    }
    if (purged) this.logger.log(`Outbox: ${purged} finished events older than ${retentionDays} days purged`);
    return purged;
  }

  /** Stops polling and waits for the attempts in flight to be recorded. */
  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearInterval(this.purgeTimer);
    await this.running;
  }

  private poll(): void {
    if (this.running || this.stopping) return;
    this.running = this.deliverDue({ yieldWhenBusy: true })
      .catch((error: unknown) => {
        this.logger.warn(`Delivery poll failed (retried at the next poll): ${(error as Error).message}`);
        return 0;
      })
      .finally(() => (this.running = undefined));
  }

  /**
   * Claims and sends every due delivery, a batch at a time; the number of attempts made. With
   * `yieldWhenBusy`, a batch after which RELAY_YIELD_REQUESTS or more requests are in flight is
   * the last of this call: while requests crowd in, an instance delivers one batch
   * (NOTIFY_BATCH_SIZE) per poll, and its hot path keeps the rest of the CPU.
   */
  async deliverDue(options: DeliverOptions = {}): Promise<number> {
    const { batchSize, leaseSeconds } = this.config.notify;
    let attempts = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_CALL && !this.stopping; batch++) {
      const claimed = await this.deliveries.claimDue(batchSize, leaseSeconds);
      if (!claimed.length) break;
      await this.record(await Promise.all(claimed.map((delivery) => this.attempt(delivery))));
      attempts += claimed.length;
      if (options.yieldWhenBusy && this.load.inFlight >= RELAY_YIELD_REQUESTS) break;
    }
    const sample: NotificationQueueSample = await this.deliveries.queueStats();
    this.events.emit(NOTIFICATION_QUEUE_SAMPLED, sample);
    return attempts;
  }

  /** Sends one claimed delivery and decides what its answer means; the batch records it. */
  private async attempt(delivery: ClaimedDelivery): Promise<Attempted> {
    const { channel } = delivery;
    const attemptedAt = new Date();
    const started = performance.now();
    let result: AttemptResult;
    let decision: AttemptDecision;
    if (channel.enabled) {
      result = await this.senders.send(delivery.event, channel, attemptedAt);
      decision = decideAfterAttempt(result, delivery.attemptCount + 1, {
        schedule: this.config.notify.retrySchedule,
        jitter: this.config.notify.retryJitter,
      });
    } else {
      result = {};
      decision = { outcome: 'failed', error: `the channel is disabled${channel.disabledReason ? ` (${channel.disabledReason})` : ''}` };
    }
    const durationMs = performance.now() - started;
    if (decision.disableChannel) await this.channels.disable(channel.id, `receiver answered 410 Gone at ${attemptedAt.toISOString()}`);
    return {
      delivery,
      decision,
      record: {
        status: STATUS_AFTER[decision.outcome],
        delaySeconds: decision.delaySeconds,
        attemptedAt,
        durationMs,
        httpStatus: result.status,
        error: decision.error,
        outcome: decision.outcome,
      },
    };
  }

  /**
   * Records a batch's attempts in one statement (one commit per batch: the relay's database cost
   * per delivery is what P2w measures against the writes), then logs and counts each.
   */
  private async record(attempted: Attempted[]): Promise<void> {
    const recorded = await this.deliveries.recordAttempts(
      attempted.map(({ delivery, record }) => ({ id: delivery.id, claimToken: delivery.claimToken, attempt: record })),
    );
    for (const { delivery, decision, record } of attempted) {
      const { channel } = delivery;
      if (!recorded.has(delivery.id)) {
        this.logger.warn(`Delivery ${delivery.id}: the lease ran out before the attempt was recorded; another instance retries it`);
      } else if (decision.outcome !== 'delivered') {
        this.logger.warn(
          `Delivery ${delivery.id} of event ${delivery.event.id} to ${channel.type} channel ${channel.id}: ${decision.error}` +
            (decision.outcome === 'retry' ? `; next attempt in ${Math.round(decision.delaySeconds ?? 0)} s` : '; failed'),
        );
      }
      const finished: NotificationAttemptFinished = { channelType: channel.type, outcome: decision.outcome, durationSeconds: record.durationMs / 1000 };
      this.events.emit(NOTIFICATION_ATTEMPT_FINISHED, finished);
    }
  }
}
