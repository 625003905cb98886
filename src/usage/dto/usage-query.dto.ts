import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, Length } from 'class-validator';
import { PageQuery } from '../../common/pagination';
import { Satisfies, ToBoolean, UtcInstant } from '../../common/validation';

export class UsageRangeQueryDto {
  /** Inclusive lower bound on occurredAt. */
  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional()
  @UtcInstant()
  from?: string;

  /** Exclusive upper bound on occurredAt. */
  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional()
  @UtcInstant()
  @Satisfies<UsageRangeQueryDto>(
    (value, query) => typeof value !== 'string' || typeof query.from !== 'string' || Date.parse(value) > Date.parse(query.from),
    'must be after from',
  )
  to?: string;
}

export class UsageHistoryQueryDto extends PageQuery {
  @ApiPropertyOptional({ format: 'date-time', description: 'Inclusive lower bound on occurredAt.' })
  @IsOptional()
  @UtcInstant()
  from?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Exclusive upper bound on occurredAt.' })
  @IsOptional()
  @UtcInstant()
  @Satisfies<UsageHistoryQueryDto>(
    (value, query) => typeof value !== 'string' || typeof query.from !== 'string' || Date.parse(value) > Date.parse(query.from),
    'must be after from',
  )
  to?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  modelId?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 100)
  source?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  userId?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  customerId?: string;

  /** Only requests carrying this tag. */
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 64)
  tag?: string;

  /** Include the requests that count toward it through its descendant budgets. */
  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @ToBoolean()
  @IsBoolean()
  includeDescendants?: boolean;
}
