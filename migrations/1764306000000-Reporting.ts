import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The Budget Reporter (SPEC §15):
 * - `budget_definitions.anomaly_detection` (`{ enabled, sensitivity }`, null = off);
 * - `budget_anomalies`: one row per budget and hour whose spend stood out from its baseline, with
 *   everything the `budget.anomaly.detected` event carries; the unique key makes a spike recorded
 *   once, whichever instance's detector found it and however often it ran;
 * - `budget_recent_windows(budget, at, count)`: the window containing `at` and the ones before it,
 *   newest first, each from `budget_period_window` (the one place period arithmetic lives).
 */
export class Reporting1764306000000 implements MigrationInterface {
  name = 'Reporting1764306000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE budget_definitions ADD COLUMN anomaly_detection jsonb
        CONSTRAINT budget_definitions_anomaly_detection_check
        CHECK (anomaly_detection IS NULL OR jsonb_typeof(anomaly_detection) = 'object')`);
    await queryRunner.query(`
      CREATE TABLE budget_anomalies (
        id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        budget_id       uuid NOT NULL REFERENCES budget_definitions (id),
        hour_start      timestamptz NOT NULL CHECK (extract(epoch FROM hour_start)::numeric % 3600 = 0),
        observed        numeric NOT NULL,
        baseline_median numeric NOT NULL,
        baseline_mad    numeric NOT NULL,
        baseline_hours  integer NOT NULL CHECK (baseline_hours BETWEEN 1 AND 7),
        score           numeric NOT NULL,
        sensitivity     text NOT NULL CHECK (sensitivity IN ('low', 'medium', 'high')),
        threshold       numeric NOT NULL,
        currency        character(3) NOT NULL,
        detected_at     timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT budget_anomalies_once UNIQUE (budget_id, hour_start)
      )`);
    await queryRunner.query(`
      COMMENT ON TABLE budget_anomalies IS
        'Hours whose spend stood out from the budget''s baseline (median and MAD of the same hour on the 7 days before); one row per budget and hour.'`);
    await queryRunner.query(`
      CREATE FUNCTION budget_recent_windows(p_budget_id uuid, p_at timestamptz, p_count integer)
      RETURNS TABLE (ordinal integer, period_start timestamptz, period_end timestamptz)
      LANGUAGE sql STABLE AS $fn$
        WITH RECURSIVE windows AS (
          SELECT 1 AS ordinal, w.period_start, w.period_end, b.start_date, b.end_date, b.period,
                 b.custom_period_days, b.recurring, b.timezone
          FROM budget_definitions b
          CROSS JOIN LATERAL budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                  b.recurring, b.timezone, p_at) w
          WHERE b.id = p_budget_id
          UNION ALL
          SELECT p.ordinal + 1, w.period_start, w.period_end, p.start_date, p.end_date, p.period,
                 p.custom_period_days, p.recurring, p.timezone
          FROM windows p
          CROSS JOIN LATERAL budget_period_window(p.start_date, p.end_date, p.period, p.custom_period_days,
                                                  p.recurring, p.timezone, p.period_start - interval '1 microsecond') w
          WHERE p.ordinal < p_count AND p.recurring AND p.period_start > p.start_date
        )
        SELECT ordinal, period_start, period_end FROM windows ORDER BY ordinal
      $fn$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION budget_recent_windows(uuid, timestamptz, integer) IS
        'The window containing the instant and up to count - 1 windows before it, newest first (ordinal 1 = the containing one).'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION budget_recent_windows(uuid, timestamptz, integer)`);
    await queryRunner.query(`DROP TABLE budget_anomalies`);
    await queryRunner.query(`ALTER TABLE budget_definitions DROP COLUMN anomaly_detection`);
  }
}
