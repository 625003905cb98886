import { ApiProperty } from '@nestjs/swagger';
import { CHANNEL_TYPES, DELIVERY_STATUSES, type ChannelType, type DeliveryStatus } from '../notification.types';

export class DeliveryAttemptDto {
  @ApiProperty({ format: 'date-time' })
  attemptedAt: string;
  /** The receiver's HTTP status (webhook, Slack); null for email or when no answer came. */
  @ApiProperty({ nullable: true, type: Number, example: 503 })
  httpStatus: number | null;
  @ApiProperty({ nullable: true, type: String, example: 'ECONNREFUSED: connect ECONNREFUSED 203.0.113.7:443' })
  error: string | null;
  @ApiProperty({ example: 42 })
  durationMs: number;
  @ApiProperty({ enum: ['delivered', 'retry', 'failed'] })
  outcome: string;
}

export class DeliveryResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  /** The event's id: the `webhook-id` of every attempt. */
  @ApiProperty({ format: 'uuid' })
  eventId: string;
  @ApiProperty({ example: 'budget.alert.triggered' })
  eventType: string;
  @ApiProperty({ format: 'uuid' })
  channelId: string;
  @ApiProperty({ enum: CHANNEL_TYPES })
  channelType: ChannelType;
  @ApiProperty({ example: 'finance-alerts' })
  channelName: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  budgetId: string | null;
  @ApiProperty({ enum: DELIVERY_STATUSES })
  status: DeliveryStatus;
  /** Attempts since it was last queued (a manual retry starts again). */
  @ApiProperty({ example: 1 })
  attemptCount: number;
  /** When pending: not before then. */
  @ApiProperty({ nullable: true, type: String, format: 'date-time' })
  nextAttemptAt: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' })
  deliveredAt: string | null;
  @ApiProperty({ nullable: true, type: String })
  lastError: string | null;
  @ApiProperty({ format: 'date-time' })
  createdAt: string;
  @ApiProperty({ type: [DeliveryAttemptDto] })
  attempts: DeliveryAttemptDto[];
}

export class DeliveryPageDto {
  @ApiProperty({ type: [DeliveryResponseDto] })
  data: DeliveryResponseDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor: string | null;
}
