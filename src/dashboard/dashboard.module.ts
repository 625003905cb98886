import fastifyStatic from '@fastify/static';
import { Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { DomainError } from '../common/errors/domain-error';
import { sendProblem } from '../common/errors/problem.filter';
import { dashboardAssetsDir, dashboardIsBuilt } from './dashboard-assets';
import { SessionController } from './session.controller';

export const DASHBOARD_PREFIX = '/dashboard';

const NOT_BUILT = new DomainError(
  503,
  'DASHBOARD_NOT_BUILT',
  'The dashboard has not been built: run `npm run build` (or `npm start`, which builds it) and reload.',
);

/**
 * Serves the built web UI (sources in web/, built by `npm run build` into web/dist) at
 * /dashboard, as plain files of this origin: the same helmet headers and CSP as every answer
 * (the page loads one script file and one style sheet, no inline script). Its API calls go to
 * /api/v1 with the key the person pasted.
 */
@Module({ controllers: [SessionController] })
export class DashboardModule implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    const root = dashboardAssetsDir();
    if (!dashboardIsBuilt(root)) {
      fastify.get(DASHBOARD_PREFIX, (request, reply) => sendProblem(reply, request, NOT_BUILT));
      fastify.get(`${DASHBOARD_PREFIX}/*`, (request, reply) => sendProblem(reply, request, NOT_BUILT));
      return;
    }
    // Queued, not awaited: awaiting would load Fastify's plugin queue now, registering Nest's routes
    // before Nest installs its error handler (parser errors would lose their problem+json).
    void fastify.register(fastifyStatic, {
      root,
      prefix: DASHBOARD_PREFIX,
      // /dashboard answers a redirect to /dashboard/ (the page's relative asset URLs need the slash).
      redirect: true,
      // Swagger UI registered the reply decorator already.
      decorateReply: false,
      // A rebuilt dashboard is picked up on the next load: the files are small, revalidation is cheap.
      cacheControl: true,
      maxAge: 0,
    });
  }
}
