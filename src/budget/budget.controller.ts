import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiHeader, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequireRole } from '../auth/require-role.decorator';
import { Actor } from '../common/auth/actor.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import type { Page } from '../common/pagination';
import { BudgetRegistryService } from './budget-registry.service';
import { BudgetPageDto, BudgetResponseDto } from './dto/budget-response.dto';
import { CreateBudgetDto } from './dto/create-budget.dto';
import { ListBudgetsQueryDto, ScopeParamsDto } from './dto/list-budgets.query.dto';
import { UpdateBudgetDto } from './dto/update-budget.dto';

const etag = (reply: FastifyReply, budget: BudgetResponseDto) => {
  reply.header('ETag', `"${budget.version}"`);
  return budget;
};

@ApiTags('Budgets')
@RequireRole('admin')
@Controller('budgets')
export class BudgetController {
  constructor(private readonly registry: BudgetRegistryService) {}

  @Post()
  @ApiOperation({ operationId: 'createBudget', summary: 'Create a budget' })
  @ApiCreatedResponse({ type: BudgetResponseDto })
  @ApiProblems(400, 413, 415, 422, 409)
  async create(@Body() body: CreateBudgetDto, @Actor() actor: string, @Res({ passthrough: true }) reply: FastifyReply) {
    return etag(reply, await this.registry.createBudget(body, actor));
  }

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'listBudgets', summary: 'List budgets (filters, cursor pagination)' })
  @ApiOkResponse({ type: BudgetPageDto })
  @ApiProblems(400)
  list(@Query() query: ListBudgetsQueryDto): Promise<Page<BudgetResponseDto>> {
    return this.registry.listBudgets(query);
  }

  @Get('scope/:type/:id')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'listBudgetsForScope', summary: 'List the budgets of a scope' })
  @ApiOkResponse({ type: [BudgetResponseDto] })
  @ApiProblems(400)
  listForScope(@Param() params: ScopeParamsDto): Promise<BudgetResponseDto[]> {
    return this.registry.listBudgetsForScope(params.type, params.id);
  }

  @Get(':id')
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'getBudget', summary: 'Get a budget' })
  @ApiOkResponse({ type: BudgetResponseDto })
  @ApiProblems(400, 404)
  async get(@Param() { id }: IdParamDto, @Res({ passthrough: true }) reply: FastifyReply) {
    return etag(reply, await this.registry.getBudget(id));
  }

  @Put(':id')
  @ApiOperation({ operationId: 'updateBudget', summary: 'Update some fields of a budget' })
  @ApiHeader({ name: 'If-Match', required: false, description: 'The ETag (or bare version) last read; 412 if it changed.' })
  @ApiOkResponse({ type: BudgetResponseDto })
  @ApiProblems(400, 404, 409, 412, 413, 415, 422)
  async update(
    @Param() { id }: IdParamDto,
    @Body() body: UpdateBudgetDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return etag(reply, await this.registry.updateBudget(id, body, { ifMatch }));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteBudget', summary: 'Soft-delete a budget (its usage and alerts are kept)' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404, 409)
  delete(@Param() { id }: IdParamDto): Promise<void> {
    return this.registry.deleteBudget(id);
  }
}
