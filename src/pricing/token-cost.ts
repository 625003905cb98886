import { Decimal, MONEY_SCALE } from '../common/money';

/** Prices per million tokens carry at most 10 fractional digits (NUMERIC in model_prices). */
export const PRICE_SCALE = 10;
/** At most $1,000,000 per million tokens: with TOKENS_MAX every cost stays far inside the money range. */
export const PRICE_MAX = new Decimal(1_000_000);
/** Token counts are integers from 0 to 10^9. */
export const TOKENS_MAX = 1_000_000_000;

const PER_MILLION = new Decimal(1_000_000);

/** The prices a cost is computed from (decimal strings, USD per million tokens). */
export interface TokenPriceRates {
  inputPerMTok: string;
  outputPerMTok: string;
  cachedInputPerMTok: string | null;
}

export interface TokenCounts {
  /** Input tokens that were not read from a cache. */
  inputTokens: number;
  outputTokens: number;
  /** Input tokens read from a cache: priced at the cached price, or the input price when none is listed. */
  cachedInputTokens?: number;
}

/**
 * The exact cost of a request: (input × inputPrice + cached × (cachedPrice or inputPrice) +
 * output × outputPrice) / 10^6, rounded half-up to 10 decimals (money's scale), as a decimal
 * string without trailing zeros. decimal.js with 40 significant digits holds every product
 * exactly (10^9 tokens × 10^6 $/MTok with 10 fractional digits needs 26).
 */
export function tokenCost(rates: TokenPriceRates, tokens: TokenCounts): string {
  const cachedRate = rates.cachedInputPerMTok ?? rates.inputPerMTok;
  const perMillion = new Decimal(tokens.inputTokens)
    .times(rates.inputPerMTok)
    .plus(new Decimal(tokens.cachedInputTokens ?? 0).times(cachedRate))
    .plus(new Decimal(tokens.outputTokens).times(rates.outputPerMTok));
  // abs(): a JSON -0 token count must not print as "-0".
  return perMillion.dividedBy(PER_MILLION).toDecimalPlaces(MONEY_SCALE, Decimal.ROUND_HALF_UP).abs().toFixed();
}
