import { Module } from '@nestjs/common';
import { BudgetRegistryService } from './budget-registry.service';
import { BudgetController } from './budget.controller';
import { BudgetRepository } from './budget.repository';

@Module({
  controllers: [BudgetController],
  providers: [BudgetRegistryService, BudgetRepository],
  exports: [BudgetRegistryService, BudgetRepository],
})
export class BudgetModule {}
