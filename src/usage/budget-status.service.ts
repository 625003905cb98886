import { Injectable } from '@nestjs/common';
import { BudgetRegistryService } from '../budget/budget-registry.service';
import { Clock } from '../common/clock';
import type { BudgetStatusDto } from './dto/budget-status.dto';
import { toBudgetStatus } from './usage.mapper';
import { UsageRepository, type StatusRow } from './usage.repository';

/**
 * Real-time status (SPEC §2 "Status"): one round trip per read, the cache row refreshed first
 * when it is stale, the derived figures computed at the service's clock.
 */
@Injectable()
export class BudgetStatusService {
  constructor(
    private readonly usage: UsageRepository,
    private readonly registry: BudgetRegistryService,
    private readonly clock: Clock,
  ) {}

  async getStatus(budgetId: string): Promise<BudgetStatusDto> {
    return this.describe(await this.usage.status(budgetId, this.clock.now()));
  }

  /** The statuses of several budgets by id, in one round trip; missing or deleted ones are absent. */
  async getStatuses(budgetIds: string[]): Promise<Map<string, BudgetStatusDto>> {
    const rows = await this.usage.statuses(budgetIds, this.clock.now());
    return new Map(rows.map((row) => [row.budgetId, this.describe(row)]));
  }

  /** Rewrites the budget's cache row from the ledger, then reads the status. */
  async refresh(budgetId: string): Promise<BudgetStatusDto> {
    await this.registry.getRecord(budgetId);
    await this.usage.refresh(budgetId, this.clock.now());
    return this.getStatus(budgetId);
  }

  /** The status of figures another room read in its own round trip (a check context). */
  describe(row: StatusRow): BudgetStatusDto {
    return toBudgetStatus(row, this.clock.now());
  }
}
