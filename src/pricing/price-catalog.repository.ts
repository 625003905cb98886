import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { SeedPrice } from './genai-prices.data';
import type { OverridePlan, PriceSpan, RequestedSpan } from './price-versioning';
import type { PriceChoice, PriceLookupHints } from './pricing.types';

/** One version of model_prices (prices as exact NUMERIC text). */
export interface PriceRow extends PriceSpan {
  provider: string;
  modelId: string;
  source: string;
  createdAt: Date;
  createdBy: string | null;
  /** effective_from with microseconds, the pagination key. */
  effectiveKey: string;
}

/** The columns of a version, as PriceRow names them (from `p`). */
const PRICE_COLUMNS = `
  p.id, p.provider, p.model_id AS "modelId", p.input_per_mtok::text AS "inputPerMTok",
  p.output_per_mtok::text AS "outputPerMTok", p.cached_input_per_mtok::text AS "cachedInputPerMTok",
  p.currency, p.effective_from AS "effectiveFrom", p.effective_to AS "effectiveTo", p.source,
  p.created_at AS "createdAt", p.created_by AS "createdBy",
  to_char(p.effective_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "effectiveKey"`;

const INSERT_VERSION = `
  WITH p AS (
    INSERT INTO model_prices (provider, model_id, input_per_mtok, output_per_mtok, cached_input_per_mtok, currency,
                              effective_from, effective_to, source, created_by)
    VALUES ($1, $2, $3::numeric, $4::numeric, $5::numeric, $6, $7::timestamptz, $8::timestamptz, $9, $10)
    RETURNING *)
  SELECT ${PRICE_COLUMNS} FROM p`;

/** What model_price_choose answered: the version, or why there is none. */
export interface ChosenPrice extends Pick<PriceChoice, 'errorCode' | 'providers'> {
  price: PriceRow | undefined;
}

export interface PriceListFilter {
  provider?: string;
  modelId?: string;
  at?: Date;
  /** The cursor: the last row's effectiveFrom (with microseconds) and id. */
  after?: [string, string];
  limit: number;
}

export interface NewVersion extends RequestedSpan {
  provider: string;
  modelId: string;
  source: string;
  createdBy: string;
}

export type PutVersionOutcome =
  | { kind: 'created'; price: PriceRow }
  | { kind: 'replayed'; price: PriceRow }
  | { kind: 'conflict'; existing: PriceRow | undefined };

const EXCLUSION_VIOLATION = '23P01';

/** Every statement of the price catalog. */
@Injectable()
export class PriceCatalogRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Whether versions from this source were ever stored (the seed has run for this package version). */
  async hasSource(source: string): Promise<boolean> {
    const rows = await this.dataSource.query(`SELECT EXISTS (SELECT 1 FROM model_prices WHERE source = $1) AS seeded`, [source]);
    return rows[0].seeded === true;
  }

  /**
   * Inserts the seed in one statement, for the provider+models the catalog has no version of:
   * a model an admin added or overrode keeps its history untouched. Instances starting together
   * queue on an advisory lock, so the later ones find the rows and insert nothing; ON CONFLICT
   * skips a version an admin PUT in the meantime (the exclusion constraint). Answers the number inserted.
   */
  async insertSeed(prices: SeedPrice[], source: string): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('model_prices.seed'))`);
      const rows = await manager.query(
        `WITH inserted AS (
           INSERT INTO model_prices (provider, model_id, input_per_mtok, output_per_mtok, cached_input_per_mtok,
                                     effective_from, effective_to, source)
           SELECT s."provider", s."modelId", s."inputPerMTok", s."outputPerMTok", s."cachedInputPerMTok",
                  s."effectiveFrom", s."effectiveTo", $2
           FROM jsonb_to_recordset($1::jsonb) AS s("provider" text, "modelId" text, "inputPerMTok" numeric,
                "outputPerMTok" numeric, "cachedInputPerMTok" numeric, "effectiveFrom" timestamptz, "effectiveTo" timestamptz)
           WHERE NOT EXISTS (SELECT 1 FROM model_prices m WHERE m.provider = s."provider" AND m.model_id = s."modelId")
           ON CONFLICT DO NOTHING
           RETURNING 1)
         SELECT count(*)::int AS inserted FROM inserted`,
        [JSON.stringify(prices), source],
      );
      return rows[0].inserted as number;
    });
  }

  /**
   * The version SPEC §14's rule picks for a model at `at` (model_price_choose: the id as stored,
   * its maker among several providers, else the package's match), or why there is none.
   */
  async choose(provider: string | undefined, modelId: string, at: Date, hints: PriceLookupHints): Promise<ChosenPrice> {
    const rows = await this.dataSource.query(
      `SELECT c.error_code AS "errorCode", c.providers, ${PRICE_COLUMNS}
       FROM model_price_choose($1, $2, $3::timestamptz, $4, $5, $6) c LEFT JOIN model_prices p ON p.id = c.price_id`,
      [provider ?? null, modelId, at.toISOString(), hints.maker, hints.aliasProvider, hints.aliasModelId],
    );
    const { errorCode, providers, ...price } = rows[0];
    return { errorCode, providers, price: price.id ? (price as PriceRow) : undefined };
  }

  /** By provider, model, then effectiveFrom; keyset pagination on that key. */
  async list(filter: PriceListFilter): Promise<PriceRow[]> {
    // Only the filters given become conditions, so they stay index conditions.
    const params: unknown[] = [];
    const where: string[] = [];
    const param = (value: unknown, cast = '') => `$${params.push(value)}${cast}`;
    if (filter.provider !== undefined) where.push(`p.provider = ${param(filter.provider)}`);
    if (filter.modelId !== undefined) where.push(`p.model_id = ${param(filter.modelId)}`);
    if (filter.at !== undefined) {
      const at = param(filter.at.toISOString(), '::timestamptz');
      where.push(`p.effective_from <= ${at}`, `(p.effective_to IS NULL OR p.effective_to > ${at})`);
    }
    if (filter.after) {
      // The cursor names the last row; its provider and model come from that row (versions are never deleted).
      const [effectiveKey, id] = filter.after;
      where.push(
        `(p.provider, p.model_id, p.effective_from) >
         (SELECT c.provider, c.model_id, ${param(effectiveKey, '::timestamptz')} FROM model_prices c WHERE c.id = ${param(id, '::uuid')})`,
      );
    }
    return this.dataSource.query(
      `SELECT ${PRICE_COLUMNS} FROM model_prices p
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY p.provider, p.model_id, p.effective_from
       LIMIT ${param(filter.limit + 1)}`,
      params,
    );
  }

  /**
   * Adds a version in one transaction, under a lock per provider+model so overrides of one model
   * queue: reads the versions the new one overlaps, asks `plan` what to do, and applies it. The
   * exclusion constraint has the last word (a seed racing an override ends as a conflict).
   */
  async putVersion(version: NewVersion, plan: (overlapping: PriceSpan[]) => OverridePlan): Promise<PutVersionOutcome> {
    try {
      return await this.dataSource.transaction(async (manager) => {
        await manager.query(`SELECT pg_advisory_xact_lock(hashtext('model_prices'), hashtext($1 || '/' || $2))`, [
          version.provider, version.modelId,
        ]);
        const overlapping: PriceRow[] = await manager.query(
          `SELECT ${PRICE_COLUMNS} FROM model_prices p
           WHERE p.provider = $1 AND p.model_id = $2
             AND tstzrange(p.effective_from, p.effective_to, '[)') && tstzrange($3::timestamptz, $4::timestamptz, '[)')
           ORDER BY p.effective_from
           FOR UPDATE`,
          [version.provider, version.modelId, version.effectiveFrom.toISOString(), version.effectiveTo?.toISOString() ?? null],
        );
        const decision = plan(overlapping);
        const byId = (span: PriceSpan) => overlapping.find((row) => row.id === span.id);
        if (decision.kind === 'conflict') return { kind: 'conflict', existing: byId(decision.existing) };
        if (decision.kind === 'replay') return { kind: 'replayed', price: byId(decision.existing)! };
        if (decision.kind === 'supersede') {
          const current = byId(decision.current)!;
          await manager.query(`UPDATE model_prices SET effective_to = $2::timestamptz WHERE id = $1`, [
            current.id, version.effectiveFrom.toISOString(),
          ]);
          if (decision.resumeAt) {
            await manager.query(INSERT_VERSION, [
              current.provider, current.modelId, current.inputPerMTok, current.outputPerMTok, current.cachedInputPerMTok,
              current.currency, decision.resumeAt.toISOString(), null, current.source, version.createdBy,
            ]);
          }
        }
        const created: PriceRow[] = await manager.query(INSERT_VERSION, [
          version.provider, version.modelId, version.inputPerMTok, version.outputPerMTok, version.cachedInputPerMTok,
          version.currency, version.effectiveFrom.toISOString(), version.effectiveTo?.toISOString() ?? null,
          version.source, version.createdBy,
        ]);
        return { kind: 'created', price: created[0] };
      });
    } catch (error) {
      if ((error as { code?: string }).code === EXCLUSION_VIOLATION) return { kind: 'conflict', existing: undefined };
      throw error;
    }
  }
}
