import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/require-role.decorator';
import { ScopeParamsDto } from '../budget/dto/list-budgets.query.dto';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { BudgetHierarchyViewService } from './budget-hierarchy-view.service';
import { BudgetHierarchyStatusDto } from './dto/budget-hierarchy-status.dto';

@ApiTags('Budgets')
@Controller('budgets')
export class BudgetHierarchyController {
  constructor(private readonly hierarchy: BudgetHierarchyViewService) {}

  @Get('hierarchy/:type/:id')
  @RequireRole('viewer')
  @ApiOperation({
    operationId: 'getBudgetHierarchy',
    summary: 'Ancestor chain and subtree of each budget of a scope, with status',
  })
  @ApiOkResponse({ type: BudgetHierarchyStatusDto })
  @ApiProblems(400)
  get(@Param() params: ScopeParamsDto): Promise<BudgetHierarchyStatusDto> {
    return this.hierarchy.getHierarchyWithStatus(params.type, params.id);
  }
}
