import { ApiProperty } from '@nestjs/swagger';
import { SCOPE_TYPES, type ScopeType } from '../budget.types';
import { BudgetResponseDto } from './budget-response.dto';

export class BudgetTreeNodeDto extends BudgetResponseDto {
  /** The node's BudgetStatusInfo for its current window. */
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  status: unknown;

  @ApiProperty({ type: () => [BudgetTreeNodeDto], required: false })
  children?: BudgetTreeNodeDto[];
}

export class BudgetFamilyDto {
  budget: BudgetTreeNodeDto;
  /** Root first, parent last. */
  @ApiProperty({ type: [BudgetTreeNodeDto] })
  ancestors: BudgetTreeNodeDto[];
  subtree: BudgetTreeNodeDto;
}

export class BudgetHierarchyDto {
  @ApiProperty({ enum: SCOPE_TYPES })
  scopeType: ScopeType;
  scopeId: string;
  @ApiProperty({ type: [BudgetFamilyDto] })
  budgets: BudgetFamilyDto[];
}
