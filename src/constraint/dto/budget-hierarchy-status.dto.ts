import { ApiProperty } from '@nestjs/swagger';
import { SCOPE_TYPES, type ScopeType } from '../../budget/budget.types';
import { BudgetResponseDto } from '../../budget/dto/budget-response.dto';
import { BudgetStatusDto } from '../../usage/dto/budget-status.dto';

/** A budget of the hierarchy view with its status for the current window. */
export class BudgetStatusTreeNodeDto extends BudgetResponseDto {
  /** The node's BudgetStatusInfo for its current window (null if it was deleted meanwhile). */
  @ApiProperty({ type: BudgetStatusDto, nullable: true })
  status: BudgetStatusDto | null;

  /** Present on subtree nodes: the live children, oldest first. */
  @ApiProperty({ type: () => [BudgetStatusTreeNodeDto], required: false })
  children?: BudgetStatusTreeNodeDto[];
}

export class BudgetStatusFamilyDto {
  budget: BudgetStatusTreeNodeDto;
  /** Root first, parent last. */
  @ApiProperty({ type: [BudgetStatusTreeNodeDto] })
  ancestors: BudgetStatusTreeNodeDto[];
  subtree: BudgetStatusTreeNodeDto;
}

/** For each budget of a scope: its ancestor chain and its subtree, every node with its status. */
export class BudgetHierarchyStatusDto {
  @ApiProperty({ enum: SCOPE_TYPES })
  scopeType: ScopeType;
  scopeId: string;
  @ApiProperty({ type: [BudgetStatusFamilyDto] })
  budgets: BudgetStatusFamilyDto[];
}
