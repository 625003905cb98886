import { Module } from '@nestjs/common';
import { BudgetModule } from '../budget/budget.module';
import { PricingModule } from '../pricing/pricing.module';
import { BudgetStatusService } from './budget-status.service';
import { BudgetTrackerService } from './budget-tracker.service';
import { LedgerMaintenanceRepository } from './ledger-maintenance.repository';
import { LedgerMaintenanceService } from './ledger-maintenance.service';
import { UsageController } from './usage.controller';
import { UsageEvents } from './usage.events';
import { UsageRepository } from './usage.repository';
import { IntegrationWriteGroups, UsageWriteGroups } from './usage-write-groups';

/**
 * The ledger (and its partition maintenance), the status cache and real-time status. `BudgetTrackerService` needs the
 * CONSTRAINT_CHECKER (src/usage/constraint-checker.ts), which the Constraint module provides
 * globally, so this module never imports a room above it.
 */
@Module({
  imports: [BudgetModule, PricingModule],
  controllers: [UsageController],
  providers: [
    BudgetTrackerService,
    BudgetStatusService,
    UsageRepository,
    UsageWriteGroups,
    IntegrationWriteGroups,
    UsageEvents,
    LedgerMaintenanceRepository,
    LedgerMaintenanceService,
  ],
  exports: [BudgetTrackerService, BudgetStatusService, LedgerMaintenanceService],
})
export class UsageModule {}
