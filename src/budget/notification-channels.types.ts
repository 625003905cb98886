/**
 * The port through which budget validation asks whether an alert rule's `notificationChannels`
 * entries name channels that exist (SPEC §13 routing). Budget owns the interface; the
 * Notification module, which sits above, binds its implementation to the token once, so Budget
 * never imports Notification.
 */
export const NOTIFICATION_CHANNEL_DIRECTORY = Symbol('NOTIFICATION_CHANNEL_DIRECTORY');

/** Entries that route to every enabled channel of a type at delivery time; always accepted. */
export const CHANNEL_TYPE_WORDS = ['email', 'slack', 'webhook'] as const;

export interface NotificationChannelDirectory {
  /** The references (channel ids or names, type words excluded) that name no live channel. */
  unknownReferences(references: string[]): Promise<string[]>;
}
