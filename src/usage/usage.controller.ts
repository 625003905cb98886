import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequireRole } from '../auth/require-role.decorator';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { BudgetTrackerService } from './budget-tracker.service';
import { BudgetStatusDto } from './dto/budget-status.dto';
import { RecordUsageDto } from './dto/record-usage.dto';
import { RecordUsageBatchDto, RecordUsageBatchResponseDto } from './dto/usage-batch.dto';
import { UsageHistoryQueryDto, UsageRangeQueryDto } from './dto/usage-query.dto';
import { UsageRecordPageDto, UsageRecordResponseDto } from './dto/usage-record-response.dto';
import { UsageSummaryDto } from './dto/usage-summary.dto';

@ApiTags('Usage')
@Controller('budgets/:id')
export class UsageController {
  constructor(private readonly tracker: BudgetTrackerService) {}

  @Get('status')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'getBudgetStatus', summary: 'Real-time status of the current window (BudgetStatusInfo)' })
  @ApiOkResponse({ type: BudgetStatusDto })
  @ApiProblems(400, 404)
  status(@Param() { id }: IdParamDto): Promise<BudgetStatusDto> {
    return this.tracker.getBudgetStatus(id);
  }

  @Post('usage')
  @RequireRole('service')
  @ApiOperation({
    operationId: 'recordUsage',
    summary: 'Record what a call really cost (idempotent on Idempotency-Key, else requestId)',
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Same key + same body → the original record, counted once.' })
  @ApiCreatedResponse({ type: UsageRecordResponseDto, description: 'Recorded.' })
  @ApiOkResponse({ type: UsageRecordResponseDto, description: 'A replay: header Idempotent-Replayed: true, nothing counted again.' })
  @ApiProblems(400, 404, 409, 413, 415, 422)
  async record(
    @Param() { id }: IdParamDto,
    @Body() body: RecordUsageDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UsageRecordResponseDto> {
    const outcome = await this.tracker.recordUsageWithOutcome(id, body, { idempotencyKey });
    if (outcome.replayed) reply.status(200).header('Idempotent-Replayed', 'true');
    else reply.status(201);
    return outcome.record;
  }

  @Post('usage/batch')
  @HttpCode(200)
  @RequireRole('service')
  @ApiOperation({
    operationId: 'recordUsageBatch',
    summary: 'Record up to 1000 usages in one transaction, each with its own idempotency key and result',
  })
  @ApiOkResponse({ type: RecordUsageBatchResponseDto })
  @ApiProblems(400, 404, 413, 415)
  batch(@Param() { id }: IdParamDto, @Body() body: RecordUsageBatchDto): Promise<RecordUsageBatchResponseDto> {
    return this.tracker.recordUsageBatch(id, body);
  }

  @Get('usage')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'getUsageHistory', summary: 'Usage records, newest first (cursor pagination)' })
  @ApiOkResponse({ type: UsageRecordPageDto })
  @ApiProblems(400, 404)
  history(@Param() { id }: IdParamDto, @Query() query: UsageHistoryQueryDto) {
    return this.tracker.getUsageHistory(id, query);
  }

  @Get('usage/summary')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'getUsageSummary', summary: 'Total, count and breakdowns by model, source, user and day' })
  @ApiOkResponse({ type: UsageSummaryDto })
  @ApiProblems(400, 404)
  summary(@Param() { id }: IdParamDto, @Query() query: UsageRangeQueryDto): Promise<UsageSummaryDto> {
    return this.tracker.getUsageSummary(id, query);
  }

  @Post('refresh-cache')
  @RequireRole('service')
  @HttpCode(200)
  @ApiOperation({ operationId: 'refreshBudgetCache', summary: 'Recompute the status cache from the ledger' })
  @ApiOkResponse({ type: BudgetStatusDto })
  @ApiProblems(400, 404)
  refresh(@Param() { id }: IdParamDto): Promise<BudgetStatusDto> {
    return this.tracker.refreshCache(id);
  }
}
