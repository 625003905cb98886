import { Global, Module } from '@nestjs/common';
import { BudgetModule } from '../budget/budget.module';
import { PricingModule } from '../pricing/pricing.module';
import { UsageModule } from '../usage/usage.module';
import { CONSTRAINT_CHECKER } from '../usage/constraint-checker';
import { BudgetHierarchyController } from './budget-hierarchy.controller';
import { BudgetHierarchyViewService } from './budget-hierarchy-view.service';
import { BudgetIntegrationService } from './budget-integration.service';
import { CheckContextGroups } from './check-context-groups';
import { ConstraintController } from './constraint.controller';
import { ConstraintRepository } from './constraint.repository';
import { ConstraintService } from './constraint.service';
import { IntegrationController } from './integration.controller';
import { ReservationController } from './reservation.controller';
import { ReservationRepository } from './reservation.repository';
import { ReservationService } from './reservation.service';

/**
 * Decisions: checks, reservations, alerts, the RelayCore integration and the hierarchy view.
 * Global only to hand the Usage module its CONSTRAINT_CHECKER (a token Usage owns) without Usage
 * importing this module: the one door upward is that interface, bound here once.
 */
@Global()
@Module({
  imports: [BudgetModule, UsageModule, PricingModule],
  controllers: [ConstraintController, IntegrationController, ReservationController, BudgetHierarchyController],
  providers: [
    ConstraintService,
    ConstraintRepository,
    CheckContextGroups,
    BudgetIntegrationService,
    BudgetHierarchyViewService,
    ReservationService,
    ReservationRepository,
    { provide: CONSTRAINT_CHECKER, useExisting: ConstraintService },
  ],
  exports: [ConstraintService, BudgetIntegrationService, ReservationService, CONSTRAINT_CHECKER],
})
export class ConstraintModule {}
