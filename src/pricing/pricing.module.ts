import { Module } from '@nestjs/common';
import { PriceCatalogController } from './price-catalog.controller';
import { PriceCatalogRepository } from './price-catalog.repository';
import { PriceCatalogSeeder } from './price-catalog.seeder';
import { PriceCatalogService } from './price-catalog.service';

/**
 * The price catalog (SPEC §14): model prices by version, seeded from @pydantic/genai-prices at
 * start-up, and tokens → exact cost. Usage and Constraint import this module; it imports none of
 * theirs (only common, config and database).
 */
@Module({
  controllers: [PriceCatalogController],
  providers: [PriceCatalogService, PriceCatalogRepository, PriceCatalogSeeder],
  exports: [PriceCatalogService],
})
export class PricingModule {}
