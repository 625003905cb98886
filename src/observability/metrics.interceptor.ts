import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { tap, type Observable } from 'rxjs';
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
 */
@Injectable()
export class MetricsInterceptor implements NestInterceptor {
  constructor(private readonly metrics: MetricsService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const route = request.routeOptions?.url ?? '';
    if (request.method !== 'POST') return next.handle();
    return next.handle().pipe(tap((body: unknown) => this.count(route, reply, body)));
  }

  private count(route: string, reply: FastifyReply, body: unknown): void {
    if (!body || typeof body !== 'object') return;
    if (route.endsWith('/check-constraints')) {
      const answer = body as CheckAnswer;
      this.metrics.countCheck(answer.canProceed === true, answer.rule ?? 'unknown');
    } else if (route.endsWith('/budgets/:id/usage')) {
      if (reply.getHeader('idempotent-replayed') === 'true') return;
      this.countRecord(body as UsageRecordAnswer);
    } else if (route.endsWith('/budgets/:id/usage/batch')) {
      for (const result of (body as { results?: { status?: number; record?: UsageRecordAnswer }[] }).results ?? []) {
        if (result.status === 201 && result.record) this.countRecord(result.record);
      }
    } else if (route.endsWith('/integration/usage')) {
      const answer = body as { replayed?: boolean; records?: UsageRecordAnswer[] };
      if (answer.replayed) return;
      for (const record of answer.records ?? []) this.countRecord(record);
    }
  }

  private countRecord(record: UsageRecordAnswer): void {
    if (typeof record.amount === 'number' && typeof record.currency === 'string') {
      this.metrics.countUsage(record.amount, record.currency);
    }
  }
}
