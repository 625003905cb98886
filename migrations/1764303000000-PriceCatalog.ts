import { MigrationInterface, QueryRunner } from 'typeorm';

/** Marks the btree_gist extension as installed by this migration, so down() drops only what up() added. */
const EXTENSION_MARK = 'btree_gist, installed by migration PriceCatalog1764303000000';

/**
 * The versioned price catalog (SPEC §14): USD per million tokens for each provider and model, one
 * row per version. Versions of one provider+model never overlap (an exclusion constraint over
 * [effective_from, effective_to), which needs btree_gist for the `=` on text), so "the price at an
 * instant" is at most one row, found by one probe of a btree (model_price_at).
 *
 * The constraint keys on `provider || '/' || model_id` (one value per pair: a provider id holds no
 * '/'): its GiST index then serves the constraint only, and lookups by provider and model take the
 * btree, a single descent (a GiST over two text columns visits many pages for the same answer, and
 * the planner prefers it when both fit). One text key also makes the seed's ~1,500 checks 3x faster.
 * Prices are exact NUMERIC with at most 10 fractional digits; the catalog is seeded at start-up
 * from the @pydantic/genai-prices data (src/pricing), and admins add versions through the API.
 */
export class PriceCatalog1764303000000 implements MigrationInterface {
  name = 'PriceCatalog1764303000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A database that already had btree_gist keeps it (and its comment) after down().
    await queryRunner.query(`
      DO $do$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
          CREATE EXTENSION btree_gist;
          COMMENT ON EXTENSION btree_gist IS '${EXTENSION_MARK}';
        END IF;
      END
      $do$`);
    await queryRunner.query(`
      CREATE TABLE model_prices (
        id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        provider              text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
        model_id              text NOT NULL CHECK (char_length(model_id) BETWEEN 1 AND 100),
        input_per_mtok        numeric NOT NULL
                              CHECK (input_per_mtok >= 0 AND input_per_mtok <= 1000000 AND scale(input_per_mtok) <= 10),
        output_per_mtok       numeric NOT NULL
                              CHECK (output_per_mtok >= 0 AND output_per_mtok <= 1000000 AND scale(output_per_mtok) <= 10),
        cached_input_per_mtok numeric
                              CHECK (cached_input_per_mtok >= 0 AND cached_input_per_mtok <= 1000000
                                     AND scale(cached_input_per_mtok) <= 10),
        currency              char(3) NOT NULL DEFAULT 'USD' CHECK (currency = 'USD'),
        effective_from        timestamptz NOT NULL CHECK (isfinite(effective_from)),
        effective_to          timestamptz CHECK (isfinite(effective_to)),
        source                text NOT NULL CHECK (char_length(source) BETWEEN 1 AND 100),
        created_at            timestamptz NOT NULL DEFAULT now(),
        created_by            text CHECK (char_length(created_by) <= 200),
        CONSTRAINT model_prices_effective_order CHECK (effective_to > effective_from),
        CONSTRAINT model_prices_no_overlap EXCLUDE USING gist (
          (provider || '/' || model_id) WITH =, tstzrange(effective_from, effective_to, '[)') WITH &&)
      )`);
    // The price at an instant: the last version starting at or before it, by provider and model,
    // or (model first) across the providers of a model id.
    await queryRunner.query(`CREATE INDEX model_prices_lookup_idx ON model_prices (model_id, provider, effective_from)`);
    // GET /prices: provider, model, then history in order (keyset pagination).
    await queryRunner.query(`CREATE INDEX model_prices_list_idx ON model_prices (provider, model_id, effective_from)`);
    // One index probe: the newest version starting at or before p_at, kept only if it has not
    // ended by then (versions never overlap, so no older one can hold at p_at).
    await queryRunner.query(`
      CREATE FUNCTION model_price_at(p_provider text, p_model_id text, p_at timestamptz)
      RETURNS SETOF model_prices
      LANGUAGE sql STABLE AS $fn$
        SELECT v.*
        FROM (SELECT p.*
              FROM model_prices p
              WHERE p.model_id = p_model_id AND p.provider = p_provider AND p.effective_from <= p_at
              ORDER BY p.effective_from DESC
              LIMIT 1) v
        WHERE v.effective_to IS NULL OR v.effective_to > p_at
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION model_price_at(text, text, timestamptz)`);
    await queryRunner.query(`DROP TABLE model_prices`);
    await queryRunner.query(`
      DO $do$
      BEGIN
        IF (SELECT obj_description(oid, 'pg_extension') FROM pg_extension WHERE extname = 'btree_gist') = '${EXTENSION_MARK}' THEN
          DROP EXTENSION btree_gist;
        END IF;
      END
      $do$`);
  }
}
