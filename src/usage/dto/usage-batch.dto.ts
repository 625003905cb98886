import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsOptional, IsString, Length } from 'class-validator';
import { setFastPath } from '../../common/fast-path';
import { EachNested } from '../../common/validation';
import { RecordUsageDto } from './record-usage.dto';
import { acceptUsageBatchBody } from './usage-body.fast-path';
import { UsageRecordResponseDto } from './usage-record-response.dto';

export const USAGE_BATCH_MAX = 1000;

export class BatchUsageItemDto extends RecordUsageDto {
  /** This record's idempotency key (else its requestId). */
  @ApiPropertyOptional({ example: 'collector-2025-01-01-000123' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  idempotencyKey?: string;
}

export class RecordUsageBatchDto {
  @ApiProperty({ type: [BatchUsageItemDto], minItems: 1, maxItems: USAGE_BATCH_MAX })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(USAGE_BATCH_MAX)
  @EachNested(BatchUsageItemDto)
  records: BatchUsageItemDto[];
}

// Class-validator walks its metadata for each of up to 1000 records: a third of a batch's CPU.
setFastPath(RecordUsageBatchDto, acceptUsageBatchBody(RecordUsageBatchDto, BatchUsageItemDto, USAGE_BATCH_MAX));

export class BatchItemErrorDto {
  @ApiProperty({ example: 'IDEMPOTENCY_KEY_REUSED' })
  code: string;
  @ApiProperty()
  detail: string;
}

export class BatchItemResultDto {
  /** Position in the request's `records`. */
  @ApiProperty({ example: 0 })
  index: number;
  /** 201 recorded, 200 replayed, or the 4xx this record alone would have got. */
  @ApiProperty({ example: 201 })
  status: number;
  @ApiProperty()
  replayed: boolean;
  @ApiPropertyOptional({ type: UsageRecordResponseDto })
  record?: UsageRecordResponseDto;
  @ApiPropertyOptional({ type: BatchItemErrorDto })
  error?: BatchItemErrorDto;
}

export class RecordUsageBatchResponseDto {
  @ApiProperty({ example: 100 })
  recorded: number;
  @ApiProperty({ example: 0 })
  replayed: number;
  @ApiProperty({ example: 0 })
  failed: number;
  @ApiProperty({ type: [BatchItemResultDto] })
  results: BatchItemResultDto[];
}
