import { ApiProperty, PickType } from '@nestjs/swagger';
import { API_KEY_ROLES, type ApiKeyRole } from '../api-key-role';

/** A key as listed: never the key, never its hash. */
export class ApiKeyResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ example: 'relaycore' })
  name: string;
  @ApiProperty({ enum: API_KEY_ROLES })
  role: ApiKeyRole;
  /** The key's first characters, to tell keys apart. */
  @ApiProperty({ example: 'rcb_Xk3v9QaL' })
  prefix: string;
  /** The name of the key (or `cli`) that created this one. */
  @ApiProperty({ example: 'development-admin' })
  createdBy: string;
  @ApiProperty({ format: 'date-time' })
  createdAt: string;
  /** Updated at most once a minute. */
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  lastUsedAt: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  revokedAt: string | null;
}

export class ApiKeyPageDto {
  @ApiProperty({ type: [ApiKeyResponseDto] })
  data: ApiKeyResponseDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor: string | null;
}

/** The answer to creating a key: the only time the key itself is shown. */
export class CreatedApiKeyDto extends PickType(ApiKeyResponseDto, ['id', 'name', 'role', 'prefix', 'createdAt'] as const) {
  /** Shown once: store it now; only its hash is kept. */
  @ApiProperty({ example: 'rcb_Xk3v9QaLm2c0W1yq8bN5tR7uZ4eH6jD9sF0gK2pA3xC' })
  key: string;
}
