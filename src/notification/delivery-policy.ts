/** What one attempt came to: an HTTP status (webhook, Slack), a sent mail, or an error text. */
export interface AttemptResult {
  status?: number;
  retryAfterSeconds?: number;
  /** Set when the attempt failed without an HTTP answer (or the SMTP server refused the mail). */
  error?: string;
}

export interface AttemptDecision {
  outcome: 'delivered' | 'retry' | 'failed';
  /** When outcome is retry: seconds until the next attempt. */
  delaySeconds?: number;
  /** 410 Gone: the receiver says it will never want this channel's messages again. */
  disableChannel?: boolean;
  /** What the attempt row and the delivery record as the reason. */
  error?: string;
}

export interface RetryPolicy {
  /** Seconds after the 1st, 2nd… failed attempt. */
  schedule: number[];
  /** A delay is scaled by a random factor in [1 − jitter, 1 + jitter]. */
  jitter: number;
}

/** A Retry-After longer than a day is read as a day: the schedule's own longest step is 10 h. */
const MAX_RETRY_AFTER_SECONDS = 86400;

/**
 * The retry rule of SPEC §13: 2xx delivered; 410 disables the channel and fails; otherwise wait
 * the schedule's next step (jittered), or exactly what Retry-After says on 429/503; after the
 * last step, failed. `attempt` counts from 1.
 */
export function decideAfterAttempt(result: AttemptResult, attempt: number, policy: RetryPolicy, random = Math.random): AttemptDecision {
  const { status } = result;
  if (result.error === undefined && (status === undefined || (status >= 200 && status < 300))) return { outcome: 'delivered' };
  const error = result.error ?? `receiver answered HTTP ${status}`;
  if (status === 410) return { outcome: 'failed', disableChannel: true, error: `${error} (Gone): the channel is disabled` };
  if (attempt > policy.schedule.length) return { outcome: 'failed', error };
  if ((status === 429 || status === 503) && result.retryAfterSeconds !== undefined) {
    return { outcome: 'retry', delaySeconds: Math.min(result.retryAfterSeconds, MAX_RETRY_AFTER_SECONDS), error };
  }
  const factor = 1 + policy.jitter * (2 * random() - 1);
  return { outcome: 'retry', delaySeconds: policy.schedule[attempt - 1] * factor, error };
}
