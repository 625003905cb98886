import { EventEmitter2 } from '@nestjs/event-emitter';
import { DomainError } from '../common/errors/domain-error';
import { loadConfig } from '../config/configuration';
import { CHECK_GROUPS_IN_FLIGHT, CheckContextGroups } from './check-context-groups';
import { CHECK_GROUP_READ, type CheckGroupRead } from './constraint.events';
import type { CheckContextRow, CheckTarget, ConstraintRepository, GroupedCheck } from './constraint.repository';

/**
 * The scheduling of grouped checks, with the repository replaced by one whose statements finish
 * when the test says (the SQL and the answers are specified against PostgreSQL in
 * test/check-context-groups.spec.ts).
 */
describe('CheckContextGroups', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const rowsOf = (budgetId: string) => [{ budgetId } as CheckContextRow];
  const idOf = (target: CheckTarget) => ('budgetId' in target ? target.budgetId : target.scopes.map((s) => s.id).join('+'));

  function setup(config: Record<string, string> = {}) {
    const calls: { kind: 'alone' | 'group'; ids: string[]; finish: (error?: unknown) => void }[] = [];
    const repository = {
      checkContext: (target: CheckTarget) =>
        new Promise<CheckContextRow[]>((resolve, reject) =>
          calls.push({ kind: 'alone', ids: [idOf(target)], finish: (error) => (error ? reject(error) : resolve(rowsOf(`${idOf(target)} alone`))) }),
        ),
      // The group answers every check but those of budget "stale" (a chain to refresh).
      checkContexts: (checks: GroupedCheck[]) =>
        new Promise<(CheckContextRow[] | undefined)[]>((resolve, reject) =>
          calls.push({
            kind: 'group',
            ids: checks.map((c) => idOf(c.target)),
            finish: (error) => (error ? reject(error) : resolve(checks.map((c) => (idOf(c.target) === 'stale' ? undefined : rowsOf(`${idOf(c.target)} grouped`))))),
          }),
        ),
    } as unknown as ConstraintRepository;
    const events = new EventEmitter2();
    const reads: CheckGroupRead[] = [];
    events.on(CHECK_GROUP_READ, (read: CheckGroupRead) => reads.push(read));
    const groups = new CheckContextGroups(repository, events, loadConfig({ NODE_ENV: 'test', ...config }));
    const check = (budgetId: string) => groups.checkContext({ budgetId }, at, {});
    return { groups, calls, reads, check };
  }

  const tick = () => new Promise((done) => setImmediate(done));
  const ids = async (answers: Promise<CheckContextRow[]>[]) => (await Promise.all(answers)).map((rows) => rows[0].budgetId);

  it('a check that finds a slot is read alone at once; checks arriving meanwhile are read by one statement when a slot frees', async () => {
    const { calls, check, reads } = setup();
    const answers = ['a', 'b', 'c', 'd', 'e'].map(check);
    await tick();
    expect(CHECK_GROUPS_IN_FLIGHT).toBe(2);
    expect(calls.map((c) => [c.kind, c.ids])).toEqual([['alone', ['a']], ['alone', ['b']]]);
    calls[0].finish();
    await tick();
    expect(calls.map((c) => [c.kind, c.ids])).toEqual([['alone', ['a']], ['alone', ['b']], ['group', ['c', 'd', 'e']]]);
    calls[1].finish();
    calls[2].finish();
    expect(await ids(answers)).toEqual(['a alone', 'b alone', 'c grouped', 'd grouped', 'e grouped']);
    expect(reads).toEqual([{ size: 3, readAgain: 0 }]);
  });

  it('a check the group did not answer is read again alone; checks by id and by scopes have their own slots', async () => {
    const { calls, groups, check, reads } = setup();
    const first = [check('a'), check('b')];
    const queued = [check('c'), check('stale'), check('d')];
    const byScopes = groups.checkContext({ scopes: [{ type: 'user', id: 'u' }] }, at, {});
    await tick();
    expect(calls.map((c) => [c.kind, c.ids])).toEqual([['alone', ['a']], ['alone', ['b']], ['alone', ['u']]]);
    calls[0].finish();
    await tick();
    expect(calls[3]).toMatchObject({ kind: 'group', ids: ['c', 'stale', 'd'] });
    calls[3].finish();
    await tick();
    expect(calls[4]).toMatchObject({ kind: 'alone', ids: ['stale'] });
    for (const call of [calls[1], calls[2], calls[4]]) call.finish();
    expect(await ids([...first, ...queued, byScopes])).toEqual(['a alone', 'b alone', 'c grouped', 'stale alone', 'd grouped', 'u alone']);
    expect(reads).toEqual([{ size: 3, readAgain: 1 }]);
  });

  it('an error PostgreSQL answered for the group: each check read again alone; no answer at all: each check gets it', async () => {
    const { calls, check } = setup();
    void check('a');
    void check('b');
    const refused = [check('c'), check('d')];
    await tick();
    calls[0].finish();
    await tick();
    calls[2].finish(Object.assign(new Error('invalid input'), { code: '22P02' }));
    await tick();
    expect(calls.slice(3).map((c) => [c.kind, c.ids])).toEqual([['alone', ['c']], ['alone', ['d']]]);
    calls[3].finish();
    calls[4].finish();
    expect(await ids(refused)).toEqual(['c alone', 'd alone']);

    const lost = [check('e'), check('f'), check('g')];
    await tick();
    calls[1].finish();
    await tick();
    // Queued while both slots were taken, they are read together, and the statement loses its connection.
    expect(calls.slice(5).map((c) => [c.kind, c.ids])).toEqual([['group', ['e', 'f', 'g']]]);
    const gone = new Error('Connection terminated unexpectedly');
    calls[5].finish(gone);
    for (const answer of lost) await expect(answer).rejects.toBe(gone);
    expect(calls).toHaveLength(6);
  });

  it('a socket error (a code that is no SQLSTATE) or a statement timeout is the group\'s: each check gets it, none is read again', async () => {
    for (const error of [
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
    ]) {
      const { calls, check } = setup();
      void check('a');
      void check('b');
      const lost = [check('c'), check('d')];
      await tick();
      calls[0].finish();
      await tick();
      expect(calls[2]).toMatchObject({ kind: 'group', ids: ['c', 'd'] });
      calls[2].finish(error);
      for (const answer of lost) await expect(answer).rejects.toBe(error);
      calls[1].finish();
      await tick();
      expect(calls).toHaveLength(3);
    }
  });

  it('a check still queued after DATABASE_CONNECT_TIMEOUT_MS is answered 503 and never sent', async () => {
    const { calls, check } = setup({ DATABASE_CONNECT_TIMEOUT_MS: '100' });
    void check('a');
    void check('b');
    const late = check('c');
    await expect(late).rejects.toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    await expect(late).rejects.toBeInstanceOf(DomainError);
    calls[0].finish();
    calls[1].finish();
    await tick();
    expect(calls.flatMap((c) => c.ids)).toEqual(['a', 'b']);
  });

  it('CHECK_GROUP_MAX=1, or a transaction-mode pooler: every check alone, none queued', async () => {
    for (const config of [{ CHECK_GROUP_MAX: '1' }, { DATABASE_POOL_MODE: 'transaction' }] as Record<string, string>[]) {
      const { calls, check } = setup(config);
      const answers = ['a', 'b', 'c', 'd'].map(check);
      await tick();
      expect(calls.map((c) => c.kind)).toEqual(['alone', 'alone', 'alone', 'alone']);
      calls.forEach((call) => call.finish());
      expect(await ids(answers)).toEqual(['a alone', 'b alone', 'c alone', 'd alone']);
    }
  });
});
