import { ApiProperty } from '@nestjs/swagger';
import { SCOPE_TYPES, type ScopeType } from '../../budget/budget.types';
import { BudgetStatusDto } from '../../usage/dto/budget-status.dto';
import { UsageRecordResponseDto } from '../../usage/dto/usage-record-response.dto';

export class IntegrationUsageResponseDto {
  @ApiProperty({ example: 'req-789' })
  requestId: string;
  /** True when every record existed already (nothing was counted again). */
  @ApiProperty()
  replayed: boolean;
  /**
   * The request's one ledger record (its matchedBudgetIds name every budget it matched); empty when
   * no budget matched. A request recorded before attribution existed replays its per-tree records.
   */
  @ApiProperty({ type: [UsageRecordResponseDto] })
  records: UsageRecordResponseDto[];
}

export class IntegrationBudgetStatusDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ enum: SCOPE_TYPES })
  scopeType: ScopeType;
  @ApiProperty()
  scopeId: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  parentId: string | null;
  @ApiProperty({ type: BudgetStatusDto })
  status: BudgetStatusDto;
}

export class IntegrationSummaryDto {
  @ApiProperty({ type: [IntegrationBudgetStatusDto] })
  budgets: IntegrationBudgetStatusDto[];
}
