import { Injectable } from '@nestjs/common';
import { BudgetRegistryService } from '../budget/budget-registry.service';
import type { ScopeType } from '../budget/budget.types';
import type { BudgetTreeNodeDto } from '../budget/dto/budget-hierarchy.dto';
import { BudgetStatusService } from '../usage/budget-status.service';
import type { BudgetHierarchyStatusDto, BudgetStatusTreeNodeDto } from './dto/budget-hierarchy-status.dto';

/**
 * The hierarchy of a scope with every node's status: a view over two rooms (the Budget module's
 * tree, the Usage module's statuses), so it lives above both. Two round trips: the tree, then
 * the statuses of all its nodes.
 */
@Injectable()
export class BudgetHierarchyViewService {
  constructor(
    private readonly registry: BudgetRegistryService,
    private readonly statuses: BudgetStatusService,
  ) {}

  async getHierarchyWithStatus(scopeType: ScopeType, scopeId: string): Promise<BudgetHierarchyStatusDto> {
    const hierarchy = await this.registry.getBudgetHierarchy(scopeType, scopeId);
    const ids = new Set<string>();
    const collect = (node: BudgetTreeNodeDto): void => {
      ids.add(node.id);
      node.children?.forEach(collect);
    };
    for (const family of hierarchy.budgets) [family.budget, ...family.ancestors, family.subtree].forEach(collect);
    const statuses = await this.statuses.getStatuses([...ids]);
    const withStatus = ({ children, ...budget }: BudgetTreeNodeDto): BudgetStatusTreeNodeDto => ({
      ...budget,
      status: statuses.get(budget.id) ?? null,
      ...(children ? { children: children.map(withStatus) } : {}),
    });
    return {
      scopeType: hierarchy.scopeType,
      scopeId: hierarchy.scopeId,
      budgets: hierarchy.budgets.map((family) => ({
        budget: withStatus(family.budget),
        ancestors: family.ancestors.map(withStatus),
        subtree: withStatus(family.subtree),
      })),
    };
  }
}
