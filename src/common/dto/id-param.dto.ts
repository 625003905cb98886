import { ApiProperty } from '@nestjs/swagger';
import { isUUID, IsUUID } from 'class-validator';
import { setFastPath } from '../fast-path';

/** The `:id` path parameter of every route that names a row by its UUID. */
export class IdParamDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;
}

// Fastify's params object (its prototype has a null prototype) holding only a UUID `id`.
setFastPath(IdParamDto, (value) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  const id = (value as { id?: unknown }).id;
  if (keys.length !== 1 || keys[0] !== 'id' || !isUUID(id, 'all')) return undefined;
  return Object.assign(new IdParamDto(), { id: id as string });
});
