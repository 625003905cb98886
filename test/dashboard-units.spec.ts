import { cumulativeSpend } from '../web/src/chart';
import { problemSentence, retryAfterSeconds } from '../web/src/problems';
import type { BudgetStatus, UsageSummary } from '../web/src/api';

/** The dashboard's pure parts: what it says for an error, and the points of its spend chart. */

describe('problemSentence: 401, 403 and 503 as sentences a person can act on', () => {
  it('401: the key was not accepted, sign in again', () => {
    expect(problemSentence({ status: 401, code: 'UNAUTHORIZED' }, { action: 'load the budgets' })).toBe(
      'This API key was not accepted (it is unknown or was revoked). Sign in again with a valid key.',
    );
  });

  it('403: names the action and the role, says whom to ask', () => {
    expect(problemSentence({ status: 403, code: 'ROLE_TOO_LOW' }, { action: 'acknowledge this alert', role: 'viewer' })).toBe(
      'Your key (role viewer) may not acknowledge this alert. Ask an administrator for a service or admin key if you need to.',
    );
  });

  it('503: the service recovers by itself; says when to retry from Retry-After', () => {
    expect(problemSentence({ status: 503 }, { action: 'load this budget', retryAfterSeconds: 5 })).toBe(
      'The budget service is temporarily unavailable (its database cannot be reached), so it could not load this budget. ' +
        'It recovers by itself: try again in 5 seconds.',
    );
    expect(problemSentence({ status: 503 }, { action: 'load this budget', retryAfterSeconds: 1 })).toMatch(/try again in 1 second\.$/);
    expect(problemSentence({ status: 503 }, { action: 'load this budget' })).toMatch(/try again in a few seconds\.$/);
  });

  it('no answer at all, and any other status with its code and detail', () => {
    expect(problemSentence({ status: 0 }, { action: 'sign in' })).toMatch(/^The budget service did not answer while trying to sign in/);
    expect(problemSentence({ status: 409, code: 'CONFLICT', detail: 'Already acknowledged.' }, { action: 'acknowledge this alert' })).toBe(
      'Could not acknowledge this alert (HTTP 409, CONFLICT): Already acknowledged.',
    );
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(retryAfterSeconds('7')).toBe(7);
    expect(retryAfterSeconds(null)).toBeUndefined();
    expect(retryAfterSeconds('soon')).toBeUndefined();
    const now = Date.parse('2026-11-29T10:00:00Z');
    expect(retryAfterSeconds('Sun, 29 Nov 2026 10:00:30 GMT', now)).toBe(30);
  });
});

describe('cumulativeSpend: the running total of the window, flat where nothing was spent', () => {
  const status = {
    periodStart: '2026-11-01T00:00:00.000Z',
    periodEnd: '2026-12-01T00:00:00.000Z',
    currentAmount: 60,
  } as BudgetStatus;
  const at = (iso: string) => Date.parse(iso);

  it('steps up within each day that has spend, and ends at the status now', () => {
    const summary = { byDay: [{ key: '2026-11-10', amount: 40, count: 2 }, { key: '2026-11-03', amount: 20, count: 1 }] } as UsageSummary;
    const now = at('2026-11-20T12:00:00Z');
    expect(cumulativeSpend(status, summary, now)).toEqual([
      { at: at('2026-11-01T00:00:00Z'), amount: 0 },
      { at: at('2026-11-03T00:00:00Z'), amount: 0 },
      { at: at('2026-11-04T00:00:00Z'), amount: 20 },
      { at: at('2026-11-10T00:00:00Z'), amount: 20 },
      { at: at('2026-11-11T00:00:00Z'), amount: 60 },
      { at: now, amount: 60 },
    ]);
  });

  it('clips today to now and a day before the window to its start', () => {
    const summary = { byDay: [{ key: '2026-10-31', amount: 10, count: 1 }, { key: '2026-11-20', amount: 50, count: 1 }] } as UsageSummary;
    const now = at('2026-11-20T12:00:00Z');
    const points = cumulativeSpend(status, summary, now);
    expect(points.every((point) => point.at >= at(status.periodStart) && point.at <= now)).toBe(true);
    expect(points.at(-2)).toEqual({ at: now, amount: 60 });
  });
});
