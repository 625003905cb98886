import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * API keys (SPEC §7). Only a SHA-256 hash of each key is stored, never the key itself; `prefix`
 * (the key's first characters) lets people tell keys apart in lists. A revoked key keeps its row
 * (revoked_at set) so the audit trail survives.
 */
export class ApiKeys1764300900000 implements MigrationInterface {
  name = 'ApiKeys1764300900000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE api_keys (
        id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name         varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
        role         text NOT NULL CHECK (role IN ('admin', 'service', 'viewer')),
        key_hash     char(64) NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
        prefix       varchar(16) NOT NULL,
        created_by   varchar(200) NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at   timestamptz,
        CONSTRAINT api_keys_key_hash_unique UNIQUE (key_hash)
      )`);
    await queryRunner.query(`CREATE INDEX api_keys_list_idx ON api_keys (created_at, id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE api_keys`);
  }
}
