import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { isUUID } from 'class-validator';
import type { NotificationChannelDirectory } from '../budget/notification-channels.types';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { DomainError, validationFailed, type FieldError } from '../common/errors/domain-error';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { ChannelRepository, type ChannelRow } from './channel.repository';
import { DeliveryRepository } from './delivery.repository';
import type { ChannelResponseDto, CreatedChannelDto, RotatedSecretDto, TestNotificationAcceptedDto } from './dto/channel-response.dto';
import type { CreateChannelDto } from './dto/create-channel.dto';
import type { UpdateChannelDto } from './dto/update-channel.dto';
import type { PageQuery } from '../common/pagination';
import { ipLiteralHost, refusalFor } from './network-guard';
import type { ChannelType } from './notification.types';
import { SecretBox } from './secret-box';

/** SPEC §13: after a rotation the previous secret keeps signing for 24 h. */
const ROTATION_OVERLAP_SECONDS = 24 * 3600;

const channelNotFound = (id: string) => new DomainError(404, 'CHANNEL_NOT_FOUND', `No notification channel with id ${id} exists.`);

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/**
 * Notification channels (SPEC §13): their rules (shape per type, URL safety, unique names),
 * sealed webhook secrets and their rotation, and the directory budget validation asks.
 */
@Injectable()
export class NotificationChannelService implements NotificationChannelDirectory {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly channels: ChannelRepository,
    private readonly deliveries: DeliveryRepository,
    private readonly secrets: SecretBox,
  ) {}

  /** Live channels that need SECRETS_KEY when this process has none (production without it), else 0. */
  async channelsWithoutKey(): Promise<number> {
    return this.secrets.available() ? 0 : this.channels.countLive();
  }

  async createChannel(dto: CreateChannelDto, actor: string): Promise<CreatedChannelDto> {
    this.checkShape(dto.type, dto, true);
    const secret = dto.type === 'webhook' ? (dto.secret ?? newSecret()) : undefined;
    const row = await this.channels
      .insert({
        name: dto.name,
        type: dto.type,
        url: dto.url ?? null,
        recipients: dto.recipients ?? null,
        secretEncrypted: secret === undefined ? null : this.secrets.encrypt(secret),
        enabled: dto.enabled ?? true,
        createdBy: actor.slice(0, 200) || 'anonymous',
      })
      .catch((error: unknown) => {
        throw nameTaken(error, dto.name);
      });
    return secret === undefined ? this.map(row) : { ...this.map(row), secret };
  }

  async listChannels(query: PageQuery): Promise<Page<ChannelResponseDto>> {
    const limit = query.limit ?? 50;
    const after = decodeCursor(query.cursor, 2) as [string, string] | undefined;
    const rows = await this.channels.list(after, limit);
    return toPage(rows, limit, (row) => [row.createdKey, row.id], (row) => this.map(row));
  }

  async getChannel(id: string): Promise<ChannelResponseDto> {
    return this.map(await this.live(id));
  }

  async updateChannel(id: string, dto: UpdateChannelDto): Promise<ChannelResponseDto> {
    const current = await this.live(id);
    this.checkShape(current.type, dto, false);
    const row = await this.channels.update(id, dto).catch((error: unknown) => {
      throw nameTaken(error, dto.name ?? '');
    });
    if (!row) throw channelNotFound(id);
    return this.map(row);
  }

  async deleteChannel(id: string): Promise<void> {
    if (!(await this.channels.softDelete(id))) throw channelNotFound(id);
  }

  async rotateSecret(id: string): Promise<RotatedSecretDto> {
    const current = await this.live(id);
    if (current.type !== 'webhook') {
      throw new DomainError(422, 'NOT_A_WEBHOOK_CHANNEL', `Channel ${id} is a ${current.type} channel; only webhook channels have a secret.`);
    }
    const secret = newSecret();
    const row = await this.channels.rotateSecret(id, this.secrets.encrypt(secret), ROTATION_OVERLAP_SECONDS);
    if (!row) throw channelNotFound(id);
    return { id, secret, previousSecretExpiresAt: row.previousSecretExpiresAt!.toISOString() };
  }

  /** Queues a `notification.test` event for the channel; the relay sends it like any other. */
  async sendTest(id: string, actor: string): Promise<TestNotificationAcceptedDto> {
    const channel = await this.live(id);
    if (!channel.enabled) throw new DomainError(409, 'CHANNEL_DISABLED', `Channel ${id} is disabled; enable it (PUT enabled: true) first.`);
    const deliveryId = await this.deliveries.enqueueTest(id, { channel: { id, name: channel.name, type: channel.type }, requestedBy: actor });
    if (!deliveryId) throw new DomainError(409, 'CHANNEL_DISABLED', `Channel ${id} was disabled or deleted meanwhile.`);
    return { deliveryId };
  }

  unknownReferences(references: string[]): Promise<string[]> {
    return this.channels.unknownReferences(references);
  }

  private async live(id: string): Promise<ChannelRow> {
    const row = await this.channels.findLive(id);
    if (!row) throw channelNotFound(id);
    return row;
  }

  /** Which fields a type takes, and where its URL may point; `creating` requires the type's own fields. */
  private checkShape(type: ChannelType, dto: Partial<CreateChannelDto>, creating: boolean): void {
    const errors: FieldError[] = Object.entries(dto)
      .filter(([, value]) => value === null)
      .map(([field]) => ({ field, message: `${field} cannot be null` }));
    if (errors.length) throw validationFailed(errors);
    if (dto.name !== undefined && isUUID(dto.name, 'all')) errors.push({ field: 'name', message: 'must not be a UUID (alert rules would read it as a channel id)' });
    if (type === 'email') {
      if (dto.url !== undefined) errors.push({ field: 'url', message: 'is not used by email channels (use recipients)' });
      if (creating && dto.recipients === undefined) errors.push({ field: 'recipients', message: 'is required for email channels' });
    } else {
      if (dto.recipients !== undefined) errors.push({ field: 'recipients', message: `is not used by ${type} channels (use url)` });
      if (creating && dto.url === undefined) errors.push({ field: 'url', message: `is required for ${type} channels` });
    }
    if (dto.secret !== undefined && type !== 'webhook') errors.push({ field: 'secret', message: 'is only used by webhook channels' });
    if (dto.url !== undefined && this.config.nodeEnv === 'production' && !dto.url.startsWith('https://')) {
      errors.push({ field: 'url', message: 'must be an https URL in production' });
    }
    if (errors.length) throw validationFailed(errors);
    if (dto.url !== undefined) {
      const literal = ipLiteralHost(new URL(dto.url));
      const refused = literal === undefined ? undefined : refusalFor(literal, this.config.notify.allowPrivateNetworks);
      if (refused) {
        throw new DomainError(422, 'URL_NOT_ALLOWED', `url: ${refused}`, [{ field: 'url', message: refused }]);
      }
    }
  }

  private map(row: ChannelRow): ChannelResponseDto {
    const overlap = row.previousSecretExpiresAt && row.previousSecretExpiresAt > new Date() ? row.previousSecretExpiresAt.toISOString() : null;
    return {
      id: row.id,
      name: row.name,
      type: row.type,
      url: row.url,
      recipients: row.recipients,
      enabled: row.enabled,
      disabledReason: row.disabledReason,
      previousSecretExpiresAt: overlap,
      createdBy: row.createdBy,
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }
}

function nameTaken(error: unknown, name: string): unknown {
  const { code, constraint } = (error ?? {}) as { code?: string; constraint?: string };
  if (code !== '23505' || constraint !== 'notification_channels_name_live') return error;
  return new DomainError(409, 'CHANNEL_NAME_TAKEN', `A notification channel named "${name}" already exists.`, [
    { field: 'name', message: 'is already used by another channel' },
  ]);
}
