import { createParamDecorator, ExecutionContext } from '@nestjs/common';

/** The API key a request was authenticated with, set by the auth guard. */
export interface RequestPrincipal {
  id: string;
  name: string;
  role: 'admin' | 'service' | 'viewer';
}

export type AuthenticatedRequest = { principal?: RequestPrincipal };

/** The name recorded as `createdBy` / `acknowledgedBy`: the API key's name. */
export const Actor = createParamDecorator((_: unknown, context: ExecutionContext): string => {
  const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
  return request.principal?.name ?? 'anonymous';
});
