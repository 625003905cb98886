import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { DomainError, notFound, validationFailed, type FieldError } from '../common/errors/domain-error';
import { toMoneyNumber, toMoneyString } from '../common/money';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validateInput } from '../common/validation';
import { BudgetRepository, type BudgetRow, type BudgetValues } from './budget.repository';
import type { BudgetAlertConfig, BudgetFilter, BudgetRecord, ModelPolicy, ScopeType } from './budget.types';
import type { BudgetFilterDto } from './dto/budget-filter.dto';
import type { BudgetAlertDto } from './dto/budget-alert.dto';
import type { BudgetResponseDto } from './dto/budget-response.dto';
import { CreateBudgetDto } from './dto/create-budget.dto';
import type { ListBudgetsQueryDto } from './dto/list-budgets.query.dto';
import type { ModelPolicyDto } from './dto/model-policy.dto';
import { UpdateBudgetDto } from './dto/update-budget.dto';
import type { BudgetHierarchyDto, BudgetTreeNodeDto } from './dto/budget-hierarchy.dto';
import { CHANNEL_TYPE_WORDS, NOTIFICATION_CHANNEL_DIRECTORY, type NotificationChannelDirectory } from './notification-channels.types';

/** Fields that may be omitted on update but never cleared. */
const NOT_NULLABLE: (keyof UpdateBudgetDto)[] = [
  'name', 'scopeType', 'scopeId', 'amount', 'currency', 'period', 'startDate', 'recurring', 'timezone', 'enforcement',
  'warningThreshold', 'criticalThreshold', 'alerts',
];

export interface UpdateOptions {
  /** The If-Match header: an ETag `"3"`, a bare version `3`, or `*`. */
  ifMatch?: string;
}

/**
 * The database keeps warning < critical (a CHECK). A request that gave only one of the two
 * conflicts with the other as stored (or defaulted), so the field it changed is the one named.
 */
function namingChangedThreshold(error: unknown, dto: UpdateBudgetDto): unknown {
  const { code, constraint } = (error ?? {}) as { code?: string; constraint?: string };
  if (code !== '23514' || constraint !== 'budget_thresholds_ordered') return error;
  return dto.criticalThreshold === undefined
    ? validationFailed([{ field: 'warningThreshold', message: 'warningThreshold must be less than criticalThreshold' }])
    : validationFailed([{ field: 'criticalThreshold', message: 'criticalThreshold must be greater than warningThreshold' }]);
}

/** Alerts as stored: ids generated where absent (unique within the budget), defaults filled in. */
export function normaliseAlerts(alerts: BudgetAlertDto[]): BudgetAlertConfig[] {
  const normalised = alerts.map((alert) => ({
    id: alert.id ?? randomUUID(),
    threshold: alert.threshold,
    type: alert.type ?? 'actual',
    actions: alert.actions,
    notificationChannels: alert.notificationChannels ?? [],
  }));
  const seen = new Set<string>();
  const duplicates = normalised
    .map((alert, index) => ({ alert, index }))
    .filter(({ alert }) => (seen.has(alert.id) ? true : (seen.add(alert.id), false)))
    .map(({ index }) => ({ field: `alerts.${index}.id`, message: 'must be unique within the budget' }));
  if (duplicates.length) throw validationFailed(duplicates);
  return normalised;
}

/** A model policy as stored: both lists present. */
export function normaliseModelPolicy(policy: ModelPolicyDto | null): ModelPolicy | null {
  if (policy === null) return null;
  return { restrictedModels: policy.restrictedModels ?? [], downgrades: policy.downgrades ?? {} };
}

/**
 * The lifecycle of budget definitions (the seed's Budget Registry): validation, defaults,
 * hierarchy rules (held by the database's guard trigger) and optimistic concurrency.
 */
@Injectable()
export class BudgetRegistryService {
  constructor(
    private readonly budgets: BudgetRepository,
    @Optional() @Inject(NOTIFICATION_CHANNEL_DIRECTORY) private readonly channels?: NotificationChannelDirectory,
  ) {}

  async createBudget(request: CreateBudgetDto, actor: string): Promise<BudgetResponseDto> {
    const dto = await validateInput(CreateBudgetDto, request);
    await this.checkChannelReferences(dto.alerts);
    const values: BudgetValues = {
      ...this.toValues(dto),
      recurring: dto.recurring ?? true,
      timezone: dto.timezone ?? 'UTC',
      enforcement: dto.enforcement ?? 'hard',
      warningThreshold: dto.warningThreshold ?? 75,
      criticalThreshold: dto.criticalThreshold ?? 90,
      alerts: normaliseAlerts(dto.alerts ?? []),
    };
    const row = await this.budgets.insert(values, actor.slice(0, 200) || 'anonymous').catch((error: unknown) => {
      throw namingChangedThreshold(error, dto);
    });
    return this.map(row);
  }

  /** SPEC §13 routing: a channel entry is a type word or names a live channel (422 naming it otherwise). */
  private async checkChannelReferences(alerts: BudgetAlertDto[] | null | undefined): Promise<void> {
    const typeWords: readonly string[] = CHANNEL_TYPE_WORDS;
    const references = (alerts ?? []).flatMap((alert) => alert.notificationChannels ?? []).filter((ref) => !typeWords.includes(ref));
    if (!references.length || !this.channels) return;
    const unknown = new Set(await this.channels.unknownReferences([...new Set(references)]));
    const errors: FieldError[] = (alerts ?? []).flatMap((alert, i) =>
      (alert.notificationChannels ?? []).flatMap((ref, j) =>
        unknown.has(ref) ? [{ field: `alerts.${i}.notificationChannels.${j}`, message: `names no notification channel: "${ref}"` }] : [],
      ),
    );
    if (errors.length) {
      throw new DomainError(422, 'UNKNOWN_NOTIFICATION_CHANNEL', `${errors[0].field} ${errors[0].message} (use a channel id or name, or email, slack, webhook)`, errors);
    }
  }

  async getBudget(id: string): Promise<BudgetResponseDto> {
    return this.map(await this.getRecord(id));
  }

  /** The stored budget, for other modules; 404 when missing or deleted. */
  async getRecord(id: string): Promise<BudgetRow> {
    const row = await this.budgets.findLive(id);
    if (!row) throw notFound('budget', id);
    return row;
  }

  async updateBudget(id: string, request: UpdateBudgetDto, options: UpdateOptions = {}): Promise<BudgetResponseDto> {
    const dto = await validateInput(UpdateBudgetDto, request);
    const cleared: FieldError[] = NOT_NULLABLE.filter((field) => dto[field] === null).map((field) => ({
      field,
      message: `${field} cannot be null`,
    }));
    if (cleared.length) throw validationFailed(cleared);
    await this.checkChannelReferences(dto.alerts);
    const changes = this.toValues(dto);
    if (dto.alerts) changes.alerts = normaliseAlerts(dto.alerts);
    if (dto.period !== undefined && dto.period !== 'custom' && dto.customPeriodDays === undefined) {
      changes.customPeriodDays = null;
    }
    const outcome = await this.budgets.update(id, changes, this.parseIfMatch(options.ifMatch)).catch((error: unknown) => {
      throw namingChangedThreshold(error, dto);
    });
    if (outcome.kind === 'not-found') throw notFound('budget', id);
    if (outcome.kind === 'version-mismatch') {
      throw new DomainError(
        412,
        'VERSION_MISMATCH',
        `The budget is at version ${outcome.version}; reload it and send If-Match: "${outcome.version}".`,
      );
    }
    return this.map(outcome.budget);
  }

  async deleteBudget(id: string): Promise<void> {
    if (!(await this.budgets.softDelete(id))) throw notFound('budget', id);
  }

  async listBudgets(query: ListBudgetsQueryDto): Promise<Page<BudgetResponseDto>> {
    const limit = query.limit ?? 50;
    const after = decodeCursor(query.cursor, 2) as [string, string] | undefined;
    const rows = await this.budgets.list({ ...query, after, limit });
    return toPage(rows, limit, (row) => [row.createdKey, row.id], (row) => this.map(row));
  }

  async listBudgetsForScope(scopeType: ScopeType, scopeId: string): Promise<BudgetResponseDto[]> {
    const rows = await this.budgets.listForScope(scopeType, scopeId);
    return rows.map((row) => this.map(row));
  }

  /**
   * For each budget of the scope: its ancestor chain (root first) and its subtree. The view with
   * each node's status is served above the Usage module (src/constraint/budget-hierarchy-view.service.ts).
   */
  async getBudgetHierarchy(scopeType: ScopeType, scopeId: string): Promise<BudgetHierarchyDto> {
    const family = await this.budgets.findScopeFamily(scopeType, scopeId);
    const byId = new Map(family.map((row) => [row.id, row]));
    const children = new Map<string, BudgetRow[]>();
    for (const row of family) {
      if (row.parentId && byId.has(row.parentId)) {
        children.set(row.parentId, [...(children.get(row.parentId) ?? []), row]);
      }
    }
    const node = (row: BudgetRow): BudgetTreeNodeDto => this.map(row);
    const subtree = (row: BudgetRow): BudgetTreeNodeDto => ({
      ...node(row),
      children: (children.get(row.id) ?? []).map(subtree),
    });
    const ancestors = (row: BudgetRow): BudgetTreeNodeDto[] => {
      const chain: BudgetTreeNodeDto[] = [];
      for (let parent = row.parentId ? byId.get(row.parentId) : undefined; parent; parent = parent.parentId ? byId.get(parent.parentId) : undefined) {
        chain.unshift(node(parent));
      }
      return chain;
    };
    const roots = family.filter((row) => row.scopeType === scopeType && row.scopeId === scopeId);
    return {
      scopeType,
      scopeId,
      budgets: roots.map((row) => ({ budget: node(row), ancestors: ancestors(row), subtree: subtree(row) })),
    };
  }

  /** The API's view of a stored budget. */
  map(row: BudgetRecord): BudgetResponseDto {
    return {
      id: row.id,
      name: row.name,
      description: row.description,
      scopeType: row.scopeType,
      scopeId: row.scopeId,
      parentId: row.parentId,
      amount: toMoneyNumber(row.amount),
      currency: row.currency,
      period: row.period,
      customPeriodDays: row.customPeriodDays,
      startDate: row.startDate.toISOString(),
      endDate: row.endDate ? row.endDate.toISOString() : null,
      recurring: row.recurring,
      timezone: row.timezone,
      enforcement: row.enforcement,
      warningThreshold: Number(row.warningThreshold),
      criticalThreshold: Number(row.criticalThreshold),
      alerts: row.alerts,
      modelPolicy: row.modelPolicy,
      filter: row.filter,
      anomalyDetection: row.anomalyDetection,
      metadata: row.metadata,
      createdBy: row.createdBy,
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
      version: row.version,
    };
  }

  private toValues(dto: UpdateBudgetDto): BudgetValues {
    return {
      name: dto.name,
      description: dto.description,
      scopeType: dto.scopeType,
      scopeId: dto.scopeId,
      parentId: dto.parentId,
      amount: dto.amount === undefined ? undefined : toMoneyString(dto.amount),
      currency: dto.currency,
      period: dto.period,
      customPeriodDays: dto.customPeriodDays,
      startDate: dto.startDate,
      endDate: dto.endDate,
      recurring: dto.recurring,
      timezone: dto.timezone,
      enforcement: dto.enforcement,
      warningThreshold: dto.warningThreshold,
      criticalThreshold: dto.criticalThreshold,
      modelPolicy: dto.modelPolicy === undefined ? undefined : normaliseModelPolicy(dto.modelPolicy),
      filter: dto.filter === undefined ? undefined : normaliseFilter(dto.filter),
      anomalyDetection:
        dto.anomalyDetection === undefined || dto.anomalyDetection === null
          ? dto.anomalyDetection
          : { enabled: dto.anomalyDetection.enabled, sensitivity: dto.anomalyDetection.sensitivity ?? 'medium' },
      metadata: dto.metadata,
    };
  }

  private parseIfMatch(ifMatch: string | undefined): number | undefined {
    if (ifMatch === undefined || ifMatch.trim() === '*') return undefined;
    // If-Match compares strongly (RFC 9110 §13.1.1): a weak ETag never matches (SPEC §12.1).
    if (/^\s*W\/"[^"]*"\s*$/.test(ifMatch)) {
      throw new DomainError(
        412,
        'WEAK_ETAG',
        'If-Match needs the strong ETag (e.g. "3") or the bare version; a weak ETag (W/"3") never matches.',
      );
    }
    const match = /^\s*"?(\d{1,9})"?\s*$/.exec(ifMatch);
    if (!match) {
      throw new DomainError(400, 'INVALID_IF_MATCH', 'If-Match must be the budget\'s ETag (e.g. "3") or its version.', [
        { field: 'If-Match', message: 'must be an ETag such as "3" or a version number' },
      ]);
    }
    return Number(match[1]);
  }
}

/** The stored form of a filter: only the lists given; a filter without any counts all (null). */
function normaliseFilter(filter: BudgetFilterDto | null): BudgetFilter | null {
  if (filter === null || (filter.models === undefined && filter.tags === undefined)) return null;
  return {
    ...(filter.models === undefined ? {} : { models: filter.models }),
    ...(filter.tags === undefined ? {} : { tags: filter.tags }),
  };
}
