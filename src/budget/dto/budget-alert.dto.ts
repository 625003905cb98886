import { ApiProperty } from '@nestjs/swagger';
import { IsOmittable } from '../../common/validation';
import {
  ArrayMaxSize, ArrayUnique, IsArray, IsIn, IsNumber, IsPositive, IsString, Length, Matches, Max, MaxLength,
} from 'class-validator';
import { ALERT_ACTIONS, ALERT_TYPES, type AlertAction, type AlertType } from '../budget.types';

export class BudgetAlertDto {
  /** Server-generated when absent; unique within the budget. */
  @IsOmittable()
  @IsString()
  @Length(1, 100)
  @Matches(/^[A-Za-z0-9._:-]+$/, { message: 'id may contain letters, digits and . _ : - only' })
  id?: string;

  /** Percent of the limit (or, for forecast alerts, of the projected total) that fires the alert: (0, 1000]. */
  @ApiProperty({ example: 80, minimum: 0, exclusiveMinimum: true, maximum: 1000 })
  @IsNumber({ allowNaN: false, allowInfinity: false, maxDecimalPlaces: 2 })
  @IsPositive()
  @Max(1000)
  threshold: number;

  @ApiProperty({ enum: ALERT_TYPES, default: 'actual' })
  @IsOmittable()
  @IsIn(ALERT_TYPES)
  type?: AlertType;

  @ApiProperty({ enum: ALERT_ACTIONS, isArray: true, example: ['notify', 'restrict-models'] })
  @IsArray()
  @ArrayUnique()
  @ArrayMaxSize(5)
  @IsIn(ALERT_ACTIONS, { each: true })
  actions: AlertAction[];

  /** Channel ids or names (422 unless they exist), or email, slack, webhook: every enabled channel of that type. */
  @ApiProperty({ example: ['email', 'slack'] })
  @IsOmittable()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(200, { each: true })
  notificationChannels?: string[];
}
