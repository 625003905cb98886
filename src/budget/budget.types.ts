export const SCOPE_TYPES = ['organization', 'team', 'user', 'project', 'customer'] as const;
export type ScopeType = (typeof SCOPE_TYPES)[number];

/** One scope a request names (RelayCore's organizationId, teamId, userId, projectId, customerId). */
export interface Scope {
  type: ScopeType;
  id: string;
}

export const BUDGET_PERIODS = ['daily', 'weekly', 'monthly', 'quarterly', 'annual', 'custom'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export const ENFORCEMENTS = ['hard', 'soft'] as const;
export type Enforcement = (typeof ENFORCEMENTS)[number];

export const ALERT_ACTIONS = ['notify', 'restrict-models', 'require-approval', 'block-all', 'auto-downgrade'] as const;
export type AlertAction = (typeof ALERT_ACTIONS)[number];

export const ALERT_TYPES = ['actual', 'forecast'] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export interface BudgetAlertConfig {
  id: string;
  threshold: number;
  type: AlertType;
  actions: AlertAction[];
  notificationChannels: string[];
}

/** What a budget's filter looks at in a request: its model and its tags. */
export interface RequestTraits {
  modelId?: string | null;
  tags?: string[] | null;
}

/** Which requests of its scope a budget counts (SPEC §12.2); null counts all. */
export interface BudgetFilter {
  models?: string[];
  tags?: string[];
}

export const ANOMALY_SENSITIVITIES = ['low', 'medium', 'high'] as const;
export type AnomalySensitivity = (typeof ANOMALY_SENSITIVITIES)[number];

/** Spike detection on the budget's hourly spend (SPEC §15); null on a budget = off. */
export interface AnomalyDetection {
  enabled: boolean;
  sensitivity: AnomalySensitivity;
}

export interface ModelPolicy {
  restrictedModels: string[];
  downgrades: Record<string, string>;
}

/** A budget as stored: money stays the exact NUMERIC text PostgreSQL returned. */
export interface BudgetRecord {
  id: string;
  name: string;
  description: string | null;
  scopeType: ScopeType;
  scopeId: string;
  parentId: string | null;
  amount: string;
  currency: string;
  period: BudgetPeriod;
  customPeriodDays: number | null;
  startDate: Date;
  endDate: Date | null;
  recurring: boolean;
  timezone: string;
  enforcement: Enforcement;
  warningThreshold: string;
  criticalThreshold: string;
  alerts: BudgetAlertConfig[];
  modelPolicy: ModelPolicy | null;
  filter: BudgetFilter | null;
  anomalyDetection: AnomalyDetection | null;
  metadata: Record<string, unknown> | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}
