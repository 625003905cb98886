/**
 * What the dashboard says when the API answers with an error: a sentence a person can act on.
 * Pure (no DOM), so a unit spec reads it directly.
 */

/** The part of an RFC 9457 problem+json answer the dashboard reads. */
export interface Problem {
  status: number;
  code?: string;
  detail?: string;
}

export interface ProblemContext {
  /** What the person was doing, e.g. "acknowledge this alert". */
  action: string;
  /** The signed-in key's role, when known. */
  role?: string;
  /** Seconds from the Retry-After header of a 503. */
  retryAfterSeconds?: number;
}

export function problemSentence(problem: Problem, context: ProblemContext): string {
  switch (problem.status) {
    case 0:
      return `The budget service did not answer while trying to ${context.action}: check that it is running and reachable, then try again.`;
    case 401:
      return 'This API key was not accepted (it is unknown or was revoked). Sign in again with a valid key.';
    case 403:
      return (
        `Your key${context.role ? ` (role ${context.role})` : ''} may not ${context.action}. ` +
        'Ask an administrator for a service or admin key if you need to.'
      );
    case 404:
      return `Nothing was found to ${context.action}: it may have been deleted. Go back to the budget tree and reload.`;
    case 503: {
      const wait = context.retryAfterSeconds && context.retryAfterSeconds > 0 ? context.retryAfterSeconds : undefined;
      return (
        `The budget service is temporarily unavailable (its database cannot be reached), so it could not ${context.action}. ` +
        `It recovers by itself: try again ${wait ? `in ${wait} second${wait === 1 ? '' : 's'}` : 'in a few seconds'}.`
      );
    }
    default:
      return `Could not ${context.action} (HTTP ${problem.status}${problem.code ? `, ${problem.code}` : ''})${problem.detail ? `: ${problem.detail}` : '.'}`;
  }
}

/** Retry-After in seconds (a number or an HTTP date); undefined when absent or unreadable. */
export function retryAfterSeconds(header: string | null, now: number = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}
