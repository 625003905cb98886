import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import type { ApiKeyRole } from './api-key-role';

export const REQUIRED_ROLE = 'relaycore:required-role';

/**
 * The least role an API key needs for a route (admin ⊇ service ⊇ viewer). On a controller it
 * applies to every route; on a method it overrides the controller's. Every route must declare
 * one or be `@Public()`: the guard refuses routes that do neither.
 */
export const RequireRole = (role: ApiKeyRole) =>
  applyDecorators(SetMetadata(REQUIRED_ROLE, role), ApiExtension('x-required-role', role));
