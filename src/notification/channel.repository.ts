import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { ChannelType } from './notification.types';

export const CHANNEL_COLUMNS = `
  c.id, c.name, c.type, c.url, c.recipients, c.secret_encrypted, c.previous_secret_encrypted,
  c.previous_secret_expires_at, c.enabled, c.disabled_reason, c.created_by, c.created_at, c.updated_at,
  to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key`;

/** A live `notification_channels` row; the secrets stay sealed (SecretBox opens them). */
export interface ChannelRow {
  id: string;
  name: string;
  type: ChannelType;
  url: string | null;
  recipients: string[] | null;
  secretEncrypted: string | null;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
  enabled: boolean;
  disabledReason: string | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  createdKey: string;
}

export interface NewChannel {
  name: string;
  type: ChannelType;
  url: string | null;
  recipients: string[] | null;
  secretEncrypted: string | null;
  enabled: boolean;
  createdBy: string;
}

export type ChannelChanges = Partial<Pick<NewChannel, 'name' | 'url' | 'recipients' | 'enabled'>>;

export function mapChannelRow(row: Record<string, any>): ChannelRow {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    url: row.url,
    recipients: row.recipients,
    secretEncrypted: row.secret_encrypted,
    previousSecretEncrypted: row.previous_secret_encrypted,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    enabled: row.enabled,
    disabledReason: row.disabled_reason,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdKey: row.created_key,
  };
}

@Injectable()
export class ChannelRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async insert(channel: NewChannel): Promise<ChannelRow> {
    const rows = await this.dataSource.query(
      `WITH c AS (
         INSERT INTO notification_channels (name, type, url, recipients, secret_encrypted, enabled, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *)
       SELECT ${CHANNEL_COLUMNS} FROM c`,
      [channel.name, channel.type, channel.url, channel.recipients === null ? null : JSON.stringify(channel.recipients),
        channel.secretEncrypted, channel.enabled, channel.createdBy],
    );
    return mapChannelRow(rows[0]);
  }

  async findLive(id: string): Promise<ChannelRow | undefined> {
    const rows = await this.dataSource.query(
      `SELECT ${CHANNEL_COLUMNS} FROM notification_channels c WHERE c.id = $1 AND c.deleted_at IS NULL`,
      [id],
    );
    return rows[0] ? mapChannelRow(rows[0]) : undefined;
  }

  async list(after: [string, string] | undefined, limit: number): Promise<ChannelRow[]> {
    const rows = await this.dataSource.query(
      `SELECT ${CHANNEL_COLUMNS} FROM notification_channels c
       WHERE c.deleted_at IS NULL
         AND ($1::timestamptz IS NULL OR (c.created_at, c.id) > ($1::timestamptz, $2::uuid))
       ORDER BY c.created_at, c.id
       LIMIT $3`,
      [after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    return rows.map(mapChannelRow);
  }

  /** Applies the given fields; re-enabling clears the reason it was disabled. */
  async update(id: string, changes: ChannelChanges): Promise<ChannelRow | undefined> {
    const rows = await this.dataSource.query(
      `WITH c AS (
         UPDATE notification_channels SET
           name = CASE WHEN $2::boolean THEN $3 ELSE name END,
           url = CASE WHEN $4::boolean THEN $5 ELSE url END,
           recipients = CASE WHEN $6::boolean THEN $7::jsonb ELSE recipients END,
           enabled = CASE WHEN $8::boolean THEN $9::boolean ELSE enabled END,
           disabled_reason = CASE WHEN $8::boolean AND $9::boolean THEN NULL ELSE disabled_reason END,
           updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL RETURNING *)
       SELECT ${CHANNEL_COLUMNS} FROM c`,
      [id, changes.name !== undefined, changes.name ?? null, changes.url !== undefined, changes.url ?? null,
        changes.recipients !== undefined, changes.recipients ? JSON.stringify(changes.recipients) : null,
        changes.enabled !== undefined, changes.enabled ?? null],
    );
    return rows[0] ? mapChannelRow(rows[0]) : undefined;
  }

  /** Soft delete: its deliveries keep their history; it receives nothing more. */
  async softDelete(id: string): Promise<boolean> {
    const rows = await this.dataSource.query(
      `WITH c AS (UPDATE notification_channels SET deleted_at = now(), enabled = false, updated_at = now()
                  WHERE id = $1 AND deleted_at IS NULL RETURNING id)
       SELECT id FROM c`,
      [id],
    );
    return rows.length > 0;
  }

  /** The new secret signs from now on; the current one keeps signing for `overlapSeconds`. */
  async rotateSecret(id: string, secretEncrypted: string, overlapSeconds: number): Promise<ChannelRow | undefined> {
    const rows = await this.dataSource.query(
      `WITH c AS (
         UPDATE notification_channels SET
           previous_secret_encrypted = secret_encrypted,
           previous_secret_expires_at = now() + make_interval(secs => $3),
           secret_encrypted = $2,
           updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL AND type = 'webhook' RETURNING *)
       SELECT ${CHANNEL_COLUMNS} FROM c`,
      [id, secretEncrypted, overlapSeconds],
    );
    return rows[0] ? mapChannelRow(rows[0]) : undefined;
  }

  async disable(id: string, reason: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE notification_channels SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1`,
      [id, reason.slice(0, 500)],
    );
  }

  /** Of the given references, those that are neither the id nor the name of a live channel. */
  async unknownReferences(references: string[]): Promise<string[]> {
    const rows: { ref: string }[] = await this.dataSource.query(
      `SELECT r AS ref FROM unnest($1::text[]) r
       WHERE NOT EXISTS (SELECT 1 FROM notification_channels c
                         WHERE c.deleted_at IS NULL AND (c.id::text = r OR c.name = r))`,
      [references],
    );
    return rows.map((row) => row.ref);
  }

  async countLive(): Promise<number> {
    const rows = await this.dataSource.query(`SELECT count(*)::int AS n FROM notification_channels WHERE deleted_at IS NULL`);
    return rows[0].n;
  }
}
