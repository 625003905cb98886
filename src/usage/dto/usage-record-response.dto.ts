import { ApiProperty } from '@nestjs/swagger';

/** The seed's UsageRecord: one line of the ledger. */
export class UsageRecordResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  @ApiProperty({ example: 25.5 })
  amount: number;
  @ApiProperty({ example: 'USD' })
  currency: string;
  @ApiProperty({ example: 'relaycore' })
  source: string;
  @ApiProperty({ type: String, nullable: true })
  description: string | null;
  @ApiProperty({ type: String, nullable: true })
  modelId: string | null;
  @ApiProperty({ type: String, nullable: true })
  userId: string | null;
  @ApiProperty({ type: String, nullable: true })
  teamId: string | null;
  @ApiProperty({ type: String, nullable: true })
  projectId: string | null;
  @ApiProperty({ type: String, nullable: true })
  customerId: string | null;
  @ApiProperty({ type: [String], example: ['chat', 'production'] })
  tags: string[];
  @ApiProperty({ type: String, nullable: true })
  requestId: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  reservationId: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  metadata: Record<string, unknown> | null;
  @ApiProperty({ format: 'date-time' })
  occurredAt: string;
  @ApiProperty({ format: 'date-time' })
  recordedAt: string;
  /**
   * The budgets the request matched (SPEC §12.2): it counts toward each of them and every ancestor
   * of any of them, each once. A single-budget write matched its budget only.
   */
  @ApiProperty({ type: [String], format: 'uuid' })
  matchedBudgetIds: string[];
  /** The catalog provider whose price was used (token-priced), or as the client named it. */
  @ApiProperty({ type: String, nullable: true, example: 'openai' })
  provider: string | null;
  @ApiProperty({ type: 'integer', nullable: true, example: 1200 })
  inputTokens: number | null;
  @ApiProperty({ type: 'integer', nullable: true, example: 350 })
  outputTokens: number | null;
  @ApiProperty({ type: 'integer', nullable: true, example: 0 })
  cachedInputTokens: number | null;
  /** The price version (GET /prices) the amount was computed from; null when the client gave the amount. */
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  priceId: string | null;
}

export class UsageRecordPageDto {
  @ApiProperty({ type: [UsageRecordResponseDto] })
  data: UsageRecordResponseDto[];
  @ApiProperty({ type: String, nullable: true })
  nextCursor: string | null;
}
