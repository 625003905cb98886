import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/errors/domain-error';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { DeliveryRepository, type DeliveryRow } from './delivery.repository';
import type { DeliveryResponseDto } from './dto/delivery-response.dto';
import type { ListDeliveriesQueryDto } from './dto/list-deliveries.query.dto';

/** The deliveries API: what was sent where, with every attempt, and the manual retry. */
@Injectable()
export class NotificationDeliveryService {
  constructor(private readonly deliveries: DeliveryRepository) {}

  async listDeliveries(query: ListDeliveriesQueryDto): Promise<Page<DeliveryResponseDto>> {
    const limit = query.limit ?? 50;
    const before = decodeCursor(query.cursor, 2) as [string, string] | undefined;
    const rows = await this.deliveries.list({ channelId: query.channelId, budgetId: query.budgetId, status: query.status, before, limit });
    return toPage(rows, limit, (row) => [row.createdKey, row.id], (row) => this.map(row));
  }

  async getDelivery(id: string): Promise<DeliveryResponseDto> {
    const [row] = await this.deliveries.list({ id, limit: 1 });
    if (!row) throw new DomainError(404, 'DELIVERY_NOT_FOUND', `No notification delivery with id ${id} exists.`);
    return this.map(row);
  }

  /** Sends a failed delivery again, as the same event (same webhook-id), on a fresh schedule. */
  async retryDelivery(id: string): Promise<DeliveryResponseDto> {
    if (!(await this.deliveries.requeueFailed(id))) {
      const current = await this.getDelivery(id);
      throw new DomainError(409, 'DELIVERY_NOT_FAILED', `Delivery ${id} is ${current.status}; only a failed delivery can be retried.`);
    }
    return this.getDelivery(id);
  }

  private map(row: DeliveryRow): DeliveryResponseDto {
    return {
      id: row.id,
      eventId: row.eventId,
      eventType: row.eventType,
      channelId: row.channelId,
      channelType: row.channelType,
      channelName: row.channelName,
      budgetId: row.budgetId,
      status: row.status,
      attemptCount: row.attemptCount,
      nextAttemptAt: row.status === 'pending' ? row.nextAttemptAt.toISOString() : null,
      deliveredAt: row.deliveredAt?.toISOString() ?? null,
      lastError: row.lastError,
      createdAt: row.createdAt.toISOString(),
      attempts: row.attempts,
    };
  }
}
