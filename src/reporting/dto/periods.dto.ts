import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export class PeriodsQueryDto {
  /** How many windows, the current one included: 1–36. */
  @ApiPropertyOptional({ minimum: 1, maximum: 36, default: 12 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(36)
  count?: number;
}

/** One window of the budget: what was spent and what fired in it. */
export class BudgetPeriodDto {
  @ApiProperty({ format: 'date-time' })
  periodStart: string;
  @ApiProperty({ format: 'date-time' })
  periodEnd: string;
  /** The window containing now (still partial). */
  @ApiProperty()
  current: boolean;
  /** The budget's limit as defined now (past limits are not kept). */
  @ApiProperty({ example: 5000 })
  limit: number;
  /** This budget and its descendants, in the window. */
  @ApiProperty({ example: 4210.75 })
  spent: number;
  /** spent / limit × 100, 2 decimals. */
  @ApiProperty({ example: 84.22 })
  percentUsed: number;
  @ApiProperty({ example: 1532 })
  usageCount: number;
  /** Alerts of this budget recorded in the window. */
  @ApiProperty({ example: 2 })
  alertsTriggered: number;
}

export class BudgetPeriodsDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty({ example: 'USD' })
  currency: string;
  /** Newest first, the current (partial) window first. */
  @ApiProperty({ type: [BudgetPeriodDto] })
  data: BudgetPeriodDto[];
}
