import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** Persistence shape of `budget_usage_records`, the ledger (schema owned by the migrations). */
@Entity({ name: 'budget_usage_records' })
export class UsageRecordEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'budget_id', type: 'uuid' })
  budgetId: string;

  /** NUMERIC kept as its exact text. */
  @Column({ type: 'numeric', precision: 24, scale: 10 })
  amount: string;

  @Column({ type: 'char', length: 3 })
  currency: string;

  @Column({ type: 'varchar', length: 100 })
  source: string;

  @Column({ type: 'varchar', length: 2000, nullable: true })
  description: string | null;

  @Column({ name: 'model_id', type: 'varchar', length: 200, nullable: true })
  modelId: string | null;

  @Column({ name: 'user_id', type: 'varchar', length: 200, nullable: true })
  userId: string | null;

  @Column({ name: 'team_id', type: 'varchar', length: 200, nullable: true })
  teamId: string | null;

  @Column({ name: 'project_id', type: 'varchar', length: 200, nullable: true })
  projectId: string | null;

  @Column({ name: 'request_id', type: 'varchar', length: 200, nullable: true })
  requestId: string | null;

  @Column({ name: 'idempotency_key', type: 'varchar', length: 200, nullable: true })
  idempotencyKey: string | null;

  @Column({ name: 'request_hash', type: 'text', nullable: true })
  requestHash: string | null;

  @Column({ name: 'reservation_id', type: 'uuid', nullable: true })
  reservationId: string | null;

  @Column({ type: 'jsonb', nullable: true })
  metadata: Record<string, unknown> | null;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt: Date;

  @Column({ name: 'recorded_at', type: 'timestamptz' })
  recordedAt: Date;
}

/** Persistence shape of `budget_status_cache`: one row per budget for its current window. */
@Entity({ name: 'budget_status_cache' })
export class BudgetStatusCacheEntity {
  @Column({ name: 'budget_id', type: 'uuid', primary: true })
  budgetId: string;

  @Column({ name: 'period_start', type: 'timestamptz' })
  periodStart: Date;

  @Column({ name: 'period_end', type: 'timestamptz' })
  periodEnd: Date;

  @Column({ name: 'current_amount', type: 'numeric' })
  currentAmount: string;

  @Column({ name: 'usage_count', type: 'bigint' })
  usageCount: string;

  @Column({ name: 'last_usage_at', type: 'timestamptz', nullable: true })
  lastUsageAt: Date | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
