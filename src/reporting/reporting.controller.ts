import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import { RequireRole } from '../auth/require-role.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { PageQuery } from '../common/pagination';
import { UsageRangeQueryDto } from '../usage/dto/usage-query.dto';
import { BudgetReportingService } from './budget-reporting.service';
import { BudgetAnomalyPageDto } from './dto/anomaly.dto';
import { BudgetForecastDto } from './dto/forecast.dto';
import { BudgetPeriodsDto, PeriodsQueryDto } from './dto/periods.dto';
import { WhatIfDto, WhatIfResultDto } from './dto/what-if.dto';
import { USAGE_CSV_COLUMNS } from './usage-csv';

@ApiTags('Reports')
@Controller('budgets/:id')
export class ReportingController {
  constructor(private readonly reports: BudgetReportingService) {}

  @Get('forecast')
  @RequireRole('viewer')
  @ApiOperation({
    operationId: 'getBudgetForecast',
    summary: "The current window's projected total with 80 % and 95 % prediction intervals, P(over limit) and exhaustion time",
  })
  @ApiOkResponse({ type: BudgetForecastDto })
  @ApiProblems(400, 404)
  forecast(@Param() { id }: IdParamDto): Promise<BudgetForecastDto> {
    return this.reports.getForecast(id);
  }

  @Get('periods')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'getBudgetPeriods', summary: 'The last windows, newest (the current, partial one) first: spent, percent, usage count, alerts' })
  @ApiOkResponse({ type: BudgetPeriodsDto })
  @ApiProblems(400, 404)
  periods(@Param() { id }: IdParamDto, @Query() query: PeriodsQueryDto): Promise<BudgetPeriodsDto> {
    return this.reports.getPeriods(id, query);
  }

  @Post('what-if')
  @HttpCode(200)
  @RequireRole('viewer')
  @ApiOperation({
    operationId: 'replayBudgetWhatIf',
    summary: 'Replay recorded usage against proposed settings (read-only): what would have been blocked, downgraded or held for approval',
  })
  @ApiOkResponse({ type: WhatIfResultDto })
  @ApiProblems(400, 404, 413, 415, 422)
  whatIf(@Param() { id }: IdParamDto, @Body() body: WhatIfDto): Promise<WhatIfResultDto> {
    return this.reports.whatIf(id, body);
  }

  @Get('anomalies')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'listBudgetAnomalies', summary: 'Hours whose spend stood out from the budget\'s baseline, newest first' })
  @ApiOkResponse({ type: BudgetAnomalyPageDto })
  @ApiProblems(400, 404)
  anomalies(@Param() { id }: IdParamDto, @Query() query: PageQuery): Promise<BudgetAnomalyPageDto> {
    return this.reports.listAnomalies(id, query);
  }

  @Get('usage/export')
  @RequireRole('viewer')
  @ApiOperation({
    operationId: 'exportBudgetUsage',
    summary: 'The usage records of [from, to) (all by default) as CSV, oldest first, streamed',
  })
  @ApiProduces('text/csv')
  @ApiOkResponse({
    description: `A header row (${USAGE_CSV_COLUMNS.join(', ')}), then one row per record; attachment named budget-<id>-usage….csv.`,
    schema: { type: 'string' },
  })
  @ApiProblems(400, 404)
  async export(
    @Param() { id }: IdParamDto,
    @Query() query: UsageRangeQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Readable> {
    const csv = await this.reports.exportUsage(id, query);
    reply.type('text/csv; charset=utf-8').header('Content-Disposition', `attachment; filename="${csv.fileName}"`);
    return csv.body;
  }
}
