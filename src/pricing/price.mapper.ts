import { Decimal } from '../common/money';
import type { PriceResponseDto } from './dto/price-response.dto';
import type { PriceRow } from './price-catalog.repository';

/** NUMERIC text without trailing zeros ("2.50" → "2.5"), so a PUT's answer equals a later GET. */
const decimalText = (value: string) => new Decimal(value).toFixed();

/** The API's view of a stored version. */
export function toPriceResponse(row: PriceRow): PriceResponseDto {
  return {
    id: row.id,
    provider: row.provider,
    modelId: row.modelId,
    inputPerMTok: decimalText(row.inputPerMTok),
    outputPerMTok: decimalText(row.outputPerMTok),
    cachedInputPerMTok: row.cachedInputPerMTok === null ? null : decimalText(row.cachedInputPerMTok),
    currency: row.currency,
    effectiveFrom: row.effectiveFrom.toISOString(),
    effectiveTo: row.effectiveTo ? row.effectiveTo.toISOString() : null,
    source: row.source,
    createdAt: row.createdAt.toISOString(),
    createdBy: row.createdBy,
  };
}
