import { Controller, Get, Logger, Module } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule, NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { RequestPrincipal } from '../common/auth/actor.decorator';
import { Public } from '../common/auth/public.decorator';
import { ProblemDetailsFilter } from '../common/errors/problem.filter';
import { roleAllows } from './api-key-role';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { assertRole } from './principal.decorator';
import { RequireRole } from './require-role.decorator';
import { RouteAccessReader } from './route-access';

@Controller('probe')
class ProbeController {
  @Get('open')
  @Public()
  open() {
    return { ok: true };
  }

  @Get('service')
  @RequireRole('service')
  service() {
    return { ok: true };
  }

  /** The mistake the guard must catch: no @RequireRole, no @Public. */
  @Get('forgotten')
  forgotten() {
    return { ok: true };
  }
}

const PRINCIPALS: Record<string, RequestPrincipal> = {
  'viewer-key': { id: '1', name: 'v', role: 'viewer' },
  'service-key': { id: '2', name: 's', role: 'service' },
  'admin-key': { id: '3', name: 'a', role: 'admin' },
};

@Module({
  imports: [DiscoveryModule],
  controllers: [ProbeController],
  providers: [
    { provide: ApiKeyService, useValue: { authenticate: async (key: string) => PRINCIPALS[key] } },
    ApiKeyGuard,
    RouteAccessReader,
    { provide: APP_GUARD, useExisting: ApiKeyGuard },
  ],
})
class ProbeModule {}

describe('roleAllows', () => {
  it('admin ⊇ service ⊇ viewer', () => {
    expect(roleAllows('admin', 'service')).toBe(true);
    expect(roleAllows('service', 'viewer')).toBe(true);
    expect(roleAllows('service', 'service')).toBe(true);
    expect(roleAllows('viewer', 'service')).toBe(false);
    expect(roleAllows('service', 'admin')).toBe(false);
  });

  it('assertRole throws the guard\'s 403 for rules finer than a route', () => {
    expect(() => assertRole(PRINCIPALS['service-key'], 'service', 'Reserving')).not.toThrow();
    expect(() => assertRole(PRINCIPALS['viewer-key'], 'service', 'Reserving')).toThrow(
      expect.objectContaining({
        status: 403,
        code: 'ROLE_TOO_LOW',
        detail: 'Reserving needs a service key (or higher); the key "v" is viewer.',
      }),
    );
  });
});

describe('ApiKeyGuard on routes of a probe module', () => {
  let app: NestFastifyApplication;
  const errors: string[] = [];
  const get = (path: string, key?: string) =>
    app.inject({ method: 'GET', url: path, headers: key ? { 'x-api-key': key } : {} });

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => void errors.push(String(message)));
    app = await NestFactory.create<NestFastifyApplication>(ProbeModule, new FastifyAdapter(), { logger: false });
    app.useGlobalFilters(new ProblemDetailsFilter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await app.close();
  });

  it('reports, at start-up, the route that declares no role', () => {
    expect(errors).toEqual([expect.stringContaining('GET ProbeController.forgotten declares no role')]);
  });

  it('lists each route with what it declares', () => {
    const routes = app.get(RouteAccessReader).list();
    expect(routes.map(({ handler, isPublic, requiredRole }) => ({ handler, isPublic, requiredRole }))).toEqual([
      { handler: 'open', isPublic: true, requiredRole: undefined },
      { handler: 'service', isPublic: false, requiredRole: 'service' },
      { handler: 'forgotten', isPublic: false, requiredRole: undefined },
    ]);
  });

  it('lets anyone reach a public route', async () => {
    expect((await get('/probe/open')).statusCode).toBe(200);
  });

  it('enforces the declared role', async () => {
    expect((await get('/probe/service')).statusCode).toBe(401);
    expect((await get('/probe/service', 'viewer-key')).statusCode).toBe(403);
    expect((await get('/probe/service', 'service-key')).statusCode).toBe(200);
    expect((await get('/probe/service', 'admin-key')).statusCode).toBe(200);
  });

  it('fails closed on a route without a declared role: 403 even for admin, and says so in the log', async () => {
    errors.length = 0;
    expect((await get('/probe/forgotten')).statusCode).toBe(401);
    const refused = await get('/probe/forgotten', 'admin-key');
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'ROUTE_ROLE_UNDECLARED' });
    await get('/probe/forgotten', 'admin-key');
    expect(errors).toEqual([expect.stringContaining('ProbeController.forgotten declares no role')]); // logged once
  });
});
