import { Body, Controller, Get, HttpCode, Post, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { assertRole, Principal } from '../auth/principal.decorator';
import { RequireRole } from '../auth/require-role.decorator';
import type { RequestPrincipal } from '../common/auth/actor.decorator';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { BudgetIntegrationService } from './budget-integration.service';
import { IntegrationCheckDto, IntegrationScopesDto, IntegrationUsageDto } from './dto/check-constraints.dto';
import { IntegrationCheckResponseDto } from './dto/constraint-check-response.dto';
import { IntegrationSummaryDto, IntegrationUsageResponseDto } from './dto/integration.dto';

@ApiTags('Integration (RelayCore)')
@Controller('integration')
export class IntegrationController {
  constructor(private readonly integration: BudgetIntegrationService) {}

  @Post('check-constraints')
  @HttpCode(200)
  @RequireRole('viewer')
  @ApiOperation({
    operationId: 'integrationCheckConstraints',
    summary: 'Check every active budget of the request\'s scopes and their ancestors together',
  })
  @ApiOkResponse({ type: IntegrationCheckResponseDto })
  @ApiProblems(400, 413, 415, 422)
  check(@Body() body: IntegrationCheckDto, @Principal() principal: RequestPrincipal | undefined): Promise<IntegrationCheckResponseDto> {
    if (body.reserve) assertRole(principal, 'service', 'Reserving');
    return this.integration.checkConstraints(body, principal?.name);
  }

  @Post('usage')
  @RequireRole('service')
  @ApiOperation({
    operationId: 'integrationRecordUsage',
    summary: 'Record one AI request\'s actual cost once per budget tree (idempotent on requestId)',
  })
  @ApiCreatedResponse({ type: IntegrationUsageResponseDto })
  @ApiOkResponse({ type: IntegrationUsageResponseDto, description: 'A replay (Idempotent-Replayed: true).' })
  @ApiProblems(400, 409, 413, 415, 422)
  async usage(@Body() body: IntegrationUsageDto, @Res({ passthrough: true }) reply: FastifyReply): Promise<IntegrationUsageResponseDto> {
    const outcome = await this.integration.recordUsage(body);
    if (outcome.replayed) reply.status(200).header('Idempotent-Replayed', 'true');
    else reply.status(201);
    return outcome;
  }

  @Get('summary')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'integrationSummary', summary: 'Each applicable budget of the scopes with its status' })
  @ApiOkResponse({ type: IntegrationSummaryDto })
  @ApiProblems(400)
  summary(@Query() query: IntegrationScopesDto): Promise<IntegrationSummaryDto> {
    return this.integration.getSummary(query);
  }
}
