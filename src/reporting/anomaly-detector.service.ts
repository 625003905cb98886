import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { Decimal } from '../common/money';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { scoreHour } from './anomaly-score';
import type { BudgetAnomalyDto } from './dto/anomaly.dto';
import { toAnomalyDto } from './reporting.mapper';
import { ReportingRepository, type AnomalyCandidateRow, type AnomalyInsert } from './reporting.repository';

const HOUR_MS = 3_600_000;

/** What one run of the detector did. */
export interface DetectionOutcome {
  /** The hour scored: [hourStart, hourStart + 1 h). */
  hourStart: Date;
  /** False when another instance held the detector's lock (it scores the hour instead). */
  ran: boolean;
  /** The anomalies this run recorded (an hour already recorded is not recorded again). */
  recorded: BudgetAnomalyDto[];
}

/**
 * Spike detection (SPEC §15, docs/reporting.md "Anomalies"): every ANOMALY_DETECTOR_INTERVAL_MS
 * (0 = off) the last complete hour of each budget with detection enabled is scored against the
 * same hour of the 7 days before; a spike is recorded in `budget_anomalies` once per budget and
 * hour. One instance at a time scores (a transaction-level advisory lock), and `detect()` is the
 * same step for tests and operators.
 */
@Injectable()
export class AnomalyDetectorService implements OnApplicationBootstrap {
  private readonly logger = new Logger('AnomalyDetector');
  private running = false;

  constructor(
    private readonly reports: ReportingRepository,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const every = this.config.anomalyDetectorIntervalMs;
    if (!every) return;
    // Registered with the scheduler, which clears it when the application shuts down.
    this.scheduler.addInterval('anomaly-detector', setInterval(() => void this.runScheduled(), every));
  }

  /** Scores the last complete hour before `at` (default: now). */
  async detect(at: Date = this.clock.now()): Promise<DetectionOutcome> {
    const hourStart = new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS - HOUR_MS);
    const rows = await this.reports.detectAnomalies(hourStart, (candidates) => candidates.flatMap((c) => this.spike(c, hourStart)));
    const recorded = (rows ?? []).map(toAnomalyDto);
    for (const anomaly of recorded) {
      this.logger.warn(
        `Budget ${anomaly.budgetId} spent ${anomaly.observed} ${anomaly.currency} in the hour from ${anomaly.hourStart}, ` +
          `against a usual ${anomaly.baselineMedian} (score ${anomaly.score}, ${anomaly.sensitivity} sensitivity)`,
      );
    }
    return { hourStart, ran: rows !== undefined, recorded };
  }

  private async runScheduled(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.detect();
    } catch (error) {
      this.logger.warn(`Anomaly detection failed: ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private spike(candidate: AnomalyCandidateRow, hourStart: Date): AnomalyInsert[] {
    // sums[0] is the hour itself (absent when the budget started after it), then the days before.
    const [observed, ...baseline] = candidate.sums.map((sum) => new Decimal(sum));
    if (observed === undefined) return [];
    const sensitivity = candidate.sensitivity ?? 'medium';
    const score = scoreHour(observed, baseline, new Decimal(candidate.limit), sensitivity);
    if (!score?.isSpike) return [];
    return [
      {
        budgetId: candidate.budgetId,
        hourStart,
        observed: observed.toFixed(),
        baselineMedian: score.median.toFixed(),
        baselineMad: score.mad.toFixed(),
        baselineHours: baseline.length,
        score: score.score,
        sensitivity,
        threshold: score.threshold,
        currency: candidate.currency,
      },
    ];
  }
}
