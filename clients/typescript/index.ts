import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

/**
 * The typed client of the RelayCore Budget Service. `schema.ts` is generated from the committed
 * openapi.json (`npm run client:generate`); this file names the request and response types
 * RelayCore uses and runs its cycle: check with reserve → the AI call → record usage.
 */

export type { components, operations, paths } from './schema';

type Schemas = components['schemas'];
export type CreateBudgetRequest = Schemas['CreateBudgetDto'];
export type UpdateBudgetRequest = Schemas['UpdateBudgetDto'];
export type BudgetResponse = Schemas['BudgetResponseDto'];
export type RecordUsageRequest = Schemas['RecordUsageDto'];
export type IntegrationCheckRequest = Schemas['IntegrationCheckDto'];
export type IntegrationCheckResponse = Schemas['IntegrationCheckResponseDto'];
export type IntegrationUsageRequest = Schemas['IntegrationUsageDto'];
export type IntegrationUsageResponse = Schemas['IntegrationUsageResponseDto'];
export type ProblemDetails = Schemas['ProblemDetailsDto'];

export type BudgetApi = Client<paths>;

/** The generated client (openapi-fetch): every operation of openapi.json, typed. */
export function createBudgetApi(options: { baseUrl: string; apiKey: string; fetch?: (input: Request) => Promise<Response> }): BudgetApi {
  return createClient<paths>({
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${options.apiKey}` },
    fetch: options.fetch,
  });
}

export interface RelayCoreBudgetClientOptions {
  baseUrl: string;
  /** A key with the service role (reservations need it). */
  apiKey: string;
  /** Replaces globalThis.fetch (a proxy agent, a test's fault injection). */
  fetch?: (input: Request) => Promise<Response>;
  /** One attempt's time limit; past it the attempt counts as timed out. Default 10 s. */
  timeoutMs?: number;
  /** Attempts per operation, the first included. Default 5. */
  maxAttempts?: number;
  /** Wait before retrying a timeout or a network error, doubled each time. Default 200 ms. */
  backoffMs?: number;
  /** A Retry-After longer than this ends the retries instead of waiting. Default 30 s. */
  maxRetryAfterMs?: number;
  /** How the client waits; a test may record the waits instead of spending them. */
  sleep?: (ms: number) => Promise<void>;
}

/** A non-retryable answer (4xx, 5xx other than 503): the service's problem+json. */
export class BudgetServiceError extends Error {
  constructor(
    readonly status: number,
    readonly problem: ProblemDetails | undefined,
  ) {
    super(`${status} ${problem?.title ?? 'error'}${problem?.detail ? `: ${problem.detail}` : ''}`);
    this.name = 'BudgetServiceError';
  }
}

/** Every attempt failed with a retryable failure (503, timeout, network error). */
export class BudgetServiceUnavailableError extends Error {
  constructor(
    readonly attempts: number,
    readonly lastFailure: string,
  ) {
    super(`The budget service did not answer after ${attempts} attempts (last: ${lastFailure})`);
    this.name = 'BudgetServiceUnavailableError';
  }
}

export interface CheckAndReserveRequest extends Omit<IntegrationCheckRequest, 'reserve'> {
  /** The gateway's request id: names this cycle in the service's logs and keys its usage. */
  requestId: string;
}

export interface UsageAfterCall extends Omit<IntegrationUsageRequest, 'requestId' | 'reservationId' | 'currency'> {
  currency?: string;
}

export interface CycleResult<T> {
  check: IntegrationCheckResponse;
  /** Undefined when the check said no: the call was not made and nothing was recorded. */
  call?: T;
  usage?: IntegrationUsageResponse;
}

type Attempt<T> =
  | { data: T; error?: undefined; response: Response }
  | { data?: undefined; error: unknown; response: Response };

const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Retry-After as seconds or an HTTP date, in milliseconds (1 s when absent or unreadable). */
function retryAfterMs(header: string | null): number {
  if (header === null) return 1000;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? 1000 : Math.max(0, date - Date.now());
}

const isTimeout = (error: unknown) => error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');

/**
 * RelayCore's cycle with the retries it needs:
 * - a 503 (database unreachable, instance shutting down) is retried after its Retry-After;
 * - a timeout or a network error is retried after a short backoff;
 * - a usage retry sends the very same body, so its requestId (the idempotency key) is the same:
 *   if the lost attempt was recorded, the retry is answered as a replay and counts nothing again;
 * - at most `maxAttempts` attempts per operation.
 * A check retried after a timeout may leave the first attempt's hold behind; it expires after its
 * reservationTtlSeconds and never becomes spend.
 */
export class RelayCoreBudgetClient {
  readonly api: BudgetApi;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: RelayCoreBudgetClientOptions) {
    this.api = createBudgetApi(options);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.backoffMs = options.backoffMs ?? 200;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.sleep = options.sleep ?? delay;
  }

  /** Checks every matching budget and, when the answer is yes, holds the estimate (`reservationId`). */
  async checkAndReserve(request: CheckAndReserveRequest): Promise<IntegrationCheckResponse> {
    const { requestId, ...check } = request;
    return this.withAnswer(`${requestId}:check`, (signal, headers) =>
      this.api.POST('/api/v1/integration/check-constraints', { body: { ...check, reserve: true }, signal, headers }),
    );
  }

  /** Records what the call cost, settling the hold; `requestId` is the idempotency key. */
  async recordUsage(request: IntegrationUsageRequest): Promise<IntegrationUsageResponse> {
    return this.withAnswer(`${request.requestId}:usage`, (signal, headers) =>
      this.api.POST('/api/v1/integration/usage', { body: request, signal, headers }),
    );
  }

  /** Gives a hold back when the call was not made after all. */
  async releaseReservation(reservationId: string, requestId: string): Promise<void> {
    await this.withRetries(`${requestId}:release`, (signal, headers) =>
      this.api.DELETE('/api/v1/reservations/{id}', { params: { path: { id: reservationId } }, signal, headers }),
    );
  }

  /**
   * The whole cycle: check with reserve; when it may proceed, `call` runs (the AI call) with the
   * check's answer (a suggested model, perhaps) and returns its result and what it cost; the cost
   * is recorded against the reservation. When `call` throws, the hold is released.
   */
  async runCycle<T>(
    request: CheckAndReserveRequest,
    call: (check: IntegrationCheckResponse) => Promise<{ result: T; usage: UsageAfterCall }>,
  ): Promise<CycleResult<T>> {
    const check = await this.checkAndReserve(request);
    if (!check.canProceed) return { check };
    let outcome: { result: T; usage: UsageAfterCall };
    try {
      outcome = await call(check);
    } catch (error) {
      if (check.reservationId) await this.releaseReservation(check.reservationId, request.requestId);
      throw error;
    }
    const usage = await this.recordUsage({
      currency: request.currency,
      modelId: check.suggestedModel ?? request.modelId,
      userId: request.userId,
      teamId: request.teamId,
      projectId: request.projectId,
      organizationId: request.organizationId,
      ...outcome.usage,
      requestId: request.requestId,
      reservationId: check.reservationId,
    });
    return { check, call: outcome.result, usage };
  }

  /** withRetries for an operation whose success always has a body. */
  private async withAnswer<T>(
    operationId: string,
    send: (signal: AbortSignal, headers: Record<string, string>) => Promise<Attempt<T | undefined>>,
  ): Promise<T> {
    const data = await this.withRetries(operationId, send);
    if (data === undefined) throw new BudgetServiceError(200, { title: 'Empty answer', detail: `${operationId} answered without a body` } as ProblemDetails);
    return data;
  }

  private async withRetries<T>(
    operationId: string,
    send: (signal: AbortSignal, headers: Record<string, string>) => Promise<Attempt<T>>,
  ): Promise<T> {
    let lastFailure = '';
    for (let attempt = 1; ; attempt++) {
      let wait: number;
      try {
        // The same X-Request-Id on every attempt: the service's logs show one operation retried.
        const result = await send(AbortSignal.timeout(this.timeoutMs), { 'x-request-id': operationId });
        if (result.error === undefined) return result.data as T;
        if (result.response.status !== 503) throw new BudgetServiceError(result.response.status, result.error as ProblemDetails);
        lastFailure = '503';
        wait = retryAfterMs(result.response.headers.get('retry-after'));
        if (wait > this.maxRetryAfterMs) throw new BudgetServiceUnavailableError(attempt, `503, Retry-After ${wait} ms`);
      } catch (error) {
        if (error instanceof BudgetServiceError || error instanceof BudgetServiceUnavailableError) throw error;
        lastFailure = isTimeout(error) ? `timed out after ${this.timeoutMs} ms` : `network error: ${(error as Error).message}`;
        wait = this.backoffMs * 2 ** (attempt - 1);
      }
      if (attempt >= this.maxAttempts) throw new BudgetServiceUnavailableError(attempt, lastFailure);
      await this.sleep(wait);
    }
  }
}
