import { MigrationInterface, QueryRunner } from 'typeorm';
import { frozenDefinition } from '../src/database/frozen-definition';
import { Attribution1764304000000 } from './1764304000000-Attribution';

/**
 * Roll-ups of the usage ledger (SPEC §17, issue 19): summaries, periods and forecasts read sums
 * per UTC hour, day and month instead of the ledger's rows, so their cost follows the number of
 * buckets in a range, not the number of requests. docs/reporting.md, "Roll-ups", has the design.
 *
 * - A *leaf* (`budget_usage_leaves`) is what decides where a request counts: its first budget and
 *   its matched set (`budget_id`, `matched_budget_ids`; NULL for a single-budget write). A request
 *   counts toward B exactly when its leaf's budget or one of its matched budgets lies in B's subtree
 *   (the rule of `budget_usage_rows`), so sums kept per leaf stay exact whatever the tree becomes:
 *   each request is in one leaf, and a leaf counts toward B once or not at all.
 * - `budget_usage_rollups`: per leaf, grain (UTC `hour`, `day` or `month`), dimension and value, the sum of
 *   the amounts and the number of requests. Dimensions are those the summary breaks down by, each
 *   on its own row (`total`; `model`, `source`, `user`: one value per request; `tag`: one row per
 *   tag of a request, NULL for an untagged one), so the rows of a bucket grow with the number of
 *   distinct values, added, not multiplied. `budget_usage_daily` shows the day rows by budget.
 * - The ledger's statement trigger keeps them in the same transaction as the rows (one grouped
 *   upsert per statement, in key order, leaves first: concurrent writers never deadlock on them).
 * - `budget_usage_sums(budget, from, to, …)`: the usage of [from, to) that counts toward a budget,
 *   from month rows for whole UTC months (when nothing is bucketed), day rows for whole UTC days,
 *   hour rows for whole hours, and the ledger (through
 *   `budget_usage_rows`) only for the partial hours at the edges.
 * - Existing rows are rolled up here, while the ledger is locked against writes (reads go on).
 */
export class UsageRollups1764309000000 implements MigrationInterface {
  name = 'UsageRollups1764309000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Writers wait until the backfill has committed (reads go on), so no row is rolled up twice
    // or missed: those recorded before are in the backfill, those after go through the trigger.
    await queryRunner.query(`LOCK TABLE budget_usage_records IN SHARE MODE`);
    await queryRunner.query(`
      CREATE TABLE budget_usage_leaves (
        id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        budget_id          uuid NOT NULL REFERENCES budget_definitions (id),
        matched_budget_ids uuid[],
        CONSTRAINT budget_usage_leaves_key UNIQUE NULLS NOT DISTINCT (budget_id, matched_budget_ids)
      )`);
    await queryRunner.query(`CREATE INDEX budget_usage_leaves_matched_idx ON budget_usage_leaves USING gin (matched_budget_ids)`);
    await queryRunner.query(`
      COMMENT ON TABLE budget_usage_leaves IS
        'Each distinct (budget_id, matched_budget_ids) of the ledger: where a request counts, the key of its roll-ups. Written by the ledger trigger.'`);
    await queryRunner.query(`
      CREATE TABLE budget_usage_rollups (
        leaf_id     bigint NOT NULL REFERENCES budget_usage_leaves (id),
        grain       text NOT NULL CHECK (grain IN ('hour', 'day', 'month')),
        dimension   text NOT NULL CHECK (dimension IN ('total', 'model', 'source', 'user', 'tag')),
        bucket      timestamptz NOT NULL CHECK (bucket = date_trunc(grain, bucket, 'UTC')),
        value       text CHECK (value IS NULL OR dimension <> 'total'),
        amount      numeric NOT NULL,
        usage_count bigint NOT NULL,
        CONSTRAINT budget_usage_rollups_key UNIQUE NULLS NOT DISTINCT (leaf_id, grain, dimension, bucket, value)
      ) WITH (fillfactor = 80)`);
    await queryRunner.query(`
      COMMENT ON TABLE budget_usage_rollups IS
        'Sums of the ledger per leaf, UTC hour, day or month, and dimension value (a request counts once per dimension, under each of its tags): kept by the ledger trigger in the same transaction.'`);
    await queryRunner.query(`
      CREATE VIEW budget_usage_daily AS
        SELECT l.budget_id, l.matched_budget_ids, r.bucket AS day, r.dimension, r.value, r.amount, r.usage_count
        FROM budget_usage_rollups r JOIN budget_usage_leaves l ON l.id = r.leaf_id
        WHERE r.grain = 'day'`);
    await queryRunner.query(`
      COMMENT ON VIEW budget_usage_daily IS
        'The daily roll-ups (UTC days) by the first budget and matched set of the requests they sum.'`);

    await queryRunner.query(`
      CREATE FUNCTION budget_usage_dimensions(p_model_id text, p_source text, p_user_id text, p_tags text[])
      RETURNS TABLE (dimension text, value text)
      LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT 'total', NULL::text
        UNION ALL SELECT 'model', p_model_id
        UNION ALL SELECT 'source', p_source
        UNION ALL SELECT 'user', p_user_id
        UNION ALL SELECT 'tag', t.tag FROM unnest(coalesce(nullif(p_tags, '{}'), ARRAY[NULL::text])) t (tag)
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_usage_dimensions(text, text, text, text[]) IS
        'The roll-up lines of one request: its total, model, source and user once each, and each of its tags (one NULL tag when untagged).'`);

    await queryRunner.query(`
      CREATE FUNCTION budget_usage_leaves_of(p_budget_id uuid) RETURNS bigint[]
      LANGUAGE sql STABLE AS $fn$
        WITH RECURSIVE tree AS (
          SELECT p_budget_id AS id
          UNION
          SELECT c.id FROM budget_definitions c JOIN tree t ON c.parent_id = t.id
        )
        SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}')
        FROM budget_usage_leaves l
        WHERE l.budget_id = ANY (ARRAY(SELECT tree.id FROM tree))
           OR l.matched_budget_ids && ARRAY(SELECT tree.id FROM tree)
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_usage_leaves_of(uuid) IS
        'The leaves whose requests count toward a budget: its budget or a matched budget lies in the budget''s current subtree (the rule of budget_usage_rows).'`);

    await queryRunner.query(BUDGET_USAGE_SUMS_RAW);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_usage_sums_raw(uuid, timestamptz, timestamptz, text[], text, text) IS
        'budget_usage_sums over the ledger itself: for the partial hours at a range''s edges and the hours a local midnight splits.'`);
    await queryRunner.query(BUDGET_USAGE_SUMS_HOURS);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_usage_sums_hours(uuid, bigint[], timestamptz, timestamptz, text[], text, text) IS
        'budget_usage_sums over the hour roll-ups of whole hours [from, to); an hour a local midnight splits (bucket day) is read from the ledger.'`);
    await queryRunner.query(BUDGET_USAGE_SUMS);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_usage_sums(uuid, timestamptz, timestamptz, text, text, text) IS
        'The usage of [from, to) that counts toward a budget, as sums per dimension value (and bucket: none, UTC hour, or day in a time zone): roll-ups for whole hours and days, the ledger for partial hours.'`);

    await queryRunner.query(await rollupTrigger());

    await queryRunner.query(`
      INSERT INTO budget_usage_leaves (budget_id, matched_budget_ids)
      SELECT DISTINCT r.budget_id, r.matched_budget_ids FROM budget_usage_records r
      ORDER BY 1, 2`);
    await queryRunner.query(`
      INSERT INTO budget_usage_rollups (leaf_id, grain, dimension, bucket, value, amount, usage_count)
      SELECT l.id, g.grain, d.dimension, date_trunc(g.grain, r.occurred_at, 'UTC'), d.value, sum(r.amount), count(*)
      FROM budget_usage_records r
      JOIN budget_usage_leaves l ON l.budget_id = r.budget_id AND l.matched_budget_ids IS NOT DISTINCT FROM r.matched_budget_ids
      CROSS JOIN LATERAL budget_usage_dimensions(r.model_id, r.source, r.user_id, r.tags) d
      CROSS JOIN (VALUES ('hour'), ('day'), ('month')) g (grain)
      GROUP BY 1, 2, 3, 4, 5`);
    await queryRunner.query(`ANALYZE budget_usage_leaves`);
    await queryRunner.query(`ANALYZE budget_usage_rollups`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(await frozenDefinition(new Attribution1764304000000(), 'budget_usage_records_rollup'));
    await queryRunner.query(`DROP FUNCTION budget_usage_sums(uuid, timestamptz, timestamptz, text, text, text)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_sums_hours(uuid, bigint[], timestamptz, timestamptz, text[], text, text)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_sums_raw(uuid, timestamptz, timestamptz, text[], text, text)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_leaves_of(uuid)`);
    await queryRunner.query(`DROP FUNCTION budget_usage_dimensions(text, text, text, text[])`);
    await queryRunner.query(`DROP VIEW budget_usage_daily`);
    await queryRunner.query(`DROP TABLE budget_usage_rollups`);
    await queryRunner.query(`DROP TABLE budget_usage_leaves`);
  }
}

/**
 * `budget_usage_sums(budget, from, to, dimension?, bucket?, timezone?)`: the requests of [from, to)
 * that count toward the budget, as (bucket, dimension, value, amount, count) lines to be summed by
 * the caller; `dimension` keeps only one dimension's lines. `bucket` says what the caller groups by:
 * - NULL: nothing (bucket NULL), so whole UTC months are read from month rows and the other whole
 *   UTC days from day rows;
 * - 'hour': UTC hours (hour rows only);
 * - 'day': days in `timezone`; the bucket is the local day's first instant. Day rows are used only
 *   when every UTC day of the range with usage is also a whole local day (UTC, or a zone at offset
 *   0), else hour rows are; an hour that a local midnight splits (a :30 or :45 zone) is read from
 *   the ledger.
 * The partial hours at the range's edges come from the ledger (budget_usage_rows), so the sums are
 * exact for any range; whole hours and days never touch it. Each request counts once per
 * dimension (under each of its tags for 'tag'), as budget_usage_dimensions lists it. The helpers
 * take the dimensions as an array so that the roll-up scans keep them in the index condition.
 * `SET jit = off`: see the function.
 */
const BUDGET_USAGE_SUMS_RAW = `
      CREATE FUNCTION budget_usage_sums_raw(p_budget_id uuid, p_from timestamptz, p_to timestamptz,
                                            p_dimensions text[], p_bucket text, p_timezone text)
      RETURNS TABLE (bucket timestamptz, dimension text, value text, amount numeric, usage_count bigint)
      LANGUAGE sql STABLE AS $fn$
        SELECT CASE p_bucket WHEN 'hour' THEN date_trunc('hour', r.occurred_at, 'UTC')
                             WHEN 'day' THEN date_trunc('day', r.occurred_at, p_timezone) END,
               d.dimension, d.value, sum(r.amount), count(*)
        FROM budget_usage_rows(p_budget_id, p_from, p_to) r
        CROSS JOIN LATERAL budget_usage_dimensions(r.model_id, r.source, r.user_id, r.tags) d
        WHERE d.dimension = ANY (p_dimensions)
        GROUP BY 1, 2, 3
      $fn$`;

const BUDGET_USAGE_SUMS_HOURS = `
      CREATE FUNCTION budget_usage_sums_hours(p_budget_id uuid, p_leaves bigint[], p_from timestamptz, p_to timestamptz,
                                              p_dimensions text[], p_bucket text, p_timezone text)
      RETURNS TABLE (bucket timestamptz, dimension text, value text, amount numeric, usage_count bigint)
      LANGUAGE sql STABLE AS $fn$
        WITH hours AS (
          SELECT r.*, p_bucket = 'day' AND date_trunc('day', r.bucket, p_timezone)
                        <> date_trunc('day', r.bucket + interval '1 hour' - interval '1 microsecond', p_timezone) AS split
          FROM budget_usage_rollups r
          WHERE r.leaf_id = ANY (p_leaves) AND r.grain = 'hour' AND r.dimension = ANY (p_dimensions)
            AND r.bucket >= p_from AND r.bucket < p_to
        )
        SELECT CASE p_bucket WHEN 'hour' THEN h.bucket WHEN 'day' THEN date_trunc('day', h.bucket, p_timezone) END,
               h.dimension, h.value, h.amount, h.usage_count
        FROM hours h
        WHERE h.split IS NOT TRUE
        UNION ALL
        SELECT s.*
        FROM (SELECT DISTINCT h.bucket FROM hours h WHERE h.split) x
        CROSS JOIN LATERAL budget_usage_sums_raw(p_budget_id, x.bucket, x.bucket + interval '1 hour', p_dimensions,
                                                 p_bucket, p_timezone) s
      $fn$`;

const BUDGET_USAGE_SUMS = `
      CREATE FUNCTION budget_usage_sums(p_budget_id uuid, p_from timestamptz, p_to timestamptz,
                                        p_dimension text DEFAULT NULL, p_bucket text DEFAULT NULL,
                                        p_timezone text DEFAULT 'UTC')
      RETURNS TABLE (bucket timestamptz, dimension text, value text, amount numeric, usage_count bigint)
      LANGUAGE plpgsql STABLE
      -- Its statements read a few hundred roll-up rows, but the generic plans of the helpers (the
      -- ledger read for split hours over an unknown range) are estimated high enough to be JIT
      -- compiled, which took 0.6 s a call: more than all the reading.
      SET jit = off
      AS $fn$
      DECLARE
        dims       text[] := CASE WHEN p_dimension IS NULL THEN ARRAY['total', 'model', 'source', 'user', 'tag'] ELSE ARRAY[p_dimension] END;
        leaves     bigint[];
        first_hour timestamptz := date_trunc('hour', p_from, 'UTC');
        end_hour   timestamptz := date_trunc('hour', p_to, 'UTC');
        first_day  timestamptz;
        end_day    timestamptz;
        use_days   boolean;
        first_month timestamptz;
        end_month  timestamptz;
      BEGIN
        IF p_bucket IS NOT NULL AND p_bucket NOT IN ('hour', 'day') THEN
          RAISE EXCEPTION 'budget_usage_sums: bucket must be NULL, hour or day, not %', p_bucket;
        END IF;
        IF NOT p_from < p_to THEN
          RETURN;
        END IF;
        IF first_hour < p_from THEN
          first_hour := first_hour + interval '1 hour';
        END IF;
        IF NOT first_hour < end_hour THEN
          RETURN QUERY SELECT * FROM budget_usage_sums_raw(p_budget_id, p_from, p_to, dims, p_bucket, p_timezone);
          RETURN;
        END IF;
        leaves := budget_usage_leaves_of(p_budget_id);
        IF p_from < first_hour THEN
          RETURN QUERY SELECT * FROM budget_usage_sums_raw(p_budget_id, p_from, first_hour, dims, p_bucket, p_timezone);
        END IF;
        IF end_hour < p_to THEN
          RETURN QUERY SELECT * FROM budget_usage_sums_raw(p_budget_id, end_hour, p_to, dims, p_bucket, p_timezone);
        END IF;
        first_day := date_trunc('day', first_hour, 'UTC');
        IF first_day < first_hour THEN
          first_day := first_day + interval '24 hours';
        END IF;
        end_day := date_trunc('day', end_hour, 'UTC');
        use_days := p_bucket IS DISTINCT FROM 'hour' AND first_day < end_day;
        IF use_days AND p_bucket = 'day' THEN
          -- Day rows serve local days only where a UTC day is a whole local day.
          use_days := NOT EXISTS (
            SELECT 1 FROM budget_usage_rollups r
            WHERE r.leaf_id = ANY (leaves) AND r.grain = 'day' AND r.dimension = 'total'
              AND r.bucket >= first_day AND r.bucket < end_day
              AND NOT (date_trunc('day', r.bucket, p_timezone) = r.bucket
                       AND date_trunc('day', r.bucket + interval '24 hours', p_timezone) = r.bucket + interval '24 hours'));
        END IF;
        IF NOT use_days THEN
          RETURN QUERY SELECT * FROM budget_usage_sums_hours(p_budget_id, leaves, first_hour, end_hour, dims, p_bucket, p_timezone);
          RETURN;
        END IF;
        -- Without buckets, whole UTC months come from month rows (timestamp arithmetic in UTC, so the
        -- session's time zone never moves a month's start).
        first_month := end_day;
        end_month := end_day;
        IF p_bucket IS NULL THEN
          first_month := date_trunc('month', first_day, 'UTC');
          IF first_month < first_day THEN
            first_month := (date_trunc('month', first_day AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
          END IF;
          end_month := greatest(first_month, date_trunc('month', end_day, 'UTC'));
          IF first_month >= end_day THEN
            first_month := end_day;
            end_month := end_day;
          END IF;
          RETURN QUERY
            SELECT NULL::timestamptz, r.dimension, r.value, r.amount, r.usage_count
            FROM budget_usage_rollups r
            WHERE r.leaf_id = ANY (leaves) AND r.grain = 'month' AND r.dimension = ANY (dims)
              AND r.bucket >= first_month AND r.bucket < end_month;
        END IF;
        -- The days before the first whole month (all days when there is none), then those after the last.
        RETURN QUERY
          SELECT CASE WHEN p_bucket IS NOT NULL THEN r.bucket END, r.dimension, r.value, r.amount, r.usage_count
          FROM budget_usage_rollups r
          WHERE r.leaf_id = ANY (leaves) AND r.grain = 'day' AND r.dimension = ANY (dims)
            AND r.bucket >= first_day AND r.bucket < first_month;
        RETURN QUERY
          SELECT CASE WHEN p_bucket IS NOT NULL THEN r.bucket END, r.dimension, r.value, r.amount, r.usage_count
          FROM budget_usage_rollups r
          WHERE r.leaf_id = ANY (leaves) AND r.grain = 'day' AND r.dimension = ANY (dims)
            AND r.bucket >= end_month AND r.bucket < end_day;
        RETURN QUERY SELECT * FROM budget_usage_sums_hours(p_budget_id, leaves, first_hour, first_day, dims, p_bucket, p_timezone);
        RETURN QUERY SELECT * FROM budget_usage_sums_hours(p_budget_id, leaves, end_day, end_hour, dims, p_bucket, p_timezone);
      END
      $fn$`;

/** Rollup trigger: the Attribution migration's text, with the roll-up step after its empty-statement check. */
const ROLLUP_ANCHOR = `
        IF n = 0 THEN
          RETURN NULL;
        END IF;
`;

/**
 * The roll-up step of the ledger trigger: new leaves first, then one upsert of the statement's
 * records grouped by leaf, grain, dimension, bucket and value, in that key order, so two
 * statements always lock shared rows in the same order (and before any cache row: no cycle).
 */
const ROLLUP_STEP = `
        INSERT INTO budget_usage_leaves (budget_id, matched_budget_ids)
        SELECT DISTINCT i.budget_id, i.matched_budget_ids FROM inserted_rows i
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING;
        INSERT INTO budget_usage_rollups AS u (leaf_id, grain, dimension, bucket, value, amount, usage_count)
        SELECT l.id, g.grain, d.dimension, date_trunc(g.grain, i.occurred_at, 'UTC'), d.value, sum(i.amount), count(*)
        FROM inserted_rows i
        JOIN budget_usage_leaves l ON l.budget_id = i.budget_id AND l.matched_budget_ids IS NOT DISTINCT FROM i.matched_budget_ids
        CROSS JOIN LATERAL budget_usage_dimensions(i.model_id, i.source, i.user_id, i.tags) d
        CROSS JOIN (VALUES ('hour'), ('day'), ('month')) g (grain)
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT ON CONSTRAINT budget_usage_rollups_key DO UPDATE
          SET amount = u.amount + EXCLUDED.amount, usage_count = u.usage_count + EXCLUDED.usage_count;
`;

async function rollupTrigger(): Promise<string> {
  const frozen = await frozenDefinition(new Attribution1764304000000(), 'budget_usage_records_rollup');
  const parts = frozen.split(ROLLUP_ANCHOR);
  if (parts.length !== 2) throw new Error('budget_usage_records_rollup: the roll-up step has no single place to go');
  return parts.join(ROLLUP_ANCHOR + ROLLUP_STEP);
}
