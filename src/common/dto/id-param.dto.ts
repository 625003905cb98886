import { ApiProperty } from '@nestjs/swagger';
import { IsUUID } from 'class-validator';

/** The `:id` path parameter of every route that names a row by its UUID. */
export class IdParamDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;
}
