import { randomUUID } from 'node:crypto';
import { RequestMethod } from '@nestjs/common';
import { API_PREFIX } from '../src/app.setup';
import { roleAllows, type ApiKeyRole } from '../src/auth/api-key-role';
import { ApiKeyService } from '../src/auth/api-key.service';
import { RouteAccessReader, type RouteAccess } from '../src/auth/route-access';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * The auth matrix, generated from the routes the application registered: every route × every
 * kind of caller. A route added later is covered without editing this file, and a route that
 * declares no role fails "every route declares its access".
 */

/** The policy as decided (SPEC §7). Routes of other modules are checked against their own declaration. */
const POLICY: Record<string, ApiKeyRole | 'public'> = {
  'GET /health/live': 'public',
  'GET /health/ready': 'public',
  'POST /api/v1/budgets': 'admin',
  'GET /api/v1/budgets': 'viewer',
  'GET /api/v1/budgets/scope/:type/:id': 'viewer',
  'GET /api/v1/budgets/hierarchy/:type/:id': 'viewer',
  'GET /api/v1/budgets/:id': 'viewer',
  'PUT /api/v1/budgets/:id': 'admin',
  'DELETE /api/v1/budgets/:id': 'admin',
  'POST /api/v1/api-keys': 'admin',
  'GET /api/v1/api-keys': 'admin',
  'DELETE /api/v1/api-keys/:id': 'admin',
  'GET /api/v1/prices': 'viewer',
  'PUT /api/v1/prices/:provider/:modelId': 'admin',
};

type Caller = 'no key' | 'unknown key' | 'revoked key' | ApiKeyRole;
const CALLERS: Caller[] = ['no key', 'unknown key', 'revoked key', 'viewer', 'service', 'admin'];

interface Route extends RouteAccess {
  /** e.g. `GET /api/v1/budgets/:id` */
  label: string;
  pattern: string;
}

let t: TestApp;
let routes: Route[];
const headersOf: Partial<Record<Caller, Record<string, string>>> = {};

const join = (...parts: string[]) =>
  '/' + parts.map((part) => part.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/');

/** The URL pattern Fastify registered for a controller route (with or without the global prefix). */
function registeredPattern(route: RouteAccess): string {
  const method = RequestMethod[route.method];
  const fastify = t.app.getHttpAdapter().getInstance();
  for (const controllerPath of route.controllerPaths) {
    for (const methodPath of route.methodPaths) {
      for (const candidate of [join(API_PREFIX, controllerPath, methodPath), join(controllerPath, methodPath)]) {
        if (fastify.hasRoute({ method: method as 'GET', url: candidate })) return candidate;
      }
    }
  }
  throw new Error(`${method} ${route.controller}.${route.handler}: no registered route found`);
}

/** A concrete URL: a scope type for `:type`, a random UUID for every other parameter. */
const concrete = (pattern: string) =>
  pattern.replace(/:(\w+)/g, (_, name: string) => (name === 'type' ? 'team' : randomUUID()));

const call = (route: Route, caller: Caller) =>
  t.request(
    RequestMethod[route.method],
    concrete(route.pattern),
    ['POST', 'PUT', 'PATCH'].includes(RequestMethod[route.method]) ? {} : undefined,
    headersOf[caller],
  );

beforeAll(async () => {
  t = await createTestApp({ defaultKey: 'none' });
  const revoked = await t.createKey('admin', 'matrix-revoked');
  await t.app.get(ApiKeyService).revokeKey(revoked.id, 'auth-matrix');
  headersOf['unknown key'] = { authorization: `Bearer rcb_${'A'.repeat(43)}` };
  headersOf['revoked key'] = { authorization: `Bearer ${revoked.key}` };
  for (const role of ['viewer', 'service', 'admin'] as const) {
    headersOf[role] = { authorization: `Bearer ${t.keys[role]}` };
  }
  routes = t.app
    .get(RouteAccessReader)
    .list()
    .map((route) => {
      const pattern = registeredPattern(route);
      return { ...route, pattern, label: `${RequestMethod[route.method]} ${pattern}` };
    });
});

afterAll(async () => {
  await t.close();
});

it('finds the routes (the walk itself works)', () => {
  const labels = routes.map((route) => route.label);
  expect(labels).toEqual(expect.arrayContaining(Object.keys(POLICY)));
});

it('every route declares its access: @Public() or @RequireRole(...)', () => {
  const undeclared = routes.filter((route) => !route.isPublic && !route.requiredRole).map((route) => route.label);
  expect(undeclared).toEqual([]);
});

it('every route Fastify serves under /api/v1 is a controller route (so the guard runs on it)', () => {
  const known = new Set(routes.map((route) => route.label));
  const unguarded = t.routes
    .filter((route) => route.url.startsWith(`/${API_PREFIX}/`) && route.method !== 'HEAD')
    .map((route) => `${route.method} ${route.url}`)
    .filter((label) => !known.has(label));
  expect(unguarded).toEqual([]);
});

it('the declared roles match the policy', () => {
  const declared = Object.fromEntries(
    routes
      .filter((route) => route.label in POLICY)
      .map((route) => [route.label, route.isPublic ? 'public' : route.requiredRole]),
  );
  expect(declared).toEqual(POLICY);
});

it('public routes outside the controllers need no key', async () => {
  // /metrics is served by the observability module of every app, the test app included.
  expect(t.routes.map((route) => route.url)).toContain('/metrics');
  for (const path of ['/docs', '/docs-json', '/health/live', '/health/ready', '/metrics']) {
    const response = await t.request('GET', path);
    expect({ path, status: response.status }).toEqual({ path, status: 200 });
  }
});

describe.each(CALLERS)('every route, called with %s', (caller) => {
  it('answers as the route declares', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      const response = await call(route, caller);
      const required = route.requiredRole;
      let expected: string;
      if (route.isPublic) expected = 'neither 401 nor 403';
      else if (caller === 'no key' || caller === 'unknown key' || caller === 'revoked key') expected = '401';
      else if (!required || !roleAllows(caller, required)) expected = '403';
      else expected = 'neither 401 nor 403';

      let ok: boolean;
      if (expected === '401') {
        ok =
          response.status === 401 &&
          String(response.headers['www-authenticate']).startsWith('Bearer') &&
          String(response.headers['content-type']).startsWith('application/problem+json') &&
          response.body?.status === 401;
      } else if (expected === '403') {
        ok = response.status === 403 && String(response.headers['content-type']).startsWith('application/problem+json');
      } else {
        ok = response.status !== 401 && response.status !== 403 && response.status < 500;
      }
      if (!ok) wrong.push(`${route.label}: ${response.status} ${response.body?.code ?? ''}, expected ${expected}`);
    }
    expect(wrong).toEqual([]);
  });
});
