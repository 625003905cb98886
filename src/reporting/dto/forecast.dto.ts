import { ApiProperty } from '@nestjs/swagger';
import { FORECAST_METHODS, type ForecastMethod } from '../forecast';

export class ForecastBasisDto {
  /** First instant of the history read (inclusive). */
  @ApiProperty({ format: 'date-time' })
  from: string;
  /** End of the history read (exclusive): the start of the bucket containing now. */
  @ApiProperty({ format: 'date-time' })
  to: string;
  /** Complete buckets of history the rate and its variance come from. */
  @ApiProperty({ example: 168 })
  buckets: number;
  @ApiProperty({ enum: ['hour', 'day'] })
  bucket: 'hour' | 'day';
  /** Mean spend per bucket (μ). */
  @ApiProperty({ example: 1.25 })
  ratePerBucket: number;
}

/** A projection of the current window's total with prediction intervals (docs/reporting.md). */
export class BudgetForecastDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty({ format: 'date-time' })
  periodStart: string;
  @ApiProperty({ format: 'date-time' })
  periodEnd: string;
  @ApiProperty({ example: 'USD' })
  currency: string;
  @ApiProperty({ example: 5000 })
  limit: number;
  /** Spent in the window so far (this budget and its descendants). */
  @ApiProperty({ example: 1250.5 })
  currentAmount: number;
  /** Expected total at the window's end. */
  @ApiProperty({ example: 3900 })
  projectedAmount: number;
  @ApiProperty({ example: 3600 })
  lower80: number;
  @ApiProperty({ example: 4200 })
  upper80: number;
  @ApiProperty({ example: 3450 })
  lower95: number;
  @ApiProperty({ example: 4350 })
  upper95: number;
  /** Probability (0–1) that the window's total reaches more than the limit. */
  @ApiProperty({ example: 0.02 })
  probabilityOverLimit: number;
  /** When the limit is expected to be reached inside the window; null if not before its end. */
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  projectedExhaustionAt: string | null;
  @ApiProperty({ enum: FORECAST_METHODS })
  method: ForecastMethod;
  @ApiProperty({ type: ForecastBasisDto })
  basedOn: ForecastBasisDto;
}
