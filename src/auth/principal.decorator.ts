import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest, RequestPrincipal } from '../common/auth/actor.decorator';
import { DomainError } from '../common/errors/domain-error';
import { roleAllows, type ApiKeyRole } from './api-key-role';

/** The API key a request was authenticated with (undefined only on @Public() routes). */
export const Principal = createParamDecorator(
  (_: unknown, context: ExecutionContext): RequestPrincipal | undefined =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().principal,
);

/**
 * For a rule finer than a route's role, e.g. "a viewer may check, reserving needs service"
 * (SPEC §10): throws the same 403 the guard answers when the key's role is too low.
 */
export function assertRole(principal: RequestPrincipal | undefined, required: ApiKeyRole, action: string): void {
  if (principal && roleAllows(principal.role, required)) return;
  const actual = principal ? `; the key "${principal.name}" is ${principal.role}` : '';
  throw new DomainError(403, 'ROLE_TOO_LOW', `${action} needs a ${required} key (or higher)${actual}.`);
}
