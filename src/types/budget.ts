/**
 * The seed's names, exported from one place: types for callers embedding the service, and the
 * three services its examples call.
 */
export type { BudgetAlertConfig, BudgetPeriod, ScopeType, Enforcement, AlertAction, AlertType, ModelPolicy } from '../budget/budget.types';
export type { BudgetResponseDto as BudgetDefinition } from '../budget/dto/budget-response.dto';
export type { CreateBudgetDto as CreateBudgetRequest } from '../budget/dto/create-budget.dto';
export type { UpdateBudgetDto as UpdateBudgetRequest } from '../budget/dto/update-budget.dto';
export type { RecordUsageDto as RecordUsageRequest } from '../usage/dto/record-usage.dto';
export type { UsageRecordResponseDto as UsageRecord } from '../usage/dto/usage-record-response.dto';
export type {
  BudgetStatus, BudgetStatusDto as BudgetStatusInfo, BudgetAlertStatusDto as BudgetAlertStatus,
} from '../usage/dto/budget-status.dto';
export type { BudgetConstraintCheckDto as BudgetConstraintCheck } from '../constraint/dto/constraint-check-response.dto';
export { BudgetRegistryService } from '../budget/budget-registry.service';
export { BudgetTrackerService } from '../usage/budget-tracker.service';
export { BudgetIntegrationService } from '../constraint/budget-integration.service';
/** The hierarchy of a scope with every node's status (`GET /budgets/hierarchy/:type/:id`). */
export { BudgetHierarchyViewService } from '../constraint/budget-hierarchy-view.service';
