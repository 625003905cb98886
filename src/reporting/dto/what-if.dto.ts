import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsIn, IsInt, IsObject, IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { BudgetAlertDto } from '../../budget/dto/budget-alert.dto';
import { BudgetAlertResponseDto, ModelPolicyResponseDto } from '../../budget/dto/budget-response.dto';
import { ModelPolicyDto } from '../../budget/dto/model-policy.dto';
import { ALERT_ACTIONS, ALERT_TYPES, ENFORCEMENTS, type AlertAction, type AlertType, type Enforcement } from '../../budget/budget.types';
import { IsMoney } from '../../common/money';
import { EachNested, IsOmittable } from '../../common/validation';

/** Proposed settings (the budget's own where absent), validated as a budget update validates them. */
export class WhatIfDto {
  /** A proposed limit. */
  @ApiPropertyOptional({ oneOf: [{ type: 'number' }, { type: 'string' }], example: 4000 })
  @IsOmittable()
  @IsMoney()
  amount?: number | string;

  @ApiPropertyOptional({ enum: ENFORCEMENTS })
  @IsOmittable()
  @IsIn(ENFORCEMENTS)
  enforcement?: Enforcement;

  /** Proposed alerts, replacing the budget's. */
  @ApiPropertyOptional({ type: [BudgetAlertDto] })
  @IsOmittable()
  @IsArray()
  @ArrayMaxSize(50)
  @EachNested(BudgetAlertDto)
  alerts?: BudgetAlertDto[];

  /** A proposed model policy; null for none. */
  @ApiPropertyOptional({ type: ModelPolicyDto, nullable: true })
  @IsOptional()
  @IsObject({ message: 'modelPolicy must be an object' })
  @ValidateNested()
  @Type(() => ModelPolicyDto)
  modelPolicy?: ModelPolicyDto | null;

  /** How many windows to replay: the current one (so far) and windows − 1 before it; 1–12. */
  @ApiPropertyOptional({ minimum: 1, maximum: 12, default: 1 })
  @IsOmittable()
  @IsInt()
  @Min(1)
  @Max(12)
  windows?: number;
}

export class AlertThatWouldFireDto {
  alertId: string;
  threshold: number;
  @ApiProperty({ enum: ALERT_TYPES })
  type: AlertType;
  @ApiProperty({ enum: ALERT_ACTIONS, isArray: true })
  actions: AlertAction[];
  /** The occurredAt of the usage after which it would fire. */
  @ApiProperty({ format: 'date-time' })
  firedAt: string;
  /** Percent of the proposed limit spent then. */
  percentUsed: number;
}

/** One replayed window. */
export class WhatIfWindowDto {
  @ApiProperty({ format: 'date-time' })
  periodStart: string;
  @ApiProperty({ format: 'date-time' })
  periodEnd: string;
  /** Usage records replayed. */
  usageCount: number;
  /** What was really spent in the window (so far). */
  recordedSpent: number;
  /** What would have been spent under the proposed settings. */
  spent: number;
  wouldBlockCount: number;
  wouldBlockAmount: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  firstBlockAt: string | null;
  wouldDowngradeCount: number;
  /** Usages a require-approval alert would have held (not added to spent). */
  wouldRequireApprovalCount: number;
  @ApiProperty({ type: [AlertThatWouldFireDto] })
  alertsThatWouldFire: AlertThatWouldFireDto[];
}

export class WhatIfSettingsDto {
  amount: number;
  @ApiProperty({ enum: ENFORCEMENTS })
  enforcement: Enforcement;
  @ApiProperty({ type: [BudgetAlertResponseDto] })
  alerts: BudgetAlertResponseDto[];
  @ApiProperty({ type: ModelPolicyResponseDto, nullable: true })
  modelPolicy: ModelPolicyResponseDto | null;
}

/** The replay's answer; nothing was changed. */
export class WhatIfResultDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  currency: string;
  /** The settings replayed: the proposal over the budget's own. */
  @ApiProperty({ type: WhatIfSettingsDto })
  settings: WhatIfSettingsDto;
  /** Newest first, the current (partial) window first. */
  @ApiProperty({ type: [WhatIfWindowDto] })
  windows: WhatIfWindowDto[];
}
