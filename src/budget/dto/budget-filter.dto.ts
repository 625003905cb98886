import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsString, Length, Matches } from 'class-validator';
import { IsOmittable } from '../../common/validation';

/** A model id, or a prefix of one followed by a single `*` at the end. */
const MODEL_ENTRY = /^[^*]{1,200}\*?$/;

/**
 * Which requests of its scope a budget counts (SPEC §12.2). Both lists optional; a request must
 * satisfy each list given. A change applies from the next recorded usage on: what was recorded
 * keeps counting where it counted.
 */
export class BudgetFilterDto {
  /** Model ids, or prefixes ending in `*` (`gpt-4o*`); a request without a model matches none. */
  @ApiPropertyOptional({ example: ['gpt-4o*', 'claude-3-5-sonnet'], minItems: 1, maxItems: 100 })
  @IsOmittable()
  @IsArray()
  @ArrayMinSize(1, { message: 'filter.models must list at least one model id or prefix*' })
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @Matches(MODEL_ENTRY, { each: true, message: 'each of filter.models must be a model id of 1–200 characters, or a prefix followed by one * at the end' })
  models?: string[];

  /** Tags the request must all carry. */
  @ApiPropertyOptional({ example: ['production'], minItems: 1, maxItems: 20 })
  @IsOmittable()
  @IsArray()
  @ArrayMinSize(1, { message: 'filter.tags must list at least one tag' })
  @ArrayMaxSize(20, { message: 'filter.tags must list at most 20 tags' })
  @ArrayUnique({ message: 'filter.tags must not repeat a tag' })
  @IsString({ each: true })
  @Length(1, 64, { each: true, message: 'each of filter.tags must be 1–64 characters' })
  tags?: string[];
}
