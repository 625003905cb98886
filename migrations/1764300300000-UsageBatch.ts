import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Batch ingestion: many usage records for one budget in one transaction and one round trip.
 * The records go in with ONE multi-row INSERT, so the statement-level usage trigger updates each
 * cache row of the chain once per batch instead of once per record. Each record gets its own
 * answer: 201 recorded, 200 replayed (its idempotency key was recorded before, or earlier in the
 * batch, with the same body), 409 key reused with another body, 422 currency or period; a record
 * refused changes nothing while the others are recorded.
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
      #variable_conflict use_column
      DECLARE
        b        record;
        chain    uuid[];
        node     uuid;
        new_ids  uuid[];
        holds    uuid[];
        fired    jsonb;
        cached_start timestamptz;
        cached_end   timestamptz;
      BEGIN
        SELECT d.* INTO b FROM budget_definitions d WHERE d.id = p_budget_id AND d.deleted_at IS NULL;
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
            DETAIL = format('Budget %s does not exist or was deleted.', p_budget_id);
        END IF;

        -- The budget and its ancestors, deepest first (the order every writer locks in). A cache
        -- row still holding an earlier window is moved to the current one first, so the insert
        -- below adds to the right window and evaluates its alerts.
        WITH RECURSIVE up AS (
          SELECT p_budget_id AS id, 0 AS lvl
          UNION ALL
          SELECT d.parent_id, up.lvl + 1 FROM up JOIN budget_definitions d ON d.id = up.id
          WHERE d.parent_id IS NOT NULL AND up.lvl < 8
        )
        SELECT array_agg(up.id ORDER BY up.lvl) INTO chain FROM up;
        FOREACH node IN ARRAY chain LOOP
          PERFORM 1 FROM budget_status_cache c JOIN budget_definitions d ON d.id = c.budget_id
          CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                  d.recurring, d.timezone, now()) w
          WHERE c.budget_id = node AND (c.period_start <> w.period_start OR c.period_end <> w.period_end);
          IF FOUND THEN
            PERFORM refresh_budget_status_cache(node, now());
          END IF;
        END LOOP;

        SELECT c.period_start, c.period_end INTO cached_start, cached_end
        FROM budget_status_cache c WHERE c.budget_id = p_budget_id;

        -- One INSERT of every record that may go in: right currency, inside a window of the budget,
        -- and the first of its idempotency key in the batch. A key recorded before is skipped by
        -- ON CONFLICT and answered below.
        WITH raw AS (
          SELECT (e.item->>'id')::uuid AS id, (e.item->>'amount')::numeric AS amount, e.item->>'currency' AS currency,
                 coalesce(e.item->>'source', 'api') AS source, e.item->>'description' AS description,
                 e.item->>'modelId' AS model_id, e.item->>'userId' AS user_id, e.item->>'teamId' AS team_id,
                 e.item->>'projectId' AS project_id, e.item->>'requestId' AS request_id,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 (e.item->>'reservationId')::uuid AS reservation_id, nullif(e.item->'metadata', 'null'::jsonb) AS metadata,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at,
                 row_number() OVER (PARTITION BY e.item->>'idempotencyKey' ORDER BY e.ord) AS nth
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), items AS (
          -- Usage inside the budget's cached (now current) window needs no period arithmetic.
          SELECT r.*, CASE WHEN r.occurred_at >= cached_start AND r.occurred_at < cached_end THEN true
                           ELSE (budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                      b.recurring, b.timezone, r.occurred_at)).active END AS in_period
          FROM raw r
        ), inserted AS (
          INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, request_id, idempotency_key, request_hash, reservation_id, metadata,
            occurred_at)
          SELECT i.id, p_budget_id, i.amount, i.currency, i.source, i.description, i.model_id, i.user_id, i.team_id,
                 i.project_id, i.request_id, i.idempotency_key, i.request_hash, i.reservation_id, i.metadata,
                 i.occurred_at
          FROM items i
          WHERE i.currency = b.currency::text AND i.in_period AND (i.idempotency_key IS NULL OR i.nth = 1)
          ON CONFLICT ON CONSTRAINT budget_usage_records_idempotency_key DO NOTHING
          RETURNING u.id, u.reservation_id
        )
        SELECT array_agg(inserted.id), array_agg(DISTINCT inserted.reservation_id) FILTER (WHERE inserted.reservation_id IS NOT NULL)
          INTO new_ids, holds
        FROM inserted;
        new_ids := coalesce(new_ids, '{}');
        -- Settled after the insert, as record_usage does: cache rows first, then reservation rows.
        PERFORM close_reservation(h, 'settled') FROM unnest(holds) h;

        -- Alerts this transaction fired on the chain (the trigger ran at the end of the INSERT).
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'id', h.id, 'budgetId', h.budget_id, 'alertId', h.alert_id, 'threshold', h.threshold::text,
                 'type', h.alert_type, 'percentUsed', h.percent_used::text, 'amount', h.amount::text,
                 'actions', h.actions, 'notificationChannels', h.notification_channels,
                 'periodStart', h.period_start, 'triggeredAt', h.triggered_at) ORDER BY h.threshold), '[]')
          INTO fired
        FROM budget_alert_history h WHERE h.budget_id = ANY (chain) AND h.triggered_at = now();

        -- One answer per record, in order; the alerts ride on the first line.
        RETURN QUERY
        WITH raw AS (
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id, e.item->>'currency' AS currency,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), items AS (
          -- Usage inside the budget's cached (now current) window needs no period arithmetic.
          SELECT r.*, CASE WHEN r.occurred_at >= cached_start AND r.occurred_at < cached_end THEN true
                           ELSE (budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                      b.recurring, b.timezone, r.occurred_at)).active END AS in_period
          FROM raw r
        )
        SELECT i.ordinal,
               CASE WHEN i.id = ANY (new_ids) THEN 201
                    WHEN r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash THEN 200
                    WHEN r.id IS NOT NULL THEN 409
                    WHEN i.currency <> b.currency::text OR NOT i.in_period THEN 422
                    ELSE 409 END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN 'IDEMPOTENCY_KEY_REUSED'
                    WHEN i.currency <> b.currency::text THEN 'CURRENCY_MISMATCH'
                    WHEN NOT i.in_period THEN 'OUTSIDE_BUDGET_PERIOD'
                    ELSE 'IDEMPOTENCY_KEY_IN_FLIGHT' END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN
                      format('The idempotency key "%s" was already used on this budget for a different request.', i.idempotency_key)
                    WHEN i.currency <> b.currency::text THEN
                      format('This budget counts in %s; the usage is in %s.', b.currency, i.currency)
                    WHEN NOT i.in_period THEN format('occurredAt %s is outside every period of this budget.', i.occurred_at)
                    ELSE format('A concurrent request is recording the idempotency key "%s"; retry to get its record.', i.idempotency_key) END,
               NOT (i.id = ANY (new_ids)) AND r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash,
               u.id, p_budget_id, u.amount, u.currency::text, u.source::text, u.description::text, u.model_id::text,
               u.user_id::text, u.team_id::text, u.project_id::text, u.request_id::text, u.reservation_id, u.metadata,
               u.occurred_at, u.recorded_at,
               CASE WHEN i.ordinal = 0 THEN fired ELSE '[]'::jsonb END
        FROM items i
        LEFT JOIN budget_usage_records r
          ON NOT (i.id = ANY (new_ids)) AND r.budget_id = p_budget_id AND r.idempotency_key = i.idempotency_key
        LEFT JOIN budget_usage_records u
          ON u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                         WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
        ORDER BY i.ordinal;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION record_usage_batch(uuid, jsonb)`);
  }
}
