import fastifyHelmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import { RequestMethod, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { AppModule } from './app.module';
import type { AppConfig } from './config/configuration';
import { ProblemDetailsDto } from './common/errors/api-problems.decorator';
import { validationFailed, type FieldError } from './common/errors/domain-error';
import { ProblemDetailsFilter } from './common/errors/problem.filter';
import { flattenValidationErrors, VALIDATOR_OPTIONS } from './common/validation';

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
export const HELMET_OPTIONS: FastifyHelmetOptions = {
  contentSecurityPolicy: { useDefaults: true, directives: { 'upgrade-insecure-requests': null } },
};

export const SEED_CREATE_BUDGET_EXAMPLE = {
  name: 'Q1 2025 AI Development Budget',
  description: 'Budget for AI development activities',
  scopeType: 'team',
  scopeId: 'team-engineering-ai',
  amount: 5000,
  currency: 'USD',
  period: 'quarterly',
  startDate: '2025-01-01T00:00:00Z',
  recurring: true,
  alerts: [{ threshold: 80, actions: ['notify', 'restrict-models'], notificationChannels: ['email', 'slack'] }],
};

/** Deeper bodies are refused: validators and transformers recurse, and no field of ours nests past a few levels. */
const MAX_JSON_DEPTH = 32;

/**
 * What PostgreSQL or the validators cannot take, found before they see it: strings or keys with a
 * NUL character, and nesting deeper than MAX_JSON_DEPTH. Iterative, so a hostile body cannot
 * overflow the stack here either. Answers the field path, or undefined when the body is fine.
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
    if (typeof node === 'string' && node.includes('\u0000')) return { field: fieldOf(path), message: 'must not contain NUL characters' };
    if (node === null || typeof node !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) {
      return { field: path.split('.')[0] || 'body', message: `is nested deeper than ${MAX_JSON_DEPTH} levels` };
    }
    for (const [key, child] of Object.entries(node as object)) {
      if (key.includes('\u0000')) return { field: fieldOf(at(path, key.replace(/\u0000/g, '\\0'))), message: 'must not contain NUL characters' };
      stack.push([child, depth + 1, at(path, key)]);
    }
  }
  return undefined;
}

/** The Fastify adapter every instance of the service uses (main and tests alike). */
export function createAdapter(): FastifyAdapter {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: 30_000,
    // Requests carry X-Request-Id; generated when absent (see the logging setup).
    requestIdHeader: 'x-request-id',
    trustProxy: true,
  });
  const fastify = adapter.getInstance();
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
    bufferLogs: false,
    logger: config.nodeEnv === 'test' ? ['error', 'warn'] : ['error', 'warn', 'log'],
  });
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
    new ValidationPipe({
      ...VALIDATOR_OPTIONS,
      transform: true,
      exceptionFactory: (errors) => validationFailed(flattenValidationErrors(errors)),
    }),
  );
  app.useGlobalFilters(new ProblemDetailsFilter());
  // Fastify loads the plugin before the routes (at init), so every response gets the headers.
  void app.register(fastifyHelmet, HELMET_OPTIONS);

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
