import { ApiProperty } from '@nestjs/swagger';
import { IsIn, IsString, Matches } from 'class-validator';
import { Trim } from '../../common/validation';
import { API_KEY_ROLES, type ApiKeyRole } from '../api-key-role';

export class CreateApiKeyDto {
  /** Who or what uses the key; recorded as `createdBy` on what the key creates. */
  @ApiProperty({ example: 'relaycore', maxLength: 100 })
  @Trim()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,99}$/, {
    message: 'name must be 1–100 characters of letters, digits, spaces and . _ : @ -, starting with a letter or digit',
  })
  name: string;

  @ApiProperty({ enum: API_KEY_ROLES, example: 'service' })
  @IsIn(API_KEY_ROLES)
  role: ApiKeyRole;
}
