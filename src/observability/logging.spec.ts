import Fastify from 'fastify';
import pino from 'pino';
import { loadConfig } from '../config/configuration';
import { loggerOptions, logRequests, PinoNestLogger, prettyLogs } from './logging';

/** Development at a terminal reads pino-pretty lines; anything else (a pipe, a file, production) JSON lines. */
const transportOf = (nodeEnv: string, stdoutIsTTY: boolean) => {
  const config = loadConfig({ NODE_ENV: nodeEnv, DATABASE_URL: 'postgres://localhost/x', ADMIN_API_KEY: 'a'.repeat(32) });
  const options = loggerOptions(config, stdoutIsTTY) as { transport?: { target: string } };
  return options.transport?.target;
};

/** A pino logger with the service's settings, writing its JSON lines into an array. */
function capturedLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const config = { ...loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://localhost/x', ADMIN_API_KEY: 'a'.repeat(32) }), logLevel: level };
  const logger = pino(loggerOptions(config, false), { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

it('pretty lines only in development with a terminal on stdout', () => {
  expect(transportOf('development', true)).toBe('pino-pretty');
  expect(transportOf('development', false)).toBeUndefined();
  expect(transportOf('production', true)).toBeUndefined();
  expect(transportOf('production', false)).toBeUndefined();
  expect(transportOf('test', true)).toBeUndefined();
});

it('the decision itself', () => {
  expect([prettyLogs('development', true), prettyLogs('development', false), prettyLogs('production', true)]).toEqual([
    true,
    false,
    false,
  ]);
});

it('pino-pretty is installed where the transport looks for it', () => {
  expect(() => require.resolve('pino-pretty')).not.toThrow();
});

describe("Nest's Logger calls, as pino lines", () => {
  it('the context, the message, an error stack and an Error object each land in their field', () => {
    const { logger, lines } = capturedLogger('debug');
    const nest = new PinoNestLogger(logger);
    nest.log('key created', 'ApiKeyService');
    nest.warn('poll failed', 'Notification');
    const stack = 'Error: boom\n    at thing (/srv/a.js:1:2)';
    nest.error('sweep failed', stack, 'Reservations');
    nest.error('bare stack, no context', stack);
    nest.error(new Error('as object'), 'Errors');
    nest.debug({ rows: 3 }, 'Maintenance');
    nest.verbose('below the level', 'Trace');
    expect(lines.map(({ level, context, msg, stack: s }) => ({ level, context, msg, stack: s }))).toEqual([
      { level: 30, context: 'ApiKeyService', msg: 'key created', stack: undefined },
      { level: 40, context: 'Notification', msg: 'poll failed', stack: undefined },
      { level: 50, context: 'Reservations', msg: 'sweep failed', stack },
      { level: 50, context: undefined, msg: 'bare stack, no context', stack },
      { level: 50, context: 'Errors', msg: 'as object', stack: undefined },
      { level: 20, context: 'Maintenance', msg: undefined, stack: undefined },
    ]);
    expect((lines[4].err as { message: string }).message).toBe('as object');
    expect(lines[5].rows).toBe(3);
  });
});

describe('the request log', () => {
  async function serve(level: string) {
    const { logger, lines } = capturedLogger(level);
    const app = Fastify({ genReqId: (req) => String(req.headers['x-request-id'] ?? 'generated') });
    logRequests(app, logger);
    app.post('/api/v1/things', async (_request, reply) => reply.status(201).send({ ok: true }));
    app.get('/health/live', async () => ({ status: 'ok' }));
    app.get('/down', async (_request, reply) => reply.status(503).send({}));
    app.get('/broken', async (_request, reply) => reply.status(500).send({}));
    await app.ready();
    return { app, lines };
  }

  it('one line per answer: the request id, method, URL, headers with secrets redacted, the status; never the body', async () => {
    const { app, lines } = await serve('info');
    await app.inject({
      method: 'POST',
      url: '/api/v1/things?x=1',
      headers: { authorization: 'Bearer secret-key', 'x-api-key': 'other-secret', cookie: 'c=1', 'x-request-id': 'call-7' },
      payload: { marker: 'body-never-logged' },
    });
    await app.inject({ method: 'GET', url: '/health/live' });
    await app.close();
    expect(lines).toHaveLength(1);
    const [line] = lines as [{ level: number; msg: string; req: Record<string, unknown> & { headers: Record<string, string> }; res: unknown; responseTime: number }];
    expect(line.level).toBe(30);
    expect(line.msg).toBe('request completed');
    expect(line.req).toMatchObject({ id: 'call-7', method: 'POST', url: '/api/v1/things?x=1' });
    expect(line.req.headers.authorization).toBe('[redacted]');
    expect(line.req.headers['x-api-key']).toBe('[redacted]');
    expect(line.req.headers.cookie).toBe('[redacted]');
    expect(line.res).toEqual({ statusCode: 201 });
    expect(typeof line.responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('body-never-logged');
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('a 503 is a warning, another 5xx an error; below the level nothing is built or written', async () => {
    const { app, lines } = await serve('info');
    await app.inject({ method: 'GET', url: '/down' });
    await app.inject({ method: 'GET', url: '/broken' });
    await app.close();
    expect(lines.map(({ level, msg }) => [level, msg])).toEqual([
      [40, 'request errored'],
      [50, 'request errored'],
    ]);

    const quiet = await serve('warn');
    await quiet.app.inject({ method: 'POST', url: '/api/v1/things', payload: {} });
    await quiet.app.inject({ method: 'GET', url: '/down' });
    await quiet.app.close();
    expect(quiet.lines.map(({ level }) => level)).toEqual([40]);
  });
});
