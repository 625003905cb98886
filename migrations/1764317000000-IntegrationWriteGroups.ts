import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `record_integration_usage_group`: the gateway's usage writes (`POST /integration/usage`, named by
 * scopes) committed in one transaction and one INSERT, as UsageWriteGroups did for the writes of
 * one budget (issue 17; src/usage/usage-write-groups.ts).
 *
 * Each record is resolved as record_integration_usage resolves it: its amount (or the catalog's
 * price of its tokens at its instant), the live budgets of its scopes active at that instant whose
 * filter accepts it, in the global lock order (root, depth descending, id), the same currency on
 * every one, a reservation placed for them (if any). Then, as every writer does, the request ids are
 * claimed first (in request id order), the ledger rows written in one INSERT (its statement trigger
 * counts every chain and writes the attribution rows: roll-ups in key order, then cache rows in the
 * global order), and the reservations settled after.
 *
 * What a line says: `recorded` (a new row, this call), or not: the record was not written, because
 * a rule refused it, no budget matched it, or its request id was recorded before (a replay) or
 * claimed meanwhile. The service writes those again alone through record_integration_usage, which
 * answers them exactly (its error, its replay, or no records); so this function needs no error
 * text and never replays. The alerts the transaction fired ride on the first line (with several
 * records, the trigger does not tie an alert to one of them).
 */
export class IntegrationWriteGroups1764317000000 implements MigrationInterface {
  name = 'IntegrationWriteGroups1764317000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION record_integration_usage_group(p_records jsonb)
      RETURNS TABLE (ordinal integer, recorded boolean, replayed boolean, id uuid, budget_id uuid, amount numeric,
                     currency text, source text, description text, model_id text, user_id text, team_id text,
                     project_id text, customer_id text, tags text[], request_id text, reservation_id uuid, metadata jsonb,
                     occurred_at timestamptz, recorded_at timestamptz, matched_budget_ids uuid[], provider text,
                     input_tokens integer, output_tokens integer, cached_input_tokens integer, price_id uuid,
                     fired_alerts jsonb)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE
        new_ids uuid[];
        holds   uuid[];
        matched_all uuid[];
        fired   jsonb;
      BEGIN
        WITH raw AS MATERIALIZED (
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id,
                 ARRAY(SELECT jsonb_array_elements_text(e.item->'scopeTypes')) AS scope_types,
                 ARRAY(SELECT jsonb_array_elements_text(e.item->'scopeIds')) AS scope_ids,
                 e.item->>'currency' AS currency, e.item->>'modelId' AS model_id,
                 CASE WHEN jsonb_typeof(e.item->'tags') = 'array'
                      THEN ARRAY(SELECT jsonb_array_elements_text(e.item->'tags')) END AS tags,
                 e.item->>'requestId' AS request_id, e.item->>'requestHash' AS request_hash,
                 (e.item->>'reservationId')::uuid AS reservation_id,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at,
                 (e.item->>'amount')::numeric AS amount, coalesce(e.item->>'source', 'relaycore') AS source,
                 e.item->>'description' AS description, e.item->>'userId' AS user_id, e.item->>'teamId' AS team_id,
                 e.item->>'projectId' AS project_id, e.item->>'customerId' AS customer_id,
                 nullif(e.item->'metadata', 'null'::jsonb) AS metadata,
                 row_number() OVER (PARTITION BY e.item->>'requestId' ORDER BY e.ord) AS nth,
                 e.item->>'provider' AS provider, (e.item->>'inputTokens')::integer AS input_tokens,
                 (e.item->>'outputTokens')::integer AS output_tokens,
                 (e.item->>'cachedInputTokens')::integer AS cached_input_tokens,
                 CASE WHEN e.item->>'amount' IS NULL AND e.item->>'inputTokens' IS NOT NULL
                      THEN model_price_choose(e.item->>'provider', e.item->>'modelId',
                                              coalesce((e.item->>'occurredAt')::timestamptz, now()), e.item->>'priceMaker',
                                              e.item->>'priceAliasProvider', e.item->>'priceAliasModelId') END AS choice
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), resolved AS MATERIALIZED (
          -- record_integration_usage's resolution, per record: the amount, then the live budgets of
          -- its scopes active at its instant whose filter accepts it, in the global lock order.
          SELECT r.*, coalesce(r.amount, model_price_cost(r.choice, r.input_tokens, r.output_tokens, r.cached_input_tokens)) AS amount_used,
                 m.matched
          FROM raw r
          CROSS JOIN LATERAL (
            SELECT ARRAY(
              SELECT d.id FROM unnest(r.scope_types, r.scope_ids) s (t, i)
              JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL
              CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                      d.recurring, d.timezone, r.occurred_at) w
              WHERE w.active AND budget_filter_accepts(d.filter, r.model_id, r.tags)) AS seeds) s
          CROSS JOIN LATERAL (
            SELECT array_agg(x.id ORDER BY x.root, x.depth DESC, x.id) AS matched
            FROM (SELECT DISTINCT a.id, a.root, a.depth FROM budget_ancestry(s.seeds) a WHERE a.id = ANY (s.seeds)) x) m
        ), valid AS MATERIALIZED (
          -- The records record_integration_usage would write now: a price and a valid amount, one
          -- currency, a reservation of these budgets (if any). A request id recorded before is
          -- found by its claim below (a refusal, no budget or a replay goes alone).
          SELECT r.* FROM resolved r
          WHERE r.nth = 1 AND r.request_id IS NOT NULL AND r.matched IS NOT NULL
            AND (r.choice IS NULL OR (r.choice).error_code IS NULL)
            AND r.amount_used IS NOT NULL AND r.amount_used >= 0 AND r.amount_used <= 10000000000000
            AND r.amount_used = round(r.amount_used, 10)
            AND NOT EXISTS (SELECT 1 FROM budget_definitions d
                            WHERE d.id = ANY (r.matched) AND d.currency::text IS DISTINCT FROM r.currency)
            AND (r.reservation_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM budget_reservations x
                   WHERE x.id = r.reservation_id AND x.budget_ids IS NOT NULL
                     AND NOT x.budget_ids && ARRAY(SELECT a.id FROM budget_ancestry(r.matched) a)))
        ), claimed AS (
          -- Request ids are claimed before the rows are written, in request id order.
          INSERT INTO budget_integration_requests AS q (request_id, request_hash, usage_ids)
          SELECT v.request_id, v.request_hash, ARRAY[v.id] FROM valid v ORDER BY v.request_id
          ON CONFLICT (request_id) DO NOTHING
          RETURNING q.request_id
        ), inserted AS (
          INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, customer_id, tags, request_id, request_hash, reservation_id, metadata,
            occurred_at, matched_budget_ids, provider, input_tokens, output_tokens, cached_input_tokens, price_id)
          SELECT v.id, v.matched[1], v.amount_used, v.currency, v.source, v.description, v.model_id, v.user_id,
                 v.team_id, v.project_id, v.customer_id, v.tags, v.request_id, v.request_hash, v.reservation_id,
                 v.metadata, v.occurred_at, v.matched, coalesce((v.choice).provider, v.provider), v.input_tokens,
                 v.output_tokens, v.cached_input_tokens, (v.choice).price_id
          FROM valid v
          WHERE v.request_id IN (SELECT claimed.request_id FROM claimed)
          RETURNING u.id, u.reservation_id, u.matched_budget_ids
        )
        SELECT array_agg(inserted.id),
               array_agg(DISTINCT inserted.reservation_id) FILTER (WHERE inserted.reservation_id IS NOT NULL),
               ARRAY(SELECT DISTINCT m FROM inserted i2 CROSS JOIN LATERAL unnest(i2.matched_budget_ids) m)
          INTO new_ids, holds, matched_all
        FROM inserted;
        new_ids := coalesce(new_ids, '{}');
        -- Settled after the insert, as record_integration_usage does: cache rows first, then reservations.
        PERFORM close_reservation(h, 'settled') FROM unnest(holds) h;

        -- Alerts this transaction fired on the chains (the trigger ran at the end of the INSERT).
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'id', h.id, 'budgetId', h.budget_id, 'alertId', h.alert_id, 'threshold', h.threshold::text,
                 'type', h.alert_type, 'percentUsed', h.percent_used::text, 'amount', h.amount::text,
                 'actions', h.actions, 'notificationChannels', h.notification_channels,
                 'periodStart', h.period_start, 'triggeredAt', h.triggered_at) ORDER BY h.threshold, h.budget_id), '[]')
          INTO fired
        FROM budget_alert_history h
        WHERE h.triggered_at = now() AND cardinality(new_ids) > 0
          AND h.budget_id = ANY (ARRAY(SELECT a.id FROM budget_ancestry(matched_all) a));

        -- One line per record, in order: its new row (one index probe), or nothing; the alerts ride
        -- on the first line.
        RETURN QUERY
        WITH raw AS (
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        )
        SELECT i.ordinal, u.id IS NOT NULL, false,
               u.id, u.budget_id, u.amount, u.currency::text, u.source::text, u.description::text, u.model_id::text,
               u.user_id::text, u.team_id::text, u.project_id::text, u.customer_id::text, u.tags, u.request_id::text,
               u.reservation_id, u.metadata, u.occurred_at, u.recorded_at, u.matched_budget_ids, u.provider,
               u.input_tokens, u.output_tokens, u.cached_input_tokens, u.price_id,
               CASE WHEN i.ordinal = 0 THEN fired ELSE '[]'::jsonb END
        FROM raw i
        LEFT JOIN LATERAL (
          SELECT u.* FROM budget_usage_records u
          WHERE i.id = ANY (new_ids) AND u.id = i.id AND u.occurred_at = i.occurred_at
          LIMIT 1) u ON true
        ORDER BY i.ordinal;
      END
      $$`);
    await queryRunner.query(`
      COMMENT ON FUNCTION record_integration_usage_group(jsonb) IS
        'Integration usage writes (by scopes) in one transaction and one INSERT (group commit): each line says recorded or not (then written again alone by the service).'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION record_integration_usage_group(jsonb)`);
  }
}
