import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, Length, Matches, MaxLength } from 'class-validator';
import { IsMoney } from '../../common/money';
import { setObjectFastPath } from '../../common/fast-path';
import { IsOmittable, IsSmallJsonObject, IsTagList, UtcInstant } from '../../common/validation';
import { TokenCountsDto } from '../../pricing/dto/token-counts.dto';
import { USAGE } from './usage-body.fast-path';

/**
 * The seed's RecordUsageRequest, with SPEC §14's tokens: a usage carries `amount`, or `modelId`,
 * `inputTokens` and `outputTokens` (and `provider`, `cachedInputTokens`) priced from the catalog at
 * `occurredAt`. Both given → the amount is recorded and the tokens kept.
 */
export class RecordUsageDto extends PartialType(TokenCountsDto, { skipNullProperties: false }) {
  /**
   * What the call really cost: a number or decimal string, ≥ 0, ≤ 1e13, at most 10 fractional digits.
   * Required unless the usage carries inputTokens and outputTokens.
   */
  @ApiPropertyOptional({ oneOf: [{ type: 'number' }, { type: 'string' }], example: 25.5 })
  @IsOmittable()
  @IsMoney({ allowZero: true })
  amount?: number | string;

  /** Must equal the budget's currency. */
  @ApiProperty({ example: 'USD', pattern: '^[A-Z]{3}$' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be an ISO 4217 code of 3 upper-case letters' })
  currency: string;

  @ApiPropertyOptional({ example: 'relaycore', default: 'api' })
  @IsOmittable()
  @IsString()
  @Length(1, 100)
  source?: string;

  @ApiPropertyOptional({ example: 'GPT-4 API usage' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  description?: string | null;

  /** The model called; required with tokens (it names the price). */
  @ApiPropertyOptional({ example: 'gpt-4' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  modelId?: string | null;

  @ApiPropertyOptional({ example: 'user-456' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  userId?: string | null;

  @ApiPropertyOptional({ example: 'team-123' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  teamId?: string | null;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  projectId?: string | null;

  /** The gateway's end customer the request was made for. */
  @ApiPropertyOptional({ example: 'cust-42' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  customerId?: string | null;

  /** Labels of the request (feature, environment, ...): at most 20, each 1–64 characters; a repeated tag counts once. */
  @ApiPropertyOptional({ type: [String], example: ['chat', 'production'], maxItems: 20, items: { type: 'string', minLength: 1, maxLength: 64 } })
  @IsOptional()
  @IsTagList()
  tags?: string[] | null;

  /** The gateway's request id; the idempotency key when no Idempotency-Key header is sent. */
  @ApiPropertyOptional({ example: 'req-789' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  requestId?: string | null;

  /** Free JSON (≤ 16 KiB). requestId, modelId, userId, teamId and projectId found here are lifted into their fields. */
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    example: { requestId: 'req-789', modelId: 'gpt-4', userId: 'user-456', teamId: 'team-123' },
  })
  @IsOptional()
  @IsSmallJsonObject()
  metadata?: Record<string, unknown> | null;

  /** When the usage happened (default now); may be in the past, at most 5 minutes in the future. */
  @ApiPropertyOptional({ format: 'date-time' })
  @IsOmittable()
  @UtcInstant()
  occurredAt?: string;

  /** Settles this reservation (hold) in the same transaction. */
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all')
  reservationId?: string | null;
}

setObjectFastPath(RecordUsageDto, USAGE);

export const LIFTED_METADATA_FIELDS = ['requestId', 'modelId', 'userId', 'teamId', 'projectId'] as const;
