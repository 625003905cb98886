import type { TestResponse } from './test-app';

/**
 * Asserts an RFC 9457 problem+json answer: the status (or one of several, where a race decides
 * which), the content type, the members every problem carries (`instance` exactly when given),
 * and that no stack, SQL or driver text leaks into it.
 */
export function expectProblem(res: TestResponse, status: number | number[], instance?: string): void {
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses).toContain(res.status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  expect(res.body).toEqual(
    expect.objectContaining({
      type: expect.any(String),
      title: expect.any(String),
      status: res.status,
      detail: expect.any(String),
      instance: instance ?? expect.any(String),
    }),
  );
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+|SELECT |INSERT |UPDATE budget|QueryFailedError/);
}
