import { Injectable, Logger, OnApplicationBootstrap, RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { IS_PUBLIC } from '../common/auth/public.decorator';
import type { ApiKeyRole } from './api-key-role';
import { REQUIRED_ROLE } from './require-role.decorator';

/** What a controller route declares about access, read from its decorators. */
export interface RouteAccess {
  controller: string;
  handler: string;
  method: RequestMethod;
  /** The controller's and the method's path fragments (without the global prefix). */
  controllerPaths: string[];
  methodPaths: string[];
  isPublic: boolean;
  requiredRole: ApiKeyRole | undefined;
}

const asArray = (value: string | string[] | undefined) => (Array.isArray(value) ? value : [value ?? '/']);

/**
 * Walks every controller route of the application. The guard enforces what routes declare; this
 * reports, at start-up, the routes that declare nothing (and so are closed to every key), and
 * lets the auth-matrix spec enumerate the routes it checks.
 */
@Injectable()
export class RouteAccessReader implements OnApplicationBootstrap {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  list(): RouteAccess[] {
    const routes: RouteAccess[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const type = wrapper.metatype as (new (...args: unknown[]) => object) | undefined;
      if (!type || !wrapper.instance) continue;
      const prototype = Object.getPrototypeOf(wrapper.instance) as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = prototype[name] as (...args: unknown[]) => unknown;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (method === undefined) continue;
        const targets = [handler, type];
        routes.push({
          controller: type.name,
          handler: name,
          method,
          controllerPaths: asArray(Reflect.getMetadata(PATH_METADATA, type)),
          methodPaths: asArray(Reflect.getMetadata(PATH_METADATA, handler)),
          isPublic: this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets) === true,
          requiredRole: this.reflector.getAllAndOverride<ApiKeyRole | undefined>(REQUIRED_ROLE, targets),
        });
      }
    }
    return routes;
  }

  onApplicationBootstrap(): void {
    for (const route of this.list()) {
      if (route.isPublic || route.requiredRole) continue;
      this.logger.error(
        `${RequestMethod[route.method]} ${route.controller}.${route.handler} declares no role ` +
          '(@RequireRole or @Public): every request to it is refused with 403.',
      );
    }
  }
}
