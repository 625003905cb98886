import { ApiProperty } from '@nestjs/swagger';
import { ANOMALY_SENSITIVITIES, type AnomalySensitivity } from '../../budget/budget.types';

/** An hour whose spend stood out from the budget's baseline (docs/reporting.md, "Anomalies"). */
export class BudgetAnomalyDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty({ format: 'date-time' })
  hourStart: string;
  @ApiProperty({ format: 'date-time' })
  hourEnd: string;
  /** Spent in the hour (this budget and its descendants). */
  @ApiProperty({ example: 84.2 })
  observed: number;
  /** Median spend of the same hour on the days before. */
  @ApiProperty({ example: 10.5 })
  baselineMedian: number;
  /** Median absolute deviation of those hours from their median. */
  @ApiProperty({ example: 1.2 })
  baselineMad: number;
  /** How many earlier days the baseline holds (up to 7). */
  @ApiProperty({ example: 7 })
  baselineHours: number;
  /** (observed − median) / scale: a robust z-score. */
  @ApiProperty({ example: 8.31 })
  score: number;
  @ApiProperty({ enum: ANOMALY_SENSITIVITIES })
  sensitivity: AnomalySensitivity;
  /** The score a spike needed at that sensitivity. */
  @ApiProperty({ example: 5 })
  threshold: number;
  @ApiProperty({ example: 'USD' })
  currency: string;
  @ApiProperty({ format: 'date-time' })
  detectedAt: string;
}

export class BudgetAnomalyPageDto {
  @ApiProperty({ type: [BudgetAnomalyDto] })
  data: BudgetAnomalyDto[];
  @ApiProperty({ type: String, nullable: true })
  nextCursor: string | null;
}
