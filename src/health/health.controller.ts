import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator, type HealthCheckResult } from '@nestjs/terminus';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Public } from '../common/auth/public.decorator';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { DomainError } from '../common/errors/domain-error';
import { ShutdownState } from '../observability/shutdown-state';
import { MigrationStatusRepository } from './migration-status.repository';

/** A readiness probe must answer before the load balancer's own timeout. */
export const READINESS_DATABASE_TIMEOUT_MS = 1000;

@ApiTags('Health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly typeOrm: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly migrations: MigrationStatusRepository,
    private readonly shutdown: ShutdownState,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /** The process answers: restart it when this fails. Never touches the database. */
  @Get('live')
  @ApiOperation({ operationId: 'healthLive', summary: 'The process is up (liveness)' })
  @ApiOkResponse({ schema: { example: { status: 'ok', info: {}, error: {}, details: {} } } })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  /** Send traffic here: the database answers, the schema is migrated and no shutdown is under way. */
  @Get('ready')
  @ApiOperation({ operationId: 'healthReady', summary: 'The database answers and the schema is migrated (readiness)' })
  @ApiOkResponse({
    schema: {
      example: {
        status: 'ok',
        info: { database: { status: 'up' }, migrations: { status: 'up', pending: 0 }, lifecycle: { status: 'up' } },
        error: {},
        details: {},
      },
    },
  })
  @ApiProblems(503)
  async ready(): Promise<HealthCheckResult> {
    try {
      return await this.health.check([
        () => this.typeOrm.pingCheck('database', { connection: this.dataSource }).withTimeout(READINESS_DATABASE_TIMEOUT_MS),
        () => this.migrationCheck(),
        () => {
          const lifecycle = this.indicators.check('lifecycle');
          return this.shutdown.shuttingDown ? lifecycle.down({ message: 'shutting down' }) : lifecycle.up();
        },
      ]);
    } catch (error) {
      if (error instanceof ServiceUnavailableException) throw notReady(error.getResponse() as HealthCheckResult);
      throw error;
    }
  }

  private async migrationCheck() {
    const session = this.indicators.check('migrations');
    try {
      const pending = await this.migrations.pending();
      return pending.length ? session.down({ pending: pending.length, names: pending }) : session.up({ pending: 0 });
    } catch {
      return session.down({ message: 'the database did not answer' });
    }
  }
}

function notReady(result: HealthCheckResult): DomainError {
  const failing = Object.entries(result.error ?? {}).map(([name, detail]) => {
    const extra = detail as { message?: string; pending?: number };
    return `${name} ${extra.pending ? `(${extra.pending} pending)` : extra.message ? `(${extra.message})` : 'down'}`;
  });
  return new DomainError(503, 'NOT_READY', `Not ready: ${failing.join(', ') || 'a check failed'}.`, undefined, {
    'Retry-After': '5',
  });
}
