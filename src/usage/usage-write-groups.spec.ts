import { EventEmitter2 } from '@nestjs/event-emitter';
import { DomainError } from '../common/errors/domain-error';
import { loadConfig } from '../config/configuration';
import { UsageEvents } from './usage.events';
import type { GroupRow, RecordedUsageRow, UsageRepository, UsageWrite } from './usage.repository';
import { GROUPS_IN_FLIGHT, UsageWriteGroups } from './usage-write-groups';

/**
 * The group committer's scheduling, with the repository replaced by one whose statements finish
 * when the test says (the SQL and the answers are specified against PostgreSQL in
 * test/usage-group-commit.spec.ts).
 */
describe('UsageWriteGroups', () => {
  const write = (n: number, key: string | null = `k${n}`): UsageWrite => ({ budgetId: 'b', idempotencyKey: key, amount: String(n) }) as UsageWrite;
  const row = (w: UsageWrite) => ({ id: `row-${w.amount}`, budgetId: w.budgetId, amount: w.amount, replayed: false, firedAlerts: [] }) as unknown as RecordedUsageRow;

  function setup(connectTimeoutMs = 5_000) {
    const calls: { kind: 'alone' | 'group'; writes: UsageWrite[]; finish: () => void }[] = [];
    const repository = {
      record: (w: UsageWrite) => new Promise<RecordedUsageRow>((resolve) => calls.push({ kind: 'alone', writes: [w], finish: () => resolve(row(w)) })),
      recordGroup: (ws: UsageWrite[]) =>
        new Promise<GroupRow[]>((resolve) =>
          calls.push({
            kind: 'group',
            writes: ws,
            // The group records all but the writes whose amount is 13 (a refused line).
            finish: () => resolve(ws.map((w, ordinal) => ({ ...row(w), ordinal, recorded: w.amount !== '13' }) as GroupRow)),
          }),
        ),
    } as unknown as UsageRepository;
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_CONNECT_TIMEOUT_MS: String(connectTimeoutMs) });
    const events = new EventEmitter2();
    const groups = new UsageWriteGroups(repository, events, new UsageEvents(events), config);
    return { groups, calls };
  }

  const tick = () => new Promise((done) => setImmediate(done));

  it('a write that finds a slot goes alone at once; writes arriving meanwhile go as one group when a slot frees', async () => {
    const { groups, calls } = setup();
    const answers = Array.from({ length: 2 + 5 }, (_, i) => groups.record(write(i + 1)));
    await tick();
    expect(calls.map((c) => [c.kind, c.writes.length])).toEqual([['alone', 1], ['alone', 1]]);
    expect(GROUPS_IN_FLIGHT).toBe(2);
    calls[0].finish();
    await tick();
    expect(calls.map((c) => [c.kind, c.writes.length])).toEqual([['alone', 1], ['alone', 1], ['group', 5]]);
    calls[1].finish();
    calls[2].finish();
    expect((await Promise.all(answers)).map((r) => r.amount)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
  });

  it('two writes with one key on one budget never share a group; a line the group did not record is written alone', async () => {
    const { groups, calls } = setup();
    const first = [groups.record(write(1)), groups.record(write(2))];
    const queued = [groups.record(write(3, 'same')), groups.record(write(13)), groups.record(write(4, 'same'))];
    await tick();
    calls[0].finish();
    await tick();
    expect(calls[2].writes.map((w) => w.amount)).toEqual(['3', '13']);
    calls[1].finish();
    await tick();
    expect(calls[3].writes.map((w) => w.amount)).toEqual(['4']);
    calls[2].finish();
    await tick();
    // 13 was not recorded by the group: it goes alone, through record_usage.
    expect(calls[4]).toMatchObject({ kind: 'alone', writes: [{ amount: '13' }] });
    calls[3].finish();
    calls[4].finish();
    expect((await Promise.all([...first, ...queued])).map((r) => r.amount)).toEqual(['1', '2', '3', '13', '4']);
  });

  it('a write still queued after DATABASE_CONNECT_TIMEOUT_MS is answered 503 and never sent', async () => {
    const { groups, calls } = setup(100);
    void groups.record(write(1));
    void groups.record(write(2));
    const late = groups.record(write(3));
    await expect(late).rejects.toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    await expect(late).rejects.toBeInstanceOf(DomainError);
    calls[0].finish();
    calls[1].finish();
    await tick();
    expect(calls.flatMap((c) => c.writes.map((w) => w.amount))).toEqual(['1', '2']);
  });
});
