import { ApiProperty } from '@nestjs/swagger';
import { IsOmittable } from '../../common/validation';
import { ArrayMaxSize, IsArray, IsString, MaxLength, registerDecorator } from 'class-validator';

function IsModelMap() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isModelMap',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} must map model ids to cheaper model ids (strings of 1–200 characters, at most 200 entries)` },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.keys(value).length <= 200 &&
          Object.entries(value).every(
            ([from, to]) => from.length >= 1 && from.length <= 200 && typeof to === 'string' && to.length >= 1 && to.length <= 200,
          ),
      },
    });
}

/** What `restrict-models` and `auto-downgrade` act on. */
export class ModelPolicyDto {
  /** Models refused once a `restrict-models` alert is reached. */
  @ApiProperty({ example: ['gpt-4', 'claude-opus'] })
  @IsOmittable()
  @IsArray()
  @ArrayMaxSize(200)
  @IsString({ each: true })
  @MaxLength(200, { each: true })
  restrictedModels?: string[];

  /** For each expensive model, the cheaper one to suggest. */
  @ApiProperty({ example: { 'gpt-4': 'gpt-4o-mini' }, type: 'object', additionalProperties: { type: 'string' } })
  @IsOmittable()
  @IsModelMap()
  downgrades?: Record<string, string>;
}
