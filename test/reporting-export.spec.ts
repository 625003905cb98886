import { Decimal } from 'decimal.js';
import { budgetMaker, recordUsages } from './setup/budgets';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';

const HEADER = 'id,budgetId,occurredAt,recordedAt,amount,currency,source,modelId,userId,teamId,projectId,requestId,reservationId,description,metadata';

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 1);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      (row = []), (field = ''), (i += 1);
    } else field += c;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

describe('Reports: CSV export of the usage', () => {
  let t: TestApp;
  const createBudget = budgetMaker(() => t, 'Export');

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
  });
  afterAll(() => t.close());

  it('a header row, one row per record oldest first, RFC 4180 quoting and the formula guard', async () => {
    const parent = await createBudget();
    const child = await createBudget({ parentId: parent.id, amount: 50 });
    await recordUsages(t, parent.id, [
      { amount: '1.5', occurredAt: new Date('2026-01-02T00:00:00.123Z'), modelId: 'gpt-4', description: 'plain' },
      { amount: '0.0000000001', occurredAt: new Date('2026-01-03T00:00:00Z'), description: 'a, "quoted"\nline', metadata: { k: 'v, w' } },
    ]);
    await recordUsages(t, child.id, [{ amount: 2, occurredAt: new Date('2026-01-04T00:00:00Z'), description: '=HYPERLINK("http://x")' }]);
    await recordUsages(t, parent.id, [{ amount: 7, occurredAt: new Date('2026-01-01T00:00:00Z'), description: '@SUM(A1)' }]);

    const res = await t.request('GET', `/api/v1/budgets/${parent.id}/usage/export`, undefined, { 'x-api-key': t.keys.viewer });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe(`attachment; filename="budget-${parent.id}-usage.csv"`);
    const text = res.body as string;
    expect(text.startsWith(`${HEADER}\r\n`)).toBe(true);
    const rows = parseCsv(text);
    expect(rows[0].join(',')).toBe(HEADER);
    const records = rows.slice(1).map((cells) => Object.fromEntries(HEADER.split(',').map((name, i) => [name, cells[i]])));
    expect(records.map((r) => [r.amount, r.description, r.budgetId])).toEqual([
      ['7.0000000000', "'@SUM(A1)", parent.id],
      ['1.5000000000', 'plain', parent.id],
      ['0.0000000001', 'a, "quoted"\nline', parent.id],
      ['2.0000000000', '\'=HYPERLINK("http://x")', child.id],
    ]);
    expect(records[1]).toEqual(expect.objectContaining({ occurredAt: '2026-01-02T00:00:00.123000Z', currency: 'USD', modelId: 'gpt-4', userId: '' }));
    expect(JSON.parse(records[2].metadata)).toEqual({ k: 'v, w' });
    const ledger = await t.sql(`SELECT id::text FROM budget_usage_records WHERE budget_id = ANY ($1) ORDER BY occurred_at, id`, [[parent.id, child.id]]);
    expect(records.map((r) => r.id)).toEqual(ledger.map((r) => r.id));

    // [from, to): the filter and the file name.
    const ranged = await t.request('GET', `/api/v1/budgets/${parent.id}/usage/export?from=2026-01-02T00:00:00%2B01:00&to=2026-01-04T00:00:00Z`);
    expect(parseCsv(ranged.body).slice(1).map((cells) => cells[4])).toEqual(['1.5000000000', '0.0000000001']);
    expect(ranged.headers['content-disposition']).toBe(`attachment; filename="budget-${parent.id}-usage-from-20260101T230000Z-to-20260104T000000Z.csv"`);
  });

  it('an empty range is the header alone; bad input is a 400 naming the field, before any byte of CSV', async () => {
    const budget = await createBudget();
    const empty = await t.request('GET', `/api/v1/budgets/${budget.id}/usage/export`);
    expect(empty.body).toBe(`${HEADER}\r\n`);
    for (const [query, field] of [['from=yesterday', 'from'], ['from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'to'], ['limit=3', 'limit']]) {
      const res = await t.request('GET', `/api/v1/budgets/${budget.id}/usage/export?${query}`);
      expectProblem(res, 400);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expectProblem(await t.request('GET', '/api/v1/budgets/00000000-0000-4000-8000-000000000000/usage/export'), 404);
    expectProblem(await t.request('GET', `/api/v1/budgets/${budget.id}/usage/export`, undefined, { 'x-api-key': 'wrong' }), 401);
  });

  it('100,000 records stream out with the ledger\'s count and exact sum', async () => {
    const budget = await createBudget({ amount: 1000000 });
    await t.sql(
      `INSERT INTO budget_usage_records (budget_id, amount, currency, source, occurred_at)
       SELECT $1::uuid, (i % 997 + 1) * 0.0000000123, 'USD', 'bulk', '2026-01-05T00:00:00Z'::timestamptz + i * interval '1 second'
       FROM generate_series(1, 100000) AS i`,
      [budget.id],
    );
    const response = await fetch(`${t.baseUrl}/api/v1/budgets/${budget.id}/usage/export`, { headers: { 'x-api-key': t.keys.viewer } });
    expect(response.status).toBe(200);
    let count = -1;
    let sum = new Decimal(0);
    let rest = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      const lines = (rest + decoder.decode(chunk, { stream: true })).split('\r\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        count += 1;
        if (count > 0) sum = sum.add(line.split(',')[4]);
      }
    }
    expect(rest).toBe('');
    const [truth] = await t.sql(`SELECT count(*)::int AS n, sum(amount)::text AS total FROM budget_usage_records WHERE budget_id = $1`, [budget.id]);
    expect(count).toBe(100000);
    expect(count).toBe(truth.n);
    expect(sum.toFixed(10)).toBe(new Decimal(truth.total).toFixed(10));
  });

  it('a client that goes away mid-stream gets its transaction ended and its connection back in the pool', async () => {
    const budget = await createBudget({ amount: 1000000 });
    await t.sql(
      `INSERT INTO budget_usage_records (budget_id, amount, currency, source, occurred_at)
       SELECT $1::uuid, 0.01, 'USD', 'bulk', '2026-01-05T00:00:00Z'::timestamptz + i * interval '1 second'
       FROM generate_series(1, 50000) AS i`,
      [budget.id],
    );
    for (let i = 0; i < 40; i += 1) {
      const controller = new AbortController();
      const response = await fetch(`${t.baseUrl}/api/v1/budgets/${budget.id}/usage/export`, { signal: controller.signal });
      const reader = response.body!.getReader();
      await reader.read();
      controller.abort();
      await reader.read().catch(() => undefined);
    }
    // More aborted exports than the pool has connections, and the service still answers.
    const deadline = Date.now() + 10_000;
    let open: { n: number }[] = [];
    do {
      await new Promise((resolve) => setTimeout(resolve, 100));
      open = await t.sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`);
    } while (open[0].n > 0 && Date.now() < deadline);
    expect(open).toEqual([{ n: 0 }]);
    expect((await t.request('GET', `/api/v1/budgets/${budget.id}/periods?count=1`)).body.data[0].usageCount).toBe(0);
  });
});
