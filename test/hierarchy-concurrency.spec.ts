import { createTestApp, type TestApp } from './setup/test-app';

/**
 * Issue 2's concurrency spec: hierarchy rules must hold when requests race, over real HTTP
 * (separate connections, separate database sessions), checked at the end with SQL.
 */

interface Answer {
  status: number;
  body: any;
}

describe('hierarchy rules under concurrent requests', () => {
  let t: TestApp;
  let seq = 0;

  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const response = await fetch(`${t.baseUrl}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${t.keys.admin}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };

  const create = async (patch: Record<string, unknown> = {}) => {
    seq++;
    const res = await call('POST', '/budgets', {
      name: `Race ${seq}`,
      scopeType: 'team',
      scopeId: `team-race-${seq}`,
      amount: 1000,
      currency: 'USD',
      period: 'monthly',
      startDate: '2025-01-01T00:00:00Z',
      ...patch,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string };
  };

  const cyclesInTable = () =>
    t.sql(`
      WITH RECURSIVE walk AS (
        SELECT id AS start, parent_id AS at, 1 AS steps FROM budget_definitions WHERE parent_id IS NOT NULL
        UNION ALL
        SELECT w.start, b.parent_id, w.steps + 1 FROM walk w JOIN budget_definitions b ON b.id = w.at
        WHERE b.parent_id IS NOT NULL AND w.at <> w.start AND w.steps < 50
      )
      SELECT DISTINCT start FROM walk WHERE at = start`);

  beforeAll(async () => {
    t = await createTestApp({ listen: true });
    expect(t.baseUrl).toBeDefined();
  });

  afterAll(async () => {
    await t.close();
  });

  it('two PUTs sent at once that together form a cycle (A under B, B under A): exactly one succeeds, 100 times', async () => {
    const outcomes: number[][] = [];
    for (let round = 0; round < 100; round++) {
      const a = await create({ amount: 100 });
      const b = await create({ amount: 100 });
      const answers = await Promise.all([
        call('PUT', `/budgets/${a.id}`, { parentId: b.id }),
        call('PUT', `/budgets/${b.id}`, { parentId: a.id }),
      ]);
      const statuses = answers.map((answer) => answer.status);
      outcomes.push(statuses);
      const [row] = await t.sql(
        `SELECT count(*) FILTER (WHERE parent_id IS NOT NULL)::int AS linked FROM budget_definitions WHERE id IN ($1, $2)`,
        [a.id, b.id],
      );
      expect(row.linked).toBe(1);
    }
    // Exactly one of each pair succeeded; the loser was told it would form a cycle (409), never a 5xx.
    for (const statuses of outcomes) expect([...statuses].sort()).toEqual([200, 409]);
    expect(await cyclesInTable()).toEqual([]);
  });

  it('a three-way cycle raced by three PUTs (A→B, B→C, C→A): exactly two succeed, never a cycle', async () => {
    for (let round = 0; round < 20; round++) {
      const [a, b, c] = [await create({ amount: 50 }), await create({ amount: 50 }), await create({ amount: 50 })];
      const answers = await Promise.all([
        call('PUT', `/budgets/${a.id}`, { parentId: b.id }),
        call('PUT', `/budgets/${b.id}`, { parentId: c.id }),
        call('PUT', `/budgets/${c.id}`, { parentId: a.id }),
      ]);
      const statuses = answers.map((answer) => answer.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(2);
      expect(statuses.filter((s) => s === 409)).toHaveLength(1);
    }
    expect(await cyclesInTable()).toEqual([]);
  });

  it("a parent's amount lowered while 20 larger children are created: no child ever exceeds its parent, no 5xx", async () => {
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      const parent = await create({ scopeType: 'organization', amount: 1000 });
      const children = Array.from({ length: 20 }, (_, i) =>
        call('POST', '/budgets', {
          name: `Child ${round}.${i}`,
          scopeType: 'team',
          scopeId: `team-child-${round}-${i}`,
          parentId: parent.id,
          amount: 600,
          currency: 'USD',
          period: 'monthly',
          startDate: '2025-01-01T00:00:00Z',
        }),
      );
      // Lower the parent while the children are in flight (sent after a few of them).
      const lower = new Promise<Answer>((resolve) => setImmediate(() => resolve(call('PUT', `/budgets/${parent.id}`, { amount: 500 }))));
      const answers = await Promise.all([...children, lower]);
      statuses.push(...answers.map((answer) => answer.status));

      const lowered = answers[answers.length - 1];
      const createdChildren = answers.slice(0, -1).filter((answer) => answer.status === 201).length;
      // Either the parent was lowered and no child above 500 got in, or children got in and the parent kept 1000.
      if (lowered.status === 200) expect(createdChildren).toBe(0);
      else expect(lowered.status).toBe(422);
    }
    expect(statuses.every((s) => s >= 200 && s < 500)).toBe(true);
    const violations = await t.sql(`
      SELECT c.id FROM budget_definitions c JOIN budget_definitions p ON p.id = c.parent_id
      WHERE c.deleted_at IS NULL AND (c.amount > p.amount OR c.currency <> p.currency)`);
    expect(violations).toEqual([]);
  });

  it("children raised while their parent is lowered, repeated: no child ever exceeds its parent, no 5xx", async () => {
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      const parent = await create({ scopeType: 'organization', amount: 1000 });
      const children = [];
      for (let i = 0; i < 10; i++) children.push(await create({ parentId: parent.id, amount: 100 }));
      const answers = await Promise.all([
        ...children.map((child) => call('PUT', `/budgets/${child.id}`, { amount: 900 })),
        call('PUT', `/budgets/${parent.id}`, { amount: 200 }),
      ]);
      statuses.push(...answers.map((answer) => answer.status));
    }
    expect(statuses.every((s) => s >= 200 && s < 500)).toBe(true);
    const violations = await t.sql(`
      SELECT c.id FROM budget_definitions c JOIN budget_definitions p ON p.id = c.parent_id
      WHERE c.deleted_at IS NULL AND c.amount > p.amount`);
    expect(violations).toEqual([]);
  });

  it('a subtree moved while a child is added below it: the hierarchy never exceeds 8 levels, no 5xx', async () => {
    const statuses: number[] = [];
    for (let round = 0; round < 10; round++) {
      // X: 4 levels; Y: 4 levels. Y under X's leaf is 8 levels (valid alone); a child under Y's leaf is
      // 5 levels in Y's own tree (valid alone); both together would be 9.
      const x = [await create()];
      for (let i = 1; i < 4; i++) x.push(await create({ parentId: x[i - 1].id }));
      const y = [await create()];
      for (let i = 1; i < 4; i++) y.push(await create({ parentId: y[i - 1].id }));
      const answers = await Promise.all([
        call('PUT', `/budgets/${y[0].id}`, { parentId: x[3].id }),
        call('POST', '/budgets', {
          name: `Deep ${round}`,
          scopeType: 'user',
          scopeId: `user-deep-${round}`,
          parentId: y[3].id,
          amount: 10,
          currency: 'USD',
          period: 'daily',
          startDate: '2025-01-01T00:00:00Z',
        }),
      ]);
      const [move, add] = answers.map((answer) => answer.status);
      statuses.push(move, add);
      expect([move === 200, add === 201].filter(Boolean)).toHaveLength(1);
    }
    expect(statuses.every((s) => s >= 200 && s < 500)).toBe(true);
    const [deepest] = await t.sql(`
      WITH RECURSIVE levels AS (
        SELECT id, 1 AS depth FROM budget_definitions WHERE parent_id IS NULL AND deleted_at IS NULL
        UNION ALL
        SELECT b.id, l.depth + 1 FROM budget_definitions b JOIN levels l ON b.parent_id = l.id
        WHERE b.deleted_at IS NULL AND l.depth < 20
      )
      SELECT max(depth)::int AS depth FROM levels`);
    expect(deepest.depth).toBeLessThanOrEqual(8);
  });

  it('a child created while its parent is deleted: never a live child under a deleted parent, no 5xx', async () => {
    const statuses: number[] = [];
    for (let round = 0; round < 10; round++) {
      const parent = await create({ scopeType: 'organization' });
      const answers = await Promise.all([
        call('POST', '/budgets', {
          name: `Orphan ${round}`,
          scopeType: 'team',
          scopeId: `team-orphan-${round}`,
          parentId: parent.id,
          amount: 10,
          currency: 'USD',
          period: 'daily',
          startDate: '2025-01-01T00:00:00Z',
        }),
        call('DELETE', `/budgets/${parent.id}`),
      ]);
      const [add, remove] = answers.map((answer) => answer.status);
      statuses.push(add, remove);
      expect([add === 201, remove === 204].filter(Boolean)).toHaveLength(1);
    }
    expect(statuses.every((s) => s >= 200 && s < 500)).toBe(true);
    const orphans = await t.sql(`
      SELECT c.id FROM budget_definitions c JOIN budget_definitions p ON p.id = c.parent_id
      WHERE c.deleted_at IS NULL AND p.deleted_at IS NOT NULL`);
    expect(orphans).toEqual([]);
  });
});
