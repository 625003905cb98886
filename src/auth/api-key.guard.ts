import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { AuthenticatedRequest } from '../common/auth/actor.decorator';
import { IS_PUBLIC } from '../common/auth/public.decorator';
import { DomainError } from '../common/errors/domain-error';
import { roleAllows, type ApiKeyRole } from './api-key-role';
import { ApiKeyService } from './api-key.service';
import { REQUIRED_ROLE } from './require-role.decorator';

const REALM = 'Bearer realm="relaycore-budget"';

const unauthorized = (code: string, detail: string, invalidToken: boolean) =>
  new DomainError(401, code, detail, undefined, {
    'WWW-Authenticate': invalidToken ? `${REALM}, error="invalid_token"` : REALM,
  });

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(headers: FastifyRequest['headers']): string | undefined {
  const authorization = headers.authorization?.trim();
  const apiKeyHeader = headers['x-api-key'];
  const apiKey = (Array.isArray(apiKeyHeader) ? apiKeyHeader[0] : apiKeyHeader)?.trim() || undefined;
  let bearer: string | undefined;
  if (authorization) {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) {
      throw unauthorized('API_KEY_INVALID', 'The Authorization header must be "Bearer <API key>".', true);
    }
    bearer = match[1];
  }
  if (bearer && apiKey && bearer !== apiKey) {
    throw unauthorized('API_KEY_INVALID', 'Authorization and X-API-Key carry different keys; send one.', true);
  }
  return bearer ?? apiKey;
}

/**
 * The global guard (APP_GUARD): every route needs an API key unless it is `@Public()`, and the
 * key's role must reach the route's `@RequireRole`. A route declaring neither is refused to
 * every key (fail closed) and logged, so a forgotten decorator cannot open a route.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly logger = new Logger('Auth');
  private readonly undeclaredLogged = new Set<unknown>();

  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;

    const request = context.switchToHttp().getRequest<FastifyRequest & AuthenticatedRequest>();
    const key = presentedKey(request.headers);
    if (!key) {
      const how = 'Send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>".';
      throw unauthorized('API_KEY_MISSING', how, false);
    }
    const principal = await this.keys.authenticate(key);
    if (!principal) throw unauthorized('API_KEY_INVALID', 'The API key is unknown or revoked.', true);
    request.principal = principal;

    const required = this.reflector.getAllAndOverride<ApiKeyRole | undefined>(REQUIRED_ROLE, targets);
    if (!required) {
      const handler = context.getHandler();
      if (!this.undeclaredLogged.has(handler)) {
        this.undeclaredLogged.add(handler);
        this.logger.error(
          `${context.getClass().name}.${handler.name} declares no role (@RequireRole or @Public): ` +
            'refused to every key.',
        );
      }
      throw new DomainError(403, 'ROUTE_ROLE_UNDECLARED', 'This route is closed: it declares no required role.');
    }
    if (!roleAllows(principal.role, required)) {
      throw new DomainError(
        403,
        'ROLE_TOO_LOW',
        `This operation needs a ${required} key (or higher); the key "${principal.name}" is ${principal.role}.`,
      );
    }
    return true;
  }
}
