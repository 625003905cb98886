import { ApiProperty } from '@nestjs/swagger';

export class UsageBreakdownDto {
  /** The model, source, user, day (YYYY-MM-DD in the budget's time zone) or tag; null when not recorded (untagged, for byTag). */
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
  /** Spend in [from, to) of the requests that count toward this budget (its own, its descendants' and those attributed to either), each once. */
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
  /** Spend per tag: a request with several tags counts under each (so these may add up to more than total); key null is untagged spend. */
  @ApiProperty({ type: [UsageBreakdownDto] })
  byTag: UsageBreakdownDto[];
}
