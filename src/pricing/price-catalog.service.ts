import { Injectable } from '@nestjs/common';
import type { Provider } from '@pydantic/genai-prices';
import { toMoneyString } from '../common/money';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validateInput } from '../common/validation';
import type { ListPricesQueryDto } from './dto/list-prices.query.dto';
import type { PriceResponseDto } from './dto/price-response.dto';
import { PriceParamsDto, PutModelPriceDto } from './dto/put-price.dto';
import { CostQuery, PriceQuery } from './dto/token-counts.dto';
import { makerOf, matchModel, packageProviders } from './genai-prices.data';
import { PriceCatalogRepository, type PriceRow } from './price-catalog.repository';
import type { PriceChoice, PriceLookupHints, TokenPricedRequest } from './pricing.types';
import { planOverride } from './price-versioning';
import { toPriceResponse } from './price.mapper';
import { priceNotFound, priceVersionConflict, providerRequired } from './pricing.errors';
import { tokenCost, type TokenPriceRates } from './token-cost';

/** The source of versions created through PUT /prices. */
export const OVERRIDE_SOURCE = 'admin';

/** How many (model id, provider) pairs keep their lookup hints in memory (the package's matching runs once per pair). */
const HINTS_KEPT = 5000;

/**
 * How long a check may estimate with a price this instance read for it before (the check's own
 * clock): a check then needs no catalog lookup in its statement. An override PUT here applies at
 * once; one PUT on another instance reaches this one's checks within this time. Recorded usage is
 * never priced from here: the writers read the catalog in their own statement, every time.
 */
export const CHECK_PRICE_TTL_MS = 5_000;

interface CheckPrice {
  priceId: string;
  provider: string;
  rates: TokenPriceRates;
  readAt: number;
}

/** The exact cost of a request's tokens, and the price version it was computed from. */
export interface TokenCost {
  /** USD, rounded half-up to 10 decimals, as a decimal string. */
  amount: string;
  currency: string;
  priceId: string;
  provider: string;
  /** The catalog's model id (an alias or dated id resolves to it). */
  modelId: string;
  effectiveFrom: string;
}

export interface PutPriceResult {
  price: PriceResponseDto;
  /** False when the same version was already stored (a replayed PUT). */
  created: boolean;
}

/**
 * The price catalog: versions of model prices, and tokens → exact cost at an instant. Usage and
 * Constraint call priceFor/costOf; this room never calls them.
 */
@Injectable()
export class PriceCatalogService {
  private providers?: Promise<Provider[]>;
  private readonly hints = new Map<string, PriceLookupHints>();
  private readonly checkPrices = new Map<string, CheckPrice>();
  /** The checks reading a model's price for checkPrices now, by key: the others wait for them. */
  private readonly checkPriceReads = new Map<string, Promise<void>>();

  constructor(private readonly prices: PriceCatalogRepository) {}

  async listPrices(query: ListPricesQueryDto): Promise<Page<PriceResponseDto>> {
    const limit = query.limit ?? 50;
    const after = decodeCursor(query.cursor, 2) as [string, string] | undefined;
    const rows = await this.prices.list({
      provider: query.provider,
      modelId: query.modelId,
      at: query.at === undefined ? undefined : new Date(query.at),
      after,
      limit,
    });
    return toPage(rows, limit, (row) => [row.effectiveKey, row.id], toPriceResponse);
  }

  /** A new version from `effectiveFrom` (SPEC §14); the model need not be in the seeded catalog. */
  async putPrice(params: PriceParamsDto, request: PutModelPriceDto, actor: string): Promise<PutPriceResult> {
    const { provider, modelId } = await validateInput(PriceParamsDto, params);
    const dto = await validateInput(PutModelPriceDto, request);
    const requested = {
      inputPerMTok: toMoneyString(dto.inputPerMTok),
      outputPerMTok: toMoneyString(dto.outputPerMTok),
      cachedInputPerMTok: dto.cachedInputPerMTok === undefined || dto.cachedInputPerMTok === null ? null : toMoneyString(dto.cachedInputPerMTok),
      currency: dto.currency ?? 'USD',
      effectiveFrom: new Date(dto.effectiveFrom),
      effectiveTo: dto.effectiveTo ? new Date(dto.effectiveTo) : null,
    };
    const outcome = await this.prices.putVersion(
      { ...requested, provider, modelId, source: OVERRIDE_SOURCE, createdBy: actor.slice(0, 200) || 'anonymous' },
      (overlapping) => planOverride(overlapping, requested),
    );
    if (outcome.kind === 'conflict') throw priceVersionConflict(provider, modelId, outcome.existing);
    // Checks here price with the new version from now on (a model's id may be cached under its aliases too).
    this.checkPrices.clear();
    return { price: toPriceResponse(outcome.price), created: outcome.kind === 'created' };
  }

  /**
   * The version in effect at `at`. The id as stored first (canonical ids and overrides); else the
   * package's match rules (aliases, dated ids). Without a provider: the one provider pricing the
   * id then, or among several the one the data marks as the model's maker, else PROVIDER_REQUIRED.
   */
  async priceFor(query: { provider?: string; modelId: string; at: Date }): Promise<PriceResponseDto> {
    const { provider, modelId, at } = await validateInput(PriceQuery, query);
    return toPriceResponse(await this.resolve(provider, modelId, at));
  }

  /** The exact cost of tokens at `at`, with the version used. */
  async costOf(query: {
    provider?: string;
    modelId: string;
    inputTokens: number;
    outputTokens: number;
    cachedInputTokens?: number;
    at: Date;
  }): Promise<TokenCost> {
    const dto = await validateInput(CostQuery, query);
    const price = await this.resolve(dto.provider, dto.modelId, dto.at);
    return {
      amount: tokenCost(price, dto),
      currency: price.currency,
      priceId: price.id,
      provider: price.provider,
      modelId: price.modelId,
      effectiveFrom: price.effectiveFrom.toISOString(),
    };
  }

  /**
   * What model_price_choose needs besides the id: the id's maker (only asked without a provider)
   * and the package's match of it (only used when the catalog holds nothing under the id). The
   * package's data is pinned, so the answer for a pair never changes: kept, oldest dropped first.
   */
  async lookupHints(modelId: string, provider?: string): Promise<PriceLookupHints> {
    const key = `${provider ?? ''}/${modelId}`;
    const known = this.hints.get(key);
    if (known) return known;
    const match = matchModel(await this.packageProviders(), modelId, provider);
    const alias = match && !(match.provider === provider && match.modelId === modelId) ? match : undefined;
    const hints = {
      maker: provider === undefined ? makerOf(modelId) ?? null : null,
      aliasProvider: alias?.provider ?? null,
      aliasModelId: alias?.modelId ?? null,
    };
    if (this.hints.size >= HINTS_KEPT) this.hints.delete(this.hints.keys().next().value!);
    this.hints.set(key, hints);
    return hints;
  }

  /**
   * A check's estimated tokens priced with the version a check read for the same model and
   * provider less than CHECK_PRICE_TTL_MS before `at` (undefined when there is none: read it).
   */
  cachedCheckCost(request: Omit<TokenPricedRequest, 'cachedInputTokens'>): { amount: string; priceId: string; provider: string } | undefined {
    const known = this.checkPrices.get(`${request.provider ?? ''}/${request.modelId}`);
    const at = request.at.getTime();
    if (!known || at < known.readAt || at >= known.readAt + CHECK_PRICE_TTL_MS) return undefined;
    return { amount: tokenCost(known.rates, request), priceId: known.priceId, provider: known.provider };
  }

  /**
   * cachedCheckCost once the check reading this model's price now (beginCheckPriceRead) is done:
   * undefined at once when none is, or when its read remembered no price (the caller then reads
   * it, as that check did, and gets its own answer or error). Without it every check arriving while
   * the price is read would read it too: at 4,000 checks/s, about a hundred heavier statements
   * each time the price's CHECK_PRICE_TTL_MS runs out.
   */
  async checkCostAfterRead(request: Omit<TokenPricedRequest, 'cachedInputTokens'>): Promise<{ amount: string; priceId: string; provider: string } | undefined> {
    const reading = this.checkPriceReads.get(`${request.provider ?? ''}/${request.modelId}`);
    if (!reading) return undefined;
    await reading;
    return this.cachedCheckCost(request);
  }

  /** Marks that the caller reads this model's price for the checks now; call the answer when done, whatever happened. */
  beginCheckPriceRead(request: Pick<TokenPricedRequest, 'provider' | 'modelId'>): () => void {
    const key = `${request.provider ?? ''}/${request.modelId}`;
    let done!: () => void;
    const reading = new Promise<void>((resolve) => (done = resolve));
    this.checkPriceReads.set(key, reading);
    return () => {
      if (this.checkPriceReads.get(key) === reading) this.checkPriceReads.delete(key);
      done();
    };
  }

  /** Keeps the version a check's statement chose, for the checks of the next CHECK_PRICE_TTL_MS. */
  rememberCheckPrice(request: Pick<TokenPricedRequest, 'provider' | 'modelId' | 'at'>, choice: PriceChoice): void {
    if (!choice.rates || choice.priceId === null || choice.provider === null) return;
    if (this.checkPrices.size >= HINTS_KEPT) this.checkPrices.delete(this.checkPrices.keys().next().value!);
    this.checkPrices.set(`${request.provider ?? ''}/${request.modelId}`, {
      priceId: choice.priceId, provider: choice.provider, rates: choice.rates, readAt: request.at.getTime(),
    });
  }

  /**
   * The cost of a request another room priced in its own statement (model_price_choose and
   * model_price_cost), or the 422 the catalog's answer calls for: PROVIDER_REQUIRED or PRICE_NOT_FOUND.
   */
  acceptChoice(choice: PriceChoice, request: Pick<TokenPricedRequest, 'provider' | 'modelId' | 'at'>): { amount: string; priceId: string; provider: string } {
    if (choice.errorCode === 'PROVIDER_REQUIRED') throw providerRequired(request.modelId, choice.providers ?? []);
    if (choice.amount === null || choice.priceId === null || choice.provider === null) {
      throw priceNotFound(request.modelId, request.provider, request.at);
    }
    return { amount: choice.amount, priceId: choice.priceId, provider: choice.provider };
  }

  /** SPEC §14's rule, in SQL (model_price_choose): one statement, whichever branch decides. */
  private async resolve(provider: string | undefined, modelId: string, at: Date): Promise<PriceRow> {
    const chosen = await this.prices.choose(provider, modelId, at, await this.lookupHints(modelId, provider));
    if (chosen.errorCode === 'PROVIDER_REQUIRED') throw providerRequired(modelId, chosen.providers ?? []);
    if (!chosen.price) throw priceNotFound(modelId, provider, at);
    return chosen.price;
  }

  private packageProviders(): Promise<Provider[]> {
    this.providers ??= packageProviders();
    return this.providers;
  }
}
