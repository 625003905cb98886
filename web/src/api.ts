import type { components } from '../../clients/typescript/schema';
import { retryAfterSeconds, type Problem } from './problems';

type Schemas = components['schemas'];
export type Budget = Schemas['BudgetResponseDto'];
export type TreeNode = Schemas['BudgetStatusTreeNodeDto'];
export type BudgetStatus = Schemas['BudgetStatusDto'];
export type AlertRow = Schemas['AlertHistoryDto'];
export type UsageRecord = Schemas['UsageRecordResponseDto'];
export type UsageSummary = Schemas['UsageSummaryDto'];
export type Session = Schemas['SessionDto'];
export type Role = Session['role'];

/** SPEC §15: `GET /budgets/:id/forecast`. */
export interface Forecast {
  periodStart: string;
  periodEnd: string;
  currentAmount: number;
  projectedAmount: number;
  lower80: number;
  upper80: number;
  lower95: number;
  upper95: number;
  probabilityOverLimit?: number;
  projectedExhaustionAt?: string | null;
  method?: string;
}

/** SPEC §13: one row of `GET /notification-deliveries`, read defensively (only what is shown). */
export interface Delivery {
  id: string;
  status: string;
  channelId?: string;
  channelName?: string;
  eventType?: string;
  type?: string;
  createdAt?: string;
  deliveredAt?: string | null;
  attempts?: { at?: string; attemptedAt?: string; httpStatus?: number | null; status?: number | null; error?: string | null }[];
}

export class ApiError extends Error {
  constructor(
    readonly problem: Problem,
    readonly retryAfterSeconds?: number,
  ) {
    super(problem.detail ?? `HTTP ${problem.status}`);
  }
}

const RANK: Record<Role, number> = { viewer: 1, service: 2, admin: 3 };
export const roleAllows = (actual: Role, required: Role) => RANK[actual] >= RANK[required];

/**
 * What this service's API offers, read from its own OpenAPI document (public): which operations
 * exist and the least role each needs (`x-required-role`). The dashboard asks it before calling
 * an operation that a deployment may not have yet (the forecast, the deliveries), so a missing
 * one is a note on the page, not a failed request.
 */
export class ApiCatalog {
  constructor(private readonly paths: Record<string, Record<string, { 'x-required-role'?: Role }>>) {}

  static async load(): Promise<ApiCatalog> {
    const document = (await send('GET', '/docs-json')) as { paths?: ApiCatalog['paths'] };
    return new ApiCatalog(document.paths ?? {});
  }

  /** undefined when the operation does not exist here; else the least role it needs. */
  requiredRole(method: 'get' | 'post', path: string): Role | undefined {
    const operation = this.paths[path]?.[method];
    return operation ? (operation['x-required-role'] ?? 'viewer') : undefined;
  }
}

async function send(method: string, path: string, key?: string, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError({ status: 0 });
  }
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as Partial<Problem>;
    throw new ApiError(
      { status: response.status, code: problem.code, detail: problem.detail },
      retryAfterSeconds(response.headers.get('retry-after')),
    );
  }
  return response.status === 204 ? undefined : response.json();
}

const query = (params: Record<string, string | number | boolean | undefined>) => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
};

/** The /api/v1 calls the dashboard makes, each with the signed-in key. */
export class BudgetApi {
  constructor(private readonly key: string) {}

  private get<T>(path: string): Promise<T> {
    return send('GET', `/api/v1${path}`, this.key) as Promise<T>;
  }

  session(): Promise<Session> {
    return this.get('/session');
  }

  /** Every live budget, following the cursor. */
  async listAllBudgets(): Promise<Budget[]> {
    const budgets: Budget[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.get<Schemas['BudgetPageDto']>(`/budgets${query({ limit: 500, cursor })}`);
      budgets.push(...page.data);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return budgets;
  }

  hierarchy(scopeType: string, scopeId: string): Promise<Schemas['BudgetHierarchyStatusDto']> {
    return this.get(`/budgets/hierarchy/${encodeURIComponent(scopeType)}/${encodeURIComponent(scopeId)}`);
  }

  budget(id: string): Promise<Budget> {
    return this.get(`/budgets/${encodeURIComponent(id)}`);
  }

  status(id: string): Promise<BudgetStatus> {
    return this.get(`/budgets/${encodeURIComponent(id)}/status`);
  }

  /** The current window's spend by day (the budget's own days), for the cumulative chart. */
  summary(id: string, from: string, to: string): Promise<UsageSummary> {
    return this.get(`/budgets/${encodeURIComponent(id)}/usage/summary${query({ from, to })}`);
  }

  /** The newest usage counted toward the budget: its own and its descendants' (as its spend rolls up). */
  recentUsage(id: string, limit = 20): Promise<Schemas['UsageRecordPageDto']> {
    return this.get(`/budgets/${encodeURIComponent(id)}/usage${query({ limit, includeDescendants: true })}`);
  }

  alerts(id: string): Promise<AlertRow[]> {
    return this.get(`/budgets/${encodeURIComponent(id)}/alerts`);
  }

  acknowledge(id: string, alertRowId: string): Promise<AlertRow> {
    return send('POST', `/api/v1/budgets/${encodeURIComponent(id)}/alerts/${encodeURIComponent(alertRowId)}/acknowledge`, this.key, {}) as Promise<AlertRow>;
  }

  /** SPEC §15. */
  forecast(id: string): Promise<Forecast> {
    return this.get(`/budgets/${encodeURIComponent(id)}/forecast`);
  }

  /** SPEC §13: a list `{ data, nextCursor }`, or a bare array. */
  async deliveries(budgetId: string): Promise<Delivery[]> {
    const answer = await this.get<{ data: Delivery[] } | Delivery[]>(`/notification-deliveries${query({ budgetId, limit: 20 })}`);
    return Array.isArray(answer) ? answer : answer.data;
  }
}

export const FORECAST_PATH = '/api/v1/budgets/{id}/forecast';
export const DELIVERIES_PATH = '/api/v1/notification-deliveries';
export const ACKNOWLEDGE_PATH = '/api/v1/budgets/{id}/alerts/{alertId}/acknowledge';
