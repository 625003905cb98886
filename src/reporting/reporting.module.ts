import { Module } from '@nestjs/common';
import { BudgetModule } from '../budget/budget.module';
import { AnomalyDetectorService } from './anomaly-detector.service';
import { BudgetReportingService } from './budget-reporting.service';
import { ReportingController } from './reporting.controller';
import { ReportingRepository } from './reporting.repository';

/**
 * The Budget Reporter: forecast, past windows, what-if replay, anomalies and the CSV export. It
 * reads the ledger through `budget_usage_rows` only, and replays checks through the Constraint
 * room's pure decision ladder (constraint-decision.ts).
 */
@Module({
  imports: [BudgetModule],
  controllers: [ReportingController],
  providers: [BudgetReportingService, AnomalyDetectorService, ReportingRepository],
  exports: [BudgetReportingService, AnomalyDetectorService],
})
export class ReportingModule {}
