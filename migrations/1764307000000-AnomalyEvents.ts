import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `budget.anomaly.detected` (SPEC §15, §13): each spike the detector records raises one event, in
 * the same transaction as the anomaly row (an AFTER INSERT trigger on budget_anomalies calling the
 * outbox's notification_enqueue), so the "once per hour and budget" of budget_anomalies_once is
 * also the event's. It goes to the channels the budget's alert rules name, each route once.
 */
export class AnomalyEvents1764307000000 implements MigrationInterface {
  name = 'AnomalyEvents1764307000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION budget_anomalies_notify() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      DECLARE
        b budget_definitions;
      BEGIN
        SELECT * INTO b FROM budget_definitions d WHERE d.id = NEW.budget_id;
        PERFORM notification_enqueue(
          'budget.anomaly.detected',
          jsonb_build_object(
            'budget', jsonb_build_object('id', b.id, 'name', b.name, 'scopeType', b.scope_type, 'scopeId', b.scope_id,
                                         'currency', b.currency, 'amount', trim_scale(b.amount)::text),
            'anomaly', jsonb_build_object('id', NEW.id, 'hourStart', NEW.hour_start,
                                          'observed', trim_scale(NEW.observed)::text,
                                          'baselineMedian', trim_scale(NEW.baseline_median)::text,
                                          'baselineMad', trim_scale(NEW.baseline_mad)::text,
                                          'baselineHours', NEW.baseline_hours, 'score', NEW.score,
                                          'sensitivity', NEW.sensitivity, 'threshold', NEW.threshold,
                                          'detectedAt', NEW.detected_at)),
          (SELECT coalesce(jsonb_agg(DISTINCT r.route), '[]')
           FROM jsonb_array_elements(CASE WHEN jsonb_typeof(b.alerts) = 'array' THEN b.alerts ELSE '[]' END) a
           CROSS JOIN LATERAL jsonb_array_elements_text(
             CASE WHEN jsonb_typeof(a->'notificationChannels') = 'array' THEN a->'notificationChannels' ELSE '[]' END) r (route)),
          NEW.budget_id);
        RETURN NULL;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE TRIGGER budget_anomalies_notify AFTER INSERT ON budget_anomalies
      FOR EACH ROW EXECUTE FUNCTION budget_anomalies_notify()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER budget_anomalies_notify ON budget_anomalies`);
    await queryRunner.query(`DROP FUNCTION budget_anomalies_notify()`);
  }
}
