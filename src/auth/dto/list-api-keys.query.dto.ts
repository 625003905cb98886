import { ToBoolean } from '../../common/validation';
import { IsBoolean, IsOptional } from 'class-validator';
import { ApiProperty } from '@nestjs/swagger';
import { PageQuery } from '../../common/pagination';

export class ListApiKeysQueryDto extends PageQuery {
  /** Also list revoked keys (default: live keys only). */
  @ApiProperty({ required: false, default: false })
  @IsOptional()
  @ToBoolean()
  @IsBoolean()
  includeRevoked?: boolean;
}
