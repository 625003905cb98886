import { EventEmitter2 } from '@nestjs/event-emitter';
import { RequestLoad } from '../common/request-load';
import { loadConfig } from '../config/configuration';
import type { ChannelRepository } from './channel.repository';
import type { ChannelSenders } from './channel-senders';
import { DeliveryRelay } from './delivery-relay.service';
import type { ClaimedDelivery, DeliveryRepository } from './delivery.repository';

/**
 * The relay yields to the hot path: a timed poll stops after a batch while requests crowd the
 * instance, a direct call still drains the outbox.
 */
describe('DeliveryRelay under load', () => {
  const BATCH = 5;

  /** An outbox of `pending` deliveries to an enabled channel, `inFlight` requests being served. */
  function relayWith(pending: number, inFlight: number) {
    let left = pending;
    const delivery = (n: number): ClaimedDelivery =>
      ({
        id: `d${n}`,
        claimToken: 't',
        attemptCount: 0,
        event: { id: `e${n}`, type: 'notification.test', occurredAt: new Date(), data: {} },
        channel: { id: 'c', type: 'webhook', enabled: true },
      }) as unknown as ClaimedDelivery;
    const deliveries = {
      claimDue: async (limit: number) => {
        const claimed = Array.from({ length: Math.min(limit, left) }, (_, i) => delivery(left - i));
        left -= claimed.length;
        return claimed;
      },
      recordAttempts: async (rows: { id: string }[]) => new Set(rows.map((row) => row.id)),
      queueStats: async () => ({ depth: left, oldestPendingSeconds: 0 }),
    } as unknown as DeliveryRepository;
    const senders = {
      send: async () => ({ status: 200 }),
    } as unknown as ChannelSenders;
    const config = loadConfig({ NODE_ENV: 'test', NOTIFY_BATCH_SIZE: String(BATCH) });
    const load = new RequestLoad();
    load.inFlight = inFlight;
    const relay = new DeliveryRelay(config, deliveries, {} as ChannelRepository, senders, new EventEmitter2(), load);
    return { relay, left: () => left };
  }

  it('a timed poll on a busy instance sends one batch and leaves the rest to the next poll', async () => {
    const { relay, left } = relayWith(40, 50);
    expect(await relay.deliverDue({ yieldWhenBusy: true })).toBe(BATCH);
    expect(left()).toBe(40 - BATCH);
  });

  it('a direct call drains the outbox whatever the load', async () => {
    const { relay, left } = relayWith(40, 50);
    expect(await relay.deliverDue()).toBe(40);
    expect(left()).toBe(0);
  });

  it('a timed poll on a quiet instance drains the outbox', async () => {
    const { relay, left } = relayWith(40, 2);
    expect(await relay.deliverDue({ yieldWhenBusy: true })).toBe(40);
    expect(left()).toBe(0);
  });
});
