import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { BUDGET_STATUSES, type BudgetStatus } from '../../usage/dto/budget-status.dto';
import { DECISION_RULES, type DecisionRule } from '../constraint-decision';

export class SuggestedActionDto {
  @ApiProperty({ enum: ['auto-downgrade', 'reduce-request', 'request-approval', 'wait-for-next-period', 'use-another-model'] })
  type: string;
  @ApiProperty({ example: 'Wait until the window resets at 2025-04-01T00:00:00.000Z.' })
  description: string;
  @ApiPropertyOptional({ example: 'gpt-4o-mini' })
  model?: string;
  @ApiPropertyOptional({ example: 10 })
  maxEstimatedCost?: number;
  @ApiPropertyOptional({ format: 'date-time' })
  resetsAt?: string;
}

export class BlockingBudgetDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty({ example: 'Q1 2025 AI Development Budget' })
  name: string;
  @ApiProperty({ example: 10 })
  remaining: number;
  @ApiProperty({ format: 'date-time' })
  resetsAt: string;
}

/** The seed's BudgetConstraintCheck. A "no" is a normal 200 answer. */
export class BudgetConstraintCheckDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty()
  canProceed: boolean;
  /** The rule of the SPEC §3 ladder that answered (for dashboards and clients that branch on it). */
  @ApiProperty({ enum: DECISION_RULES })
  rule: DecisionRule;
  /** Why not (or why a downgrade), in a sentence a person can act on. */
  @ApiPropertyOptional()
  reason?: string;
  @ApiProperty()
  requiresApproval: boolean;
  @ApiProperty({ type: [SuggestedActionDto] })
  suggestedActions: SuggestedActionDto[];
  @ApiPropertyOptional({ example: 'gpt-4o-mini' })
  suggestedModel?: string;
  /** With estimated tokens and a suggested model: the tokens priced for it (null when the catalog has no price for it). */
  @ApiPropertyOptional({ type: Number, nullable: true, example: 0.0012 })
  suggestedModelEstimatedCost?: number | null;
  /** The estimate decided with: estimatedCost, or the estimated tokens' cost from the catalog. */
  @ApiProperty({ example: 25 })
  estimatedCost: number;
  @ApiProperty({ example: 4990 })
  currentAmount: number;
  @ApiProperty({ example: 0 })
  reservedAmount: number;
  @ApiProperty({ example: 5000 })
  limit: number;
  @ApiProperty({ example: 'USD' })
  currency: string;
  /** Before this request: limit − current − reserved, not below 0. */
  @ApiProperty({ example: 10 })
  remaining: number;
  /** (current + reserved + estimate) / limit × 100, 2 decimals. */
  @ApiProperty({ example: 100.3 })
  percentUsedAfter: number;
  @ApiProperty({ enum: BUDGET_STATUSES })
  status: BudgetStatus;
  @ApiProperty()
  active: boolean;
  /** When this budget's window resets. */
  @ApiProperty({ format: 'date-time' })
  resetsAt: string;
  /** The budget that said no (this one or an ancestor). */
  @ApiPropertyOptional({ type: BlockingBudgetDto })
  blockedBy?: BlockingBudgetDto;
  /** Set when a hold was placed (reserve: true). */
  @ApiPropertyOptional({ format: 'uuid' })
  reservationId?: string;
  @ApiPropertyOptional({ format: 'date-time' })
  reservationExpiresAt?: string;
}

export class IntegrationBudgetResultDto extends BudgetConstraintCheckDto {
  @ApiProperty({ example: 'team' })
  scopeType: string;
  @ApiProperty({ example: 'team-engineering-ai' })
  scopeId: string;
  @ApiProperty({ example: 'Q1 2025 AI Development Budget' })
  budgetName: string;
}

export class IntegrationCheckResponseDto {
  @ApiProperty()
  canProceed: boolean;
  /** The rule that decided: the blocking budget's, else auto-downgrade, inactive or allowed. */
  @ApiProperty({ enum: DECISION_RULES })
  rule: DecisionRule;
  @ApiPropertyOptional()
  reason?: string;
  @ApiProperty()
  requiresApproval: boolean;
  /** One model every budget accepts, when the requested one is not. */
  @ApiPropertyOptional({ example: 'gpt-4o-mini' })
  suggestedModel?: string;
  /** With estimated tokens and a suggested model: the tokens priced for it (null when the catalog has no price for it). */
  @ApiPropertyOptional({ type: Number, nullable: true, example: 0.0012 })
  suggestedModelEstimatedCost?: number | null;
  @ApiProperty({ type: [SuggestedActionDto] })
  suggestedActions: SuggestedActionDto[];
  @ApiPropertyOptional({ type: BlockingBudgetDto })
  blockedBy?: BlockingBudgetDto;
  @ApiProperty({ example: 0.25 })
  estimatedCost: number;
  @ApiProperty({ example: 'USD' })
  currency: string;
  @ApiProperty({ type: [IntegrationBudgetResultDto] })
  results: IntegrationBudgetResultDto[];
  @ApiPropertyOptional({ format: 'uuid' })
  reservationId?: string;
  @ApiPropertyOptional({ format: 'date-time' })
  reservationExpiresAt?: string;
}
