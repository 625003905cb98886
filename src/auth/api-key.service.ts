import { timingSafeEqual } from 'node:crypto';
import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { isUUID } from 'class-validator';
import { LRUCache } from 'lru-cache';
import type { RequestPrincipal } from '../common/auth/actor.decorator';
import { DomainError } from '../common/errors/domain-error';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validateInput } from '../common/validation';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { ApiKeyRepository, type ApiKeyRow } from './api-key.repository';
import { displayPrefix, generateApiKey, hashApiKey, looksLikeIssuedKey } from './api-key.secret';
import type { ApiKeyResponseDto, CreatedApiKeyDto } from './dto/api-key-response.dto';
import { CreateApiKeyDto } from './dto/create-api-key.dto';
import type { ListApiKeysQueryDto } from './dto/list-api-keys.query.dto';

/** The principal of the `ADMIN_API_KEY` environment variable (it has no row). */
export const ENV_ADMIN: RequestPrincipal = Object.freeze({ id: 'env-admin', name: 'env-admin', role: 'admin' });

/** `last_used_at` is written at most this often per key (and never on the request's path). */
const TOUCH_INTERVAL_MS = 60_000;
/** Bounds the memory a flood of distinct unknown keys can take. */
const MAX_CACHED_HASHES = 10_000;

interface CacheEntry {
  /** null: no live key has this hash (a hash cannot become valid later: keys are random). */
  principal: RequestPrincipal | null;
}

/**
 * API keys: issuing (the key is shown once, only its hash is stored), listing, revoking, and
 * authenticating requests.
 *
 * Authentication is on every request's path, so it must not cost a query each time: verified
 * hashes (and unknown ones) are kept in an LRU cache for `apiKeyCacheTtlMs` (15 s by default),
 * and concurrent lookups of one hash share one query. A revoke clears the cache of this process
 * at once; other instances stop accepting the key when their entry expires, within the TTL.
 */
@Injectable()
export class ApiKeyService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ApiKeyService.name);
  /** Verified (and unknown) hashes; undefined when the TTL is 0 (no caching). */
  private readonly cache: LRUCache<string, CacheEntry> | undefined;
  private readonly lookups = new Map<string, Promise<RequestPrincipal | undefined>>();
  /** Bumped by every revoke, so a lookup that raced a revoke does not cache its stale answer. */
  private revocations = 0;
  private readonly lastTouched = new Map<string, number>();
  private readonly touches = new Set<Promise<void>>();
  private readonly envAdminHash: Buffer | undefined;

  constructor(
    private readonly keys: ApiKeyRepository,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.envAdminHash = config.adminApiKey ? Buffer.from(hashApiKey(config.adminApiKey), 'hex') : undefined;
    this.cache =
      config.apiKeyCacheTtlMs > 0 ? new LRUCache({ max: MAX_CACHED_HASHES, ttl: config.apiKeyCacheTtlMs }) : undefined;
  }

  async createKey(input: CreateApiKeyDto, createdBy: string): Promise<CreatedApiKeyDto> {
    const dto = await validateInput(CreateApiKeyDto, input);
    const key = generateApiKey();
    const row = await this.keys.insert({
      name: dto.name,
      role: dto.role,
      keyHash: hashApiKey(key),
      prefix: displayPrefix(key),
      createdBy: createdBy.slice(0, 200) || 'anonymous',
    });
    this.logger.log(`API key ${row.id} (${row.prefix}…, "${row.name}", ${row.role}) created by ${row.createdBy}`);
    const createdAt = row.createdAt.toISOString();
    return { id: row.id, name: row.name, role: row.role, prefix: row.prefix, key, createdAt };
  }

  async listKeys(query: ListApiKeysQueryDto): Promise<Page<ApiKeyResponseDto>> {
    const limit = query.limit ?? 50;
    // decodeCursor lets only an instant and a uuid through, so a forged cursor never reaches SQL.
    const after = decodeCursor(query.cursor, 2) as [string, string] | undefined;
    const rows = await this.keys.list({ includeRevoked: query.includeRevoked ?? false, after, limit });
    return toPage(rows, limit, (row) => [row.createdKey, row.id], (row) => this.map(row));
  }

  /** Live keys, oldest first (start-up checks and the CLI). */
  async listLiveKeys(): Promise<ApiKeyResponseDto[]> {
    return (await this.keys.listLive()).map((row) => this.map(row));
  }

  async revokeKey(id: string, revokedBy: string): Promise<void> {
    if (!isUUID(id, 'all')) {
      throw new DomainError(400, 'VALIDATION_FAILED', 'id must be a UUID', [
        { field: 'id', message: 'must be a UUID' },
      ]);
    }
    const revoked = await this.keys.revoke(id);
    if (!revoked) throw new DomainError(404, 'API_KEY_NOT_FOUND', `No live API key with id ${id} exists.`);
    this.revocations++;
    const cache = this.cache;
    if (cache) {
      const stale = [...cache.entries()].filter(([, entry]) => entry.principal?.id === id).map(([hash]) => hash);
      for (const hash of stale) cache.delete(hash);
    }
    this.lastTouched.delete(id);
    this.logger.log(`API key ${id} revoked by ${revokedBy}`);
  }

  /** The principal of a presented key, or undefined when it is unknown or revoked. */
  async authenticate(presented: string): Promise<RequestPrincipal | undefined> {
    const hash = hashApiKey(presented);
    if (this.envAdminHash && timingSafeEqual(Buffer.from(hash, 'hex'), this.envAdminHash)) return ENV_ADMIN;
    if (!looksLikeIssuedKey(presented)) return undefined;
    const cached = this.cache?.get(hash);
    const principal = cached ? (cached.principal ?? undefined) : await this.lookUp(hash);
    if (principal) this.noteUse(principal.id, Date.now());
    return principal;
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.touches]);
  }

  private lookUp(hash: string): Promise<RequestPrincipal | undefined> {
    const pending = this.lookups.get(hash);
    if (pending) return pending;
    const revocationsBefore = this.revocations;
    const lookup = this.keys
      .findLiveByHash(hash)
      .then((row) => {
        const principal: RequestPrincipal | undefined = row
          ? Object.freeze({ id: row.id, name: row.name, role: row.role })
          : undefined;
        if (this.revocations === revocationsBefore) this.cache?.set(hash, { principal: principal ?? null });
        return principal;
      })
      .finally(() => this.lookups.delete(hash));
    this.lookups.set(hash, lookup);
    return lookup;
  }

  /** Records the key's use at most once a minute, off the request's path; a failure only logs. */
  private noteUse(id: string, now: number): void {
    if (id === ENV_ADMIN.id || now - (this.lastTouched.get(id) ?? 0) < TOUCH_INTERVAL_MS) return;
    this.lastTouched.set(id, now);
    const touch: Promise<void> = this.keys
      .touch(id)
      .catch((error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        this.logger.warn(`Could not record the use of API key ${id}: ${reason}`);
      })
      .finally(() => this.touches.delete(touch));
    this.touches.add(touch);
  }

  private map(row: ApiKeyRow): ApiKeyResponseDto {
    return {
      id: row.id,
      name: row.name,
      role: row.role,
      prefix: row.prefix,
      createdBy: row.createdBy,
      createdAt: row.createdAt.toISOString(),
      lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
      revokedAt: row.revokedAt?.toISOString() ?? null,
    };
  }
}
