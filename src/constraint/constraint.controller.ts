import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { assertRole, Principal } from '../auth/principal.decorator';
import { RequireRole } from '../auth/require-role.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { Actor, type RequestPrincipal } from '../common/auth/actor.decorator';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { ConstraintService } from './constraint.service';
import { AcknowledgeAlertDto, AlertHistoryDto, AlertParamsDto, ListAlertsQueryDto } from './dto/alert-history.dto';
import { CheckConstraintsDto } from './dto/check-constraints.dto';
import { BudgetConstraintCheckDto } from './dto/constraint-check-response.dto';

@ApiTags('Constraints')
@Controller('budgets/:id')
export class ConstraintController {
  constructor(private readonly constraints: ConstraintService) {}

  @Post('check-constraints')
  @HttpCode(200)
  @RequireRole('viewer')
  @ApiOperation({
    operationId: 'checkBudgetConstraints',
    summary: 'May a request costing about X proceed, and on which model? (a "no" is a 200 answer)',
  })
  @ApiOkResponse({ type: BudgetConstraintCheckDto })
  @ApiProblems(400, 404, 413, 415, 422)
  check(
    @Param() { id }: IdParamDto,
    @Body() body: CheckConstraintsDto,
    @Principal() principal: RequestPrincipal | undefined,
  ): Promise<BudgetConstraintCheckDto> {
    if (body.reserve) assertRole(principal, 'service', 'Reserving');
    return this.constraints.checkBudget(id, body, principal?.name);
  }

  @Get('alerts')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'listBudgetAlerts', summary: 'Triggered alerts (current window; ?all=true for every window)' })
  @ApiOkResponse({ type: [AlertHistoryDto] })
  @ApiProblems(400, 404)
  alerts(@Param() { id }: IdParamDto, @Query() query: ListAlertsQueryDto): Promise<AlertHistoryDto[]> {
    return this.constraints.listAlerts(id, query.all ?? false);
  }

  @Post('alerts/:alertId/acknowledge')
  @HttpCode(200)
  @RequireRole('service')
  @ApiOperation({ operationId: 'acknowledgeBudgetAlert', summary: 'Acknowledge a triggered alert (who, when, note)' })
  @ApiOkResponse({ type: AlertHistoryDto })
  @ApiProblems(400, 404, 415)
  acknowledge(@Param() params: AlertParamsDto, @Body() body: AcknowledgeAlertDto, @Actor() actor: string): Promise<AlertHistoryDto> {
    return this.constraints.acknowledgeAlert(params.id, params.alertId, actor, body ?? {});
  }
}
