/** Emitted in-process after every delivery attempt (metrics listen). */
export const NOTIFICATION_ATTEMPT_FINISHED = 'notification.attempt.finished';

export interface NotificationAttemptFinished {
  channelType: string;
  /** delivered | retry | failed */
  outcome: string;
  durationSeconds: number;
}

/** Emitted after every poll of the relay: the outbox's backlog. */
export const NOTIFICATION_QUEUE_SAMPLED = 'notification.queue.sampled';

export interface NotificationQueueSample {
  depth: number;
  oldestPendingSeconds: number;
}
