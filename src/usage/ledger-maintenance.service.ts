import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { LedgerMaintenanceRepository } from './ledger-maintenance.repository';

/** Months of partitions kept ready after the current one ("at least two months ahead", with one to spare). */
export const PARTITION_MONTHS_AHEAD = 3;

/**
 * Attempts at dropping expired months when the ledger's lock is not granted within the SQL
 * function's lock_timeout (writers in flight longer than it): each attempt stalls writers at most
 * that long, and the waits between them let the queue drain.
 */
const DROP_ATTEMPTS = 5;
const DROP_RETRY_DELAY_MS = 500;
const LOCK_NOT_AVAILABLE = '55P03';

/** Keys (and gateway request ids) deleted per statement, so no purge holds many row locks or runs long. */
const KEY_PURGE_BATCH = 10_000;

/** What one maintenance run did. */
export interface MaintenanceOutcome {
  created: string[];
  dropped: string[];
  keysPurged: number;
  /** Gateway request ids (integration usage) whose rows retention removed, past the same horizon. */
  integrationRequestsPurged: number;
}

/**
 * Keeps the partitioned ledger ready and within its retention (SPEC §17): at start-up and every
 * LEDGER_MAINTENANCE_INTERVAL_MS, the month partitions up to PARTITION_MONTHS_AHEAD ahead are
 * created (a usage of a month without one lands in the default partition meanwhile, and moves out
 * when its month is created); with USAGE_RETENTION_MONTHS set, expired months are dropped and
 * their idempotency keys and gateway request ids purged past the replay horizon. `maintain()` is the same step for tests
 * and operators. Instances serialise on a transaction-level advisory lock inside each SQL function.
 */
@Injectable()
export class LedgerMaintenanceService implements OnApplicationBootstrap {
  private readonly logger = new Logger('LedgerMaintenance');
  private running = false;

  constructor(
    private readonly ledger: LedgerMaintenanceRepository,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.runScheduled();
    const every = this.config.ledgerMaintenanceIntervalMs;
    if (!every) return;
    // Registered with the scheduler, which clears it when the application shuts down.
    this.scheduler.addInterval('ledger-maintenance', setInterval(() => void this.runScheduled(), every));
  }

  async maintain(at: Date = this.clock.now()): Promise<MaintenanceOutcome> {
    const created = await this.ledger.ensurePartitions(at, PARTITION_MONTHS_AHEAD);
    const months = this.config.usageRetentionMonths;
    if (months === undefined) return { created, dropped: [], keysPurged: 0, integrationRequestsPurged: 0 };
    const dropped = await this.dropExpired(at, months);
    const keysPurged = await this.inBatches(() => this.ledger.purgeKeys(at, months, KEY_PURGE_BATCH));
    const integrationRequestsPurged = await this.inBatches(() => this.ledger.purgeIntegrationRequests(at, months, KEY_PURGE_BATCH));
    return { created, dropped, keysPurged, integrationRequestsPurged };
  }

  /** Runs a purge of KEY_PURGE_BATCH rows a statement until one deletes fewer; returns the total. */
  private async inBatches(purge: () => Promise<number>): Promise<number> {
    let total = 0;
    let purged: number;
    do {
      purged = await purge();
      total += purged;
    } while (purged === KEY_PURGE_BATCH);
    return total;
  }

  private async dropExpired(at: Date, months: number): Promise<string[]> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.ledger.dropExpiredPartitions(at, months);
      } catch (error) {
        if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE || attempt === DROP_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, DROP_RETRY_DELAY_MS * attempt));
      }
    }
  }

  private async runScheduled(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const outcome = await this.maintain();
      if (outcome.created.length || outcome.dropped.length || outcome.keysPurged || outcome.integrationRequestsPurged) {
        this.logger.log(
          `Ledger partitions created: ${outcome.created.join(', ') || 'none'}; dropped: ${outcome.dropped.join(', ') || 'none'}; ` +
            `idempotency keys purged: ${outcome.keysPurged}; gateway request ids purged: ${outcome.integrationRequestsPurged}`,
        );
      }
    } catch (error) {
      // A lock not granted within the functions' lock_timeout lands here; the next run retries.
      this.logger.warn(`Ledger maintenance failed (retried at the next run): ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }
}
