import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsBoolean, IsEmail, IsIn, IsString, Matches, MaxLength } from 'class-validator';
import { custom, IsOmittable, Trim } from '../../common/validation';
import { CHANNEL_TYPES, type ChannelType } from '../notification.types';

const TYPE_WORDS: readonly string[] = CHANNEL_TYPES;

const isHttpUrl = (value: unknown): boolean => {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password && url.hostname !== '';
  } catch {
    return false;
  }
};

const isWebhookSecret = (value: unknown): boolean => {
  if (typeof value !== 'string' || !/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  const bytes = Buffer.from(value.slice('whsec_'.length), 'base64').length;
  return bytes >= 24 && bytes <= 64;
};

export class CreateChannelDto {
  /** Unique among channels; alert rules may name it in `notificationChannels`. Not a type word. */
  @ApiProperty({ example: 'finance-alerts', maxLength: 200 })
  @Trim()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,199}$/, {
    message: 'name must be 1–200 characters of letters, digits, spaces and . _ : @ -, starting with a letter or digit',
  })
  @custom('isNotTypeWord', (value) => !TYPE_WORDS.includes(String(value)), 'must not be email, slack or webhook (those route to every channel of the type)')
  name: string;

  @ApiProperty({ enum: CHANNEL_TYPES, example: 'webhook' })
  @IsIn(CHANNEL_TYPES)
  type: ChannelType;

  /** Webhook and Slack: where to POST. https in production; no private, loopback or link-local address. */
  @ApiProperty({ required: false, example: 'https://hooks.example.com/relaycore', maxLength: 2000 })
  @IsOmittable()
  @IsString()
  @MaxLength(2000)
  @custom('isHttpUrl', isHttpUrl, 'must be an http(s) URL without credentials')
  url?: string;

  /** Email: 1–20 addresses. */
  @ApiProperty({ required: false, example: ['finance@example.com'] })
  @IsOmittable()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @ArrayUnique()
  @IsEmail({}, { each: true, message: 'recipients must contain only valid email addresses' })
  @MaxLength(254, { each: true })
  recipients?: string[];

  /** Webhook: the signing secret, `whsec_` + base64 of 24–64 bytes; generated when absent. */
  @ApiProperty({ required: false, example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  @IsOmittable()
  @custom('isWebhookSecret', isWebhookSecret, 'must be whsec_ followed by base64 of 24 to 64 bytes')
  secret?: string;

  @ApiProperty({ required: false, default: true })
  @IsOmittable()
  @IsBoolean()
  enabled?: boolean;
}
