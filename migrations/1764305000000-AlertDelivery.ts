import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Alert delivery (SPEC §13): notification channels, a transactional outbox and its deliveries.
 *
 * The outbox is filled by PostgreSQL itself: an AFTER INSERT trigger on budget_alert_history
 * builds the `budget.alert.triggered` event from the alert row and its budget and calls
 * notification_enqueue(), so the event and its deliveries commit (or roll back) with the alert
 * row, whichever path inserted it (single usage, batch, integration). notification_enqueue() is
 * the generic entry for any event type (`budget.anomaly.detected` is one more caller).
 *
 * Fan-out to channels happens in notification_enqueue(), when the event is written: each route
 * (a channel id, a channel name, or a type word "email" | "slack" | "webhook") becomes one
 * delivery row per live, enabled channel it names at that moment. The relay then claims due
 * deliveries with FOR UPDATE SKIP LOCKED and a lease (claimed_until), so any number of instances
 * deliver together, one attempt per delivery at a time, and a dead instance's claims come back
 * once their lease ends.
 */
export class AlertDelivery1764305000000 implements MigrationInterface {
  name = 'AlertDelivery1764305000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE notification_channels (
        id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name                        varchar(200) NOT NULL CHECK (length(btrim(name)) > 0),
        type                        text NOT NULL CHECK (type IN ('webhook', 'slack', 'email')),
        url                         varchar(2000),
        recipients                  jsonb,
        secret_encrypted            text,
        previous_secret_encrypted   text,
        previous_secret_expires_at  timestamptz,
        enabled                     boolean NOT NULL DEFAULT true,
        disabled_reason             varchar(500),
        created_by                  varchar(200) NOT NULL,
        created_at                  timestamptz NOT NULL DEFAULT now(),
        updated_at                  timestamptz NOT NULL DEFAULT now(),
        deleted_at                  timestamptz,
        CONSTRAINT notification_channels_url_iff_http CHECK ((type = 'email') = (url IS NULL)),
        CONSTRAINT notification_channels_recipients_iff_email
          CHECK ((type = 'email') = (recipients IS NOT NULL AND jsonb_typeof(recipients) = 'array')),
        CONSTRAINT notification_channels_secret_iff_webhook CHECK ((type = 'webhook') = (secret_encrypted IS NOT NULL)),
        CONSTRAINT notification_channels_previous_secret_expires
          CHECK ((previous_secret_encrypted IS NULL) = (previous_secret_expires_at IS NULL))
      )`);
    await queryRunner.query(`
      COMMENT ON COLUMN notification_channels.secret_encrypted IS
        'The webhook signing secret, AES-256-GCM under SECRETS_KEY (v1:iv:tag:ciphertext, base64); never stored in clear.'`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX notification_channels_name_live ON notification_channels (name) WHERE deleted_at IS NULL`,
    );
    await queryRunner.query(`CREATE INDEX notification_channels_list_idx ON notification_channels (created_at, id)`);

    await queryRunner.query(`
      CREATE TABLE notification_events (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        type             varchar(100) NOT NULL CHECK (type ~ '^[a-z]+(\\.[a-z_]+)+$'),
        occurred_at      timestamptz NOT NULL DEFAULT now(),
        data             jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
        routes           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(routes) = 'array'),
        budget_id        uuid REFERENCES budget_definitions(id),
        alert_history_id uuid UNIQUE REFERENCES budget_alert_history(id)
      )`);
    await queryRunner.query(`
      COMMENT ON COLUMN notification_events.id IS 'The webhook-id of every delivery of this event, on every retry.'`);

    await queryRunner.query(`
      CREATE TABLE notification_deliveries (
        id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        event_id        uuid NOT NULL REFERENCES notification_events(id),
        channel_id      uuid NOT NULL REFERENCES notification_channels(id),
        status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempt_count   integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        claim_token     uuid,
        claimed_until   timestamptz,
        last_error      varchar(1000),
        delivered_at    timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT notification_deliveries_once UNIQUE (event_id, channel_id),
        CONSTRAINT notification_deliveries_claim_pair CHECK ((claim_token IS NULL) = (claimed_until IS NULL))
      )`);
    await queryRunner.query(`
      COMMENT ON COLUMN notification_deliveries.attempt_count IS
        'Attempts since the delivery was last queued (a manual retry starts the schedule again); every attempt is kept in notification_attempts.'`);
    await queryRunner.query(
      `CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at) WHERE status = 'pending'`,
    );
    await queryRunner.query(`CREATE INDEX notification_deliveries_list_idx ON notification_deliveries (created_at DESC, id DESC)`);
    await queryRunner.query(
      `CREATE INDEX notification_deliveries_channel_idx ON notification_deliveries (channel_id, created_at DESC, id DESC)`,
    );

    await queryRunner.query(`
      CREATE TABLE notification_attempts (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        delivery_id  uuid NOT NULL REFERENCES notification_deliveries(id),
        attempted_at timestamptz NOT NULL,
        duration_ms  integer NOT NULL CHECK (duration_ms >= 0),
        http_status  integer,
        error        varchar(1000),
        outcome      text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed'))
      )`);
    await queryRunner.query(`CREATE INDEX notification_attempts_delivery_idx ON notification_attempts (delivery_id, id)`);

    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION notification_enqueue(p_type text, p_data jsonb, p_routes jsonb,
                                                      p_budget_id uuid DEFAULT NULL,
                                                      p_alert_history_id uuid DEFAULT NULL)
      RETURNS uuid LANGUAGE plpgsql AS $$
      DECLARE
        event_id uuid;
      BEGIN
        INSERT INTO notification_events (type, data, routes, budget_id, alert_history_id)
        VALUES (p_type, p_data, coalesce(p_routes, '[]'), p_budget_id, p_alert_history_id)
        RETURNING id INTO event_id;
        INSERT INTO notification_deliveries (event_id, channel_id)
        SELECT event_id, c.id
          FROM notification_channels c
         WHERE c.deleted_at IS NULL AND c.enabled
           AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(p_routes, '[]')) r
                        WHERE r = c.type OR r = c.id::text OR r = c.name);
        RETURN event_id;
      END
      $$`);

    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION notification_alert_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        b   budget_definitions;
        win record;
        pct numeric;
        label text;
        iso CONSTANT text := 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"';
      BEGIN
        SELECT * INTO b FROM budget_definitions WHERE id = NEW.budget_id;
        win := budget_period_window(b.start_date, b.end_date, b.period, b.custom_period_days,
                                    b.recurring, b.timezone, NEW.period_start);
        pct := NEW.amount / b.amount * 100;
        label := CASE WHEN NEW.amount >= b.amount THEN 'exceeded'
                      WHEN pct >= b.critical_threshold THEN 'critical'
                      WHEN pct >= b.warning_threshold THEN 'warning'
                      ELSE 'normal' END;
        PERFORM notification_enqueue(
          'budget.alert.triggered',
          jsonb_build_object(
            'budget', jsonb_build_object('id', b.id, 'name', b.name, 'scopeType', b.scope_type, 'scopeId', b.scope_id,
                                         'currency', b.currency, 'amount', round(b.amount, 10)),
            'alert', jsonb_build_object('id', NEW.id, 'alertId', NEW.alert_id, 'type', NEW.alert_type,
                                        'threshold', NEW.threshold, 'actions', NEW.actions,
                                        'percentUsed', round(NEW.percent_used, 2), 'amount', round(NEW.amount, 10),
                                        'periodStart', to_char(NEW.period_start AT TIME ZONE 'UTC', iso),
                                        'periodEnd', to_char(win.period_end AT TIME ZONE 'UTC', iso),
                                        'triggeredAt', to_char(NEW.triggered_at AT TIME ZONE 'UTC', iso)),
            'status', jsonb_build_object('currentAmount', round(NEW.amount, 10),
                                         'remainingAmount', round(greatest(b.amount - NEW.amount, 0), 10),
                                         'percentUsed', round(pct, 2), 'status', label),
            'usageRecordId', NEW.usage_record_id),
          NEW.notification_channels, NEW.budget_id, NEW.id);
        RETURN NULL;
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER budget_alert_history_outbox AFTER INSERT ON budget_alert_history
      FOR EACH ROW EXECUTE FUNCTION notification_alert_outbox()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER budget_alert_history_outbox ON budget_alert_history`);
    await queryRunner.query(`DROP FUNCTION notification_alert_outbox()`);
    await queryRunner.query(`DROP FUNCTION notification_enqueue(text, jsonb, jsonb, uuid, uuid)`);
    await queryRunner.query(`DROP TABLE notification_attempts`);
    await queryRunner.query(`DROP TABLE notification_deliveries`);
    await queryRunner.query(`DROP TABLE notification_events`);
    await queryRunner.query(`DROP TABLE notification_channels`);
  }
}
