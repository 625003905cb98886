import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize, IsArray, IsBoolean, IsIn, IsInt, IsNumber, IsObject, IsOptional, IsString, IsUUID, Matches, Max,
  Min, ValidateIf, ValidateNested,
} from 'class-validator';
import { IsMoney } from '../../common/money';
import { CodePointLength, EachNested, IsIanaTimeZone, IsOmittable, IsSmallJsonObject, Satisfies, Trim, UtcInstant } from '../../common/validation';
import { BUDGET_PERIODS, ENFORCEMENTS, SCOPE_TYPES, type BudgetPeriod, type Enforcement, type ScopeType } from '../budget.types';
import { AnomalyDetectionDto } from './anomaly-detection.dto';
import { BudgetAlertDto } from './budget-alert.dto';
import { BudgetFilterDto } from './budget-filter.dto';
import { ModelPolicyDto } from './model-policy.dto';

/** The seed's CreateBudgetRequest. */
export class CreateBudgetDto {
  @ApiProperty({ example: 'Q1 2025 AI Development Budget', minLength: 1, maxLength: 200 })
  @Trim()
  @IsString()
  @CodePointLength(1, 200)
  name: string;

  @ApiProperty({ example: 'Budget for AI development activities', maxLength: 2000, required: false, nullable: true })
  @IsOptional()
  @IsString()
  @CodePointLength(0, 2000)
  description?: string | null;

  @ApiProperty({ enum: SCOPE_TYPES, example: 'team' })
  @IsIn(SCOPE_TYPES)
  scopeType: ScopeType;

  @ApiProperty({ example: 'team-engineering-ai', pattern: '^[A-Za-z0-9._:@-]{1,200}$' })
  @IsString()
  @Matches(/^[A-Za-z0-9._:@-]{1,200}$/, { message: 'scopeId must be 1–200 characters of letters, digits and . _ : @ -' })
  scopeId: string;

  /** A live budget of the same currency whose amount is at least this one's. */
  @ApiProperty({ format: 'uuid', required: false, nullable: true })
  @IsOptional()
  @IsUUID('all')
  parentId?: string | null;

  /** The limit: a number or decimal string, > 0 and ≤ 1e13, at most 10 fractional digits. */
  @ApiProperty({ oneOf: [{ type: 'number' }, { type: 'string' }], example: 5000 })
  @IsMoney()
  amount: number | string;

  @ApiProperty({ example: 'USD', pattern: '^[A-Z]{3}$' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be an ISO 4217 code of 3 upper-case letters' })
  currency: string;

  @ApiProperty({ enum: BUDGET_PERIODS, example: 'quarterly' })
  @IsIn(BUDGET_PERIODS)
  period: BudgetPeriod;

  /** Required iff period is `custom`: 1–3660 days. */
  @ApiProperty({ required: false, minimum: 1, maximum: 3660 })
  @ValidateIf((o: CreateBudgetDto) => o.period === 'custom' || o.customPeriodDays !== undefined)
  @IsInt({ message: 'customPeriodDays is required for a custom period and must be a whole number of days' })
  @Min(1)
  @Max(3660)
  @Satisfies<CreateBudgetDto>((_, dto) => dto.period === 'custom' || dto.period === undefined, 'is only allowed when period is custom')
  customPeriodDays?: number;

  /** The anchor instant of every period. */
  @ApiProperty({ example: '2025-01-01T00:00:00Z', format: 'date-time' })
  @UtcInstant()
  startDate: string;

  /** No period starts at or after it; the last window ends at it. */
  @ApiProperty({ format: 'date-time', required: false, nullable: true })
  @IsOptional()
  @UtcInstant()
  @Satisfies<CreateBudgetDto>(
    (value, dto) => typeof value !== 'string' || typeof dto.startDate !== 'string' || Date.parse(value) > Date.parse(dto.startDate),
    'must be after startDate',
  )
  endDate?: string | null;

  @ApiProperty({ default: true, example: true })
  @IsOmittable()
  @IsBoolean()
  recurring?: boolean;

  @ApiProperty({ default: 'UTC', example: 'UTC' })
  @IsOmittable()
  @IsIanaTimeZone()
  timezone?: string;

  @ApiProperty({ enum: ENFORCEMENTS, default: 'hard' })
  @IsOmittable()
  @IsIn(ENFORCEMENTS)
  enforcement?: Enforcement;

  @ApiProperty({ default: 75, minimum: 0, exclusiveMinimum: true, maximum: 100, exclusiveMaximum: true })
  @IsOmittable()
  @IsNumber({ allowNaN: false, allowInfinity: false, maxDecimalPlaces: 2 })
  @Satisfies((value) => typeof value === 'number' && value > 0 && value < 100, 'must be a percent greater than 0 and less than 100')
  warningThreshold?: number;

  @ApiProperty({ default: 90, minimum: 0, exclusiveMinimum: true, maximum: 100, exclusiveMaximum: true })
  @IsOmittable()
  @IsNumber({ allowNaN: false, allowInfinity: false, maxDecimalPlaces: 2 })
  @Satisfies((value) => typeof value === 'number' && value > 0 && value < 100, 'must be a percent greater than 0 and less than 100')
  @Satisfies<CreateBudgetDto>(
    (value, dto) => typeof value !== 'number' || typeof dto.warningThreshold !== 'number' || value > dto.warningThreshold,
    'must be greater than warningThreshold',
  )
  criticalThreshold?: number;

  @ApiProperty({ type: [BudgetAlertDto], required: false })
  @IsOmittable()
  @IsArray()
  @ArrayMaxSize(50)
  @EachNested(BudgetAlertDto)
  alerts?: BudgetAlertDto[];

  @ApiProperty({ type: ModelPolicyDto, required: false, nullable: true })
  @IsOptional()
  @IsObject({ message: 'modelPolicy must be an object' })
  @ValidateNested()
  @Type(() => ModelPolicyDto)
  modelPolicy?: ModelPolicyDto | null;

  /**
   * Count only the requests of this scope that use these models and carry these tags (SPEC §12.2);
   * null or absent counts all. A change applies from the next recorded usage on.
   */
  @ApiProperty({ type: BudgetFilterDto, required: false, nullable: true })
  @IsOptional()
  @IsObject({ message: 'filter must be an object' })
  @ValidateNested()
  @Type(() => BudgetFilterDto)
  filter?: BudgetFilterDto | null;

  /** Spike detection on the hourly spend (see GET /budgets/{id}/anomalies); null or absent = off. */
  @ApiProperty({ type: AnomalyDetectionDto, required: false, nullable: true })
  @IsOptional()
  @IsObject({ message: 'anomalyDetection must be an object' })
  @ValidateNested()
  @Type(() => AnomalyDetectionDto)
  anomalyDetection?: AnomalyDetectionDto | null;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, nullable: true })
  @IsOptional()
  @IsSmallJsonObject()
  metadata?: Record<string, unknown> | null;
}
