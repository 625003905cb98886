import { PartialType, PickType } from '@nestjs/swagger';
import { CreateChannelDto } from './create-channel.dto';

/** Partial update; the type never changes and the secret changes only by rotation. */
export class UpdateChannelDto extends PartialType(PickType(CreateChannelDto, ['name', 'url', 'recipients', 'enabled'] as const)) {}
