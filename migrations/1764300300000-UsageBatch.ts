import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Batch ingestion: many usage records for one budget in one transaction and one round trip,
 * each through record_usage (same validation, idempotency, cache and alerts). A record that
 * breaks a business rule is answered on its own line, inside a subtransaction, so it changes
 * nothing while the others are recorded.
 */
export class UsageBatch1764300300000 implements MigrationInterface {
  name = 'UsageBatch1764300300000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION record_usage_batch(p_budget_id uuid, p_records jsonb)
      RETURNS TABLE (ordinal integer, status integer, error_code text, error_detail text, replayed boolean,
                     id uuid, budget_id uuid, amount numeric, currency text, source text, description text,
                     model_id text, user_id text, team_id text, project_id text, request_id text,
                     reservation_id uuid, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz,
                     fired_alerts jsonb)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        item jsonb;
        n integer := 0;
        r record;
        state text;
        message text;
        detail text;
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM budget_definitions d WHERE d.id = p_budget_id AND d.deleted_at IS NULL) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
            DETAIL = format('Budget %s does not exist or was deleted.', p_budget_id);
        END IF;
        FOR item IN SELECT value FROM jsonb_array_elements(p_records) LOOP
          BEGIN
            SELECT * INTO r FROM record_usage(
              p_budget_id, (item->>'amount')::numeric, item->>'currency', item->>'source', item->>'description',
              item->>'modelId', item->>'userId', item->>'teamId', item->>'projectId', item->>'requestId',
              item->>'idempotencyKey', item->>'requestHash', nullif(item->'metadata', 'null'::jsonb),
              (item->>'occurredAt')::timestamptz,
              (item->>'reservationId')::uuid);
            RETURN QUERY SELECT n, CASE WHEN r.replayed THEN 200 ELSE 201 END, NULL::text, NULL::text, r.replayed,
              r.id, r.budget_id, r.amount, r.currency, r.source, r.description, r.model_id, r.user_id, r.team_id,
              r.project_id, r.request_id, r.reservation_id, r.metadata, r.occurred_at, r.recorded_at, r.fired_alerts;
          EXCEPTION WHEN SQLSTATE 'RB400' OR SQLSTATE 'RB404' OR SQLSTATE 'RB409' OR SQLSTATE 'RB422' THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
            RETURN QUERY SELECT n, substr(state, 3)::integer, message, detail, false, NULL::uuid, p_budget_id,
              NULL::numeric, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
              NULL::text, NULL::uuid, NULL::jsonb, NULL::timestamptz, NULL::timestamptz, '[]'::jsonb;
          END;
          n := n + 1;
        END LOOP;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION record_usage_batch(uuid, jsonb)`);
  }
}
