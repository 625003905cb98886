import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { packageProviders, packageSource, seedPrices, type SeedReport } from './genai-prices.data';
import { PriceCatalogRepository } from './price-catalog.repository';

export interface SeedOutcome {
  source: string;
  /** Versions inserted: 0 when this package version was seeded before. */
  inserted: number;
  /** Undefined when the database already held this package version (nothing was read). */
  report?: SeedReport;
  ms: number;
}

/**
 * Seeds model_prices from the pinned @pydantic/genai-prices data at start-up, before the app
 * serves. A database that already holds this package version's rows costs one short read; else
 * one multi-row INSERT adds the versions of every provider+model the catalog does not know yet
 * (idempotent, safe with several instances starting at once, never touching admin versions).
 */
@Injectable()
export class PriceCatalogSeeder implements OnModuleInit {
  private readonly logger = new Logger('PriceCatalog');

  constructor(private readonly prices: PriceCatalogRepository) {}

  async onModuleInit(): Promise<void> {
    const { source, inserted, report, ms } = await this.seed();
    if (!report) return;
    this.logger.log(
      `Seeded ${inserted} of ${report.versions} price versions (${report.models} models) from ${source} in ${ms} ms; ` +
        `left out: ${report.withoutTokenPrices} models without token prices, ${report.timeOfDayEntries} time-of-day prices; ` +
        `${report.tieredPrices} tiered prices at their base tier; ${report.roundedPrices} prices rounded to 10 decimals` +
        (report.skippedIds.length ? `; skipped ids: ${report.skippedIds.join(', ')}` : ''),
    );
  }

  async seed(): Promise<SeedOutcome> {
    const started = performance.now();
    const source = packageSource();
    const elapsed = () => Math.round(performance.now() - started);
    if (await this.prices.hasSource(source)) return { source, inserted: 0, ms: elapsed() };
    const { prices, report } = seedPrices(await packageProviders());
    const inserted = await this.prices.insertSeed(prices, source);
    return { source, inserted, report, ms: elapsed() };
  }
}

/** The same seed on a DataSource outside the app (the test run's template database). */
export function seedPriceCatalog(dataSource: DataSource): Promise<SeedOutcome> {
  return new PriceCatalogSeeder(new PriceCatalogRepository(dataSource)).seed();
}
