import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import type { BudgetAlertConfig, BudgetPeriod, Enforcement, ModelPolicy, ScopeType } from './budget.types';

/** Persistence shape of `budget_definitions` (the schema itself is owned by the migrations). */
@Entity({ name: 'budget_definitions' })
@Index('budget_definitions_scope_idx', ['scopeType', 'scopeId'])
export class BudgetDefinitionEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 200 })
  name: string;

  @Column({ type: 'varchar', length: 2000, nullable: true })
  description: string | null;

  @Column({ name: 'scope_type', type: 'text' })
  scopeType: ScopeType;

  @Column({ name: 'scope_id', type: 'varchar', length: 200 })
  scopeId: string;

  @Column({ name: 'parent_id', type: 'uuid', nullable: true })
  parentId: string | null;

  /** NUMERIC kept as its exact text; never a float. */
  @Column({ type: 'numeric', precision: 24, scale: 10 })
  amount: string;

  @Column({ type: 'char', length: 3 })
  currency: string;

  @Column({ type: 'text' })
  period: BudgetPeriod;

  @Column({ name: 'custom_period_days', type: 'integer', nullable: true })
  customPeriodDays: number | null;

  @Column({ name: 'start_date', type: 'timestamptz' })
  startDate: Date;

  @Column({ name: 'end_date', type: 'timestamptz', nullable: true })
  endDate: Date | null;

  @Column({ type: 'boolean', default: true })
  recurring: boolean;

  @Column({ type: 'text', default: 'UTC' })
  timezone: string;

  @Column({ type: 'text', default: 'hard' })
  enforcement: Enforcement;

  @Column({ name: 'warning_threshold', type: 'numeric', precision: 5, scale: 2 })
  warningThreshold: string;

  @Column({ name: 'critical_threshold', type: 'numeric', precision: 5, scale: 2 })
  criticalThreshold: string;

  @Column({ type: 'jsonb', default: () => `'[]'` })
  alerts: BudgetAlertConfig[];

  @Column({ name: 'model_policy', type: 'jsonb', nullable: true })
  modelPolicy: ModelPolicy | null;

  @Column({ type: 'jsonb', nullable: true })
  metadata: Record<string, unknown> | null;

  @Column({ name: 'created_by', type: 'varchar', length: 200 })
  createdBy: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;

  @Column({ type: 'integer' })
  version: number;

  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt: Date | null;
}
