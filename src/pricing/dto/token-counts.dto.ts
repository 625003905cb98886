import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, registerDecorator, type ValidationOptions } from 'class-validator';
import { custom, IsOmittable } from '../../common/validation';
import { TOKENS_MAX } from '../token-cost';

export { TOKENS_MAX };

export const PROVIDER_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MODEL_ID_PATTERN = /^[A-Za-z0-9._:@/~+=-]{1,100}$/;

const pattern = (name: string, regex: RegExp, message: string, options?: ValidationOptions) =>
  custom(name, (value) => typeof value === 'string' && regex.test(value), message, options);

/** A provider id as the catalog stores it: `openai`, `anthropic`, `huggingface_together`, … */
export const IsProviderId = (options?: ValidationOptions) =>
  pattern('isProviderId', PROVIDER_PATTERN, 'must be 1–64 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit', options);

/** A model id: 1–100 characters of letters, digits and . _ : @ / ~ + = - (e.g. `gpt-4o`, `@cf/meta/llama-3-8b`). */
export const IsModelId = (options?: ValidationOptions) =>
  pattern('isModelId', MODEL_ID_PATTERN, 'must be 1–100 characters of letters, digits and . _ : @ / ~ + = -', options);

/** A token count: a whole number from 0 to 10^9 (a JSON number, not a string). */
export const IsTokenCount = (options?: ValidationOptions) =>
  (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isTokenCount',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} must be a whole number of tokens from 0 to ${TOKENS_MAX}`, ...options },
      validator: { validate: (value: unknown) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= TOKENS_MAX },
    });

/**
 * The token fields of a token-priced request, for every body that carries them (usage writes,
 * checks, cost quotes): extend it, or pick from it with the @nestjs/swagger mapped types.
 */
export class TokenCountsDto {
  /** The catalog provider; without it the model id decides (SPEC §14). */
  @ApiPropertyOptional({ example: 'openai', pattern: PROVIDER_PATTERN.source })
  @IsOmittable()
  @IsProviderId()
  provider?: string;

  /** Input tokens that were not read from a cache. */
  @ApiProperty({ example: 1200, minimum: 0, maximum: TOKENS_MAX, type: 'integer' })
  @IsTokenCount()
  inputTokens: number;

  @ApiProperty({ example: 350, minimum: 0, maximum: TOKENS_MAX, type: 'integer' })
  @IsTokenCount()
  outputTokens: number;

  /** Input tokens read from a cache (priced at the cached price, or the input price when none is listed). */
  @ApiPropertyOptional({ example: 0, minimum: 0, maximum: TOKENS_MAX, type: 'integer' })
  @IsOmittable()
  @IsTokenCount()
  cachedInputTokens?: number;
}

/** What PriceCatalogService.priceFor takes. */
export class PriceQuery {
  @IsOmittable()
  @IsProviderId()
  provider?: string;

  @IsModelId()
  modelId: string;

  @Type(() => Date)
  @IsDate({ message: 'at must be a valid instant' })
  at: Date;
}

/** What PriceCatalogService.costOf takes: the model, the instant and the tokens. */
export class CostQuery extends TokenCountsDto {
  @IsModelId()
  modelId: string;

  @Type(() => Date)
  @IsDate({ message: 'at must be a valid instant' })
  at: Date;
}
