import { Module } from '@nestjs/common';
import { UsageModule } from '../usage/usage.module';
import { CONSTRAINT_CHECKER } from '../usage/budget-tracker.service';
import { BudgetIntegrationService } from './budget-integration.service';
import { ConstraintController } from './constraint.controller';
import { ConstraintRepository } from './constraint.repository';
import { ConstraintService } from './constraint.service';
import { IntegrationController } from './integration.controller';

@Module({
  imports: [UsageModule],
  controllers: [ConstraintController, IntegrationController],
  providers: [
    ConstraintService,
    ConstraintRepository,
    BudgetIntegrationService,
    { provide: CONSTRAINT_CHECKER, useExisting: ConstraintService },
  ],
  exports: [ConstraintService, BudgetIntegrationService],
})
export class ConstraintModule {}
