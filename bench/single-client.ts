/**
 * One client, one request at a time (issue 17's single-client latency figures). Under load the
 * latency of a request is mostly queueing; with a single client it is what the request itself
 * costs, so the service's overhead shows as its p50 minus the p50 of a bare Fastify route.
 *
 * node:http with a keep-alive Agent of one socket per server (maxSockets counts per host:port): the
 * service and the baseline server each get one connection, and as every request is awaited before
 * the next, only one is ever in flight. The kinds of request are taken round-robin, the first of
 * each round moving by one, so that all kinds see the same moments of machine noise and none
 * always follows the same other kind (a write's after-effects fall on all of them alike). Each
 * request is timed on the client, from the call to the last byte of its answer.
 */
import { Agent, request as httpRequest } from 'node:http';

export interface SingleClientKind {
  key: string;
  name: string;
  /** The server: http://host:port. */
  base: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Headers made afresh for every request (a new Idempotency-Key), outside the timing. */
  perRequest?: () => Record<string, string>;
}

export interface SingleClientMeasure {
  name: string;
  endpoint: string;
  requests: number;
  failures: number;
  failureSample?: string;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;

function send(agent: Agent, kind: SingleClientKind): Promise<{ status: number; ms: number; body: string }> {
  const url = new URL(kind.path, kind.base);
  const headers: Record<string, string> = { ...kind.headers, ...kind.perRequest?.() };
  if (kind.body !== undefined) headers['content-length'] = String(Buffer.byteLength(kind.body));
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const req = httpRequest(
      { agent, host: url.hostname, port: url.port, method: kind.method, path: url.pathname + url.search, headers, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, ms: performance.now() - t0, body: Buffer.concat(chunks).toString() }));
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30s')));
    req.on('error', fail);
    req.end(kind.body);
  });
}

/**
 * `warmup` rounds (not recorded), then `count` rounds; a round sends each kind once. Only 2xx
 * answers are timed; the others are counted as failures, with the first one kept as a sample.
 */
export async function measureSingleClient(
  kinds: SingleClientKind[],
  { warmup, count, onRound }: { warmup: number; count: number; onRound?: (done: number, total: number) => void },
): Promise<Record<string, SingleClientMeasure>> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const state = kinds.map(() => ({ timings: [] as number[], failures: 0, sample: undefined as string | undefined }));
  const rounds = warmup + count;
  try {
    for (let round = 0; round < rounds; round++) {
      const record = round >= warmup;
      for (let i = 0; i < kinds.length; i++) {
        const index = (round + i) % kinds.length;
        const st = state[index];
        try {
          const answer = await send(agent, kinds[index]);
          if (!record) continue;
          if (answer.status >= 200 && answer.status < 300) st.timings.push(answer.ms);
          else {
            st.failures++;
            st.sample ??= `${answer.status} ${answer.body.slice(0, 300)}`;
          }
        } catch (error) {
          if (!record) continue;
          st.failures++;
          st.sample ??= error instanceof Error ? error.message : String(error);
        }
      }
      if (onRound && (round % 50 === 49 || round === rounds - 1)) onRound(round + 1, rounds);
    }
  } finally {
    agent.destroy();
  }
  const out: Record<string, SingleClientMeasure> = {};
  for (const [index, kind] of kinds.entries()) {
    const st = state[index];
    const sorted = [...st.timings].sort((a, b) => a - b);
    out[kind.key] = {
      name: kind.name,
      endpoint: `${kind.method} ${kind.path.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, ':id')}`,
      requests: sorted.length,
      failures: st.failures,
      ...(st.sample ? { failureSample: st.sample } : {}),
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      mean: sorted.reduce((a, b) => a + b, 0) / Math.max(sorted.length, 1),
      min: sorted.length ? sorted[0] : NaN,
    };
  }
  return out;
}
