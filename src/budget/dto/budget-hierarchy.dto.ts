import { ApiProperty } from '@nestjs/swagger';
import { SCOPE_TYPES, type ScopeType } from '../budget.types';
import { BudgetResponseDto } from './budget-response.dto';

export class BudgetTreeNodeDto extends BudgetResponseDto {
  /** Present on subtree nodes: the live children, oldest first. */
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

/** The seed's `getBudgetHierarchy`: for each budget of a scope, its ancestor chain and its subtree. */
export class BudgetHierarchyDto {
  @ApiProperty({ enum: SCOPE_TYPES })
  scopeType: ScopeType;
  scopeId: string;
  @ApiProperty({ type: [BudgetFamilyDto] })
  budgets: BudgetFamilyDto[];
}
