import {
  BudgetServiceError,
  BudgetServiceUnavailableError,
  RelayCoreBudgetClient,
  type IntegrationUsageResponse,
} from '../clients/typescript';
import { budgetMaker } from './setup/budgets';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * RelayCore's cycle through the typed client against the real service (listening on a port),
 * with faults injected between the two by a fetch wrapper: a 503 before the request reaches the
 * service or after the service answered (a proxy's 503), and a timeout before or after. A fault
 * "after" is the dangerous one: the service did the work, the client does not know and retries
 * with the same idempotency key. The ledger must hold exactly one record per acknowledged call.
 */

const CYCLES = 1000;
const WORKERS = 8;
const FAULT_RATE = 0.25;
/** Faults hit only the first attempts of an operation, so with 5 attempts every cycle completes. */
const FAULTY_ATTEMPTS = 3;
const MAX_ATTEMPTS = 5;
const TEAM = 'relaycore-cycle-team';

type Fault = '503-before' | '503-after' | 'timeout-before' | 'timeout-after';
const FAULTS: Fault[] = ['503-before', '503-after', 'timeout-before', 'timeout-after'];

/** Deterministic, so a failing run can be replayed. */
function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const timeoutError = () => new DOMException('The operation was aborted due to timeout', 'TimeoutError');
const unavailable = () =>
  new Response(JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'injected', instance: '/' }), {
    status: 503,
    headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
  });

/** A fetch that injects faults, keyed by the operation (X-Request-Id, the same on every attempt). */
function faultyFetch(seed: number) {
  const random = mulberry32(seed);
  const attempts = new Map<string, number>();
  /** Per operation: the faults it met, in order. */
  const faults = new Map<string, Fault[]>();
  const fetchWithFaults = async (request: Request): Promise<Response> => {
    const operation = request.headers.get('x-request-id') ?? '';
    const attempt = (attempts.get(operation) ?? 0) + 1;
    attempts.set(operation, attempt);
    const fault = attempt <= FAULTY_ATTEMPTS && random() < FAULT_RATE ? FAULTS[Math.floor(random() * FAULTS.length)] : undefined;
    if (!fault) return fetch(request);
    faults.set(operation, [...(faults.get(operation) ?? []), fault]);
    if (fault === '503-before') return unavailable();
    if (fault === 'timeout-before') throw timeoutError();
    // The service does the work; its answer is lost.
    const served = await fetch(request);
    await served.arrayBuffer();
    if (fault === '503-after') return unavailable();
    throw timeoutError();
  };
  return { fetch: fetchWithFaults, faults, attempts };
}

describe('RelayCoreBudgetClient against the service', () => {
  let t: TestApp;
  const createBudget = budgetMaker(() => t, 'Client cycle');

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
  });

  afterAll(async () => {
    await t.close();
  });

  it(`${CYCLES} cycles with injected 503s and timeouts: the ledger holds exactly the acknowledged calls`, async () => {
    const budget = await createBudget({ scopeId: TEAM, amount: 1_000_000, enforcement: 'hard' });
    const injected = faultyFetch(18);
    const waits: number[] = [];
    const client = new RelayCoreBudgetClient({
      baseUrl: t.baseUrl!,
      apiKey: t.keys.service,
      fetch: injected.fetch,
      timeoutMs: 10_000,
      maxAttempts: MAX_ATTEMPTS,
      // The waits are recorded (Retry-After is honoured) rather than spent.
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    /** Cost of cycle i in 1/10000 USD: exact in decimal, summed as integers here. */
    const costUnits = (i: number) => (i % 97) + 1;
    const usages = new Map<string, IntegrationUsageResponse>();
    let next = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < CYCLES) {
        const i = next++;
        const requestId = `relaycore-req-${i}`;
        const cycle = await client.runCycle(
          { requestId, estimatedCost: '0.5', currency: 'USD', teamId: TEAM, modelId: 'gpt-4', reservationTtlSeconds: 3600 },
          async (check) => {
            expect(check.reservationId).toEqual(expect.any(String));
            return { result: i, usage: { amount: (costUnits(i) / 10_000).toFixed(4), source: 'relaycore' } };
          },
        );
        usages.set(requestId, cycle.usage!);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    const elapsedMs = Date.now() - started;

    const faultList = [...injected.faults.values()].flat();
    const count = (kind: Fault) => faultList.filter((fault) => fault === kind).length;
    const faultsOf = (operation: string) => injected.faults.get(operation) ?? [];
    const reachedService = (fault: Fault) => fault.endsWith('-after');
    console.log(
      `${CYCLES} cycles in ${elapsedMs} ms; injected ${faultList.length} faults: ` +
        FAULTS.map((kind) => `${kind} ${count(kind)}`).join(', '),
    );

    // Every kind of fault happened, many times, and every cycle was acknowledged.
    for (const kind of FAULTS) expect(count(kind)).toBeGreaterThan(50);
    expect(usages.size).toBe(CYCLES);
    // A 503 was retried after its Retry-After (1 s), a timeout after the backoff.
    expect(waits.filter((ms) => ms === 1000).length).toBe(count('503-before') + count('503-after'));

    // The ledger: one record per acknowledged call, the exact sum of their costs, each settling its hold.
    const expectedUnits = Array.from({ length: CYCLES }, (_, i) => costUnits(i)).reduce((a, b) => a + b, 0);
    const [ledger] = await t.sql<{ records: number; keys: number; exact: boolean; settled: number }>(
      `SELECT count(*)::int AS records, count(DISTINCT request_id)::int AS keys,
              sum(amount) = $2::numeric / 10000 AS exact,
              count(reservation_id)::int AS settled
         FROM budget_usage_records WHERE budget_id = $1`,
      [budget.id, expectedUnits],
    );
    expect(ledger).toEqual({ records: usages.size, keys: usages.size, exact: true, settled: usages.size });

    // A usage whose earlier attempt reached the service was answered as a replay, and only it.
    const replayExpected = [...usages.keys()].filter((id) => faultsOf(`${id}:usage`).some(reachedService));
    expect(replayExpected.length).toBeGreaterThan(0);
    expect([...usages].filter(([, usage]) => usage.replayed).map(([id]) => id).sort()).toEqual(replayExpected.sort());

    // Holds: one settled per cycle; a check whose answer was lost left its hold, open until its TTL.
    const lostChecks = [...usages.keys()].flatMap((id) => faultsOf(`${id}:check`).filter(reachedService)).length;
    const holds = await t.sql<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM budget_reservations GROUP BY state ORDER BY state`,
    );
    expect(Object.fromEntries(holds.map((row) => [row.state, row.n]))).toEqual({
      settled: CYCLES,
      ...(lostChecks ? { held: lostChecks } : {}),
    });

    // The service's own figure agrees with the ledger.
    const status = await t.request('GET', `/api/v1/budgets/${budget.id}/status`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ usageCount: CYCLES, reservedAmount: lostChecks * 0.5 });
    expect(status.body.currentAmount).toBeCloseTo(expectedUnits / 10_000, 8);
  });

  it('gives up after maxAttempts when every attempt meets a 503, having waited Retry-After each time', async () => {
    let calls = 0;
    const waits: number[] = [];
    const client = new RelayCoreBudgetClient({
      baseUrl: t.baseUrl!,
      apiKey: t.keys.service,
      maxAttempts: 4,
      fetch: async () => {
        calls += 1;
        return unavailable();
      },
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await expect(client.recordUsage({ amount: 1, currency: 'USD', requestId: 'never-recorded', teamId: TEAM })).rejects.toThrow(
      BudgetServiceUnavailableError,
    );
    expect({ calls, waits }).toEqual({ calls: 4, waits: [1000, 1000, 1000] });
    expect(await t.sql(`SELECT 1 FROM budget_usage_records WHERE request_id = 'never-recorded'`)).toEqual([]);
  });

  it('times out a hanging attempt after timeoutMs and retries it with the same key', async () => {
    const budget = await createBudget({ amount: 1000 });
    let calls = 0;
    const client = new RelayCoreBudgetClient({
      baseUrl: t.baseUrl!,
      apiKey: t.keys.service,
      timeoutMs: 100,
      backoffMs: 1,
      // The first attempt reaches the service, then its answer never comes.
      fetch: async (request) => {
        calls += 1;
        if (calls > 1) return fetch(request);
        await (await fetch(request)).arrayBuffer();
        return new Promise<Response>((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason)));
      },
    });
    const usage = await client.recordUsage({ amount: '2.5', currency: 'USD', requestId: 'slow-answer', teamId: budget.scopeId });
    expect({ calls, replayed: usage.replayed }).toEqual({ calls: 2, replayed: true });
    const rows = await t.sql(`SELECT amount::text FROM budget_usage_records WHERE request_id = 'slow-answer'`);
    expect(rows).toEqual([{ amount: '2.5000000000' }]);
  });

  it('does not retry a refusal: the same key with another body is a 409', async () => {
    const budget = await createBudget({ amount: 1000 });
    const client = new RelayCoreBudgetClient({ baseUrl: t.baseUrl!, apiKey: t.keys.service });
    await client.recordUsage({ amount: 1, currency: 'USD', requestId: 'conflict', teamId: budget.scopeId });
    const refused = client.recordUsage({ amount: 2, currency: 'USD', requestId: 'conflict', teamId: budget.scopeId });
    await expect(refused).rejects.toThrow(BudgetServiceError);
    await expect(refused).rejects.toMatchObject({ status: 409 });
  });
});
