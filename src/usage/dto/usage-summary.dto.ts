import { ApiProperty } from '@nestjs/swagger';

export class UsageBreakdownDto {
  /** The model, source, user or day (YYYY-MM-DD in the budget's time zone); null when not recorded. */
  @ApiProperty({ type: String, nullable: true, example: 'gpt-4' })
  key: string | null;
  @ApiProperty({ example: 125.5 })
  amount: number;
  @ApiProperty({ example: 12 })
  count: number;
}

export class UsageSummaryDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty({ example: 'USD' })
  currency: string;
  @ApiProperty({ format: 'date-time' })
  from: string;
  @ApiProperty({ format: 'date-time' })
  to: string;
  /** Spend in [from, to), this budget and its descendants. */
  @ApiProperty({ example: 1250.5 })
  total: number;
  @ApiProperty({ example: 42 })
  count: number;
  @ApiProperty({ type: [UsageBreakdownDto] })
  byModel: UsageBreakdownDto[];
  @ApiProperty({ type: [UsageBreakdownDto] })
  bySource: UsageBreakdownDto[];
  @ApiProperty({ type: [UsageBreakdownDto] })
  byUser: UsageBreakdownDto[];
  @ApiProperty({ type: [UsageBreakdownDto] })
  byDay: UsageBreakdownDto[];
}
