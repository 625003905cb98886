import type { LoggerService } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import pino, { type Level, type Logger, type LoggerOptions } from 'pino';
import type { AppConfig } from '../config/configuration';

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
 * pino's settings: JSON lines on stdout, the secrets of REDACTED_PATHS replaced, tests at `warn`
 * unless LOG_LEVEL says otherwise (loadConfig's default). Pretty, coloured lines only for a
 * developer at a terminal.
 */
export function loggerOptions(config: AppConfig, stdoutIsTTY = process.stdout.isTTY === true): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(prettyLogs(config.nodeEnv, stdoutIsTTY)
      ? { transport: { target: 'pino-pretty', options: { singleLine: true, colorize: true } } }
      : {}),
  };
}

export const createRootLogger = (config: AppConfig): Logger => pino(loggerOptions(config));

/** A string that is a stack trace, as Nest's ConsoleLogger recognises one. */
const STACK = /^(.)+\n\s+at .+:\d+:\d+/;

/**
 * Nest's `Logger` calls, written by pino: `{context, msg}`, an Error as `err`, an object's fields
 * merged into the line, an error's stack as `stack`. Nest passes the Logger's context as the last
 * argument; a lone string after an error's message is its stack when it reads like one.
 */
export class PinoNestLogger implements LoggerService {
  constructor(readonly pino: Logger) {}

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: Level, message: unknown, params: unknown[]): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const fields: Record<string, unknown> = {};
    let rest = params;
    const last = params[params.length - 1];
    if (typeof last === 'string' && !(level === 'error' && params.length === 1 && STACK.test(last))) {
      fields.context = last;
      rest = params.slice(0, -1);
    }
    const stack = rest.find((param): param is string => typeof param === 'string' && STACK.test(param));
    if (stack) fields.stack = stack;
    if (message instanceof Error) this.pino[level]({ ...fields, err: message });
    else if (message !== null && typeof message === 'object') this.pino[level]({ ...fields, ...message });
    else this.pino[level](fields, String(message));
  }
}

/** Probes and scrapes every few seconds would drown the request log. */
const UNLOGGED = /^\/(metrics|health\/)/;

/**
 * The request log: one line per answer, written after it was sent (Fastify's onResponse), so a
 * request never waits for its log line, and built only when its level is enabled, so a request
 * costs nothing here when the line is not written. A 4xx is the caller's business (info); a 503
 * is an outage already told by metrics and readiness (warn); any other 5xx needs a look (error),
 * and its cause was logged by the problem filter with the same request id. Bodies are never
 * logged: the line takes the method, URL, headers (secrets redacted) and the status.
 */
export function logRequests(fastify: FastifyInstance, logger: Logger): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    const level = status === 503 ? 'warn' : status >= 500 ? 'error' : 'info';
    if (logger.isLevelEnabled(level) && !UNLOGGED.test(request.url)) {
      logger[level](requestLine(request, reply), status >= 500 ? 'request errored' : 'request completed');
    }
    done();
  });
}

function requestLine(request: FastifyRequest, reply: FastifyReply) {
  const socket = request.raw.socket;
  return {
    req: {
      id: request.id,
      method: request.method,
      url: request.url,
      headers: request.headers,
      remoteAddress: socket?.remoteAddress,
      remotePort: socket?.remotePort,
    },
    res: { statusCode: reply.statusCode },
    responseTime: Math.round(reply.elapsedTime),
  };
}
