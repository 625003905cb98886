import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { ALERT_ACTIONS, ALERT_TYPES, type AlertAction, type AlertType } from '../../budget/budget.types';

/** One triggered alert: (budget, alert, window) fires once. */
export class AlertHistoryDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty()
  alertId: string;
  @ApiProperty({ example: 80 })
  threshold: number;
  @ApiProperty({ enum: ALERT_TYPES })
  type: AlertType;
  @ApiProperty({ format: 'date-time' })
  periodStart: string;
  @ApiProperty({ format: 'date-time' })
  triggeredAt: string;
  @ApiProperty({ example: 81.5 })
  percentUsed: number;
  @ApiProperty({ example: 4075 })
  amount: number;
  @ApiProperty({ enum: ALERT_ACTIONS, isArray: true })
  actions: AlertAction[];
  @ApiProperty({ example: ['email', 'slack'] })
  notificationChannels: string[];
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  usageRecordId: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  acknowledgedAt: string | null;
  @ApiProperty({ type: String, nullable: true })
  acknowledgedBy: string | null;
  @ApiProperty({ type: String, nullable: true })
  note: string | null;
}

export class ListAlertsQueryDto {
  /** All windows instead of the current one. */
  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean()
  all?: boolean;
}

export class AcknowledgeAlertDto {
  @ApiPropertyOptional({ example: 'Raised the limit for the launch week.' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  note?: string;
}

export class AlertParamsDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;

  /** The history row id (from GET /budgets/:id/alerts or activeAlerts). */
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'alertId must be a UUID' })
  alertId: string;
}
