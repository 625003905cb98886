import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, isUUID, Max, MaxLength, Min } from 'class-validator';
import { DomainError } from './errors/domain-error';
import { toUtcInstant } from './validation';

export class PageQuery {
  /** Page size, 1–500. */
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number = 50;

  /** The `nextCursor` of the previous page. */
  @ApiPropertyOptional({ description: 'The nextCursor of the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  cursor?: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

/**
 * Cursors are opaque to clients: base64url JSON of the last row's sort key. Every list here sorts
 * on an instant, then ids: `[instant, uuid, …]`.
 */
export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * The sort key of a cursor this service returned, `arity` parts long: its instant normalised to
 * UTC (a forged one may carry any offset, SPEC §12.1), its ids uuids. Anything else is a 400
 * naming `cursor`, before any SQL sees it.
 */
export function decodeCursor(cursor: string | undefined, arity: number): string[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === arity) {
      const [at, ...ids] = key;
      const instant = toUtcInstant(at);
      if (instant !== undefined && ids.every((id) => typeof id === 'string' && isUUID(id, 'all'))) return [instant, ...ids];
    }
  } catch {
    // falls through to the 400 below
  }
  throw new DomainError(400, 'INVALID_CURSOR', 'cursor is not a cursor this endpoint returned.', [
    { field: 'cursor', message: 'is not a valid cursor' },
  ]);
}

/** Builds a page from rows fetched with limit + 1, so the extra row tells whether more exist. */
export function toPage<R, T>(rows: R[], limit: number, key: (row: R) => string[], map: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return {
    data: pageRows.map(map),
    nextCursor: more ? encodeCursor(key(pageRows[pageRows.length - 1])) : null,
  };
}
