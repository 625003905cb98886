import { MigrationInterface, QueryRunner } from 'typeorm';
import { frozenDefinition } from '../src/database/frozen-definition';
import { Attribution1764304000000 } from './1764304000000-Attribution';

/** The columns every usage writer returns (record_usage, record_usage_batch, record_integration_usage). */
const RECORD_COLUMNS = `
  replayed boolean, id uuid, budget_id uuid, amount numeric, currency text, source text, description text,
  model_id text, user_id text, team_id text, project_id text, customer_id text, tags text[], request_id text,
  idempotency_key text, reservation_id uuid, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz,
  matched_budget_ids uuid[], provider text, input_tokens integer, output_tokens integer, cached_input_tokens integer,
  price_id uuid, fired_alerts jsonb`;

/** A ledger row `u` as RECORD_COLUMNS lists it, after `replayed`. */
const RECORD_VALUES = (u: string) => `
  ${u}.id, ${u}.budget_id, ${u}.amount, ${u}.currency::text, ${u}.source::text, ${u}.description::text,
  ${u}.model_id::text, ${u}.user_id::text, ${u}.team_id::text, ${u}.project_id::text, ${u}.customer_id::text,
  ${u}.tags, ${u}.request_id::text, ${u}.idempotency_key::text, ${u}.reservation_id, ${u}.metadata,
  ${u}.occurred_at, ${u}.recorded_at, ${u}.matched_budget_ids, ${u}.provider, ${u}.input_tokens, ${u}.output_tokens,
  ${u}.cached_input_tokens, ${u}.price_id`;

/** The alerts fired on behalf of usage record `id` (those of budget `budget` first), as the writers answer them. */
const FIRED_ALERTS = (id: string, budget: string) => `
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'id', h.id, 'budgetId', h.budget_id, 'alertId', h.alert_id, 'threshold', h.threshold::text,
           'type', h.alert_type, 'percentUsed', h.percent_used::text, 'amount', h.amount::text,
           'actions', h.actions, 'notificationChannels', h.notification_channels,
           'periodStart', h.period_start, 'triggeredAt', h.triggered_at)
           ORDER BY h.budget_id = ${budget} DESC, h.threshold), '[]')
  FROM budget_alert_history h WHERE h.usage_record_id = ${id}`;

/** The parameters of a token-priced write, after the ones each writer had before (all optional). */
const TOKEN_PARAMS = `
        p_provider text DEFAULT NULL, p_input_tokens integer DEFAULT NULL, p_output_tokens integer DEFAULT NULL,
        p_cached_input_tokens integer DEFAULT NULL, p_price_maker text DEFAULT NULL,
        p_price_alias_provider text DEFAULT NULL, p_price_alias_model_id text DEFAULT NULL`;

/**
 * The price of a token-priced write (`choice`, and `amount_used`: the given amount, else the cost
 * of the tokens, NULL when the catalog has no price). The error is raised by the caller, once it
 * knows the request is not a replay (a replay answers the stored amount whatever the catalog says).
 */
const PRICE_THE_TOKENS = `
        IF p_amount IS NULL AND p_input_tokens IS NOT NULL THEN
          choice := model_price_choose(p_provider, p_model_id, at_time, p_price_maker, p_price_alias_provider,
                                       p_price_alias_model_id);
          amount_used := model_price_cost(choice, p_input_tokens, p_output_tokens, p_cached_input_tokens);
        END IF;
        IF (amount_used IS NULL AND p_input_tokens IS NULL) OR amount_used < 0 OR amount_used > 10000000000000
           OR amount_used <> round(amount_used, 10) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB400', MESSAGE = 'INVALID_AMOUNT',
            DETAIL = 'A usage amount is a decimal from 0 to 1e13 with at most 10 fractional digits.';
        END IF;`;

/**
 * Token-priced usage (SPEC §14, issue 15): a usage write may carry `{ modelId, provider?,
 * inputTokens, outputTokens, cachedInputTokens? }` instead of `amount`.
 *
 * - The ledger keeps what the amount was computed from: `provider`, the three token counts and
 *   `price_id`, the model_prices version used (NULL when the client gave the amount; both given →
 *   the amount wins and the tokens are kept). No foreign key on price_id: its check would take a
 *   key-share lock on the one price row every concurrent write of a model shares (versions are
 *   never deleted, so the id stays valid).
 * - The price is resolved in the writer's own statement, so a token-priced write stays one round
 *   trip: `model_price_choose()` is the one rule of SPEC §14 (the id as stored at one provider or
 *   at the model's maker among several, else PROVIDER_REQUIRED; else the package's match of the
 *   id, which the service passes in as hints since it lives in the package's code), and
 *   `model_price_cost()` the one formula: exact NUMERIC products, rounded half-up to 10 decimals.
 * - A replay (same key and hash) answers the stored row, whatever the catalog says now.
 */
export class TokenPricedUsage1764308000000 implements MigrationInterface {
  name = 'TokenPricedUsage1764308000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE budget_usage_records
        ADD COLUMN provider text CONSTRAINT budget_usage_records_provider_check
          CHECK (provider ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
        ADD COLUMN input_tokens integer CONSTRAINT budget_usage_records_input_tokens_check
          CHECK (input_tokens BETWEEN 0 AND 1000000000),
        ADD COLUMN output_tokens integer CONSTRAINT budget_usage_records_output_tokens_check
          CHECK (output_tokens BETWEEN 0 AND 1000000000),
        ADD COLUMN cached_input_tokens integer CONSTRAINT budget_usage_records_cached_input_tokens_check
          CHECK (cached_input_tokens BETWEEN 0 AND 1000000000),
        ADD COLUMN price_id uuid,
        ADD CONSTRAINT budget_usage_records_tokens_check
          CHECK ((input_tokens IS NULL) = (output_tokens IS NULL)
                 AND (cached_input_tokens IS NULL OR input_tokens IS NOT NULL)
                 AND (price_id IS NULL OR input_tokens IS NOT NULL))`);
    await queryRunner.query(`
      COMMENT ON COLUMN budget_usage_records.price_id IS
        'The model_prices version the amount was computed from (token-priced usage); NULL when the client gave the amount.'`);

    await queryRunner.query(`
      CREATE TYPE model_price_choice AS (
        price_id uuid, provider text, input_per_mtok numeric, output_per_mtok numeric,
        cached_input_per_mtok numeric, error_code text, providers text[])`);
    await queryRunner.query(MODEL_PRICE_CHOOSE);
    await queryRunner.query(`
      CREATE FUNCTION model_price_cost(p_choice model_price_choice, p_input integer, p_output integer, p_cached integer)
      RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        -- × 0.000001, not ÷ 10^6: a NUMERIC product is exact, a quotient is rounded to a scale of its own.
        SELECT round((p_input::numeric * p_choice.input_per_mtok
                      + coalesce(p_cached, 0)::numeric * coalesce(p_choice.cached_input_per_mtok, p_choice.input_per_mtok)
                      + p_output::numeric * p_choice.output_per_mtok) * 0.000001, 10)
      $fn$`);
    await queryRunner.query(MODEL_PRICE_REFUSAL);
    await queryRunner.query(MODEL_PRICE_REFUSE);

    await queryRunner.query(`DROP FUNCTION record_usage(uuid, numeric, text, text, text, text, text, text, text, text, text,
                                                        text, jsonb, timestamptz, uuid, text, text[])`);
    await queryRunner.query(RECORD_USAGE);
    await queryRunner.query(`DROP FUNCTION record_usage_batch(uuid, jsonb)`);
    await queryRunner.query(RECORD_USAGE_BATCH);
    await queryRunner.query(`DROP FUNCTION record_integration_usage(text[], text[], numeric, text, text, text, text, text, text,
                                                                    text, text, text[], text, text, jsonb, timestamptz, uuid)`);
    await queryRunner.query(RECORD_INTEGRATION_USAGE);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const attribution = new Attribution1764304000000();
    await queryRunner.query(`DROP FUNCTION record_integration_usage(text[], text[], numeric, text, text, text, text, text, text,
                                                                    text, text, text[], text, text, jsonb, timestamptz, uuid,
                                                                    text, integer, integer, integer, text, text, text)`);
    await queryRunner.query(`DROP FUNCTION record_usage_batch(uuid, jsonb)`);
    await queryRunner.query(`DROP FUNCTION record_usage(uuid, numeric, text, text, text, text, text, text, text, text, text,
                                                        text, jsonb, timestamptz, uuid, text, text[],
                                                        text, integer, integer, integer, text, text, text)`);
    await queryRunner.query(await frozenDefinition(attribution, 'record_usage'));
    await queryRunner.query(await frozenDefinition(attribution, 'record_usage_batch'));
    await queryRunner.query(await frozenDefinition(attribution, 'record_integration_usage'));
    await queryRunner.query(`DROP FUNCTION model_price_refuse(model_price_choice, text, text, timestamptz)`);
    await queryRunner.query(`DROP FUNCTION model_price_refusal(model_price_choice, text, text, timestamptz)`);
    await queryRunner.query(`DROP FUNCTION model_price_cost(model_price_choice, integer, integer, integer)`);
    await queryRunner.query(`DROP FUNCTION model_price_choose(text, text, timestamptz, text, text, text)`);
    await queryRunner.query(`DROP TYPE model_price_choice`);
    await queryRunner.query(`
      ALTER TABLE budget_usage_records DROP CONSTRAINT budget_usage_records_tokens_check,
        DROP COLUMN price_id, DROP COLUMN cached_input_tokens, DROP COLUMN output_tokens, DROP COLUMN input_tokens,
        DROP COLUMN provider`);
  }
}

/**
 * The price version in effect at `p_at` for a model (SPEC §14), or why there is none. The id as
 * stored first: at `p_provider`; without one, at the one provider listing it then, or among several
 * at `p_maker` (the provider the package marks as the id's maker), else PROVIDER_REQUIRED with the
 * providers listing it. Nothing stored under the id → the package's match of it (`p_alias_*`,
 * computed by the service: dated and aliased ids, fallback providers); else PRICE_NOT_FOUND.
 * One descent of the lookup index per probe.
 */
const MODEL_PRICE_CHOOSE = `
      CREATE FUNCTION model_price_choose(p_provider text, p_model_id text, p_at timestamptz, p_maker text,
                                         p_alias_provider text, p_alias_model_id text)
      RETURNS model_price_choice LANGUAGE plpgsql STABLE AS $fn$
      DECLARE
        found     model_prices;
        candidate model_prices;
        listed    text[] := '{}';
      BEGIN
        IF p_provider IS NOT NULL THEN
          SELECT * INTO found FROM model_price_at(p_provider, p_model_id, p_at);
        ELSE
          FOR candidate IN
            SELECT v.* FROM (SELECT DISTINCT ON (p.provider) p.*
                             FROM model_prices p
                             WHERE p.model_id = p_model_id AND p.effective_from <= p_at
                             ORDER BY p.provider, p.effective_from DESC) v
            WHERE v.effective_to IS NULL OR v.effective_to > p_at
            ORDER BY v.provider
          LOOP
            listed := listed || candidate.provider;
            IF cardinality(listed) = 1 OR candidate.provider = p_maker THEN
              found := candidate;
            END IF;
          END LOOP;
          IF cardinality(listed) > 1 AND found.provider IS DISTINCT FROM p_maker THEN
            RETURN ROW(NULL, NULL, NULL, NULL, NULL, 'PROVIDER_REQUIRED', listed)::model_price_choice;
          END IF;
        END IF;
        IF found.id IS NULL AND p_alias_model_id IS NOT NULL THEN
          SELECT * INTO found FROM model_price_at(p_alias_provider, p_alias_model_id, p_at);
        END IF;
        IF found.id IS NULL THEN
          RETURN ROW(NULL, NULL, NULL, NULL, NULL, 'PRICE_NOT_FOUND', NULL)::model_price_choice;
        END IF;
        RETURN ROW(found.id, found.provider, found.input_per_mtok, found.output_per_mtok, found.cached_input_per_mtok,
                   NULL, NULL)::model_price_choice;
      END
      $fn$`;

/** Why the catalog could not price a request, as the API says it (NULL when it could). */
const MODEL_PRICE_REFUSAL = `
      CREATE FUNCTION model_price_refusal(p_choice model_price_choice, p_model_id text, p_provider text, p_at timestamptz)
      RETURNS text LANGUAGE sql STABLE AS $fn$
        SELECT CASE p_choice.error_code
          WHEN 'PROVIDER_REQUIRED' THEN
            format('Model "%s" is priced by several providers (%s); name one in provider.',
                   p_model_id, array_to_string(p_choice.providers, ', '))
          WHEN 'PRICE_NOT_FOUND' THEN
            format('The price catalog has no price for model "%s"%s at %s.', p_model_id,
                   CASE WHEN p_provider IS NOT NULL THEN format(' of provider "%s"', p_provider) ELSE '' END,
                   to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) END
      $fn$`;

/** Raises the choice's error as the API answers it (422, the field named in COLUMN); nothing when it has a price. */
const MODEL_PRICE_REFUSE = `
      CREATE FUNCTION model_price_refuse(p_choice model_price_choice, p_model_id text, p_provider text, p_at timestamptz)
      RETURNS void LANGUAGE plpgsql AS $fn$
      BEGIN
        IF p_choice.error_code IS NOT NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = p_choice.error_code,
            COLUMN = CASE p_choice.error_code WHEN 'PROVIDER_REQUIRED' THEN 'provider' ELSE 'modelId' END,
            DETAIL = model_price_refusal(p_choice, p_model_id, p_provider, p_at);
        END IF;
      END
      $fn$`;

/**
 * What changed from the Attribution migration: tokens instead of an amount (priced at occurred_at
 * in this statement), stored with the provider and price version; a request the catalog cannot
 * price is refused (422 PRICE_NOT_FOUND or PROVIDER_REQUIRED) unless it replays a recorded one.
 */
const RECORD_USAGE = `
      CREATE FUNCTION record_usage(
        p_budget_id uuid, p_amount numeric, p_currency text, p_source text DEFAULT NULL,
        p_description text DEFAULT NULL, p_model_id text DEFAULT NULL, p_user_id text DEFAULT NULL,
        p_team_id text DEFAULT NULL, p_project_id text DEFAULT NULL, p_request_id text DEFAULT NULL,
        p_idempotency_key text DEFAULT NULL, p_request_hash text DEFAULT NULL, p_metadata jsonb DEFAULT NULL,
        p_occurred_at timestamptz DEFAULT NULL, p_reservation_id uuid DEFAULT NULL,
        p_customer_id text DEFAULT NULL, p_tags text[] DEFAULT NULL,${TOKEN_PARAMS})
      RETURNS TABLE (${RECORD_COLUMNS})
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        in_period  boolean;
        b          record;
        w          record;
        rec        budget_usage_records;
        was_replay boolean := false;
        fired      jsonb := '[]';
        at_time    timestamptz := coalesce(p_occurred_at, now());
        choice     model_price_choice;
        amount_used numeric := p_amount;
      BEGIN
        SELECT d.currency, d.start_date, d.end_date, d.period, d.custom_period_days, d.recurring,
               d.timezone, d.deleted_at, d.filter, c.period_start AS cached_start, c.period_end AS cached_end
          INTO b FROM budget_definitions d LEFT JOIN budget_status_cache c ON c.budget_id = d.id
         WHERE d.id = p_budget_id;
        IF NOT FOUND OR b.deleted_at IS NOT NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'RB404', MESSAGE = 'BUDGET_NOT_FOUND',
            DETAIL = format('Budget %s does not exist or was deleted.', p_budget_id);
        END IF;
${PRICE_THE_TOKENS}
        IF p_currency IS DISTINCT FROM b.currency::text THEN
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
            DETAIL = format('This budget counts in %s; the usage is in %s.', b.currency, coalesce(p_currency, 'no currency'));
        END IF;
        -- Usage inside the cached window is inside a window of the budget: the common case needs no
        -- period arithmetic.
        IF at_time >= b.cached_start AND at_time < b.cached_end THEN
          in_period := true;
        ELSE
          w := budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days, b.recurring,
                                    b.timezone, at_time);
          in_period := w.active;
        END IF;
        IF (NOT in_period OR amount_used IS NULL) AND NOT (p_idempotency_key IS NOT NULL AND EXISTS (
             SELECT 1 FROM budget_usage_records u
             WHERE u.budget_id = p_budget_id AND u.idempotency_key = p_idempotency_key)) THEN
          -- (A retry of a recorded request replays below, whatever its window or the catalog became.)
          PERFORM model_price_refuse(choice, p_model_id, p_provider, at_time);
          RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'OUTSIDE_BUDGET_PERIOD',
            DETAIL = CASE
              WHEN at_time < b.start_date THEN
                format('occurredAt %s is before the budget starts (%s).', at_time, b.start_date)
              WHEN b.end_date IS NOT NULL AND at_time >= b.end_date THEN
                format('occurredAt %s is at or after the budget''s end (%s).', at_time, b.end_date)
              WHEN NOT b.recurring THEN
                format('occurredAt %s is outside the single period of this non-recurring budget [%s, %s).',
                       at_time, w.period_start, w.period_end)
              ELSE format('occurredAt %s is outside every window of this budget (the nearest is [%s, %s)).',
                          at_time, w.period_start, w.period_end) END;
        END IF;

        IF in_period AND amount_used IS NOT NULL THEN
          INSERT INTO budget_usage_records AS u (budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, customer_id, tags, request_id, idempotency_key, request_hash,
            reservation_id, metadata, occurred_at, provider, input_tokens, output_tokens, cached_input_tokens, price_id)
          VALUES (p_budget_id, amount_used, p_currency, coalesce(p_source, 'api'), p_description, p_model_id,
            p_user_id, p_team_id, p_project_id, p_customer_id, p_tags, p_request_id, p_idempotency_key,
            p_request_hash, p_reservation_id, p_metadata, at_time, coalesce(choice.provider, p_provider),
            p_input_tokens, p_output_tokens, p_cached_input_tokens, choice.price_id)
          ON CONFLICT ON CONSTRAINT budget_usage_records_idempotency_key DO NOTHING
          RETURNING u.* INTO rec;
        END IF;

        IF rec.id IS NULL THEN
          SELECT u.* INTO rec FROM budget_usage_records u
          WHERE u.budget_id = p_budget_id AND u.idempotency_key = p_idempotency_key;
          IF NOT FOUND THEN
            -- Only possible outside READ COMMITTED (the conflicting row is not in the snapshot).
            RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'IDEMPOTENCY_RETRY',
              DETAIL = 'A concurrent request with the same idempotency key; retry.';
          END IF;
          IF rec.request_hash IS DISTINCT FROM p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'IDEMPOTENCY_KEY_REUSED',
              DETAIL = format('The idempotency key "%s" was already used on this budget for a different request.',
                              p_idempotency_key);
          END IF;
          was_replay := true;
        ELSE
          IF NOT budget_filter_accepts(b.filter, p_model_id, p_tags) THEN
            -- Raising undoes the insert (and what its trigger counted).
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'FILTER_MISMATCH',
              DETAIL = format('Budget %s counts only requests its filter accepts (%s); this one has model %s and tags %s.',
                              p_budget_id, b.filter, coalesce(p_model_id, 'none'), coalesce(array_to_string(p_tags, ', '), 'none'));
          END IF;
          IF p_reservation_id IS NOT NULL THEN
            -- Only a reservation placed for this budget or an ancestor; raising undoes the insert.
            IF EXISTS (SELECT 1 FROM budget_reservations x
                       WHERE x.id = p_reservation_id AND x.budget_ids IS NOT NULL
                         AND NOT x.budget_ids && ARRAY(SELECT a.id FROM budget_ancestry(ARRAY[p_budget_id]) a)) THEN
              RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'RESERVATION_MISMATCH',
                DETAIL = format('Reservation %s was placed for other budgets; a usage on budget %s settles only a reservation of that budget or one of its ancestors.',
                                p_reservation_id, p_budget_id);
            END IF;
            -- Settles the hold in the same transaction as the actual cost (a hold that already
            -- expired or was released counts for nothing either way; the usage is recorded).
            PERFORM close_reservation(p_reservation_id, 'settled');
          END IF;
          ${FIRED_ALERTS('rec.id', 'p_budget_id')} INTO fired;
        END IF;

        RETURN QUERY SELECT was_replay, ${RECORD_VALUES('rec')}, fired;
      END
      $fn$`;


/**
 * The items of a batch, with what decides whether each may go in (used twice by record_usage_batch;
 * the first time with the amounts, the token-priced ones priced once each, MATERIALIZED so the
 * price lookup is not repeated for each field read from its choice).
 */
const BATCH_ITEMS = (withAmounts: boolean) => `
        WITH raw AS ${withAmounts ? 'MATERIALIZED ' : ''}(
          SELECT (e.ord - 1)::integer AS ordinal, (e.item->>'id')::uuid AS id, e.item->>'currency' AS currency,
                 e.item->>'modelId' AS model_id,
                 CASE WHEN jsonb_typeof(e.item->'tags') = 'array'
                      THEN ARRAY(SELECT jsonb_array_elements_text(e.item->'tags')) END AS tags,
                 e.item->>'idempotencyKey' AS idempotency_key, e.item->>'requestHash' AS request_hash,
                 (e.item->>'reservationId')::uuid AS reservation_id,
                 coalesce((e.item->>'occurredAt')::timestamptz, now()) AS occurred_at${withAmounts ? `,
                 (e.item->>'amount')::numeric AS amount, coalesce(e.item->>'source', 'api') AS source,
                 e.item->>'description' AS description, e.item->>'userId' AS user_id, e.item->>'teamId' AS team_id,
                 e.item->>'projectId' AS project_id, e.item->>'customerId' AS customer_id,
                 e.item->>'requestId' AS request_id, nullif(e.item->'metadata', 'null'::jsonb) AS metadata,
                 row_number() OVER (PARTITION BY e.item->>'idempotencyKey' ORDER BY e.ord) AS nth,
                 e.item->>'provider' AS provider, (e.item->>'inputTokens')::integer AS input_tokens,
                 (e.item->>'outputTokens')::integer AS output_tokens,
                 (e.item->>'cachedInputTokens')::integer AS cached_input_tokens,
                 CASE WHEN e.item->>'amount' IS NULL AND e.item->>'inputTokens' IS NOT NULL
                      THEN model_price_choose(e.item->>'provider', e.item->>'modelId',
                                              coalesce((e.item->>'occurredAt')::timestamptz, now()), e.item->>'priceMaker',
                                              e.item->>'priceAliasProvider', e.item->>'priceAliasModelId') END AS choice` : ''}
          FROM jsonb_array_elements(p_records) WITH ORDINALITY e (item, ord)
        ), items AS (
          -- Usage inside the budget's cached (now current) window needs no period arithmetic.
          SELECT r.*, CASE WHEN r.occurred_at >= cached_start AND r.occurred_at < cached_end THEN true
                           ELSE (budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                                      b.recurring, b.timezone, r.occurred_at)).active END AS in_period,
                 budget_filter_accepts(b.filter, r.model_id, r.tags) AS accepted,
                 r.reservation_id IS NOT NULL AND EXISTS (
                   SELECT 1 FROM budget_reservations x
                   WHERE x.id = r.reservation_id AND x.budget_ids IS NOT NULL AND NOT x.budget_ids && chain) AS mismatch${withAmounts ? `,
                 coalesce(r.amount, model_price_cost(r.choice, r.input_tokens, r.output_tokens, r.cached_input_tokens)) AS amount_used` : ''}
          FROM raw r
        )`;

/**
 * What changed from the Attribution migration: a record may carry tokens instead of an amount,
 * priced in the INSERT's own statement; one the catalog cannot price is refused alone (422
 * PRICE_NOT_FOUND or PROVIDER_REQUIRED) unless it replays a recorded one. Lines carry the tokens,
 * provider and price version.
 */
const RECORD_USAGE_BATCH = `
      CREATE FUNCTION record_usage_batch(p_budget_id uuid, p_records jsonb)
      RETURNS TABLE (ordinal integer, status integer, error_code text, error_detail text, replayed boolean,
                     id uuid, budget_id uuid, amount numeric, currency text, source text, description text,
                     model_id text, user_id text, team_id text, project_id text, customer_id text, tags text[],
                     request_id text, reservation_id uuid, metadata jsonb, occurred_at timestamptz,
                     recorded_at timestamptz, provider text, input_tokens integer, output_tokens integer,
                     cached_input_tokens integer, price_id uuid, fired_alerts jsonb)
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        b        record;
        chain    uuid[];
        node     uuid;
        new_ids  uuid[];
        holds    uuid[];
        refused  jsonb;
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
        -- accepted by its filter, a reservation of this budget or an ancestor (if any), and the first
        -- of its idempotency key in the batch. A key recorded before is skipped by ON CONFLICT and
        -- answered below.
        ${BATCH_ITEMS(true)}, inserted AS (
          INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
            user_id, team_id, project_id, customer_id, tags, request_id, idempotency_key, request_hash,
            reservation_id, metadata, occurred_at, provider, input_tokens, output_tokens, cached_input_tokens, price_id)
          SELECT i.id, p_budget_id, i.amount_used, i.currency, i.source, i.description, i.model_id, i.user_id, i.team_id,
                 i.project_id, i.customer_id, i.tags, i.request_id, i.idempotency_key, i.request_hash,
                 i.reservation_id, i.metadata, i.occurred_at, coalesce((i.choice).provider, i.provider), i.input_tokens,
                 i.output_tokens, i.cached_input_tokens, (i.choice).price_id
          FROM items i
          WHERE i.currency = b.currency::text AND i.in_period AND i.accepted AND NOT i.mismatch AND i.amount_used IS NOT NULL
            AND (i.idempotency_key IS NULL OR i.nth = 1)
          ON CONFLICT ON CONSTRAINT budget_usage_records_idempotency_key DO NOTHING
          RETURNING u.id, u.reservation_id
        )
        SELECT array_agg(inserted.id), array_agg(DISTINCT inserted.reservation_id) FILTER (WHERE inserted.reservation_id IS NOT NULL),
               -- Why the catalog could not price a record, by its ordinal (answered below).
               (SELECT jsonb_object_agg(i.ordinal, jsonb_build_object('code', (i.choice).error_code,
                         'detail', model_price_refusal(i.choice, i.model_id, i.provider, i.occurred_at)))
                FROM items i WHERE (i.choice).error_code IS NOT NULL)
          INTO new_ids, holds, refused
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
        ${BATCH_ITEMS(false)}
        SELECT i.ordinal,
               CASE WHEN i.id = ANY (new_ids) THEN 201
                    WHEN r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash THEN 200
                    WHEN r.id IS NOT NULL THEN 409
                    WHEN refused ? i.ordinal::text THEN 422
                    WHEN i.currency <> b.currency::text OR NOT i.in_period OR NOT i.accepted THEN 422
                    ELSE 409 END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN 'IDEMPOTENCY_KEY_REUSED'
                    WHEN refused ? i.ordinal::text THEN refused->i.ordinal::text->>'code'
                    WHEN i.currency <> b.currency::text THEN 'CURRENCY_MISMATCH'
                    WHEN NOT i.in_period THEN 'OUTSIDE_BUDGET_PERIOD'
                    WHEN NOT i.accepted THEN 'FILTER_MISMATCH'
                    WHEN i.mismatch THEN 'RESERVATION_MISMATCH'
                    ELSE 'IDEMPOTENCY_KEY_IN_FLIGHT' END,
               CASE WHEN i.id = ANY (new_ids) OR (r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash) THEN NULL
                    WHEN r.id IS NOT NULL THEN
                      format('The idempotency key "%s" was already used on this budget for a different request.', i.idempotency_key)
                    WHEN refused ? i.ordinal::text THEN refused->i.ordinal::text->>'detail'
                    WHEN i.currency <> b.currency::text THEN
                      format('This budget counts in %s; the usage is in %s.', b.currency, i.currency)
                    WHEN NOT i.in_period THEN format('occurredAt %s is outside every period of this budget.', i.occurred_at)
                    WHEN NOT i.accepted THEN
                      format('Budget %s counts only requests its filter accepts (%s); this one has model %s and tags %s.',
                             p_budget_id, b.filter, coalesce(i.model_id, 'none'), coalesce(array_to_string(i.tags, ', '), 'none'))
                    WHEN i.mismatch THEN
                      format('Reservation %s was placed for other budgets; a usage on budget %s settles only a reservation of that budget or one of its ancestors.',
                             i.reservation_id, p_budget_id)
                    ELSE format('A concurrent request is recording the idempotency key "%s"; retry to get its record.', i.idempotency_key) END,
               NOT (i.id = ANY (new_ids)) AND r.id IS NOT NULL AND r.request_hash IS NOT DISTINCT FROM i.request_hash,
               u.id, p_budget_id, u.amount, u.currency::text, u.source::text, u.description::text, u.model_id::text,
               u.user_id::text, u.team_id::text, u.project_id::text, u.customer_id::text, u.tags, u.request_id::text,
               u.reservation_id, u.metadata, u.occurred_at, u.recorded_at, u.provider, u.input_tokens, u.output_tokens,
               u.cached_input_tokens, u.price_id,
               CASE WHEN i.ordinal = 0 THEN fired ELSE '[]'::jsonb END
        FROM items i
        LEFT JOIN budget_usage_records r
          ON NOT (i.id = ANY (new_ids)) AND r.budget_id = p_budget_id AND r.idempotency_key = i.idempotency_key
        LEFT JOIN budget_usage_records u
          ON u.id = CASE WHEN i.id = ANY (new_ids) THEN i.id
                         WHEN r.request_hash IS NOT DISTINCT FROM i.request_hash THEN r.id END
        ORDER BY i.ordinal;
      END
      $fn$`;


/**
 * One AI request's usage: one ledger row counting toward every active scope budget whose filter
 * accepts it and every ancestor of them, each once (SPEC §12.2). Idempotent on the gateway's
 * request id, globally: the key row is claimed first (a concurrent retry waits for it), so a
 * retry replays whatever the trees became since. A request no budget matches records nothing.
 * What changed from the Attribution migration: tokens instead of an amount, as record_usage takes them.
 */
const RECORD_INTEGRATION_USAGE = `
      CREATE FUNCTION record_integration_usage(
        p_scope_types text[], p_scope_ids text[], p_amount numeric, p_currency text, p_source text,
        p_description text, p_model_id text, p_user_id text, p_team_id text, p_project_id text,
        p_customer_id text, p_tags text[], p_request_id text, p_request_hash text, p_metadata jsonb,
        p_occurred_at timestamptz, p_reservation_id uuid,${TOKEN_PARAMS})
      RETURNS TABLE (${RECORD_COLUMNS})
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        at_time  timestamptz := coalesce(p_occurred_at, now());
        seeds    uuid[];
        matched  uuid[];
        earlier  budget_integration_requests;
        other    record;
        new_id   uuid := gen_random_uuid();
        rec      budget_usage_records;
        fired    jsonb;
        choice   model_price_choice;
        amount_used numeric := p_amount;
      BEGIN
${PRICE_THE_TOKENS}
        SELECT q.* INTO earlier FROM budget_integration_requests q WHERE q.request_id = p_request_id;
        IF NOT FOUND THEN
          PERFORM model_price_refuse(choice, p_model_id, p_provider, at_time);
          -- The live scope budgets active at occurred_at whose filter accepts the request, in the
          -- global lock order (root, depth descending, id).
          seeds := ARRAY(
            SELECT d.id FROM unnest(p_scope_types, p_scope_ids) s (t, i)
            JOIN budget_definitions d ON d.scope_type = s.t AND d.scope_id = s.i AND d.deleted_at IS NULL
            CROSS JOIN LATERAL budget_period_window(d.start_date, d.end_date, d.period, d.custom_period_days,
                                                    d.recurring, d.timezone, at_time) w
            WHERE w.active AND budget_filter_accepts(d.filter, p_model_id, p_tags));
          IF cardinality(seeds) = 0 THEN
            RETURN;
          END IF;
          SELECT array_agg(x.id ORDER BY x.root, x.depth DESC, x.id) INTO matched
          FROM (SELECT DISTINCT a.id, a.root, a.depth FROM budget_ancestry(seeds) a WHERE a.id = ANY (seeds)) x;
          SELECT d.id, d.name, d.scope_type, d.scope_id, d.currency INTO other
          FROM budget_definitions d WHERE d.id = ANY (matched) AND d.currency::text IS DISTINCT FROM p_currency
          ORDER BY d.id LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'RB422', MESSAGE = 'CURRENCY_MISMATCH',
              DETAIL = format('Budget "%s" (%s %s) counts in %s; the request is in %s.',
                              other.name, other.scope_type, other.scope_id, other.currency, coalesce(p_currency, 'no currency'));
          END IF;
          INSERT INTO budget_integration_requests AS q (request_id, request_hash, usage_ids)
          VALUES (p_request_id, p_request_hash, ARRAY[new_id])
          ON CONFLICT (request_id) DO NOTHING;
          IF NOT FOUND THEN
            -- A concurrent request with this id committed first: answer as its replay.
            SELECT q.* INTO earlier FROM budget_integration_requests q WHERE q.request_id = p_request_id;
            IF NOT FOUND THEN
              RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'IDEMPOTENCY_RETRY',
                DETAIL = 'A concurrent request with the same request id; retry.';
            END IF;
          END IF;
        END IF;

        IF earlier.request_id IS NOT NULL THEN
          IF earlier.request_hash IS DISTINCT FROM p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'IDEMPOTENCY_KEY_REUSED',
              DETAIL = format('The request id "%s" was already recorded for a different request.', p_request_id);
          END IF;
          RETURN QUERY SELECT true, ${RECORD_VALUES('u')}, '[]'::jsonb
          FROM budget_usage_records u WHERE u.id = ANY (earlier.usage_ids)
          ORDER BY array_position(earlier.usage_ids, u.id);
          RETURN;
        END IF;

        IF p_reservation_id IS NOT NULL AND EXISTS (
             SELECT 1 FROM budget_reservations x
             WHERE x.id = p_reservation_id AND x.budget_ids IS NOT NULL
               AND NOT x.budget_ids && ARRAY(SELECT a.id FROM budget_ancestry(matched) a)) THEN
          RAISE EXCEPTION USING ERRCODE = 'RB409', MESSAGE = 'RESERVATION_MISMATCH',
            DETAIL = format('Reservation %s was placed for other budgets than the ones this request counts toward.',
                            p_reservation_id);
        END IF;
        -- The ledger trigger counts it on every matched budget's chain and writes the attribution rows.
        INSERT INTO budget_usage_records AS u (id, budget_id, amount, currency, source, description, model_id,
          user_id, team_id, project_id, customer_id, tags, request_id, request_hash, reservation_id, metadata,
          occurred_at, matched_budget_ids, provider, input_tokens, output_tokens, cached_input_tokens, price_id)
        VALUES (new_id, matched[1], amount_used, p_currency, coalesce(p_source, 'relaycore'), p_description, p_model_id,
          p_user_id, p_team_id, p_project_id, p_customer_id, p_tags, p_request_id, p_request_hash, p_reservation_id,
          p_metadata, at_time, matched, coalesce(choice.provider, p_provider), p_input_tokens, p_output_tokens,
          p_cached_input_tokens, choice.price_id)
        RETURNING u.* INTO rec;
        IF p_reservation_id IS NOT NULL THEN
          PERFORM close_reservation(p_reservation_id, 'settled');
        END IF;
        ${FIRED_ALERTS('rec.id', 'matched[1]')} INTO fired;
        RETURN QUERY SELECT false, ${RECORD_VALUES('rec')}, fired;
      END
      $fn$`;
