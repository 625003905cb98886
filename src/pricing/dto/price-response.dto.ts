import { ApiProperty } from '@nestjs/swagger';

/** One version of a model's prices. Prices are exact decimal strings, USD per million tokens. */
export class PriceResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ example: 'openai' })
  provider: string;
  @ApiProperty({ example: 'gpt-4o' })
  modelId: string;
  @ApiProperty({ example: '2.5' })
  inputPerMTok: string;
  @ApiProperty({ example: '10' })
  outputPerMTok: string;
  /** Null: cached input tokens cost the input price. */
  @ApiProperty({ example: '1.25', nullable: true, type: String })
  cachedInputPerMTok: string | null;
  @ApiProperty({ example: 'USD', enum: ['USD'] })
  currency: string;
  @ApiProperty({ example: '1970-01-01T00:00:00.000Z', format: 'date-time' })
  effectiveFrom: string;
  /** Exclusive; null: until a later version. */
  @ApiProperty({ example: null, format: 'date-time', nullable: true, type: String })
  effectiveTo: string | null;
  /** `@pydantic/genai-prices@<version>` for seeded versions, `admin` for overrides. */
  @ApiProperty({ example: '@pydantic/genai-prices@0.1.8' })
  source: string;
  @ApiProperty({ format: 'date-time' })
  createdAt: string;
  /** The API key that created an override; null for seeded versions. */
  @ApiProperty({ nullable: true, type: String, example: null })
  createdBy: string | null;
}

export class PricePageDto {
  @ApiProperty({ type: [PriceResponseDto] })
  data: PriceResponseDto[];
  @ApiProperty({ type: String, nullable: true })
  nextCursor: string | null;
}
