import { ApiProperty } from '@nestjs/swagger';
import {
  ALERT_ACTIONS, ANOMALY_SENSITIVITIES, type AnomalySensitivity, ALERT_TYPES, BUDGET_PERIODS, ENFORCEMENTS, SCOPE_TYPES, type AlertAction, type AlertType,
  type BudgetPeriod, type Enforcement, type ScopeType,
} from '../budget.types';

export class BudgetAlertResponseDto {
  id: string;
  threshold: number;
  @ApiProperty({ enum: ALERT_TYPES })
  type: AlertType;
  @ApiProperty({ enum: ALERT_ACTIONS, isArray: true })
  actions: AlertAction[];
  notificationChannels: string[];
}

export class ModelPolicyResponseDto {
  restrictedModels: string[];
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } })
  downgrades: Record<string, string>;
}

export class BudgetFilterResponseDto {
  @ApiProperty({ required: false, example: ['gpt-4o*'] })
  models?: string[];
  @ApiProperty({ required: false, example: ['production'] })
  tags?: string[];
}

export class AnomalyDetectionResponseDto {
  enabled: boolean;
  @ApiProperty({ enum: ANOMALY_SENSITIVITIES })
  sensitivity: AnomalySensitivity;
}

/** The seed's BudgetDefinition. */
export class BudgetResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  name: string;
  @ApiProperty({ nullable: true, type: String })
  description: string | null;
  @ApiProperty({ enum: SCOPE_TYPES })
  scopeType: ScopeType;
  scopeId: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  parentId: string | null;
  /** The limit, rounded to 10 decimals. */
  amount: number;
  currency: string;
  @ApiProperty({ enum: BUDGET_PERIODS })
  period: BudgetPeriod;
  @ApiProperty({ nullable: true, type: Number })
  customPeriodDays: number | null;
  @ApiProperty({ format: 'date-time' })
  startDate: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  endDate: string | null;
  recurring: boolean;
  timezone: string;
  @ApiProperty({ enum: ENFORCEMENTS })
  enforcement: Enforcement;
  warningThreshold: number;
  criticalThreshold: number;
  @ApiProperty({ type: [BudgetAlertResponseDto] })
  alerts: BudgetAlertResponseDto[];
  @ApiProperty({ type: ModelPolicyResponseDto, nullable: true })
  modelPolicy: ModelPolicyResponseDto | null;
  /** Which requests of its scope it counts (SPEC §12.2); null counts all. */
  @ApiProperty({ type: BudgetFilterResponseDto, nullable: true })
  filter: BudgetFilterResponseDto | null;
  @ApiProperty({ type: AnomalyDetectionResponseDto, nullable: true })
  anomalyDetection: AnomalyDetectionResponseDto | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  metadata: Record<string, unknown> | null;
  createdBy: string;
  @ApiProperty({ format: 'date-time' })
  createdAt: string;
  @ApiProperty({ format: 'date-time' })
  updatedAt: string;
  /** Increments on every update; send it back in If-Match. */
  version: number;
}

export class BudgetPageDto {
  @ApiProperty({ type: [BudgetResponseDto] })
  data: BudgetResponseDto[];
  @ApiProperty({ type: String, nullable: true })
  nextCursor: string | null;
}
