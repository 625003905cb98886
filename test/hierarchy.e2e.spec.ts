import { createTestApp, type TestApp } from './setup/test-app';
import { expectProblem } from './setup/problem';

/** SPEC §4 hierarchy rules and the hierarchy endpoint, §10 "Depth ≤ 8" and "the hierarchy of a scope". */

const BUDGETS = '/api/v1/budgets';

interface Budget {
  id: string;
  parentId: string | null;
  amount: number;
  currency: string;
  version: number;
}

describe('Budget hierarchy', () => {
  let t: TestApp;
  let seq = 0;

  const body = (patch: Record<string, unknown>) => ({
    name: `Budget ${++seq}`,
    scopeType: 'team',
    scopeId: `team-${seq}`,
    amount: 1000,
    currency: 'USD',
    period: 'monthly',
    startDate: '2025-01-01T00:00:00Z',
    ...patch,
  });

  const create = async (patch: Record<string, unknown> = {}): Promise<Budget> => {
    const res = await t.request('POST', BUDGETS, body(patch));
    expect(res.status).toBe(201);
    return res.body;
  };

  /** A chain of `levels` budgets, root first. */
  const chain = async (levels: number, patch: Record<string, unknown> = {}): Promise<Budget[]> => {
    const out: Budget[] = [];
    for (let i = 0; i < levels; i++) out.push(await create({ ...patch, parentId: out[i - 1]?.id ?? null }));
    return out;
  };

  const put = (id: string, patch: Record<string, unknown>) => t.request('PUT', `${BUDGETS}/${id}`, patch);
  const stored = async (id: string) =>
    (await t.sql('SELECT parent_id, trim_scale(amount)::text AS amount, currency, version FROM budget_definitions WHERE id = $1', [id]))[0];
  const count = async () => Number((await t.sql('SELECT count(*)::int AS n FROM budget_definitions'))[0].n);

  beforeAll(async () => {
    t = await createTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('a child must fit its parent', () => {
    it('a child with a different currency → 422, nothing stored', async () => {
      const parent = await create({ currency: 'USD' });
      const before = await count();
      const res = await t.request('POST', BUDGETS, body({ parentId: parent.id, currency: 'EUR', amount: 10 }));
      expectProblem(res, 422);
      expect(res.body.detail).toMatch(/currency/i);
      expect(await count()).toBe(before);
    });

    it('a child larger than its parent → 422; equal → 201', async () => {
      const parent = await create({ amount: '500.0000000001' });
      const before = await count();
      expectProblem(await t.request('POST', BUDGETS, body({ parentId: parent.id, amount: '500.0000000002' })), 422);
      expect(await count()).toBe(before);
      const equal = await t.request('POST', BUDGETS, body({ parentId: parent.id, amount: '500.0000000001' }));
      expect(equal.status).toBe(201);
    });

    it('a parent amount lowered below a child → 422 and unchanged; down to the child amount → 200', async () => {
      const parent = await create({ amount: 1000 });
      await create({ parentId: parent.id, amount: 300 });
      await create({ parentId: parent.id, amount: 600 });
      const res = await put(parent.id, { amount: 599.99 });
      expectProblem(res, 422);
      expect(await stored(parent.id)).toEqual(expect.objectContaining({ amount: '1000', version: 1 }));
      const ok = await put(parent.id, { amount: 600 });
      expect(ok.status).toBe(200);
      expect(ok.body.amount).toBe(600);
    });

    it('a child amount raised above its parent → 422', async () => {
      const parent = await create({ amount: 100 });
      const child = await create({ parentId: parent.id, amount: 50 });
      expectProblem(await put(child.id, { amount: 101 }), 422);
      expect(await stored(child.id)).toEqual(expect.objectContaining({ amount: '50', version: 1 }));
    });

    it('a child currency changed away from its parent → 422; a parent currency changed under its children → 422', async () => {
      const parent = await create({ currency: 'USD' });
      const child = await create({ parentId: parent.id, currency: 'USD', amount: 10 });
      expectProblem(await put(child.id, { currency: 'EUR' }), 422);
      expectProblem(await put(parent.id, { currency: 'EUR' }), 422);
      expect((await stored(parent.id)).currency).toBe('USD');
      expect((await stored(child.id)).currency).toBe('USD');
    });

    it('a child may be attached later by PUT parentId, under the same rules', async () => {
      const parent = await create({ amount: 100, currency: 'USD' });
      const tooBig = await create({ amount: 200 });
      const otherCurrency = await create({ amount: 50, currency: 'GBP' });
      const fits = await create({ amount: 50 });
      expectProblem(await put(tooBig.id, { parentId: parent.id }), 422);
      expectProblem(await put(otherCurrency.id, { parentId: parent.id }), 422);
      const res = await put(fits.id, { parentId: parent.id });
      expect(res.status).toBe(200);
      expect(res.body.parentId).toBe(parent.id);
      expect((await stored(tooBig.id)).parent_id).toBeNull();
    });

    it('a parent that is deleted or unknown → 422 on PUT too', async () => {
      const gone = await create();
      await t.request('DELETE', `${BUDGETS}/${gone.id}`);
      const child = await create({ amount: 1 });
      expectProblem(await put(child.id, { parentId: gone.id }), 422);
      expectProblem(await put(child.id, { parentId: '3c3e7b8e-1111-4a4a-9b9b-1234567890ab' }), 422);
      expect((await stored(child.id)).parent_id).toBeNull();
    });

    it('moving a child and changing its amount in one PUT is checked against the new parent', async () => {
      const small = await create({ amount: 10 });
      const large = await create({ amount: 1000 });
      const child = await create({ parentId: large.id, amount: 500 });
      expectProblem(await put(child.id, { parentId: small.id }), 422);
      const res = await put(child.id, { parentId: small.id, amount: 10 });
      expect(res.status).toBe(200);
      expect(res.body).toEqual(expect.objectContaining({ parentId: small.id, amount: 10 }));
    });

    it('detaching a child (parentId null) makes it a root', async () => {
      const parent = await create();
      const child = await create({ parentId: parent.id });
      const res = await put(child.id, { parentId: null });
      expect(res.status).toBe(200);
      expect(res.body.parentId).toBeNull();
      expect((await t.request('DELETE', `${BUDGETS}/${parent.id}`)).status).toBe(204);
    });
  });

  describe('depth ≤ 8 levels', () => {
    it('8 levels are allowed; a 9th level → 422', async () => {
      const levels = await chain(8);
      expect(levels).toHaveLength(8);
      const before = await count();
      const ninth = await t.request('POST', BUDGETS, body({ parentId: levels[7].id }));
      expectProblem(ninth, 422);
      expect(await count()).toBe(before);
      // A sibling of level 8 (under level 7) is still fine.
      expect((await t.request('POST', BUDGETS, body({ parentId: levels[6].id }))).status).toBe(201);
    });

    it('re-parenting accounts for the height of the moved subtree', async () => {
      const deep = await chain(6); // levels 1..6
      const subtree = await chain(3); // P → Q → R, height 3
      const [p, q] = subtree;

      // Under level 6: 6 + 3 = 9 levels → refused, nothing moved.
      expectProblem(await put(p.id, { parentId: deep[5].id }), 422);
      expect((await stored(p.id)).parent_id).toBeNull();
      // Under level 5: 5 + 3 = 8 → allowed; R is now at level 8 and has no room below.
      const moved = await put(p.id, { parentId: deep[4].id });
      expect(moved.status).toBe(200);
      const r = subtree[2];
      expectProblem(await t.request('POST', BUDGETS, body({ parentId: r.id })), 422);
      // Q (height 2) under level 6: 6 + 2 = 8 → allowed; under level 7 it would be 9 → refused.
      expect((await put(q.id, { parentId: deep[5].id })).status).toBe(200);
      const level7 = await create({ parentId: deep[5].id });
      expectProblem(await put(q.id, { parentId: level7.id }), 422);
      expect((await stored(q.id)).parent_id).toBe(deep[5].id);
      expect((await stored(r.id)).parent_id).toBe(q.id);
    });

    it('moving a subtree keeps its internal links and carries it under the new parent', async () => {
      const oldRoot = await create({ scopeType: 'organization', scopeId: 'org-move-old' });
      const newRoot = await create({ scopeType: 'organization', scopeId: 'org-move-new' });
      const team = await create({ scopeId: 'team-move', parentId: oldRoot.id, amount: 500 });
      const user = await create({ scopeType: 'user', scopeId: 'user-move', parentId: team.id, amount: 100 });

      const res = await put(team.id, { parentId: newRoot.id });
      expect(res.status).toBe(200);
      expect((await stored(user.id)).parent_id).toBe(team.id);

      const newTree = await t.request('GET', `${BUDGETS}/hierarchy/organization/org-move-new`);
      const subtree = newTree.body.budgets[0].subtree;
      expect(subtree.children.map((c: Budget) => c.id)).toEqual([team.id]);
      expect(subtree.children[0].children.map((c: Budget) => c.id)).toEqual([user.id]);
      const oldTree = await t.request('GET', `${BUDGETS}/hierarchy/organization/org-move-old`);
      expect(oldTree.body.budgets[0].subtree.children).toEqual([]);
      const userView = await t.request('GET', `${BUDGETS}/hierarchy/user/user-move`);
      expect(userView.body.budgets[0].ancestors.map((a: Budget) => a.id)).toEqual([newRoot.id, team.id]);
    });
  });

  describe('no cycles', () => {
    it('A under B when B is under A → 409, nothing changed', async () => {
      const a = await create({ amount: 100 });
      const b = await create({ amount: 100, parentId: a.id });
      const res = await put(a.id, { parentId: b.id });
      expectProblem(res, 409);
      expect(await stored(a.id)).toEqual(expect.objectContaining({ parent_id: null, version: 1 }));
    });

    it('a longer cycle (A → B → C, then A under C) → 409', async () => {
      const [a, , c] = await chain(3, { amount: 100 });
      expectProblem(await put(a.id, { parentId: c.id }), 409);
      expect((await stored(a.id)).parent_id).toBeNull();
    });

    it('a budget as its own parent → 409 or 400', async () => {
      const a = await create();
      const res = await put(a.id, { parentId: a.id });
      expectProblem(res, [409, 400]);
      expect(await stored(a.id)).toEqual(expect.objectContaining({ parent_id: null, version: 1 }));
    });

    it('the table never holds a cycle', async () => {
      const cycles = await t.sql(`
        WITH RECURSIVE walk AS (
          SELECT id AS start, parent_id AS at, 1 AS steps FROM budget_definitions WHERE parent_id IS NOT NULL
          UNION ALL
          SELECT w.start, b.parent_id, w.steps + 1 FROM walk w JOIN budget_definitions b ON b.id = w.at
          WHERE b.parent_id IS NOT NULL AND w.at <> w.start AND w.steps < 20
        )
        SELECT DISTINCT start FROM walk WHERE at = start`);
      expect(cycles).toEqual([]);
    });
  });

  describe('GET /budgets/hierarchy/:type/:id', () => {
    let org: Budget;
    let teamA: Budget;
    let teamA2: Budget;
    let teamB: Budget;
    let userA: Budget;
    let userB: Budget;
    let projectUnderUser: Budget;

    beforeAll(async () => {
      org = await create({ scopeType: 'organization', scopeId: 'org-tree', amount: 10000 });
      teamA = await create({ scopeType: 'team', scopeId: 'team-tree-a', parentId: org.id, amount: 5000 });
      teamA2 = await create({ scopeType: 'team', scopeId: 'team-tree-a', parentId: org.id, amount: 4000 });
      teamB = await create({ scopeType: 'team', scopeId: 'team-tree-b', parentId: org.id, amount: 3000 });
      userA = await create({ scopeType: 'user', scopeId: 'user-tree-a', parentId: teamA.id, amount: 1000 });
      userB = await create({ scopeType: 'user', scopeId: 'user-tree-b', parentId: teamB.id, amount: 1000 });
      projectUnderUser = await create({ scopeType: 'project', scopeId: 'proj-tree', parentId: userA.id, amount: 100 });
      const deletedLeaf = await create({ scopeType: 'user', scopeId: 'user-tree-gone', parentId: teamA.id, amount: 10 });
      expect((await t.request('DELETE', `${BUDGETS}/${deletedLeaf.id}`)).status).toBe(204);
    });

    const ids = (nodes: Budget[]) => nodes.map((n) => n.id);
    /** Every id in a subtree, depth first. */
    const flatten = (node: Budget & { children?: Budget[] }): string[] => [
      node.id,
      ...((node.children ?? []) as (Budget & { children?: Budget[] })[]).flatMap(flatten),
    ];

    it('for a team: each budget of the scope with its ancestors (root first) and its subtree, not its siblings', async () => {
      const res = await t.request('GET', `${BUDGETS}/hierarchy/team/team-tree-a`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(expect.objectContaining({ scopeType: 'team', scopeId: 'team-tree-a' }));
      expect(res.body.budgets.map((f: { budget: Budget }) => f.budget.id)).toEqual([teamA.id, teamA2.id]);

      const [familyA, familyA2] = res.body.budgets;
      expect(ids(familyA.ancestors)).toEqual([org.id]);
      expect(familyA.subtree.id).toBe(teamA.id);
      expect(flatten(familyA.subtree)).toEqual([teamA.id, userA.id, projectUnderUser.id]);
      expect(ids(familyA2.ancestors)).toEqual([org.id]);
      expect(flatten(familyA2.subtree)).toEqual([teamA2.id]);

      const everything = JSON.stringify(res.body);
      for (const outsider of [teamB.id, userB.id]) expect(everything).not.toContain(outsider);
    });

    it('for a user: the whole ancestor chain, root first', async () => {
      const res = await t.request('GET', `${BUDGETS}/hierarchy/user/user-tree-a`);
      expect(res.status).toBe(200);
      expect(res.body.budgets).toHaveLength(1);
      const [family] = res.body.budgets;
      expect(family.budget.id).toBe(userA.id);
      expect(ids(family.ancestors)).toEqual([org.id, teamA.id]);
      expect(flatten(family.subtree)).toEqual([userA.id, projectUnderUser.id]);
      expect(JSON.stringify(res.body)).not.toContain(teamA2.id);
    });

    it('for the organization: no ancestors and the whole live tree', async () => {
      const res = await t.request('GET', `${BUDGETS}/hierarchy/organization/org-tree`);
      const [family] = res.body.budgets;
      expect(family.ancestors).toEqual([]);
      expect(flatten(family.subtree).sort()).toEqual(
        [org.id, teamA.id, teamA2.id, teamB.id, userA.id, userB.id, projectUnderUser.id].sort(),
      );
      expect(ids(family.subtree.children)).toEqual([teamA.id, teamA2.id, teamB.id]);
    });

    it('nodes carry the budget fields', async () => {
      const res = await t.request('GET', `${BUDGETS}/hierarchy/project/proj-tree`);
      const [family] = res.body.budgets;
      expect(family.budget).toEqual(expect.objectContaining({ id: projectUnderUser.id, amount: 100, currency: 'USD', parentId: userA.id }));
      expect(family.ancestors[0]).toEqual(expect.objectContaining({ id: org.id, scopeType: 'organization', scopeId: 'org-tree' }));
      expect(family.subtree.children).toEqual([]);
    });

    it('deleted budgets are absent', async () => {
      const res = await t.request('GET', `${BUDGETS}/hierarchy/user/user-tree-gone`);
      expect(res.status).toBe(200);
      expect(res.body.budgets).toEqual([]);
    });

    it('an unknown scope → 200 with no budgets; a bad scope type → 400', async () => {
      const res = await t.request('GET', `${BUDGETS}/hierarchy/team/nobody`);
      expect(res.status).toBe(200);
      expect(res.body.budgets).toEqual([]);
      expectProblem(await t.request('GET', `${BUDGETS}/hierarchy/tribe/x`), 400);
    });
  });
});
