import { Client } from 'pg';
import { createTestDatabase } from './setup/test-database';

/**
 * `budget_check_context_of` (migration CheckContextOfBudget) answers a check of one budget id, and
 * `budget_check_context_of_scopes` (CheckContextOfScopes) a check by scopes, with exactly the rows
 * of `budget_check_context` for the same arguments: read by one statement while every cache row of
 * the chains is fresh, and from budget_check_context itself otherwise. Each case runs both
 * functions on the same state: inside one transaction, the new function first, then a rollback to
 * a savepoint, then the general one, so a refresh either of them makes (a stale row, a rolled-over
 * window) is made from the same starting point and stamped with the same now().
 */

const ALERTS = [
  { id: 'a10', threshold: 10, type: 'actual', actions: ['notify'], notificationChannels: ['email'] },
  { id: 'a80', threshold: 80, type: 'actual', actions: ['notify', 'restrict-models'], notificationChannels: [] },
];

describe('budget_check_context_of and _of_scopes: the check context in one statement', () => {
  let client: Client;
  const ids: Record<string, string> = {};

  const both = async (budgetId: string, at: string, modelId: string | null = 'gpt-4o', tags: string[] | null = null, applyFilters = true) => {
    await client.query('BEGIN');
    try {
      await client.query('SAVEPOINT before');
      const fast = await client.query(
        `SELECT * FROM budget_check_context_of($1::uuid, $2::timestamptz, $3, $4::text[], $5)`,
        [budgetId, at, modelId, tags, applyFilters],
      );
      await client.query('ROLLBACK TO SAVEPOINT before');
      const general = await client.query(
        `SELECT * FROM budget_check_context(ARRAY[$1::uuid], '{}', '{}', $2::timestamptz, $3, $4::text[], $5)`,
        [budgetId, at, modelId, tags, applyFilters],
      );
      return { fast: fast.rows, general: general.rows };
    } finally {
      await client.query('ROLLBACK');
    }
  };

  /** budget_check_context_of_scopes and budget_check_context on the same scopes, from the same state. */
  const bothByScopes = async (scopes: [string, string][], at: string, modelId: string | null = 'gpt-4o', tags: string[] | null = null, applyFilters = true) => {
    const types = scopes.map(([type]) => type);
    const scopeIds = scopes.map(([, id]) => id);
    await client.query('BEGIN');
    try {
      await client.query('SAVEPOINT before');
      const fast = await client.query(
        `SELECT * FROM budget_check_context_of_scopes($1::text[], $2::text[], $3::timestamptz, $4, $5::text[], $6)`,
        [types, scopeIds, at, modelId, tags, applyFilters],
      );
      await client.query('ROLLBACK TO SAVEPOINT before');
      const general = await client.query(
        `SELECT * FROM budget_check_context('{}', $1::text[], $2::text[], $3::timestamptz, $4, $5::text[], $6)`,
        [types, scopeIds, at, modelId, tags, applyFilters],
      );
      return { fast: fast.rows, general: general.rows };
    } finally {
      await client.query('ROLLBACK');
    }
  };

  /** Whether the statement read the chains itself (true) or handed over to budget_check_context. */
  const tookFastPath = async (budgetId: string | [string, string][], at: string) => {
    const call = typeof budgetId === 'string'
      ? { sql: `budget_check_context_of($1::uuid, $2::timestamptz, 'gpt-4o', NULL, true)`, params: [budgetId, at] }
      : {
          sql: `budget_check_context_of_scopes($1::text[], $3::text[], $2::timestamptz, 'gpt-4o', NULL, true)`,
          params: [budgetId.map(([type]) => type), at, budgetId.map(([, id]) => id)],
        };
    // Rolled back: a refresh the general function makes must not change the state the next case reads.
    await client.query('BEGIN');
    const plan = await client
      .query(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) SELECT * FROM ${call.sql}`, call.params)
      .finally(() => client.query('ROLLBACK'));
    const text = JSON.stringify(plan.rows[0]['QUERY PLAN']);
    const general = /"Function Name":"budget_check_context"[^}]*?"Actual Loops":(\d+)/.exec(text);
    if (!general) throw new Error(`budget_check_context is not in the plan: ${text}`);
    return Number(general[1]) === 0;
  };

  beforeAll(async () => {
    client = new Client({ connectionString: await createTestDatabase() });
    await client.connect();
    const start = new Date(Date.now() - 10 * 86_400_000).toISOString();
    const budget = async (name: string, scopeType: string, parent: string | null, extra: { filter?: object; amount?: number } = {}) => {
      const { rows } = await client.query(
        `INSERT INTO budget_definitions (name, scope_type, scope_id, parent_id, amount, currency, period, start_date,
                                         recurring, alerts, model_policy, filter, created_by)
         VALUES ($1, $2, $1, $3, $4, 'USD', 'monthly', $5, true, $6, $7, $8, 'spec') RETURNING id`,
        [name, scopeType, parent, extra.amount ?? 100, start, JSON.stringify(ALERTS),
         JSON.stringify({ restrictedModels: ['gpt-4-32k'], downgrades: { 'gpt-4o': 'gpt-4o-mini' } }),
         extra.filter ? JSON.stringify(extra.filter) : null],
      );
      return rows[0].id as string;
    };
    ids.org = await budget('org', 'organization', null, { amount: 1000 });
    ids.team = await budget('team', 'team', ids.org, { amount: 500 });
    ids.user = await budget('user', 'user', ids.team);
    ids.claude = await budget('claude-only', 'project', ids.team, { filter: { models: ['claude*'] } });
    ids.tagged = await budget('tagged', 'project', ids.org, { filter: { tags: ['prod'] } });
    ids.single = await budget('single', 'project', null);
    ids.gone = await budget('gone', 'project', null);
    await client.query(`UPDATE budget_definitions SET deleted_at = now() WHERE id = $1`, [ids.gone]);
    // Spend (alerts fire on the chain) and an open hold on the team.
    await client.query(`SELECT * FROM record_usage($1::uuid, 50, 'USD', 'api', NULL, 'gpt-4o')`, [ids.user]);
    await client.query(`SELECT * FROM record_usage($1::uuid, 7.5, 'USD', 'api', NULL, 'gpt-4o')`, [ids.single]);
    await client.query(
      `SELECT * FROM place_reservation(ARRAY[$1::uuid], '{}', '{}', 12.25, 'USD', 3600, 'gpt-4o', 'r-1', 'spec')`,
      [ids.team],
    );
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM budget_alert_history`);
    expect(rows[0].n).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await client?.end();
  });

  const now = () => new Date().toISOString();

  it.each([
    ['a budget without parent', 'single', 1],
    ['a leaf of three (its alerts and the team’s hold ride along)', 'user', 3],
    ['the middle of the chain', 'team', 2],
    ['the root', 'org', 1],
  ])('fresh cache rows: %s, read by the one statement, the same rows', async (_name, key, members) => {
    const { fast, general } = await both(ids[key], now());
    expect(fast).toHaveLength(members);
    expect(fast).toEqual(general);
    expect(await tookFastPath(ids[key], now())).toBe(true);
  });

  it('the rows carry what the decision reads: spend, holds, alerts, rules, policy', async () => {
    const { fast } = await both(ids.user, now());
    const [user, team, org] = fast;
    expect([user.name, team.name, org.name]).toEqual(['user', 'team', 'org']);
    expect([user.is_seed, team.is_seed, org.is_seed]).toEqual([true, false, false]);
    expect(user.current_amount).toBe('50.0000000000');
    expect(team.reserved_amount).toBe('12.2500000000');
    expect(user.active_alerts.map((a: { alertId: string }) => a.alertId)).toEqual(['a10']);
    expect(team.alert_rules).toEqual(ALERTS);
    expect(user.model_policy).toEqual({ restrictedModels: ['gpt-4-32k'], downgrades: { 'gpt-4o': 'gpt-4o-mini' } });
  });

  it('a filter that refuses the request: the budget alone, not matching; accepting it or no filters: the chain', async () => {
    const refused = await both(ids.claude, now());
    expect(refused.fast).toEqual(refused.general);
    expect(refused.fast.map((row) => [row.name, row.is_seed, row.matches])).toEqual([['claude-only', true, false]]);
    const accepted = await both(ids.claude, now(), 'claude-3-opus');
    expect(accepted.fast).toEqual(accepted.general);
    expect(accepted.fast.map((row) => row.name)).toEqual(['claude-only', 'team', 'org']);
    // Unknown whether to apply filters (a direct SQL caller): a refusal stays a refusal.
    const unknown = await client.query(`SELECT * FROM budget_check_context_of($1::uuid, now(), 'gpt-4o', NULL, NULL)`, [ids.claude]);
    const unknownGeneral = await client.query(`SELECT * FROM budget_check_context(ARRAY[$1::uuid], '{}', '{}', now(), 'gpt-4o', NULL, NULL)`, [ids.claude]);
    expect(unknown.rows).toEqual(unknownGeneral.rows);
    expect(unknown.rows.map((row) => row.matches)).toEqual([false]);
    const unfiltered = await both(ids.claude, now(), 'gpt-4o', null, false);
    expect(unfiltered.fast).toEqual(unfiltered.general);
    expect(unfiltered.fast).toHaveLength(3);
    for (const tags of [null, ['prod'], ['dev']]) {
      const tagged = await both(ids.tagged, now(), null, tags);
      expect(tagged.fast).toEqual(tagged.general);
    }
  });

  it('a cache row not updated for 5 minutes: handed over to budget_check_context, which refreshes it', async () => {
    await client.query(`UPDATE budget_status_cache SET updated_at = now() - interval '6 minutes' WHERE budget_id = $1`, [ids.team]);
    expect(await tookFastPath(ids.user, now())).toBe(false);
    const { fast, general } = await both(ids.user, now());
    expect(fast).toEqual(general);
    expect(fast[1].updated_at.getTime()).toBeGreaterThan(Date.now() - 60_000);
    // Committed this time: the next check finds every row fresh again.
    await client.query(`SELECT * FROM budget_check_context_of($1::uuid, now(), 'gpt-4o', NULL, true)`, [ids.user]);
    expect(await tookFastPath(ids.user, now())).toBe(true);
  });

  it('an instant in another window (rolled over, or before the start): the general answer, active or not', async () => {
    for (const at of [new Date(Date.now() + 40 * 86_400_000), new Date(Date.now() - 20 * 86_400_000)]) {
      expect(await tookFastPath(ids.user, at.toISOString())).toBe(false);
      const { fast, general } = await both(ids.user, at.toISOString());
      expect(fast).toEqual(general);
      expect(fast).toHaveLength(3);
    }
    const before = await both(ids.single, new Date(Date.now() - 20 * 86_400_000).toISOString());
    expect(before.fast.map((row) => row.active)).toEqual([false]);
  });

  describe('by scopes', () => {
    const tree: [string, string][] = [['user', 'user'], ['team', 'team'], ['organization', 'org']];

    it.each([
      ['one chain named at every level', tree, 3],
      ['two trees, the leaf named twice', [['user', 'user'], ['project', 'single'], ['user', 'user']], 4],
      ['a middle budget, and a tagged budget an untagged request does not reach', [['team', 'team'], ['project', 'tagged']], 2],
      ['scopes that name no budget, and a deleted one', [['user', 'nobody'], ['project', 'gone']], 0],
      ['no scopes', [], 0],
    ] as [string, [string, string][], number][])('fresh cache rows: %s, the same rows', async (_name, scopes, members) => {
      const { fast, general } = await bothByScopes(scopes, now());
      expect(fast).toHaveLength(members);
      expect(fast).toEqual(general);
      if (members) expect(await tookFastPath(scopes, now())).toBe(true);
    });

    it('filters: a refusing budget is not counted (nor its chain), unless filters are off', async () => {
      const scopes: [string, string][] = [['project', 'claude-only'], ['project', 'tagged']];
      for (const [modelId, tags, applyFilters] of [
        ['gpt-4o', null, true], ['claude-3-opus', ['prod'], true], ['gpt-4o', ['dev'], true], ['gpt-4o', null, false],
      ] as [string, string[] | null, boolean][]) {
        const { fast, general } = await bothByScopes(scopes, now(), modelId, tags, applyFilters);
        expect(fast).toEqual(general);
      }
      const refused = await bothByScopes(scopes, now());
      expect(refused.fast.map((row) => row.name)).toEqual([]);
      const both = await bothByScopes(scopes, now(), 'claude-3-opus', ['prod']);
      expect(both.fast.map((row) => [row.name, row.is_seed])).toEqual(
        [['claude-only', true], ['team', false], ['tagged', true], ['org', false]].sort((a, b) =>
          both.general.findIndex((row) => row.name === a[0]) - both.general.findIndex((row) => row.name === b[0])),
      );
    });

    it('a stale row or another window: handed over to budget_check_context', async () => {
      await client.query(`UPDATE budget_status_cache SET updated_at = now() - interval '6 minutes' WHERE budget_id = $1`, [ids.org]);
      expect(await tookFastPath(tree, now())).toBe(false);
      const stale = await bothByScopes(tree, now());
      expect(stale.fast).toEqual(stale.general);
      await client.query(`SELECT * FROM budget_check_context_of_scopes($1::text[], $2::text[], now(), 'gpt-4o', NULL, true)`,
        [tree.map(([type]) => type), tree.map(([, id]) => id)]);
      expect(await tookFastPath(tree, now())).toBe(true);
      const later = new Date(Date.now() + 40 * 86_400_000).toISOString();
      expect(await tookFastPath(tree, later)).toBe(false);
      const rolled = await bothByScopes(tree, later);
      expect(rolled.fast).toEqual(rolled.general);
    });
  });

  it('is inlined into the statement that calls it (planned once per connection when prepared)', async () => {
    await client.query(
      `PREPARE check_of (uuid, timestamptz) AS SELECT * FROM budget_check_context_of($1, $2, 'gpt-4o', NULL, true)`,
    );
    try {
      // EXECUTE takes no bind parameters; the id is a uuid this spec created.
      for (let run = 0; run < 6; run += 1) await client.query(`EXECUTE check_of ('${ids.user}', now())`);
      const plan = await client.query(`EXPLAIN (COSTS OFF, FORMAT JSON) EXECUTE check_of ('${ids.user}', now())`);
      const text = JSON.stringify(plan.rows[0]['QUERY PLAN']);
      expect(text).not.toContain('"Function Name":"budget_check_context_of"');
      expect(text).toContain('"Relation Name":"budget_status_cache"');
    } finally {
      await client.query('DEALLOCATE check_of');
    }
  });

  it('the PL/pgSQL wrappers for a transaction pooler (migration CheckContextPlannedOnce) answer the same rows', async () => {
    const tree: [string, string][] = [['user', 'user'], ['project', 'claude-only'], ['organization', 'org']];
    for (const [modelId, applyFilters] of [['gpt-4o', true], ['claude-3-opus', true], ['gpt-4o', false]] as [string, boolean][]) {
      for (const id of [ids.user, ids.claude, ids.single, ids.gone]) {
        const planned = await client.query(`SELECT * FROM budget_check_context_of_planned($1::uuid, now(), $2, NULL, $3)`, [id, modelId, applyFilters]);
        const inlined = await client.query(`SELECT * FROM budget_check_context_of($1::uuid, now(), $2, NULL, $3)`, [id, modelId, applyFilters]);
        expect(planned.rows).toEqual(inlined.rows);
      }
      const params = [tree.map(([type]) => type), tree.map(([, id]) => id), modelId, applyFilters];
      const planned = await client.query(`SELECT * FROM budget_check_context_of_scopes_planned($1::text[], $2::text[], now(), $3, NULL, $4)`, params);
      const inlined = await client.query(`SELECT * FROM budget_check_context_of_scopes($1::text[], $2::text[], now(), $3, NULL, $4)`, params);
      expect(planned.rows).toEqual(inlined.rows);
      expect(planned.rows.length).toBeGreaterThan(0);
    }
  });

  it('a deleted or unknown budget: no rows', async () => {
    for (const id of [ids.gone, '00000000-0000-4000-8000-000000000000']) {
      const { fast, general } = await both(id, now());
      expect(fast).toEqual([]);
      expect(general).toEqual([]);
    }
  });
});
