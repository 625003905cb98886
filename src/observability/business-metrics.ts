import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MetricsService } from './metrics.service';

interface CheckAnswer {
  canProceed?: boolean;
  /** The rule of the ladder that answered (BudgetConstraintCheck.rule). */
  rule?: string;
}

interface UsageRecordAnswer {
  amount?: number;
  currency?: string;
}

/**
 * Business counters from the answers of the check and usage routes, so the services stay free
 * of metrics code. Only successful answers count; a replay (Idempotent-Replayed) records nothing.
 * Read in Fastify's preSerialization hook, which sees the answer object just before it becomes
 * JSON: a Nest interceptor did this before, and the interceptor chain (rxjs, an async scope per
 * request) cost every route more than the counting itself (docs/performance.md).
 */
export function countBusinessMetrics(fastify: FastifyInstance, metrics: MetricsService): void {
  fastify.addHook('preSerialization', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done) => {
    if (request.method === 'POST' && reply.statusCode < 300 && payload !== null && typeof payload === 'object') {
      count(metrics, request.routeOptions?.url ?? '', reply, payload);
    }
    done(null, payload);
  });
}

function count(metrics: MetricsService, route: string, reply: FastifyReply, body: object): void {
  if (route.endsWith('/check-constraints')) {
    const answer = body as CheckAnswer;
    metrics.countCheck(answer.canProceed === true, answer.rule ?? 'unknown');
  } else if (route.endsWith('/budgets/:id/usage')) {
    if (reply.getHeader('idempotent-replayed') === 'true') return;
    countRecord(metrics, body as UsageRecordAnswer);
  } else if (route.endsWith('/budgets/:id/usage/batch')) {
    for (const result of (body as { results?: { status?: number; record?: UsageRecordAnswer }[] }).results ?? []) {
      if (result.status === 201 && result.record) countRecord(metrics, result.record);
    }
  } else if (route.endsWith('/integration/usage')) {
    const answer = body as { replayed?: boolean; records?: UsageRecordAnswer[] };
    if (answer.replayed) return;
    for (const record of answer.records ?? []) countRecord(metrics, record);
  }
}

function countRecord(metrics: MetricsService, record: UsageRecordAnswer): void {
  if (typeof record.amount === 'number' && typeof record.currency === 'string') {
    metrics.countUsage(record.amount, record.currency);
  }
}
