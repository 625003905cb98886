import { ApiProperty } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID, Matches } from 'class-validator';
import { PageQuery } from '../../common/pagination';
import { SCOPE_TYPES, type ScopeType } from '../budget.types';

export class ListBudgetsQueryDto extends PageQuery {
  @ApiProperty({ enum: SCOPE_TYPES, required: false })
  @IsOptional()
  @IsIn(SCOPE_TYPES)
  scopeType?: ScopeType;

  @IsOptional()
  @Matches(/^[A-Za-z0-9._:@-]{1,200}$/, { message: 'scopeId must be 1–200 characters of letters, digits and . _ : @ -' })
  scopeId?: string;

  @ApiProperty({ format: 'uuid', required: false })
  @IsOptional()
  @IsUUID('all')
  parentId?: string;
}

export class ScopeParamsDto {
  @ApiProperty({ enum: SCOPE_TYPES })
  @IsIn(SCOPE_TYPES)
  type: ScopeType;

  @Matches(/^[A-Za-z0-9._:@-]{1,200}$/, { message: 'id must be 1–200 characters of letters, digits and . _ : @ -' })
  id: string;
}
