import { HttpException, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { DomainError, FieldError } from './domain-error';
import { mapPostgresError } from './postgres-errors';

/** RFC 9457 problem details, with a stable `code` as an extension member. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  errors?: FieldError[];
}

export interface Problem {
  body: ProblemDetails;
  headers: Record<string, string>;
}

const logger = new Logger('Errors');

const kebab = (code: string) => code.toLowerCase().replace(/_/g, '-');

/** Fastify's own errors, raised before a request reaches a controller. */
const FASTIFY_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE', 'The body is larger than 1 MiB.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'MALFORMED_JSON', 'The body is empty but the content type says JSON.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'MALFORMED_REQUEST', 'The Content-Length header does not match the body.'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'MALFORMED_JSON', 'The body is not valid JSON.'],
  FST_ERR_BAD_URL: [400, 'MALFORMED_REQUEST', 'The URL is malformed.'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'URI_TOO_LONG', 'A path parameter is longer than 100 characters.'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'MALFORMED_REQUEST', 'The request could not be routed.'],
};

const HTTP_CODES: Record<number, string> = {
  400: 'BAD_REQUEST', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE', 408: 'REQUEST_TIMEOUT', 409: 'CONFLICT', 412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 422: 'UNPROCESSABLE_ENTITY',
  429: 'TOO_MANY_REQUESTS', 503: 'SERVICE_UNAVAILABLE',
};

function fromHttpException(error: HttpException): DomainError {
  const status = error.getStatus();
  const response = error.getResponse();
  const message =
    typeof response === 'string'
      ? response
      : Array.isArray((response as { message?: unknown }).message)
        ? ((response as { message: string[] }).message).join('; ')
        : String((response as { message?: unknown }).message ?? error.message);
  if (status === 404 && /^Cannot (GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS)/.test(message)) {
    return new DomainError(404, 'ROUTE_NOT_FOUND', 'No such route. The API lives under /api/v1; see /docs.');
  }
  return new DomainError(status, HTTP_CODES[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST'), message);
}

const fastifyCodeOf = (error: unknown) => (error as { code?: string } | undefined)?.code;

function toDomainError(error: unknown): DomainError {
  if (error instanceof DomainError) return error;
  // Nest's Fastify adapter wraps Fastify's own 4xx errors (a body that is not JSON...) in an
  // HttpException; the original, with its stable FST_ code, is the cause.
  if (error instanceof HttpException && FASTIFY_ERRORS[fastifyCodeOf(error.cause) ?? '']) return toDomainError(error.cause);
  if (error instanceof HttpException) return fromHttpException(error);
  const fastifyCode = fastifyCodeOf(error);
  if (fastifyCode && FASTIFY_ERRORS[fastifyCode]) {
    const [status, code, detail] = FASTIFY_ERRORS[fastifyCode];
    return new DomainError(status, code, detail);
  }
  if (error instanceof SyntaxError && (error as { statusCode?: number }).statusCode === 400) {
    return new DomainError(400, 'MALFORMED_JSON', 'The body is not valid JSON.');
  }
  const mapped = mapPostgresError(error);
  if (mapped) return mapped;
  const statusCode = (error as { statusCode?: number })?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return new DomainError(statusCode, HTTP_CODES[statusCode] ?? 'BAD_REQUEST', STATUS_CODES[statusCode] ?? 'Bad request.');
  }
  return new DomainError(500, 'INTERNAL_ERROR', 'An unexpected error occurred; it has been logged.');
}

/**
 * Turns anything thrown while serving a request into problem+json. Never leaks internals; an
 * unexpected error is logged with the request's id, which its request line carries too.
 */
export function toProblem(error: unknown, instance: string, requestId?: string): Problem {
  const domain = toDomainError(error);
  if (domain.status >= 500 && domain.code === 'INTERNAL_ERROR') {
    const request = requestId === undefined ? '' : ` (request ${requestId})`;
    logger.error(`Unhandled error on ${instance}${request}: ${(error as Error)?.stack ?? String(error)}`);
  }
  const body: ProblemDetails = {
    type: `urn:relaycore:problem:${kebab(domain.code)}`,
    title: STATUS_CODES[domain.status] ?? 'Error',
    status: domain.status,
    detail: domain.detail,
    instance,
    code: domain.code,
  };
  if (domain.errors?.length) body.errors = domain.errors;
  return { body, headers: domain.headers ?? {} };
}
