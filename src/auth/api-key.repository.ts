import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { ApiKeyRole } from './api-key-role';

const API_KEY_COLUMNS = `
  k.id, k.name, k.role, k.prefix, k.created_by, k.created_at, k.last_used_at, k.revoked_at,
  to_char(k.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key`;

/** An `api_keys` row without its hash (nothing outside this file ever reads the hash back). */
export interface ApiKeyRow {
  id: string;
  name: string;
  role: ApiKeyRole;
  prefix: string;
  createdBy: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** created_at with microseconds, the pagination key. */
  createdKey: string;
}

export interface LiveApiKey {
  id: string;
  name: string;
  role: ApiKeyRole;
}

export interface NewApiKey {
  name: string;
  role: ApiKeyRole;
  keyHash: string;
  prefix: string;
  createdBy: string;
}

export interface ApiKeyListFilter {
  includeRevoked: boolean;
  after?: [string, string];
  limit: number;
}

function mapApiKeyRow(row: Record<string, any>): ApiKeyRow {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    prefix: row.prefix,
    createdBy: row.created_by,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
    createdKey: row.created_key,
  };
}

@Injectable()
export class ApiKeyRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async insert(key: NewApiKey): Promise<ApiKeyRow> {
    const rows = await this.dataSource.query(
      `WITH k AS (
         INSERT INTO api_keys (name, role, key_hash, prefix, created_by)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING *)
       SELECT ${API_KEY_COLUMNS} FROM k`,
      [key.name, key.role, key.keyHash, key.prefix, key.createdBy],
    );
    return mapApiKeyRow(rows[0]);
  }

  /** The authentication lookup: one indexed read by hash. */
  async findLiveByHash(keyHash: string): Promise<LiveApiKey | undefined> {
    const rows = await this.dataSource.query(
      `SELECT id, name, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
      [keyHash],
    );
    return rows[0] ? { id: rows[0].id, name: rows[0].name, role: rows[0].role } : undefined;
  }

  async list(filter: ApiKeyListFilter): Promise<ApiKeyRow[]> {
    const rows = await this.dataSource.query(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys k
       WHERE ($1::boolean OR k.revoked_at IS NULL)
         AND ($2::timestamptz IS NULL OR (k.created_at, k.id) > ($2::timestamptz, $3::uuid))
       ORDER BY k.created_at, k.id
       LIMIT $4`,
      [filter.includeRevoked, filter.after?.[0] ?? null, filter.after?.[1] ?? null, filter.limit + 1],
    );
    return rows.map(mapApiKeyRow);
  }

  /** Live keys, oldest first, for the start-up checks. */
  async listLive(): Promise<ApiKeyRow[]> {
    const rows = await this.dataSource.query(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys k WHERE k.revoked_at IS NULL ORDER BY k.created_at, k.id`,
    );
    return rows.map(mapApiKeyRow);
  }

  /** Marks a live key revoked; false when there is no live key with that id. */
  async revoke(id: string): Promise<boolean> {
    // Through a CTE: for a bare UPDATE, TypeORM's query() answers [rows, rowCount], not the rows.
    const rows = await this.dataSource.query(
      `WITH k AS (UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id)
       SELECT id FROM k`,
      [id],
    );
    return rows.length > 0;
  }

  /** Records use; skipped when another instance already did within the minute. */
  async touch(id: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE api_keys SET last_used_at = now()
       WHERE id = $1 AND revoked_at IS NULL AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
      [id],
    );
  }
}
