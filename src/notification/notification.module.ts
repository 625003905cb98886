import { Global, Module } from '@nestjs/common';
import { NOTIFICATION_CHANNEL_DIRECTORY } from '../budget/notification-channels.types';
import { ChannelRepository } from './channel.repository';
import { ChannelSenders } from './channel-senders';
import { DeliveryRelay } from './delivery-relay.service';
import { DeliveryRepository } from './delivery.repository';
import { NotificationChannelController } from './notification-channel.controller';
import { NotificationChannelService } from './notification-channel.service';
import { NotificationDeliveryController } from './notification-delivery.controller';
import { NotificationDeliveryService } from './notification-delivery.service';
import { SecretBox } from './secret-box';

/**
 * Alert delivery (SPEC §13): channels, the outbox relay, the senders and the deliveries API.
 * Global only to hand the Budget module its NOTIFICATION_CHANNEL_DIRECTORY (a token Budget owns)
 * without Budget importing this module.
 */
@Global()
@Module({
  controllers: [NotificationChannelController, NotificationDeliveryController],
  providers: [
    SecretBox,
    ChannelRepository,
    DeliveryRepository,
    ChannelSenders,
    NotificationChannelService,
    NotificationDeliveryService,
    DeliveryRelay,
    { provide: NOTIFICATION_CHANNEL_DIRECTORY, useExisting: NotificationChannelService },
  ],
  exports: [NotificationChannelService, NotificationDeliveryService, DeliveryRelay, NOTIFICATION_CHANNEL_DIRECTORY],
})
export class NotificationModule {}
