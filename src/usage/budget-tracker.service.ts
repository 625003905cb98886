import { randomUUID } from 'node:crypto';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { BudgetRegistryService } from '../budget/budget-registry.service';
import type { CheckConstraintsDto } from '../constraint/dto/check-constraints.dto';
import type { BudgetConstraintCheckDto } from '../constraint/dto/constraint-check-response.dto';
import { Clock } from '../common/clock';
import { validationFailed } from '../common/errors/domain-error';
import { canonicalJson, sha256Hex } from '../common/hashing';
import { Decimal, toMoneyNumber, toMoneyString } from '../common/money';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validateInput } from '../common/validation';
import { deriveStatus } from './budget-status.calculator';
import type { BudgetAlertStatusDto, BudgetStatusDto } from './dto/budget-status.dto';
import { LIFTED_METADATA_FIELDS, RecordUsageDto } from './dto/record-usage.dto';
import { RecordUsageBatchDto, type RecordUsageBatchResponseDto } from './dto/usage-batch.dto';
import { UsageHistoryQueryDto, UsageRangeQueryDto } from './dto/usage-query.dto';
import type { UsageRecordResponseDto } from './dto/usage-record-response.dto';
import type { UsageBreakdownDto, UsageSummaryDto } from './dto/usage-summary.dto';
import { UsageRepository, type FiredAlert, type StatusRow, type UsageRow, type UsageWrite } from './usage.repository';

export const BUDGET_ALERT_TRIGGERED = 'budget.alert.triggered';
const FUTURE_TOLERANCE_MS = 5 * 60_000;

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

/** What the Constraint module provides for `checkBudgetConstraints` (resolved lazily, no import cycle). */
export interface ConstraintChecker {
  checkBudget(budgetId: string, request: CheckConstraintsDto): Promise<BudgetConstraintCheckDto>;
}

/** Options of `checkBudgetConstraints`: the rest of a check-constraints body. */
export type CheckOptions = Omit<CheckConstraintsDto, 'estimatedCost'>;
export const CONSTRAINT_CHECKER = Symbol('CONSTRAINT_CHECKER');

/**
 * The seed's Budget Tracker: records usage into the ledger and reports real-time status. The
 * arithmetic that must hold under concurrency (cache, idempotency, alerts) runs in PostgreSQL.
 */
@Injectable()
export class BudgetTrackerService implements OnModuleInit {
  private readonly logger = new Logger(BudgetTrackerService.name);

  constructor(
    private readonly usage: UsageRepository,
    private readonly registry: BudgetRegistryService,
    private readonly clock: Clock,
    private readonly events: EventEmitter2,
    private readonly moduleRef: ModuleRef,
  ) {}

  onModuleInit(): void {
    this.registry.useStatusDecorator({
      statusesFor: async (ids) => {
        const rows = await this.usage.statuses(ids, this.clock.now());
        return new Map(rows.map((row) => [row.budget_id, this.mapStatus(row)]));
      },
    });
  }

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
    const write = this.toWrite(budgetId, dto, options.idempotencyKey);
    const row = await this.usage.record(write);
    const firedAlerts = row.fired_alerts ?? [];
    for (const alert of firedAlerts) this.announce(alert);
    return { record: this.mapRecord(row), replayed: row.replayed, firedAlerts };
  }

  /** Up to 1000 records in one transaction; a record breaking a business rule fails alone. */
  async recordUsageBatch(budgetId: string, request: RecordUsageBatchDto): Promise<RecordUsageBatchResponseDto> {
    const dto = await validateInput(RecordUsageBatchDto, request);
    // Ids are chosen here so each answer line finds its own record after the one multi-row INSERT.
    const writes = dto.records.map((item) => ({ ...this.toWrite(budgetId, item, item.idempotencyKey), id: randomUUID() }));
    const rows = await this.usage.recordBatch(budgetId, writes);
    const results = rows.map((row) => {
      for (const alert of row.fired_alerts ?? []) this.announce(alert);
      return row.error_code
        ? { index: row.ordinal, status: row.status, replayed: false, error: { code: row.error_code, detail: row.error_detail ?? '' } }
        : { index: row.ordinal, status: row.status, replayed: row.replayed, record: this.mapRecord(row) };
    });
    return {
      recorded: results.filter((result) => result.status === 201).length,
      replayed: results.filter((result) => result.replayed).length,
      failed: results.filter((result) => result.error).length,
      results,
    };
  }

  /** Validates and normalises a usage body into the shape `record_usage` takes. */
  toWrite(budgetId: string, dto: RecordUsageDto, idempotencyKey?: string): UsageWrite {
    const now = this.clock.now();
    const occurredAt = dto.occurredAt ? new Date(dto.occurredAt) : now;
    if (occurredAt.getTime() > now.getTime() + FUTURE_TOLERANCE_MS) {
      throw validationFailed([{ field: 'occurredAt', message: 'occurredAt must not be more than 5 minutes in the future' }]);
    }
    const lifted = this.liftMetadata(dto);
    const key = idempotencyKey?.trim() || lifted.requestId || null;
    if (key !== null && key.length > 200) {
      throw validationFailed([{ field: 'Idempotency-Key', message: 'must be at most 200 characters' }]);
    }
    const amount = toMoneyString(dto.amount);
    const write: UsageWrite = {
      budgetId,
      amount,
      currency: dto.currency,
      source: dto.source ?? 'api',
      description: dto.description ?? null,
      modelId: lifted.modelId,
      userId: lifted.userId,
      teamId: lifted.teamId,
      projectId: lifted.projectId,
      requestId: lifted.requestId,
      idempotencyKey: key,
      requestHash: '',
      metadata: dto.metadata ?? null,
      occurredAt,
      reservationId: dto.reservationId ?? null,
    };
    // The body as the client meant it: an omitted occurredAt ("now") is the same request on retry.
    write.requestHash = sha256Hex(
      canonicalJson({ ...write, requestHash: undefined, idempotencyKey: undefined, budgetId: undefined,
        amount: new Decimal(amount).toFixed(), occurredAt: dto.occurredAt ? occurredAt.toISOString() : undefined }),
    );
    return write;
  }

  async getBudgetStatus(budgetId: string): Promise<BudgetStatusDto> {
    return this.mapStatus(await this.usage.status(budgetId, this.clock.now()));
  }

  async refreshCache(budgetId: string): Promise<BudgetStatusDto> {
    await this.registry.getRecord(budgetId);
    await this.usage.refresh(budgetId, this.clock.now());
    return this.getBudgetStatus(budgetId);
  }

  async getUsageHistory(budgetId: string, query: UsageHistoryQueryDto = new UsageHistoryQueryDto()): Promise<Page<UsageRecordResponseDto>> {
    const q = await validateInput(UsageHistoryQueryDto, query);
    await this.registry.getRecord(budgetId);
    const limit = q.limit ?? 50;
    const before = decodeCursor(q.cursor, 2) as [string, string] | undefined;
    const rows = await this.usage.history({
      budgetId, includeDescendants: q.includeDescendants ?? false, from: q.from, to: q.to, modelId: q.modelId,
      source: q.source, userId: q.userId, before, limit,
    });
    return toPage(rows, limit, (row) => [row.occurred_key!, row.id], (row) => this.mapRecord(row));
  }

  async getUsageSummary(budgetId: string, query: UsageRangeQueryDto = new UsageRangeQueryDto()): Promise<UsageSummaryDto> {
    const q = await validateInput(UsageRangeQueryDto, query);
    const budget = await this.registry.getRecord(budgetId);
    const rows = await this.usage.summary(budgetId, q.from, q.to, this.clock.now());
    const breakdown = (grouping: number, key: (row: (typeof rows)[number]) => string | null): UsageBreakdownDto[] =>
      rows
        .filter((row) => row.grouping === grouping)
        .map((row) => ({ key: key(row), amount: toMoneyNumber(row.total), count: Number(row.count) }))
        .sort((a, b) => b.amount - a.amount || String(a.key).localeCompare(String(b.key)));
    // GROUPING(model_id, source, user_id, day) is a bitmask: 1 marks a column not grouped on.
    const total = rows.find((row) => row.grouping === 0b1111)!;
    return {
      budgetId,
      currency: budget.currency,
      from: total.range_from.toISOString(),
      to: total.range_to.toISOString(),
      total: toMoneyNumber(total.total),
      count: Number(total.count),
      byModel: breakdown(0b0111, (row) => row.model_id),
      bySource: breakdown(0b1011, (row) => row.source),
      byUser: breakdown(0b1101, (row) => row.user_id),
      byDay: breakdown(0b1110, (row) => row.day).sort((a, b) => String(a.key).localeCompare(String(b.key))),
    };
  }

  /** The seed's `checkBudgetConstraints(budgetId, estimatedCost, options?)`, decided by the Constraint module. */
  async checkBudgetConstraints(
    budgetId: string,
    estimatedCost: number | string,
    options: CheckOptions = {},
  ): Promise<BudgetConstraintCheckDto> {
    const checker = this.moduleRef.get<ConstraintChecker>(CONSTRAINT_CHECKER, { strict: false });
    return checker.checkBudget(budgetId, { ...options, estimatedCost });
  }

  mapStatus(row: StatusRow): BudgetStatusDto {
    const derived = deriveStatus({
      currentAmount: row.current_amount,
      limit: row.amount,
      warningThreshold: row.warning_threshold,
      criticalThreshold: row.critical_threshold,
      periodStart: row.period_start,
      periodEnd: row.period_end,
      active: row.active,
      now: this.clock.now(),
    });
    return {
      budgetId: row.budget_id,
      currentAmount: toMoneyNumber(row.current_amount),
      limit: toMoneyNumber(row.amount),
      currency: row.currency,
      ...derived,
      activeAlerts: (row.active_alerts ?? []).map(
        (alert): BudgetAlertStatusDto => ({
          id: alert.id,
          alertId: alert.alertId,
          threshold: Number(alert.threshold),
          type: alert.type as BudgetAlertStatusDto['type'],
          triggeredAt: new Date(alert.triggeredAt).toISOString(),
          percentUsed: new Decimal(alert.percentUsed).toDecimalPlaces(2).toNumber(),
          amount: toMoneyNumber(String(alert.amount)),
          actions: alert.actions as BudgetAlertStatusDto['actions'],
          acknowledged: alert.acknowledged,
          acknowledgedAt: alert.acknowledgedAt ? new Date(alert.acknowledgedAt).toISOString() : null,
          acknowledgedBy: alert.acknowledgedBy,
        }),
      ),
      periodStart: row.period_start.toISOString(),
      periodEnd: row.period_end.toISOString(),
      active: row.active,
      reservedAmount: toMoneyNumber(row.reserved_amount),
      usageCount: Number(row.usage_count),
      lastUpdated: row.updated_at.toISOString(),
    };
  }

  mapRecord(row: UsageRow): UsageRecordResponseDto {
    return {
      id: row.id,
      budgetId: row.budget_id,
      amount: toMoneyNumber(row.amount),
      currency: row.currency,
      source: row.source,
      description: row.description,
      modelId: row.model_id,
      userId: row.user_id,
      teamId: row.team_id,
      projectId: row.project_id,
      requestId: row.request_id,
      reservationId: row.reservation_id,
      metadata: row.metadata,
      occurredAt: new Date(row.occurred_at).toISOString(),
      recordedAt: new Date(row.recorded_at).toISOString(),
    };
  }

  private liftMetadata(dto: RecordUsageDto): Record<(typeof LIFTED_METADATA_FIELDS)[number], string | null> {
    const lifted = {} as Record<(typeof LIFTED_METADATA_FIELDS)[number], string | null>;
    const problems = [];
    for (const field of LIFTED_METADATA_FIELDS) {
      const fromMetadata = dto.metadata?.[field];
      if (fromMetadata !== undefined && fromMetadata !== null && (typeof fromMetadata !== 'string' || fromMetadata.length < 1 || fromMetadata.length > 200)) {
        problems.push({ field: `metadata.${field}`, message: `metadata.${field} must be a string of 1–200 characters` });
      }
      lifted[field] = dto[field] ?? (typeof fromMetadata === 'string' ? fromMetadata : null);
    }
    if (problems.length) throw validationFailed(problems);
    return lifted;
  }

  /** Logs a triggered alert and emits it in-process (delivery to channels comes later). */
  announce(alert: FiredAlert): void {
    this.logger.warn(
      `Budget alert ${alert.alertId} fired on budget ${alert.budgetId} at ${alert.percentUsed}% (threshold ${alert.threshold}%, actions ${alert.actions.join(', ')})`,
    );
    this.events.emit(BUDGET_ALERT_TRIGGERED, alert);
  }
}

