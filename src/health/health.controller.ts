import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { Public } from '../common/auth/public.decorator';

@ApiTags('Health')
@Public()
@Controller('health')
export class HealthController {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  @Get('live')
  @ApiOperation({ operationId: 'healthLive', summary: 'The process is up' })
  @ApiOkResponse({ schema: { example: { status: 'ok' } } })
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ operationId: 'healthReady', summary: 'The database answers and the schema is migrated' })
  @ApiOkResponse({ schema: { example: { status: 'ok', database: 'up', pendingMigrations: 0 } } })
  @ApiProblems()
  async ready() {
    await this.dataSource.query('SELECT 1');
    const pending = (await this.dataSource.showMigrations()) ? 1 : 0;
    return { status: pending ? 'migrating' : 'ok', database: 'up', pendingMigrations: pending };
  }
}
