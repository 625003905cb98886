import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  calcPrice, findProvider, waitForUpdate, type ConditionalPrice, type ModelInfo, type ModelPrice, type Provider,
} from '@pydantic/genai-prices';
import { Decimal } from '../common/money';
import { PRICE_SCALE } from './token-cost';

const PACKAGE = '@pydantic/genai-prices';

/** The instant a version without a start date (the package's base price) is effective from. */
export const CATALOG_EPOCH = '1970-01-01T00:00:00.000Z';

/** Model ids longer than this cannot be addressed in a URL path segment (Fastify's maxParamLength). */
export const MODEL_ID_MAX_LENGTH = 100;

/** One price version as the seed inserts it. */
export interface SeedPrice {
  provider: string;
  modelId: string;
  inputPerMTok: string;
  outputPerMTok: string;
  cachedInputPerMTok: string | null;
  effectiveFrom: string;
  effectiveTo: string | null;
}

/** What the mapping left out, counted for the start-up log and docs/pricing.md. */
export interface SeedReport {
  models: number;
  versions: number;
  /** Models with neither input_mtok nor output_mtok (images, audio, pages, requests only). */
  withoutTokenPrices: number;
  /** Token prices given as tiers (by prompt size): the base tier is kept. */
  tieredPrices: number;
  /** time_of_date price entries (peak/off-peak): folded in, the peak price holds all day. */
  timeOfDayEntries: number;
  /** Package numbers with more than 10 fractional digits (binary-float residue), rounded half-up. */
  roundedPrices: number;
  /** Duplicate ids within a provider or ids too long for the API: left out. */
  skippedIds: string[];
}

/** The source every seeded row names: `@pydantic/genai-prices@<version>`, read from the installed package. */
export function packageSource(): string {
  const entry = require.resolve(PACKAGE);
  // The package's exports map hides package.json; it sits one folder above dist/.
  const manifest = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { name: string; version: string };
  return `${manifest.name}@${manifest.version}`;
}

/** The package's bundled data (it is never told to fetch newer data: the pinned version is the source). */
export async function packageProviders(): Promise<Provider[]> {
  return (await waitForUpdate()) ?? [];
}

const TOKEN_PRICE_KEYS = ['input_mtok', 'output_mtok', 'cache_read_mtok'] as const;

/** A package number exactly: String(n) is the shortest decimal that reads back as n, the literal the data file holds. */
const packageDecimal = (value: number) => new Decimal(String(value));

/** A package price (a number, or tiers whose base applies below the first threshold) as a decimal string of ≤ 10 decimals. */
function priceText(value: ModelPrice[string]): string | undefined {
  if (value === undefined) return undefined;
  const raw = typeof value === 'number' ? value : value.base;
  return packageDecimal(raw).toDecimalPlaces(PRICE_SCALE, Decimal.ROUND_HALF_UP).toFixed();
}

/** Counts, once per model, the token prices the mapping simplifies: tiers, and numbers beyond 10 decimals. */
function countSimplified(entries: ConditionalPrice[], report: SeedReport): void {
  for (const entry of entries) {
    for (const key of TOKEN_PRICE_KEYS) {
      const value = entry.prices[key];
      if (value === undefined) continue;
      if (typeof value !== 'number') report.tieredPrices++;
      if (packageDecimal(typeof value === 'number' ? value : value.base).decimalPlaces() > PRICE_SCALE) report.roundedPrices++;
    }
  }
}

/**
 * The entries that can hold during a day from `at` on, by the package's rule (the last entry in
 * list order that applies wins): the entry whose start_date has come (or the unconstrained one,
 * or else the first), plus every time-of-day entry listed after it, which wins during its hours.
 */
function entriesFrom(entries: ConditionalPrice[], at: Date): ModelPrice[] {
  const daily: ModelPrice[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const constraint = entries[i].constraint;
    if (constraint?.type === 'time_of_date') daily.push(entries[i].prices);
    else if (constraint === undefined || at >= new Date(constraint.start_date)) return [entries[i].prices, ...daily];
  }
  return [entries[0].prices, ...daily];
}

interface TokenPrices {
  inputPerMTok: string;
  outputPerMTok: string;
  cachedInputPerMTok: string | null;
}

const highest = (values: Decimal[]) => values.reduce((a, b) => (b.gt(a) ? b : a)).toFixed();

/**
 * Input, output and cache-read prices over the entries that can hold at some hour (the peak of
 * each, so a time-of-day discount never makes a budget under-count); undefined when no entry
 * prices tokens. An entry without a cache-read price charges cached tokens at its input price.
 */
function tokenPrices(entries: ModelPrice[]): TokenPrices | undefined {
  const priced = entries
    .map((prices) => ({
      input: priceText(prices.input_mtok),
      output: priceText(prices.output_mtok),
      cached: priceText(prices.cache_read_mtok),
    }))
    // A unit the package does not list costs nothing there (an embedding model has no output price).
    .filter((p) => p.input !== undefined || p.output !== undefined)
    .map((p) => ({ input: new Decimal(p.input ?? 0), output: new Decimal(p.output ?? 0), cached: p.cached === undefined ? undefined : new Decimal(p.cached) }));
  if (!priced.length) return undefined;
  const anyCached = priced.some((p) => p.cached !== undefined);
  return {
    inputPerMTok: highest(priced.map((p) => p.input)),
    outputPerMTok: highest(priced.map((p) => p.output)),
    cachedInputPerMTok: anyCached ? highest(priced.map((p) => p.cached ?? p.input)) : null,
  };
}

const samePrices = (a: TokenPrices, b: TokenPrices) =>
  a.inputPerMTok === b.inputPerMTok && a.outputPerMTok === b.outputPerMTok && a.cachedInputPerMTok === b.cachedInputPerMTok;

/**
 * The versions of one model: one per span between the package's start dates (the base price from
 * CATALOG_EPOCH), consecutive spans with equal token prices merged, spans without token prices left
 * out. A version holds for whole instants, not hours of a day: time-of-day entries (off-peak
 * discounts) are folded in as the peak price of the span, an upper bound.
 */
function modelVersions(provider: Provider, model: ModelInfo, report: SeedReport): SeedPrice[] {
  const entries: ConditionalPrice[] = Array.isArray(model.prices) ? model.prices : [{ prices: model.prices }];
  report.timeOfDayEntries += entries.filter((entry) => entry.constraint?.type === 'time_of_date').length;
  countSimplified(entries, report);
  const starts = [
    ...new Set(
      entries.flatMap((entry) =>
        entry.constraint?.type === 'start_date' ? [new Date(entry.constraint.start_date).toISOString()] : [],
      ),
    ),
  ].sort();
  const boundaries = [CATALOG_EPOCH, ...starts.filter((start) => start > CATALOG_EPOCH)];
  const spans: (TokenPrices & { effectiveFrom: string; effectiveTo: string | null })[] = [];
  boundaries.forEach((from, i) => {
    const prices = tokenPrices(entriesFrom(entries, new Date(from)));
    const effectiveTo = boundaries[i + 1] ?? null;
    const previous = spans[spans.length - 1];
    if (!prices) return;
    if (previous && previous.effectiveTo === from && samePrices(previous, prices)) previous.effectiveTo = effectiveTo;
    else spans.push({ ...prices, effectiveFrom: from, effectiveTo });
  });
  return spans.map((span) => ({ provider: provider.id, modelId: model.id, ...span }));
}

/** Every token-priced version of the package's data, in the package's order, and what was left out. */
export function seedPrices(providers: Provider[]): { prices: SeedPrice[]; report: SeedReport } {
  const report: SeedReport = {
    models: 0, versions: 0, withoutTokenPrices: 0, tieredPrices: 0, timeOfDayEntries: 0, roundedPrices: 0, skippedIds: [],
  };
  const prices: SeedPrice[] = [];
  for (const provider of providers) {
    const seen = new Set<string>();
    for (const model of provider.models) {
      // The package matches the first model of a provider; a later duplicate id is unreachable there too.
      if (seen.has(model.id) || model.id.length > MODEL_ID_MAX_LENGTH) {
        report.skippedIds.push(`${provider.id}/${model.id}`);
        continue;
      }
      seen.add(model.id);
      const versions = modelVersions(provider, model, report);
      if (!versions.length) report.withoutTokenPrices++;
      else report.models++;
      prices.push(...versions);
    }
  }
  report.versions = prices.length;
  return { prices, report };
}

/** A catalog entry: the provider whose list names the model, and the model's canonical id there. */
export interface CatalogModelRef {
  provider: string;
  modelId: string;
}

/**
 * Model-id matching as the package does it, for ids the catalog does not hold verbatim: dated
 * and aliased ids (`gpt-4o-2024-08-06` → `gpt-4o`), other letter case, `YYYYMMDD` dates, and a
 * provider's fallback lists (azure → openai). Without a provider, the package picks the provider
 * whose model rules claim the id (its maker), as it does.
 *
 * calcPrice is the package's only exported entry to its matching; its float prices are ignored.
 */
export function matchModel(providers: Provider[], modelId: string, provider?: string): CatalogModelRef | undefined {
  let result: ReturnType<typeof calcPrice>;
  try {
    result = calcPrice({}, modelId, provider === undefined ? {} : { providerId: provider });
  } catch {
    return undefined;
  }
  if (!result) return undefined;
  const model = result.model;
  const owner = result.provider.models.includes(model) ? result.provider : providers.find((p) => p.models.includes(model));
  return owner ? { provider: owner.id, modelId: model.id } : undefined;
}

/** The provider the package marks as the maker of a model id (its `model_match` claims the id), if any. */
export function makerOf(modelId: string): string | undefined {
  return findProvider({ modelId })?.id;
}
