import { RequestMethod, ValidationPipe, type ArgumentMetadata } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import helmet, { type HelmetOptions } from 'helmet';
import { AppModule } from './app.module';
import type { AppConfig } from './config/configuration';
import { ProblemDetailsDto } from './common/errors/api-problems.decorator';
import { DomainError, validationFailed, type FieldError } from './common/errors/domain-error';
import { ProblemDetailsFilter, sendProblem } from './common/errors/problem.filter';
import { RequestLoad } from './common/request-load';
import { fastPathInstance } from './common/fast-path';
import { flattenValidationErrors, VALIDATOR_OPTIONS } from './common/validation';
import { countBusinessMetrics } from './observability/business-metrics';
import { createRootLogger, logRequests, PinoNestLogger } from './observability/logging';
import { MetricsService } from './observability/metrics.service';
import { ShutdownState } from './observability/shutdown-state';
import { REQUEST_ID_HEADER, requestIdFor } from './observability/request-id';

export const API_PREFIX = 'api/v1';
export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Security headers. The CSP is helmet's default (scripts from this origin only, no plugins, no
 * framing by other sites), which Swagger UI runs under as served by @nestjs/swagger: its scripts
 * are files under /docs (swagger-ui-init.js included, no inline script), its inline <style> is
 * allowed by the default style-src 'unsafe-inline', its icons are data: images, and "Try it out"
 * calls this origin. Only `upgrade-insecure-requests` is dropped: on a plain-HTTP deployment it
 * makes browsers fetch the Swagger assets over HTTPS, and /docs stays blank.
 */
export const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: true, directives: { 'upgrade-insecure-requests': null } },
};

const SHUTTING_DOWN = new DomainError(503, 'SHUTTING_DOWN', 'This instance is shutting down; retry the request.', undefined, {
  'Retry-After': '1',
});

/** Deeper bodies are refused: validators and transformers recurse, and no field of ours nests past a few levels. */
const MAX_JSON_DEPTH = 32;

/** A UTF-16 surrogate without its pair: no Unicode character, so PostgreSQL would store U+FFFD instead. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** What a string holds that no field may: the message, or undefined when it is fine. */
const unacceptableText = (text: string): string | undefined =>
  text.includes('\u0000')
    ? 'must not contain NUL characters'
    : LONE_SURROGATE.test(text)
      ? 'must not contain an unpaired UTF-16 surrogate (\\ud800–\\udfff)'
      : undefined;

/** A key as it can be shown in a field path: NUL and lone surrogates escaped. */
const printableKey = (key: string) =>
  key.replace(/\u0000/g, '\\0').replace(/\p{Surrogate}/gu, (unit) => `\\u${unit.charCodeAt(0).toString(16)}`);

/**
 * What PostgreSQL or the validators cannot take, found before they see it: strings or keys with a
 * NUL character or an unpaired surrogate (in every body, nested and free-form fields included),
 * and nesting deeper than MAX_JSON_DEPTH. Iterative, so a hostile body cannot overflow the stack
 * here either. Answers the field path, or undefined when the body is fine.
 */
function unacceptableJson(value: unknown): FieldError | undefined {
  const stack: [unknown, number, string][] = [[value, 0, '']];
  const at = (path: string, key: string) => (path ? `${path}.${key}` : key);
  // Named like validation errors: the field itself, not an index in a list of strings, and a
  // free-form JSON field (metadata) as a whole.
  const fieldOf = (path: string) =>
    path.startsWith('metadata') ? 'metadata' : path.replace(/(\.\d+)+$/, '') || 'body';
  while (stack.length) {
    const [node, depth, path] = stack.pop()!;
    const textProblem = typeof node === 'string' ? unacceptableText(node) : undefined;
    if (textProblem) return { field: fieldOf(path), message: textProblem };
    if (node === null || typeof node !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) {
      return { field: path.split('.')[0] || 'body', message: `is nested deeper than ${MAX_JSON_DEPTH} levels` };
    }
    for (const [key, child] of Object.entries(node as object)) {
      const keyProblem = unacceptableText(key);
      if (keyProblem) return { field: fieldOf(at(path, printableKey(key))), message: keyProblem };
      stack.push([child, depth + 1, at(path, key)]);
    }
  }
  return undefined;
}

/**
 * The ValidationPipe, made total: a validator that throws on an odd input instead of answering
 * (class-validator's IsNumber with maxDecimalPlaces reads `String(1e-7).split('.')[1].length`)
 * gives a 400 naming the input, never a 500.
 */
class InputValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // Custom decorators' values are not validated by the pipe, so they take no fast path either.
    const accepted = metadata.type !== 'custom' && metadata.metatype ? fastPathInstance(metadata.metatype, value) : undefined;
    if (accepted) return accepted;
    try {
      return await super.transform(value, metadata);
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
      const field = metadata.type === 'custom' ? 'request' : metadata.type;
      throw validationFailed([{ field, message: `${field} holds a value that cannot be validated (for example a number in exponent notation)` }]);
    }
  }
}

/** The Fastify adapter every instance of the service uses (main and tests alike). */
export function createAdapter(): FastifyAdapter {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: 30_000,
    // X-Request-Id is honoured when acceptable, else generated (request-id.ts), and always echoed.
    requestIdHeader: false,
    genReqId: requestIdFor,
    trustProxy: true,
    // At close, keep-alive connections with no request in flight are closed; a request in flight
    // finishes first (main.ts bounds the wait). Requests arriving meanwhile get a 503 problem+json
    // from configureApp's hook (Fastify's own 503 would be plain JSON).
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    // Malformed URLs and over-long path parameters are refused by the router, before Nest's filter.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => sendProblem(reply, request, error),
  });
  const fastify = adapter.getInstance();
  // onSend runs for every answer, errors and 404s included.
  fastify.addHook('onSend', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });
  // JSON only: without this Fastify would also accept text/plain bodies.
  fastify.removeContentTypeParser(['text/plain', 'application/json']);
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (request, body, done) =>
    parseJson(request, body as string, (error: Error | null, value?: unknown) => {
      const problem = error ? undefined : unacceptableJson(value);
      done(problem ? validationFailed([problem]) : error, value);
    }),
  );
  return adapter;
}

/** Builds the application with the real pipeline; `listen()` is the caller's. */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.register(config), createAdapter(), {
    bodyParser: false,
    // Start-up lines wait for pino, so every line of the service is JSON (logging.ts).
    bufferLogs: true,
  });
  const logger = createRootLogger(config);
  app.useLogger(new PinoNestLogger(logger));
  app.flushLogs();
  logRequests(app.getHttpAdapter().getInstance(), logger);
  configureApp(app);
  return app;
}

/** Prefix, validation, errors and OpenAPI: shared by main.ts and the tests. */
export function configureApp(app: NestFastifyApplication): void {
  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
    ],
  });
  app.useGlobalPipes(
    new InputValidationPipe({
      ...VALIDATOR_OPTIONS,
      transform: true,
      exceptionFactory: (errors) => validationFailed(flattenValidationErrors(errors)),
    }),
  );
  app.useGlobalFilters(new ProblemDetailsFilter());
  const fastify = app.getHttpAdapter().getInstance();
  // Once app.close() began, a request arriving on an open connection is refused (the ones in
  // flight finish): 503 problem+json, and the connection closes so the client reconnects elsewhere.
  const shutdown = app.get(ShutdownState);
  fastify.addHook('onRequest', async (request, reply) => {
    if (!shutdown.closing) return;
    reply.header('connection', 'close');
    sendProblem(reply, request, SHUTTING_DOWN);
    return reply;
  });
  // Requests in flight, for background work that gives way to them (RequestLoad).
  const load = app.get(RequestLoad);
  fastify.addHook('onRequest', (_request, reply, done) => {
    load.inFlight += 1;
    reply.raw.once('close', () => (load.inFlight -= 1));
    done();
  });
  // Latency by route pattern (not the raw URL), for every answer including 404s and 503s.
  const metrics = app.get(MetricsService);
  fastify.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions?.url, reply.statusCode, reply.elapsedTime / 1000);
  });
  // Checks by outcome and usage by currency, from the answers of those routes.
  countBusinessMetrics(fastify, metrics);
  // Security headers on every answer (routes, 404s, problems). helmet's middleware is built once
  // here: @fastify/helmet built it again for every request, parsing the CSP each time (about 2 %
  // of the service's CPU on the hot routes, docs/performance.md).
  const securityHeaders = helmet(HELMET_OPTIONS);
  fastify.addHook('onRequest', (request, reply, done) =>
    securityHeaders(request.raw, reply.raw, (error?: unknown) => done(error as Error | undefined)),
  );

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('RelayCore Budget Service')
      .setDescription(
        'Budgets, usage ledger, constraint checks and alerts for the RelayCore LLM gateway. ' +
          'Money is a JSON number rounded to 10 decimals (inputs take a number or a decimal string). ' +
          'Every error is application/problem+json (RFC 9457).',
      )
      .setVersion('1.0')
      // Paths carry their /api/v1 prefix, so the server is this origin's root.
      .addServer('/', 'This service (paths include /api/v1)')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key' }, 'bearer')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key' }, 'apiKey')
      .addSecurityRequirements('bearer')
      .addSecurityRequirements('apiKey')
      .build(),
    { extraModels: [ProblemDetailsDto] },
  );
  markPublicOperations(document);
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true },
  });
}

/**
 * Routes outside /api/v1 (health, metrics) need no key: their operations carry no security
 * requirement and no 401/403 answers, so Swagger UI shows them unlocked.
 */
function markPublicOperations(document: OpenAPIObject): void {
  type Operation = NonNullable<OpenAPIObject['paths'][string]['get']>;
  for (const [path, item] of Object.entries(document.paths)) {
    if (path.startsWith(`/${API_PREFIX}/`)) continue;
    for (const operation of Object.values(item) as unknown[]) {
      if (!operation || typeof operation !== 'object' || !('responses' in operation)) continue;
      const publicOperation = operation as Operation;
      publicOperation.security = [];
      delete publicOperation.responses['401'];
      delete publicOperation.responses['403'];
    }
  }
}
