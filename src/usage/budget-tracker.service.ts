import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { BudgetRegistryService } from '../budget/budget-registry.service';
import type { Scope } from '../budget/budget.types';
import { Clock } from '../common/clock';
import { toMoneyNumber } from '../common/money';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validateInput } from '../common/validation';
import { PriceCatalogService } from '../pricing/price-catalog.service';
import { BudgetStatusService } from './budget-status.service';
import {
  CONSTRAINT_CHECKER, type ConstraintChecker, type ConstraintCheckOptions, type ConstraintVerdict,
} from './constraint-checker';
import type { BudgetStatusDto } from './dto/budget-status.dto';
import { RecordUsageDto } from './dto/record-usage.dto';
import { RecordUsageBatchDto, type RecordUsageBatchResponseDto } from './dto/usage-batch.dto';
import { UsageHistoryQueryDto, UsageRangeQueryDto } from './dto/usage-query.dto';
import type { UsageRecordResponseDto } from './dto/usage-record-response.dto';
import type { UsageBreakdownDto, UsageSummaryDto } from './dto/usage-summary.dto';
import { UsageEvents, type FiredAlert } from './usage.events';
import { toUsageRecord } from './usage.mapper';
import { priceHintFields, UsageRepository, type SummaryDimension, type UsageWrite } from './usage.repository';
import { toUsageWrite } from './usage-write';
import { IntegrationWriteGroups, UsageWriteGroups } from './usage-write-groups';

export interface RecordUsageOptions {
  /** The Idempotency-Key header; falls back to the request's requestId. */
  idempotencyKey?: string;
}

export interface RecordUsageOutcome {
  record: UsageRecordResponseDto;
  /** True when the same key and body were recorded before: nothing was counted again. */
  replayed: boolean;
  firedAlerts: FiredAlert[];
}

export interface ScopedUsageOutcome {
  /** True when every record is a replay of an earlier write of the same request. */
  replayed: boolean;
  records: UsageRecordResponseDto[];
}

/**
 * The seed's Budget Tracker: records usage into the ledger and reports real-time status. The
 * arithmetic that must hold under concurrency (cache, idempotency, alerts) runs in PostgreSQL;
 * this service orchestrates: validate, normalise (usage-write.ts), one round trip, map
 * (usage.mapper.ts), announce (usage.events.ts).
 */
@Injectable()
export class BudgetTrackerService {
  constructor(
    private readonly usage: UsageRepository,
    private readonly registry: BudgetRegistryService,
    private readonly statuses: BudgetStatusService,
    private readonly events: UsageEvents,
    private readonly clock: Clock,
    private readonly pricing: PriceCatalogService,
    private readonly groups: UsageWriteGroups,
    private readonly integrationGroups: IntegrationWriteGroups,
    @Inject(CONSTRAINT_CHECKER) private readonly checker: ConstraintChecker,
  ) {}

  /** The seed's `recordUsage(budgetId, request)`: returns the ledger record. */
  async recordUsage(budgetId: string, request: RecordUsageDto, options: RecordUsageOptions = {}): Promise<UsageRecordResponseDto> {
    return (await this.recordUsageWithOutcome(budgetId, request, options)).record;
  }

  async recordUsageWithOutcome(
    budgetId: string,
    request: RecordUsageDto,
    options: RecordUsageOptions = {},
  ): Promise<RecordUsageOutcome> {
    const dto = await validateInput(RecordUsageDto, request);
    const row = await this.groups.record(await this.withPriceHints(toUsageWrite(budgetId, dto, options.idempotencyKey, this.clock.now())));
    const firedAlerts = row.firedAlerts ?? [];
    this.events.announceAll(firedAlerts);
    return { record: toUsageRecord(row), replayed: row.replayed, firedAlerts };
  }

  /** Up to 1000 records in one transaction; a record breaking a business rule fails alone. */
  async recordUsageBatch(budgetId: string, request: RecordUsageBatchDto): Promise<RecordUsageBatchResponseDto> {
    const dto = await validateInput(RecordUsageBatchDto, request);
    const now = this.clock.now();
    // Ids are chosen here so each answer line finds its own record after the one multi-row INSERT.
    // Only token-priced records wait for the catalog's hints.
    const writes = dto.records.map((item) => Object.assign(toUsageWrite(budgetId, item, item.idempotencyKey, now), { id: randomUUID() }));
    await Promise.all(writes.filter(needsPriceHints).map(async (write) => Object.assign(write, await this.withPriceHints(write))));
    const rows = await this.usage.recordBatch(budgetId, writes);
    const results = rows.map((row) => {
      this.events.announceAll(row.firedAlerts);
      return row.errorCode
        ? { index: row.ordinal, status: row.status, replayed: false, error: { code: row.errorCode, detail: row.errorDetail ?? '' } }
        : { index: row.ordinal, status: row.status, replayed: row.replayed, record: toUsageRecord(row) };
    });
    return {
      recorded: results.filter((result) => result.status === 201).length,
      replayed: results.filter((result) => result.replayed).length,
      failed: results.filter((result) => result.error).length,
      results,
    };
  }

  /**
   * One request's actual cost named by its scopes (RelayCore's integration usage): recorded once
   * per budget tree, idempotent on `requestId`, in one transaction. The body is validated by the caller.
   */
  async recordScopedUsage(scopes: Scope[], request: RecordUsageDto & { requestId: string }): Promise<ScopedUsageOutcome> {
    const { budgetId: _none, idempotencyKey: _key, ...write } = await this.withPriceHints(
      toUsageWrite('', request, request.requestId, this.clock.now()),
    );
    const rows = await this.integrationGroups.record(scopes, write);
    for (const row of rows) this.events.announceAll(row.firedAlerts);
    return { replayed: rows.length > 0 && rows.every((row) => row.replayed), records: rows.map(toUsageRecord) };
  }

  /** A token-priced write (no amount) carries the catalog's lookup hints for its own statement (SPEC §14). */
  private async withPriceHints(write: UsageWrite): Promise<UsageWrite> {
    if (!needsPriceHints(write)) return write;
    return { ...write, ...priceHintFields(await this.pricing.lookupHints(write.modelId, write.provider ?? undefined)) };
  }

  async getBudgetStatus(budgetId: string): Promise<BudgetStatusDto> {
    return this.statuses.getStatus(budgetId);
  }

  async refreshCache(budgetId: string): Promise<BudgetStatusDto> {
    return this.statuses.refresh(budgetId);
  }

  async getUsageHistory(budgetId: string, query: UsageHistoryQueryDto = new UsageHistoryQueryDto()): Promise<Page<UsageRecordResponseDto>> {
    const q = await validateInput(UsageHistoryQueryDto, query);
    await this.registry.getRecord(budgetId);
    const limit = q.limit ?? 50;
    const before = decodeCursor(q.cursor, 2) as [string, string] | undefined;
    const rows = await this.usage.history({
      budgetId, includeDescendants: q.includeDescendants ?? false, from: q.from, to: q.to, modelId: q.modelId,
      source: q.source, userId: q.userId, customerId: q.customerId, tag: q.tag, before, limit,
    });
    return toPage(rows, limit, (row) => [row.occurredKey!, row.id], toUsageRecord);
  }

  async getUsageSummary(budgetId: string, query: UsageRangeQueryDto = new UsageRangeQueryDto()): Promise<UsageSummaryDto> {
    const q = await validateInput(UsageRangeQueryDto, query);
    const budget = await this.registry.getRecord(budgetId);
    const rows = await this.usage.summary(budgetId, q.from, q.to, this.clock.now());
    const breakdown = (dimension: SummaryDimension): UsageBreakdownDto[] =>
      rows
        .filter((row) => row.dimension === dimension)
        .map((row) => ({ key: row.key, amount: toMoneyNumber(row.total!), count: Number(row.count) }))
        .sort((a, b) => b.amount - a.amount || String(a.key).localeCompare(String(b.key)));
    const total = rows.find((row) => row.dimension === 'total');
    return {
      budgetId,
      currency: budget.currency,
      from: rows[0].rangeFrom.toISOString(),
      to: rows[0].rangeTo.toISOString(),
      total: total ? toMoneyNumber(total.total!) : 0,
      count: total ? Number(total.count) : 0,
      byModel: breakdown('model'),
      bySource: breakdown('source'),
      byUser: breakdown('user'),
      byDay: breakdown('day').sort((a, b) => String(a.key).localeCompare(String(b.key))),
      byTag: breakdown('tag'),
    };
  }

  /** The seed's `checkBudgetConstraints(budgetId, estimatedCost, options?)`, decided by the Constraint module. */
  checkBudgetConstraints(budgetId: string, estimatedCost: number | string, options: ConstraintCheckOptions = {}): Promise<ConstraintVerdict> {
    return this.checker.checkBudget(budgetId, { ...options, estimatedCost });
  }
}

/** A token-priced write (no amount) of a model: its statement prices it from the catalog. */
const needsPriceHints = (write: UsageWrite): write is UsageWrite & { modelId: string } => write.amount === null && write.modelId !== null;
