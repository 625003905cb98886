import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What a caller may send as X-Request-Id: short and log-safe (no spaces, quotes or newlines). */
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id of one request (Fastify's `genReqId`): the caller's X-Request-Id when it is acceptable,
 * so one id follows a call across services, else a fresh UUID.
 */
export function requestIdFor(request: Pick<IncomingMessage, 'headers'>): string {
  const header = request.headers[REQUEST_ID_HEADER];
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && ACCEPTABLE_REQUEST_ID.test(value) ? value : randomUUID();
}
