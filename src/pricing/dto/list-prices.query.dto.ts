import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
import { PageQuery } from '../../common/pagination';
import { UtcInstant } from '../../common/validation';
import { IsModelId, IsProviderId, MODEL_ID_PATTERN, PROVIDER_PATTERN } from './token-counts.dto';

export class ListPricesQueryDto extends PageQuery {
  @ApiPropertyOptional({ example: 'openai', pattern: PROVIDER_PATTERN.source })
  @IsOptional()
  @IsProviderId()
  provider?: string;

  /** The model id exactly as stored (no alias matching here). */
  @ApiPropertyOptional({ example: 'gpt-4o', pattern: MODEL_ID_PATTERN.source })
  @IsOptional()
  @IsModelId()
  modelId?: string;

  /** Only the versions in effect at this instant; omitted: every version (history). */
  @ApiPropertyOptional({ example: '2026-01-01T00:00:00Z', format: 'date-time' })
  @IsOptional()
  @UtcInstant()
  at?: string;
}
