import { ApiProperty, ApiPropertyOptional, IntersectionType, OmitType } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import { setObjectFastPath } from '../../common/fast-path';
import { IsOmittable, IsTagList } from '../../common/validation';
import { RecordUsageDto } from '../../usage/dto/record-usage.dto';
import { IsMoney } from '../../common/money';
import { IsProviderId, IsTokenCount, PROVIDER_PATTERN, TOKENS_MAX } from '../../pricing/dto/token-counts.dto';
import { CHECK, integrationCheck, integrationUsage } from './check-body.fast-path';

export const SCOPE_ID = /^[A-Za-z0-9._:@-]{1,200}$/;
const SCOPE_ID_MESSAGE = 'must be 1–200 characters of letters, digits and . _ : @ -';

/**
 * "May a request costing about this much proceed on this budget, and on which model?" The cost is
 * `estimatedCost`, or `estimatedInputTokens` and `estimatedOutputTokens` of `modelId` priced from
 * the catalog now (SPEC §14); both given → estimatedCost is used.
 */
export class CheckConstraintsDto {
  /** Required unless the check carries modelId, estimatedInputTokens and estimatedOutputTokens. */
  @ApiPropertyOptional({ oneOf: [{ type: 'number' }, { type: 'string' }], example: 25 })
  @IsOmittable()
  @IsMoney({ allowZero: true })
  estimatedCost?: number | string;

  /** Input tokens the request is expected to send (not read from a cache). */
  @ApiPropertyOptional({ example: 1200, minimum: 0, maximum: TOKENS_MAX, type: 'integer' })
  @IsOmittable()
  @IsTokenCount()
  estimatedInputTokens?: number;

  @ApiPropertyOptional({ example: 350, minimum: 0, maximum: TOKENS_MAX, type: 'integer' })
  @IsOmittable()
  @IsTokenCount()
  estimatedOutputTokens?: number;

  /** The catalog provider pricing the tokens; without it the model id decides (SPEC §14). */
  @ApiPropertyOptional({ example: 'openai', pattern: PROVIDER_PATTERN.source })
  @IsOmittable()
  @IsProviderId()
  provider?: string;

  /** The model the caller intends to use; restrict-models and auto-downgrade act on it. */
  @ApiPropertyOptional({ example: 'gpt-4' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  modelId?: string;

  /** The request's tags: budgets with a tags filter count (and constrain) only requests carrying them. */
  @ApiPropertyOptional({ type: [String], example: ['chat', 'production'], maxItems: 20, items: { type: 'string', minLength: 1, maxLength: 64 } })
  @IsOptional()
  @IsTagList()
  tags?: string[];

  /** Hold the estimate on the budget and every ancestor when the answer is yes (service role). */
  @ApiPropertyOptional({ default: false })
  @IsOmittable()
  @IsBoolean()
  reserve?: boolean;

  /** How long the hold lives unless settled or released (default 300, max 3600). */
  @ApiPropertyOptional({ default: 300, minimum: 1, maximum: 3600 })
  @IsOmittable()
  @IsInt()
  @Min(1)
  @Max(3600)
  reservationTtlSeconds?: number;
}

/** The scopes of one AI request, flat as RelayCore sends them. */
export class IntegrationScopesDto {
  @ApiPropertyOptional({ example: 'org-acme' })
  @IsOptional()
  @Matches(SCOPE_ID, { message: `organizationId ${SCOPE_ID_MESSAGE}` })
  organizationId?: string;

  @ApiPropertyOptional({ example: 'team-engineering-ai' })
  @IsOptional()
  @Matches(SCOPE_ID, { message: `teamId ${SCOPE_ID_MESSAGE}` })
  teamId?: string;

  @ApiPropertyOptional({ example: 'user-456' })
  @IsOptional()
  @Matches(SCOPE_ID, { message: `userId ${SCOPE_ID_MESSAGE}` })
  userId?: string;

  @ApiPropertyOptional({ example: 'project-chatbot' })
  @IsOptional()
  @Matches(SCOPE_ID, { message: `projectId ${SCOPE_ID_MESSAGE}` })
  projectId?: string;

  /** The gateway's end customer (scope type `customer`). */
  @ApiPropertyOptional({ example: 'cust-42' })
  @IsOptional()
  @Matches(SCOPE_ID, { message: `customerId ${SCOPE_ID_MESSAGE}` })
  customerId?: string;
}

class CurrencyDto {
  @ApiProperty({ example: 'USD', pattern: '^[A-Z]{3}$' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be an ISO 4217 code of 3 upper-case letters' })
  currency: string;
}

/** A check for every budget of a request's scopes: the scopes, the check's fields and its currency. */
export class IntegrationCheckDto extends IntersectionType(IntegrationScopesDto, CheckConstraintsDto, CurrencyDto) {}

class RequiredRequestIdDto {
  /** The gateway's request id: the idempotency key of this usage on every budget. */
  @ApiProperty({ example: 'req-789' })
  @IsString()
  @Length(1, 200)
  requestId: string;
}

/** Where an integration usage came from; RelayCore's own writes default to `relaycore`. */
class IntegrationSourceDto {
  @ApiPropertyOptional({ example: 'relaycore', default: 'relaycore' })
  @IsOmittable()
  @IsString()
  @Length(1, 100)
  source?: string;
}

/** One AI request's actual cost, as RelayCore reports it after the call: the scopes and a usage record. */
export class IntegrationUsageDto extends IntersectionType(
  IntegrationScopesDto,
  OmitType(RecordUsageDto, ['userId', 'teamId', 'projectId', 'customerId', 'requestId', 'source'] as const),
  RequiredRequestIdDto,
  IntegrationSourceDto,
) {}

// The check and RelayCore's two calls are the hot path: their bodies skip the pipe's metadata walk.
setObjectFastPath(CheckConstraintsDto, CHECK);
setObjectFastPath(IntegrationCheckDto, integrationCheck(SCOPE_ID));
setObjectFastPath(IntegrationUsageDto, integrationUsage(SCOPE_ID));
