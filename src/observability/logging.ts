import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '../config/configuration';
import { requestIdFor } from './request-id';

/** Secrets that may sit in a request's headers; pino replaces them before a line is written. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/** Readable lines for a developer watching a terminal; JSON lines for everything that collects logs. */
export function prettyLogs(nodeEnv: AppConfig['nodeEnv'], stdoutIsTTY: boolean): boolean {
  return nodeEnv === 'development' && stdoutIsTTY;
}

/**
 * nestjs-pino settings: one JSON line per request (pino-http) carrying the request id, and every
 * Nest `Logger` call routed through the same pino logger (see createApp). Bodies are never
 * logged: pino-http's serializers only take the method, URL and headers. Pretty, coloured lines
 * only for a developer at a terminal; JSON everywhere else. Tests log warnings and errors only
 * unless LOG_LEVEL says otherwise (loadConfig's default).
 */
export function loggerParams(config: AppConfig, stdoutIsTTY = process.stdout.isTTY === true): Params {
  const pretty = prettyLogs(config.nodeEnv, stdoutIsTTY);
  return {
    pinoHttp: {
      level: config.logLevel,
      // Fastify already chose the id (createAdapter's genReqId) and middie copies it onto the raw request.
      genReqId: (req: IncomingMessage) => (req as IncomingMessage & { id?: string }).id ?? requestIdFor(req),
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // A 4xx is the caller's business (info); a 503 is an outage already told by metrics and
      // readiness (warn); any other 5xx needs a look (error).
      customLogLevel: (_req: IncomingMessage, res: ServerResponse, error?: Error) =>
        res.statusCode === 503 ? 'warn' : error || res.statusCode >= 500 ? 'error' : 'info',
      // pino-http invents an Error ("failed with status code 503") for every 5xx; its stack points
      // into pino-http. The real cause of a 500 is logged by the problem filter, so drop it.
      customErrorObject: (_req: IncomingMessage, _res: ServerResponse, error: Error, logged: Record<string, unknown>) => {
        if (!error.message.startsWith('failed with status code')) return logged;
        const { err: _synthetic, ...rest } = logged;
        return rest;
      },
      // Probes and scrapes every few seconds would drown the request log. (Middleware sees a
      // mount-relative `url`; `originalUrl` is the path the caller asked for.)
      autoLogging: { ignore: (req: IncomingMessage) => /^\/(metrics|health\/)/.test(originalUrl(req)) },
      serializers: {
        // The status is what a request line needs; the response headers are ours and constant.
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      ...(pretty ? { transport: { target: 'pino-pretty', options: { singleLine: true, colorize: true } } } : {}),
    },
  };
}

function originalUrl(req: IncomingMessage): string {
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
}
