export const CHANNEL_TYPES = ['webhook', 'slack', 'email'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The event types the outbox carries (SPEC §13); rows are written by SQL (notification_enqueue). */
export const EVENT_TYPES = ['budget.alert.triggered', 'budget.anomaly.detected', 'notification.test'] as const;
