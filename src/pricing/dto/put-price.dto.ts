import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, registerDecorator } from 'class-validator';
import { parseDecimal } from '../../common/money';
import { IsOmittable, Satisfies, UtcInstant } from '../../common/validation';
import { PRICE_MAX, PRICE_SCALE } from '../token-cost';
import { IsModelId, IsProviderId, MODEL_ID_PATTERN, PROVIDER_PATTERN } from './token-counts.dto';

export const PRICE_CURRENCIES = ['USD'] as const;

/** The problem with a price input, or undefined when it is valid. */
export function priceProblem(value: unknown): string | undefined {
  const price = parseDecimal(value);
  if (!price) return 'must be a decimal string or a number';
  if (price.isNegative()) return 'must be 0 or more';
  if (price.gt(PRICE_MAX)) return `must be at most ${PRICE_MAX.toFixed()}`;
  if (price.decimalPlaces() > PRICE_SCALE) return `must have at most ${PRICE_SCALE} fractional digits`;
  return undefined;
}

/** USD per million tokens: a decimal string (or a number), 0 to 10^6, at most 10 fractional digits. */
export const IsPrice = () => (target: object, propertyName: string) =>
  registerDecorator({
    name: 'isPrice',
    target: target.constructor,
    propertyName,
    validator: {
      validate: (value: unknown) => priceProblem(value) === undefined,
      defaultMessage: (args) => `${args?.property} ${priceProblem(args?.value)}`,
    },
  });

const PRICE_DOC = 'USD per million tokens: a decimal string (or a number), 0 to 1000000, at most 10 fractional digits.';

/** The path of one model's prices. */
export class PriceParamsDto {
  @ApiProperty({ example: 'openai', pattern: PROVIDER_PATTERN.source })
  @IsProviderId()
  provider: string;

  /** URL-encode a `/` in a model id as %2F. */
  @ApiProperty({ example: 'gpt-4o', pattern: MODEL_ID_PATTERN.source })
  @IsModelId()
  modelId: string;
}

/** A new version of a model's prices, effective from `effectiveFrom` (SPEC §14). */
export class PutModelPriceDto {
  @ApiProperty({ oneOf: [{ type: 'string' }, { type: 'number' }], example: '2.5', description: PRICE_DOC })
  @IsPrice()
  inputPerMTok: string | number;

  @ApiProperty({ oneOf: [{ type: 'string' }, { type: 'number' }], example: '10', description: PRICE_DOC })
  @IsPrice()
  outputPerMTok: string | number;

  /** Omitted or null: cached input tokens cost the input price. */
  @ApiPropertyOptional({ oneOf: [{ type: 'string' }, { type: 'number' }], example: '1.25', nullable: true, description: PRICE_DOC })
  @IsOptional()
  @IsPrice()
  cachedInputPerMTok?: string | number | null;

  /** From this instant the new prices hold; the open-ended version before it is closed here. */
  @ApiProperty({ example: '2026-12-01T00:00:00Z', format: 'date-time' })
  @UtcInstant()
  effectiveFrom: string;

  /** Until this instant (exclusive); omitted or null: until a later version. */
  @ApiPropertyOptional({ example: null, format: 'date-time', nullable: true, type: String })
  @IsOptional()
  @UtcInstant()
  @Satisfies<PutModelPriceDto>(
    (value, dto) => typeof value !== 'string' || typeof dto.effectiveFrom !== 'string' || Date.parse(value) > Date.parse(dto.effectiveFrom),
    'must be after effectiveFrom',
  )
  effectiveTo?: string | null;

  @ApiPropertyOptional({ enum: PRICE_CURRENCIES, default: 'USD' })
  @IsOmittable()
  @IsIn(PRICE_CURRENCIES, { message: 'currency must be USD (the catalog holds USD prices)' })
  currency?: 'USD';
}
