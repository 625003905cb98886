import { Module } from '@nestjs/common';
import { BudgetModule } from '../budget/budget.module';
import { BudgetTrackerService } from './budget-tracker.service';
import { UsageController } from './usage.controller';
import { UsageRepository } from './usage.repository';

@Module({
  imports: [BudgetModule],
  controllers: [UsageController],
  providers: [BudgetTrackerService, UsageRepository],
  exports: [BudgetTrackerService, UsageRepository],
})
export class UsageModule {}
