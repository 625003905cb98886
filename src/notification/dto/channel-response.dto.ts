import { ApiProperty } from '@nestjs/swagger';
import { CHANNEL_TYPES, type ChannelType } from '../notification.types';

/** A channel as listed: never its secret. */
export class ChannelResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ example: 'finance-alerts' })
  name: string;
  @ApiProperty({ enum: CHANNEL_TYPES })
  type: ChannelType;
  @ApiProperty({ nullable: true, type: String, example: 'https://hooks.example.com/relaycore' })
  url: string | null;
  @ApiProperty({ nullable: true, type: [String], example: null })
  recipients: string[] | null;
  @ApiProperty()
  enabled: boolean;
  /** Why the service disabled it (a 410 from the receiver), if it did. */
  @ApiProperty({ nullable: true, type: String })
  disabledReason: string | null;
  /** Until when the previous webhook secret still signs too (after a rotation). */
  @ApiProperty({ nullable: true, type: String, format: 'date-time' })
  previousSecretExpiresAt: string | null;
  @ApiProperty({ example: 'development-admin' })
  createdBy: string;
  @ApiProperty({ format: 'date-time' })
  createdAt: string;
  @ApiProperty({ format: 'date-time' })
  updatedAt: string;
}

export class ChannelPageDto {
  @ApiProperty({ type: [ChannelResponseDto] })
  data: ChannelResponseDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor: string | null;
}

/** The answer to creating a channel: a webhook's secret appears here (and on rotation) only. */
export class CreatedChannelDto extends ChannelResponseDto {
  @ApiProperty({ required: false, example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  secret?: string;
}

export class RotatedSecretDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  /** The new secret, shown once. */
  @ApiProperty({ example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  secret: string;
  /** Until then the previous secret signs as well (24 h). */
  @ApiProperty({ format: 'date-time' })
  previousSecretExpiresAt: string;
}

export class TestNotificationAcceptedDto {
  /** The delivery to watch in GET /notification-deliveries. */
  @ApiProperty({ format: 'uuid' })
  deliveryId: string;
}
