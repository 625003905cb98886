import { decideAfterAttempt } from './delivery-policy';

const policy = { schedule: [5, 300, 1800], jitter: 0.2 };

describe('decideAfterAttempt (SPEC §13 retries)', () => {
  it('a 2xx or a sent mail is delivered', () => {
    expect(decideAfterAttempt({ status: 204 }, 1, policy)).toEqual({ outcome: 'delivered' });
    expect(decideAfterAttempt({}, 3, policy)).toEqual({ outcome: 'delivered' });
  });

  it('410 fails at once and disables the channel, whatever the attempt', () => {
    expect(decideAfterAttempt({ status: 410 }, 1, policy)).toMatchObject({ outcome: 'failed', disableChannel: true });
  });

  it('other failures wait the schedule step of their attempt, jittered within ±jitter', () => {
    expect(decideAfterAttempt({ status: 500 }, 2, policy, () => 0).delaySeconds).toBeCloseTo(240);
    expect(decideAfterAttempt({ status: 500 }, 2, policy, () => 1).delaySeconds).toBeCloseTo(360);
    expect(decideAfterAttempt({ error: 'ECONNREFUSED' }, 1, policy, () => 0.5)).toEqual({ outcome: 'retry', delaySeconds: 5, error: 'ECONNREFUSED' });
  });

  it('429 and 503 wait exactly what Retry-After says (capped at a day)', () => {
    expect(decideAfterAttempt({ status: 429, retryAfterSeconds: 7 }, 1, policy)).toMatchObject({ outcome: 'retry', delaySeconds: 7 });
    expect(decideAfterAttempt({ status: 503, retryAfterSeconds: 999999 }, 1, policy).delaySeconds).toBe(86400);
    expect(decideAfterAttempt({ status: 500, retryAfterSeconds: 7 }, 1, policy, () => 0.5).delaySeconds).toBe(5);
  });

  it('after the last step of the schedule the delivery fails', () => {
    expect(decideAfterAttempt({ status: 500 }, 3, policy).outcome).toBe('retry');
    expect(decideAfterAttempt({ status: 500 }, 4, policy)).toEqual({ outcome: 'failed', error: 'receiver answered HTTP 500' });
  });
});
