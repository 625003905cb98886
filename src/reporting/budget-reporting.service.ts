import { Inject, Injectable } from '@nestjs/common';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { BudgetRegistryService, normaliseAlerts, normaliseModelPolicy } from '../budget/budget-registry.service';
import { Clock } from '../common/clock';
import { DomainError } from '../common/errors/domain-error';
import { Decimal, toMoneyString } from '../common/money';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validateInput } from '../common/validation';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import type { UsageRangeQueryDto } from '../usage/dto/usage-query.dto';
import type { PageQuery } from '../common/pagination';
import type { BudgetAnomalyDto } from './dto/anomaly.dto';
import type { BudgetForecastDto } from './dto/forecast.dto';
import type { BudgetPeriodsDto, PeriodsQueryDto } from './dto/periods.dto';
import { WhatIfDto, type WhatIfResultDto } from './dto/what-if.dto';
import { forecastPlan, forecastWindow, historyRange } from './forecast';
import { toAnomalyDto, toForecastDto, toPeriodDto, toWhatIfSettingsDto, toWhatIfWindowDto } from './reporting.mapper';
import { ReportingRepository, type PeriodRow } from './reporting.repository';
import { usageCsv, usageCsvFileName } from './usage-csv';
import { WindowReplay, type ProposedSettings } from './what-if-replay';

/** A CSV export ready to send: its file name and the stream of its bytes. */
export interface UsageExport {
  fileName: string;
  body: Readable;
}

/**
 * The Budget Reporter (SPEC §15): the forecast, past windows, the what-if replay, anomalies and
 * the CSV export. It reads the ledger, never writes it; the math lives in pure modules beside it
 * (forecast.ts, what-if-replay.ts, anomaly-score.ts) and every statement in the repository.
 */
@Injectable()
export class BudgetReportingService {
  constructor(
    private readonly reports: ReportingRepository,
    private readonly registry: BudgetRegistryService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async getForecast(budgetId: string): Promise<BudgetForecastDto> {
    const budget = await this.registry.getRecord(budgetId);
    const now = this.clock.now();
    const [window] = await this.reports.recentWindows(budgetId, now, 1);
    const plan = forecastPlan(window.periodStart, window.periodEnd);
    const history = historyRange(plan, now, budget.startDate);
    const [spent, totals] = await Promise.all([
      this.reports.spent(budgetId, window.periodStart, window.periodEnd),
      this.reports.bucketTotals(budgetId, history.from, history.to, plan.bucketSeconds),
    ]);
    const firstBucket = Math.round(history.from.getTime() / 1000 / plan.bucketSeconds);
    const buckets = new Array<number>(history.buckets).fill(0);
    for (const row of totals) buckets[Number(row.bucket) - firstBucket] = Number(row.total);
    const current = new Decimal(spent);
    const forecast = forecastWindow({
      buckets,
      bucketSeconds: plan.bucketSeconds,
      current,
      limit: new Decimal(budget.amount),
      now,
      periodStart: window.periodStart,
      periodEnd: window.periodEnd,
    });
    return toForecastDto(budget, window, current, forecast, plan, history);
  }

  async getPeriods(budgetId: string, query: PeriodsQueryDto = {}): Promise<BudgetPeriodsDto> {
    const budget = await this.registry.getRecord(budgetId);
    const rows = await this.reports.periods(budgetId, this.clock.now(), query.count ?? 12);
    return { budgetId, currency: budget.currency, data: rows.map((row) => toPeriodDto(row, budget.amount)) };
  }

  /**
   * Replays the recorded usage of the current window (so far) and the `windows − 1` before it
   * against the proposed settings, oldest row first, through a cursor: memory stays bounded by
   * the windows' tallies. More than `WHAT_IF_MAX_ROWS` records is a 422 before any row is read
   * (the windows' counts come from the roll-ups), and the cursor stops there too (for records
   * added meanwhile). The replay itself needs every row in order: it reads the ledger.
   */
  async whatIf(budgetId: string, request: WhatIfDto): Promise<WhatIfResultDto> {
    const dto = await validateInput(WhatIfDto, request);
    const budget = await this.registry.getRecord(budgetId);
    const settings: ProposedSettings = {
      limit: dto.amount === undefined ? budget.amount : toMoneyString(dto.amount),
      enforcement: dto.enforcement ?? budget.enforcement,
      alerts: dto.alerts === undefined ? budget.alerts : normaliseAlerts(dto.alerts),
      modelPolicy: dto.modelPolicy === undefined ? budget.modelPolicy : normaliseModelPolicy(dto.modelPolicy),
    };
    const periods = await this.reports.periods(budgetId, this.clock.now(), dto.windows ?? 1);
    const maxRows = this.config.whatIfMaxRows;
    if (periods.reduce((sum, period) => sum + Number(period.usageCount), 0) > maxRows) throw this.tooManyRows(periods, maxRows);
    const windows = [...periods].reverse();
    const named = {
      budgetId: budget.id,
      name: budget.name,
      scopeType: budget.scopeType,
      scopeId: budget.scopeId,
      parentId: budget.parentId,
      currency: budget.currency,
      warningThreshold: budget.warningThreshold,
      criticalThreshold: budget.criticalThreshold,
    };
    const replays = windows.map((window) => new WindowReplay(named, settings, window.periodStart, window.periodEnd));
    const cursor = await this.reports.replayCursor(
      budgetId,
      windows[0].periodStart,
      windows[windows.length - 1].periodEnd,
      maxRows + 1,
      this.config.reportStreamTimeoutMs,
    );
    try {
      let read = 0;
      let index = 0;
      for await (const row of cursor.rows) {
        read += 1;
        if (read > maxRows) throw this.tooManyRows(await this.reports.periods(budgetId, this.clock.now(), windows.length), maxRows);
        while (index < replays.length - 1 && row.occurredAt >= replays[index].periodEnd) index += 1;
        replays[index].add(row);
      }
    } finally {
      await cursor.close();
    }
    return {
      budgetId,
      currency: budget.currency,
      settings: toWhatIfSettingsDto(settings),
      windows: replays.reverse().map((replay) => toWhatIfWindowDto(replay.result())),
    };
  }

  async listAnomalies(budgetId: string, query: PageQuery = {}): Promise<Page<BudgetAnomalyDto>> {
    await this.registry.getRecord(budgetId);
    const limit = query.limit ?? 50;
    const before = decodeCursor(query.cursor, 2) as [string, string] | undefined;
    const rows = await this.reports.listAnomalies(budgetId, before, limit);
    return toPage(rows, limit, (row) => [row.hourKey, row.id], toAnomalyDto);
  }

  /**
   * The budget's ledger rows of [from, to) (all of them by default) as CSV, streamed from a
   * server-side cursor: the reply pulls rows as the client reads, so memory stays flat at any size.
   */
  async exportUsage(budgetId: string, query: UsageRangeQueryDto = {}): Promise<UsageExport> {
    await this.registry.getRecord(budgetId);
    const cursor = await this.reports.exportCursor(
      budgetId,
      query.from ?? '-infinity',
      query.to ?? 'infinity',
      this.config.reportStreamTimeoutMs,
    );
    // pipeline() destroys both streams when either ends early (the client went away); the
    // transaction then ends and the connection goes back to the pool.
    const body = pipeline(cursor.rows, usageCsv(), () => void cursor.close());
    return { fileName: usageCsvFileName(budgetId, query.from, query.to), body };
  }

  /** The 422 of a replay too large, naming how many of its windows (newest first) would fit. */
  private tooManyRows(periods: PeriodRow[], maxRows: number): DomainError {
    const windows = periods.length;
    let fitting = 0;
    for (let total = 0; fitting < periods.length; fitting += 1) {
      total += Number(periods[fitting].usageCount);
      if (total > maxRows) break;
    }
    const advice =
      fitting === 0
        ? 'Even the current window alone holds more; ask an operator to raise WHAT_IF_MAX_ROWS.'
        : `Replay at most ${fitting} window${fitting === 1 ? '' : 's'} (windows=${fitting}).`;
    return new DomainError(
      422,
      'WHAT_IF_TOO_LARGE',
      `The last ${windows} window${windows === 1 ? '' : 's'} hold more than ${maxRows} usage records, the most a what-if replays. ${advice}`,
      [{ field: 'windows', message: `the windows hold more than ${maxRows} usage records` }],
    );
  }
}
