import { ApiProperty } from '@nestjs/swagger';
import { ALERT_ACTIONS, ALERT_TYPES, type AlertAction, type AlertType } from '../../budget/budget.types';

export const BUDGET_STATUSES = ['normal', 'warning', 'critical', 'exceeded'] as const;
export type BudgetStatus = (typeof BUDGET_STATUSES)[number];

/** The seed's BudgetAlertStatus: an alert triggered in the current window. */
export class BudgetAlertStatusDto {
  /** The history row id (acknowledge with it). */
  @ApiProperty({ format: 'uuid' })
  id: string;
  /** The alert's id in the budget definition. */
  @ApiProperty()
  alertId: string;
  @ApiProperty({ example: 80 })
  threshold: number;
  @ApiProperty({ enum: ALERT_TYPES })
  type: AlertType;
  @ApiProperty({ format: 'date-time' })
  triggeredAt: string;
  /** Percent used when it fired. */
  @ApiProperty({ example: 81.2 })
  percentUsed: number;
  /** Spend when it fired. */
  @ApiProperty({ example: 4060 })
  amount: number;
  @ApiProperty({ enum: ALERT_ACTIONS, isArray: true })
  actions: AlertAction[];
  @ApiProperty()
  acknowledged: boolean;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  acknowledgedAt: string | null;
  @ApiProperty({ type: String, nullable: true })
  acknowledgedBy: string | null;
}

/** The seed's BudgetStatusInfo, for the window containing now. */
export class BudgetStatusDto {
  @ApiProperty({ format: 'uuid' })
  budgetId: string;
  /** Usage in the window: this budget and all its descendants. */
  @ApiProperty({ example: 1250.5 })
  currentAmount: number;
  @ApiProperty({ example: 5000 })
  limit: number;
  @ApiProperty({ example: 'USD' })
  currency: string;
  /** current / limit × 100, 2 decimals, not clamped at 100. */
  @ApiProperty({ example: 25.01 })
  percentUsed: number;
  /** max(0, limit − current). */
  @ApiProperty({ example: 3749.5 })
  remaining: number;
  /** max(0, current − limit). */
  @ApiProperty({ example: 0 })
  overage: number;
  /** Whole days left in the window (ceiling); 0 after the budget's end. */
  @ApiProperty({ example: 45 })
  daysRemaining: number;
  /** Average daily spend in the window so far. */
  @ApiProperty({ example: 27.79 })
  burnRate: number;
  /** current + burnRate × days left. */
  @ApiProperty({ example: 2500.9 })
  projectedTotal: number;
  @ApiProperty({ enum: BUDGET_STATUSES })
  status: BudgetStatus;
  @ApiProperty({ type: [BudgetAlertStatusDto] })
  activeAlerts: BudgetAlertStatusDto[];
  @ApiProperty({ format: 'date-time' })
  periodStart: string;
  @ApiProperty({ format: 'date-time' })
  periodEnd: string;
  /** False before startDate and after endDate (or the single window of a non-recurring budget). */
  @ApiProperty()
  active: boolean;
  /** Held by open reservations. */
  @ApiProperty({ example: 0 })
  reservedAmount: number;
  /** Usage records in the window, this budget and its descendants. */
  @ApiProperty({ example: 42 })
  usageCount: number;
  /** When the cached figures were last written. */
  @ApiProperty({ format: 'date-time' })
  lastUpdated: string;
}
