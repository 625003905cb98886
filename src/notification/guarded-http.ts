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
 * POSTs a JSON body and answers with the status as soon as the receiver's headers arrive: the
 * body is never read (a 5 MB answer costs nothing), redirects are not followed (a 3xx is just
 * a failed attempt), and the whole exchange is bounded by `timeoutMs`. Addresses are checked by
 * network-guard on the IP literal or on every resolved address.
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
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, {
      method: 'POST',
      agent: false,
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
      response.destroy();
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(error instanceof TransportError ? error : new TransportError(error.code ? `${error.code}: ${error.message}` : error.message));
    });
    request.end(body);
  });
}
