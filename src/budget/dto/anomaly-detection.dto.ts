import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn } from 'class-validator';
import { IsOmittable } from '../../common/validation';
import { ANOMALY_SENSITIVITIES, type AnomalySensitivity } from '../budget.types';

/** Spike detection on the budget's hourly spend against its own baseline (docs/reporting.md). */
export class AnomalyDetectionDto {
  @ApiProperty({ example: true })
  @IsBoolean()
  enabled: boolean;

  /** How far above its baseline an hour must be to count as a spike: low 7, medium 5, high 3.5 robust z-scores. */
  @ApiProperty({ enum: ANOMALY_SENSITIVITIES, default: 'medium' })
  @IsOmittable()
  @IsIn(ANOMALY_SENSITIVITIES)
  sensitivity?: AnomalySensitivity;
}
