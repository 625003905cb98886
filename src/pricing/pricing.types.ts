import type { TokenPriceRates } from './token-cost';

/**
 * What the catalog's SQL rule of SPEC §14 (`model_price_choose`) needs from the package's code,
 * which SQL cannot run: the provider the package marks as the id's maker, and the package's match
 * of an id the catalog may not hold verbatim (dated and aliased ids, fallback providers). Usage and
 * Constraint pass them into their own statements, so pricing a request costs no round trip of its own.
 */
export interface PriceLookupHints {
  maker: string | null;
  aliasProvider: string | null;
  aliasModelId: string | null;
}

/** A request's model and tokens, to be priced at an instant. */
export interface TokenPricedRequest {
  provider?: string;
  modelId: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
  at: Date;
}

/** What `model_price_choose` (with `model_price_cost`) answered for a request, as a repository reads it. */
export interface PriceChoice {
  priceId: string | null;
  provider: string | null;
  /** The cost of the request's tokens (NUMERIC text), null when there is no price. */
  amount: string | null;
  errorCode: 'PRICE_NOT_FOUND' | 'PROVIDER_REQUIRED' | null;
  /** With PROVIDER_REQUIRED: the providers listing the id. */
  providers: string[] | null;
  /** The version's prices (NUMERIC text), when one was chosen and the reader asked for them. */
  rates?: TokenPriceRates | null;
}
