import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { ToBoolean } from '../../common/validation';
import { BudgetAlertStatusDto } from '../../usage/dto/budget-status.dto';

/** One triggered alert: (budget, alert, window) fires once. The fields of status's activeAlerts, and more. */
export class AlertHistoryDto extends OmitType(BudgetAlertStatusDto, ['acknowledged'] as const) {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  /** The window it fired in. */
  @ApiProperty({ format: 'date-time' })
  periodStart: string;
  @ApiProperty({ example: ['email', 'slack'] })
  notificationChannels: string[];
  /** The usage record whose write crossed the threshold (null for bulk loads). */
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  usageRecordId: string | null;
  @ApiProperty({ type: String, nullable: true })
  note: string | null;
}

export class ListAlertsQueryDto {
  /** All windows instead of the current one. */
  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @ToBoolean()
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
