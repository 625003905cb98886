import { RequestMethod, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import type { AppConfig } from './config/configuration';
import { ProblemDetailsDto } from './common/errors/api-problems.decorator';
import { validationFailed } from './common/errors/domain-error';
import { ProblemDetailsFilter } from './common/errors/problem.filter';
import { flattenValidationErrors, VALIDATOR_OPTIONS } from './common/validation';

export const API_PREFIX = 'api/v1';
export const BODY_LIMIT_BYTES = 1024 * 1024;

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

/** The Fastify adapter every instance of the service uses (main and tests alike). */
export function createAdapter(): FastifyAdapter {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: 30_000,
    // Requests carry X-Request-Id; generated when absent (see the logging setup).
    requestIdHeader: 'x-request-id',
    trustProxy: true,
  });
  // JSON only: without this Fastify would also accept text/plain bodies.
  adapter.getInstance().removeContentTypeParser(['text/plain']);
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
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true },
  });
}
