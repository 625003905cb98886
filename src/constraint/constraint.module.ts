import { Module } from '@nestjs/common';
import { UsageModule } from '../usage/usage.module';
import { CONSTRAINT_CHECKER } from '../usage/budget-tracker.service';
import { BudgetIntegrationService } from './budget-integration.service';
import { ConstraintController } from './constraint.controller';
import { ConstraintRepository } from './constraint.repository';
import { ConstraintService } from './constraint.service';
import { IntegrationController } from './integration.controller';
import { ReservationController } from './reservation.controller';
import { ReservationRepository } from './reservation.repository';
import { ReservationService } from './reservation.service';

@Module({
  imports: [UsageModule],
  controllers: [ConstraintController, IntegrationController, ReservationController],
  providers: [
    ConstraintService,
    ConstraintRepository,
    BudgetIntegrationService,
    ReservationService,
    ReservationRepository,
    { provide: CONSTRAINT_CHECKER, useExisting: ConstraintService },
  ],
  exports: [ConstraintService, BudgetIntegrationService, ReservationService],
})
export class ConstraintModule {}
