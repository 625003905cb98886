import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `record_usage_group`: single usage writes to any budgets, committed in one transaction and one
 * INSERT (issue 17, group commit; src/usage/usage-write-groups.ts).
 *
 * Why one INSERT: the ledger's statement trigger then counts all the group's records at once, as
 * it counts an attributed record's several chains: roll-up rows in key order, then every cache row
 * of every chain in the global order (root, depth descending, id). Each writer (single, batch,
 * integration, group) takes its locks in the same phases (idempotency keys in key order, roll-ups,
 * cache rows), each phase in one order, so groups of one tree's leaves, of unrelated budgets,
 * and the other writers wait for each other but never in a cycle. (One record_usage_batch per
 * budget inside one transaction would not: its first part holds the root's cache row while the
 * next waits for a leaf's roll-up row, which a single writer of that leaf holds while it waits
 * for the root.)
 *
 * What a line says: `recorded` (a new row, this call), `replayed` (the key was recorded before
 * with the same body: the original row), or neither: the record was not written (a rule refused
 * it, or its key was used for another body, or its row expired). The service writes those again
 * alone through record_usage, which answers them exactly; so this function needs no error text.
 * The rules a record must pass are record_usage_batch's, per record's own budget.
 */
export class UsageWriteGroups1764313000000 implements MigrationInterface {
  name = 'UsageWriteGroups1764313000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION record_usage_group(p_records jsonb)
      RETURNS TABLE (ordinal integer, recorded boolean, replayed boolean, id uuid, budget_id uuid, amount numeric,
                     currency text, source text, description text, model_id text, user_id text, team_id text,
                     project_id text, customer_id text, tags text[], request_id text, reservation_id uuid, metadata jsonb,
                     occurred_at timestamptz, recorded_at timestamptz, provider text, input_tokens integer,
                     output_tokens integer, cached_input_tokens integer, price_id uuid, fired_alerts jsonb)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE
        budgets uuid[];
        nodes   uuid[];
        new_ids uuid[];
        holds   uuid[];
        fired   jsonb;
      BEGIN
        budgets := ARRAY(SELECT DISTINCT (e->>'budgetId')::uuid FROM jsonb_array_elements(p_records) e);
        nodes := ARRAY(SELECT a.id FROM (SELECT DISTINCT a.id, a.root, a.depth FROM budget_ancestry(budgets) a) a
                       ORDER BY a.root, a.depth DESC, a.id);

        -- A cache row still holding an earlier window is moved to the current one first, so the
        -- insert adds to the right window (as record_usage_batch does, in the global order).
        PERFORM refresh_budget_status_cache(s.budget_id, now())
        FROM (SELECT c.budget_id FROM budget_status_cache c
              JOIN budget_definitions d ON d.id = c.budget_id
              CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                      d.recurring, d.timezone, now()) w
              WHERE c.budget_id = ANY (nodes) AND (c.period_start <> w.period_start OR c.period_end <> w.period_end)
              ORDER BY array_position(nodes, c.budget_id)) s;

        WITH raw AS MATERIALIZED (
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id, (e.item->>'budgetId')::uuid AS budget_id,
                 e.item->>'currency' AS currency, e.item->>'modelId' AS model_id,
                 CASE WHEN jsonb_typeof(e.item->'tags') = 'array'
                      THEN ARRAY(SELECT jsonb_array_elements_text(e.item->'tags')) END AS tags,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 (e.item->>'reservationId')::uuid AS reservation_id,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at,
                 (e.item->>'amount')::numeric AS amount, coalesce(e.item->>'source', 'api') AS source,
                 e.item->>'description' AS description, e.item->>'userId' AS user_id, e.item->>'teamId' AS team_id,
                 e.item->>'projectId' AS project_id, e.item->>'customerId' AS customer_id,
                 e.item->>'requestId' AS request_id, nullif(e.item->'metadata', 'null'::jsonb) AS metadata,
                 row_number() OVER (PARTITION BY e.item->>'budgetId', e.item->>'idempotencyKey' ORDER BY e.ord) AS nth,
                 e.item->>'provider' AS provider, (e.item->>'inputTokens')::integer AS input_tokens,
                 (e.item->>'outputTokens')::integer AS output_tokens,
                 (e.item->>'cachedInputTokens')::integer AS cached_input_tokens,
                 CASE WHEN e.item->>'amount' IS NULL AND e.item->>'inputTokens' IS NOT NULL
                      THEN model_price_choose(e.item->>'provider', e.item->>'modelId',
                                              coalesce((e.item->>'occurredAt')::timestamptz, now()), e.item->>'priceMaker',
                                              e.item->>'priceAliasProvider', e.item->>'priceAliasModelId') END AS choice
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), valid AS MATERIALIZED (
          -- record_usage_batch's rules, each record against its own budget: live, same currency,
          -- inside a window (the cached one needs no arithmetic), accepted by the filter, a
          -- reservation of the budget or an ancestor (if any), and a price.
          SELECT r.*, coalesce(r.amount, model_price_cost(r.choice, r.input_tokens, r.output_tokens, r.cached_input_tokens)) AS amount_used
          FROM raw r
          JOIN budget_definitions d ON d.id = r.budget_id AND d.deleted_at IS NULL
          LEFT JOIN budget_status_cache c ON c.budget_id = r.budget_id
          WHERE r.currency = d.currency::text
            AND CASE WHEN r.occurred_at >= c.period_start AND r.occurred_at < c.period_end THEN true
                     ELSE (budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days, d.recurring,
                                                d.timezone, r.occurred_at)).active END
            AND budget_filter_accepts(d.filter, r.model_id, r.tags)
            AND (r.reservation_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM budget_reservations x
                   WHERE x.id = r.reservation_id AND x.budget_ids IS NOT NULL
                     AND NOT x.budget_ids && ARRAY(SELECT a.id FROM budget_ancestry(ARRAY[r.budget_id]) a)))
            AND coalesce(r.amount, model_price_cost(r.choice, r.input_tokens, r.output_tokens, r.cached_input_tokens)) IS NOT NULL
        ), claimed AS (
          -- Keys are claimed before the rows are written, in (budget, key) order, as every writer does.
          INSERT INTO budget_usage_keys AS k (budget_id, idempotency_key, usage_id, occurred_at, request_hash)
          SELECT v.budget_id, v.idempotency_key, v.id, v.occurred_at, v.request_hash
          FROM valid v
          WHERE v.idempotency_key IS NOT NULL AND v.nth = 1
          ORDER BY v.budget_id, v.idempotency_key
          ON CONFLICT DO NOTHING
          RETURNING k.usage_id
        ), inserted AS (
          INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, customer_id, tags, request_id, idempotency_key, request_hash,
            reservation_id, metadata, occurred_at, provider, input_tokens, output_tokens, cached_input_tokens, price_id)
          SELECT v.id, v.budget_id, v.amount_used, v.currency, v.source, v.description, v.model_id, v.user_id, v.team_id,
                 v.project_id, v.customer_id, v.tags, v.request_id, v.idempotency_key, v.request_hash,
                 v.reservation_id, v.metadata, v.occurred_at, coalesce((v.choice).provider, v.provider), v.input_tokens,
                 v.output_tokens, v.cached_input_tokens, (v.choice).price_id
          FROM valid v
          WHERE v.idempotency_key IS NULL OR v.id IN (SELECT claimed.usage_id FROM claimed)
          RETURNING u.id, u.reservation_id
        )
        SELECT array_agg(inserted.id), array_agg(DISTINCT inserted.reservation_id) FILTER (WHERE inserted.reservation_id IS NOT NULL)
          INTO new_ids, holds
        FROM inserted;
        new_ids := coalesce(new_ids, '{}');
        -- Settled after the insert, as record_usage does: cache rows first, then reservation rows.
        PERFORM close_reservation(h, 'settled') FROM unnest(holds) h;

        -- Alerts this transaction fired on the chains (the trigger ran at the end of the INSERT).
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'id', h.id, 'budgetId', h.budget_id, 'alertId', h.alert_id, 'threshold', h.threshold::text,
                 'type', h.alert_type, 'percentUsed', h.percent_used::text, 'amount', h.amount::text,
                 'actions', h.actions, 'notificationChannels', h.notification_channels,
                 'periodStart', h.period_start, 'triggeredAt', h.triggered_at) ORDER BY h.threshold), '[]')
          INTO fired
        FROM budget_alert_history h WHERE h.budget_id = ANY (nodes) AND h.triggered_at = now();

        -- One line per record, in order: its new row, or the row its key recorded with the same
        -- body (one index probe each); the alerts ride on the first line.
        RETURN QUERY
        WITH raw AS (
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id, (e.item->>'budgetId')::uuid AS budget_id,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        )
        SELECT i.ordinal, i.id = ANY (new_ids), NOT (i.id = ANY (new_ids)) AND u.id IS NOT NULL,
               u.id, u.budget_id, u.amount, u.currency::text, u.source::text, u.description::text, u.model_id::text,
               u.user_id::text, u.team_id::text, u.project_id::text, u.customer_id::text, u.tags, u.request_id::text,
               u.reservation_id, u.metadata, u.occurred_at, u.recorded_at, u.provider, u.input_tokens, u.output_tokens,
               u.cached_input_tokens, u.price_id,
               CASE WHEN i.ordinal = 0 THEN fired ELSE '[]'::jsonb END
        FROM raw i
        LEFT JOIN LATERAL (
          SELECT k.usage_id AS id, k.occurred_at, k.request_hash
          FROM budget_usage_keys k
          WHERE NOT (i.id = ANY (new_ids)) AND k.budget_id = i.budget_id AND k.idempotency_key = i.idempotency_key
          LIMIT 1) r ON true
        LEFT JOIN LATERAL (
          SELECT u.* FROM budget_usage_records u
          WHERE u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                            WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
            AND u.occurred_at = CASE WHEN i.id = ANY (new_ids) THEN i.occurred_at ELSE r.occurred_at END
          LIMIT 1) u ON true
        ORDER BY i.ordinal;
      END
      $$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION record_usage_group(jsonb) IS
        'Single usage writes to any budgets in one transaction and one INSERT (group commit): each line says recorded, replayed, or neither (then written again alone by the service).'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION record_usage_group(jsonb)`);
  }
}
