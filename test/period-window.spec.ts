import { Client } from 'pg';
import { createTestDatabase } from './setup/test-database';

/**
 * SPEC §2 "Period windows": `budget_period_window(start, end, period, customDays, recurring, timezone, at)`
 * called through a real PostgreSQL. Instants are compared as UTC strings with microseconds, so an
 * off-by-one-microsecond boundary would show.
 */

interface WindowCase {
  name: string;
  start: string;
  end?: string;
  period: 'daily' | 'weekly' | 'monthly' | 'quarterly' | 'annual' | 'custom';
  days?: number;
  recurring?: boolean;
  tz?: string;
  at: string;
  expected: { start: string; end: string; active: boolean };
}

/** `2025-01-01T05:00:00Z` → `2025-01-01T05:00:00.000000Z`, the format the query returns. */
function micro(iso: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!match) throw new Error(`expected instants are written in UTC: ${iso}`);
  return `${match[1]}.${(match[2] ?? '').padEnd(6, '0')}Z`;
}

const NY = 'America/New_York';
const BERLIN = 'Europe/Berlin';

const CASES: WindowCase[] = [
  // Month-end clamping, always from the anchor (never by repeated addition).
  {
    name: 'monthly from Jan 31: first window ends on Feb 28',
    start: '2025-01-31T00:00:00Z', period: 'monthly', at: '2025-02-15T00:00:00Z',
    expected: { start: '2025-01-31T00:00:00Z', end: '2025-02-28T00:00:00Z', active: true },
  },
  {
    name: 'monthly from Jan 31: second window is Feb 28 → Mar 31',
    start: '2025-01-31T00:00:00Z', period: 'monthly', at: '2025-03-01T00:00:00Z',
    expected: { start: '2025-02-28T00:00:00Z', end: '2025-03-31T00:00:00Z', active: true },
  },
  {
    name: 'monthly from Jan 31: third window is Mar 31 → Apr 30',
    start: '2025-01-31T00:00:00Z', period: 'monthly', at: '2025-04-15T12:00:00Z',
    expected: { start: '2025-03-31T00:00:00Z', end: '2025-04-30T00:00:00Z', active: true },
  },
  {
    name: 'monthly from Jan 31 in a leap year: Feb 29',
    start: '2024-01-31T00:00:00Z', period: 'monthly', at: '2024-02-15T00:00:00Z',
    expected: { start: '2024-01-31T00:00:00Z', end: '2024-02-29T00:00:00Z', active: true },
  },
  {
    name: 'monthly from Jan 31 in a leap year: Feb 29 → Mar 31',
    start: '2024-01-31T00:00:00Z', period: 'monthly', at: '2024-03-30T23:59:59Z',
    expected: { start: '2024-02-29T00:00:00Z', end: '2024-03-31T00:00:00Z', active: true },
  },
  {
    name: 'monthly from Jan 31, eleven months on: Dec 31 → Jan 31',
    start: '2025-01-31T00:00:00Z', period: 'monthly', at: '2026-01-15T00:00:00Z',
    expected: { start: '2025-12-31T00:00:00Z', end: '2026-01-31T00:00:00Z', active: true },
  },
  {
    name: 'monthly anchored mid-day: the anchor time of day is kept',
    start: '2025-01-31T15:30:00Z', period: 'monthly', at: '2025-02-28T15:29:59Z',
    expected: { start: '2025-01-31T15:30:00Z', end: '2025-02-28T15:30:00Z', active: true },
  },
  // Feb 29 annual.
  {
    name: 'annual from 2024-02-29: first window ends 2025-02-28',
    start: '2024-02-29T00:00:00Z', period: 'annual', at: '2024-06-01T00:00:00Z',
    expected: { start: '2024-02-29T00:00:00Z', end: '2025-02-28T00:00:00Z', active: true },
  },
  {
    name: 'annual from 2024-02-29: exactly at 2025-02-28 starts the second window',
    start: '2024-02-29T00:00:00Z', period: 'annual', at: '2025-02-28T00:00:00Z',
    expected: { start: '2025-02-28T00:00:00Z', end: '2026-02-28T00:00:00Z', active: true },
  },
  {
    name: 'annual from 2024-02-29: 2027 window ends on 2028-02-29',
    start: '2024-02-29T00:00:00Z', period: 'annual', at: '2027-12-31T00:00:00Z',
    expected: { start: '2027-02-28T00:00:00Z', end: '2028-02-29T00:00:00Z', active: true },
  },
  {
    name: 'annual from 2024-02-29: back on Feb 29 in 2028',
    start: '2024-02-29T00:00:00Z', period: 'annual', at: '2028-03-01T00:00:00Z',
    expected: { start: '2028-02-29T00:00:00Z', end: '2029-02-28T00:00:00Z', active: true },
  },
  // Quarterly from Nov 30.
  {
    name: 'quarterly from Nov 30: first window ends Feb 28',
    start: '2024-11-30T00:00:00Z', period: 'quarterly', at: '2025-01-15T00:00:00Z',
    expected: { start: '2024-11-30T00:00:00Z', end: '2025-02-28T00:00:00Z', active: true },
  },
  {
    name: 'quarterly from Nov 30: Feb 28 → May 30',
    start: '2024-11-30T00:00:00Z', period: 'quarterly', at: '2025-03-15T00:00:00Z',
    expected: { start: '2025-02-28T00:00:00Z', end: '2025-05-30T00:00:00Z', active: true },
  },
  {
    name: 'quarterly from Nov 30: May 30 → Aug 30',
    start: '2024-11-30T00:00:00Z', period: 'quarterly', at: '2025-08-29T23:59:59.999999Z',
    expected: { start: '2025-05-30T00:00:00Z', end: '2025-08-30T00:00:00Z', active: true },
  },
  // Weekly.
  {
    name: 'weekly: exactly at a boundary belongs to the new week (start inclusive)',
    start: '2025-01-06T00:00:00Z', period: 'weekly', at: '2025-01-20T00:00:00Z',
    expected: { start: '2025-01-20T00:00:00Z', end: '2025-01-27T00:00:00Z', active: true },
  },
  {
    name: 'weekly: 1 microsecond before a boundary belongs to the old week (end exclusive)',
    start: '2025-01-06T00:00:00Z', period: 'weekly', at: '2025-01-19T23:59:59.999999Z',
    expected: { start: '2025-01-13T00:00:00Z', end: '2025-01-20T00:00:00Z', active: true },
  },
  {
    name: 'weekly in America/New_York across spring-forward: week of 167 hours, then local midnight',
    start: '2025-03-03T05:00:00Z', period: 'weekly', tz: NY, at: '2025-03-12T00:00:00Z',
    expected: { start: '2025-03-10T04:00:00Z', end: '2025-03-17T04:00:00Z', active: true },
  },
  {
    name: 'weekly in America/New_York: the week containing spring-forward',
    start: '2025-03-03T05:00:00Z', period: 'weekly', tz: NY, at: '2025-03-09T12:00:00Z',
    expected: { start: '2025-03-03T05:00:00Z', end: '2025-03-10T04:00:00Z', active: true },
  },
  // Daily across DST, America/New_York anchored at local midnight.
  {
    name: 'daily America/New_York: 2025-03-09 is 23 hours',
    start: '2025-01-01T05:00:00Z', period: 'daily', tz: NY, at: '2025-03-09T12:00:00Z',
    expected: { start: '2025-03-09T05:00:00Z', end: '2025-03-10T04:00:00Z', active: true },
  },
  {
    name: 'daily America/New_York: last microsecond of 2025-03-09',
    start: '2025-01-01T05:00:00Z', period: 'daily', tz: NY, at: '2025-03-10T03:59:59.999999Z',
    expected: { start: '2025-03-09T05:00:00Z', end: '2025-03-10T04:00:00Z', active: true },
  },
  {
    name: 'daily America/New_York: 2025-03-10 starts at local midnight (04:00Z)',
    start: '2025-01-01T05:00:00Z', period: 'daily', tz: NY, at: '2025-03-10T04:00:00Z',
    expected: { start: '2025-03-10T04:00:00Z', end: '2025-03-11T04:00:00Z', active: true },
  },
  {
    name: 'daily America/New_York: 2025-11-02 is 25 hours',
    start: '2025-01-01T05:00:00Z', period: 'daily', tz: NY, at: '2025-11-02T12:00:00Z',
    expected: { start: '2025-11-02T04:00:00Z', end: '2025-11-03T05:00:00Z', active: true },
  },
  {
    name: 'daily America/New_York: 23:30 local on 2025-11-02 is still that day',
    start: '2025-01-01T05:00:00Z', period: 'daily', tz: NY, at: '2025-11-03T04:30:00Z',
    expected: { start: '2025-11-02T04:00:00Z', end: '2025-11-03T05:00:00Z', active: true },
  },
  {
    name: 'monthly America/New_York: March runs from EST midnight to EDT midnight',
    start: '2025-01-01T05:00:00Z', period: 'monthly', tz: NY, at: '2025-03-15T00:00:00Z',
    expected: { start: '2025-03-01T05:00:00Z', end: '2025-04-01T04:00:00Z', active: true },
  },
  // Daily across DST, Europe/Berlin anchored at local midnight (2024-12-31T23:00Z).
  {
    name: 'daily Europe/Berlin: 2025-03-30 is 23 hours',
    start: '2024-12-31T23:00:00Z', period: 'daily', tz: BERLIN, at: '2025-03-30T10:00:00Z',
    expected: { start: '2025-03-29T23:00:00Z', end: '2025-03-30T22:00:00Z', active: true },
  },
  {
    name: 'daily Europe/Berlin: 2025-10-26 is 25 hours',
    start: '2024-12-31T23:00:00Z', period: 'daily', tz: BERLIN, at: '2025-10-26T22:30:00Z',
    expected: { start: '2025-10-25T22:00:00Z', end: '2025-10-26T23:00:00Z', active: true },
  },
  {
    name: 'custom 10 days in Europe/Berlin across spring-forward stays at local midnight',
    start: '2025-03-25T23:00:00Z', period: 'custom', days: 10, tz: BERLIN, at: '2025-04-05T00:00:00Z',
    expected: { start: '2025-04-04T22:00:00Z', end: '2025-04-14T22:00:00Z', active: true },
  },
  // Custom periods.
  {
    name: 'custom 10 days: third window',
    start: '2025-01-01T00:00:00Z', period: 'custom', days: 10, at: '2025-01-25T00:00:00Z',
    expected: { start: '2025-01-21T00:00:00Z', end: '2025-01-31T00:00:00Z', active: true },
  },
  {
    name: 'custom 10 days: exactly at the second boundary',
    start: '2025-01-01T00:00:00Z', period: 'custom', days: 10, at: '2025-01-11T00:00:00Z',
    expected: { start: '2025-01-11T00:00:00Z', end: '2025-01-21T00:00:00Z', active: true },
  },
  {
    name: 'custom 10 days: across the end of February',
    start: '2025-01-01T00:00:00Z', period: 'custom', days: 10, at: '2025-03-01T00:00:00Z',
    expected: { start: '2025-02-20T00:00:00Z', end: '2025-03-02T00:00:00Z', active: true },
  },
  {
    name: 'custom 1 day anchored at 06:00Z',
    start: '2025-01-01T06:00:00Z', period: 'custom', days: 1, at: '2025-01-05T05:59:59Z',
    expected: { start: '2025-01-04T06:00:00Z', end: '2025-01-05T06:00:00Z', active: true },
  },
  {
    name: 'custom 3660 days: second window',
    start: '2025-01-01T00:00:00Z', period: 'custom', days: 3660, at: '2040-01-01T00:00:00Z',
    expected: { start: '2035-01-09T00:00:00Z', end: '2045-01-16T00:00:00Z', active: true },
  },
  // Exactly at start, before start, after endDate.
  {
    name: 'exactly at startDate: the first window, active',
    start: '2025-03-01T00:00:00Z', period: 'monthly', at: '2025-03-01T00:00:00Z',
    expected: { start: '2025-03-01T00:00:00Z', end: '2025-04-01T00:00:00Z', active: true },
  },
  {
    name: 'before startDate: inactive, the first window reported',
    start: '2025-03-01T00:00:00Z', period: 'monthly', at: '2025-01-01T00:00:00Z',
    expected: { start: '2025-03-01T00:00:00Z', end: '2025-04-01T00:00:00Z', active: false },
  },
  {
    name: '1 microsecond before startDate: inactive',
    start: '2025-03-01T00:00:00Z', period: 'daily', at: '2025-02-28T23:59:59.999999Z',
    expected: { start: '2025-03-01T00:00:00Z', end: '2025-03-02T00:00:00Z', active: false },
  },
  {
    name: 'after endDate: inactive, the last window clipped to endDate',
    start: '2025-01-01T00:00:00Z', end: '2025-01-10T12:00:00Z', period: 'daily', at: '2025-02-01T00:00:00Z',
    expected: { start: '2025-01-10T00:00:00Z', end: '2025-01-10T12:00:00Z', active: false },
  },
  {
    name: 'exactly at endDate: inactive (end exclusive)',
    start: '2025-01-01T00:00:00Z', end: '2025-01-10T12:00:00Z', period: 'daily', at: '2025-01-10T12:00:00Z',
    expected: { start: '2025-01-10T00:00:00Z', end: '2025-01-10T12:00:00Z', active: false },
  },
  {
    name: '1 microsecond before endDate: active in the clipped last window',
    start: '2025-01-01T00:00:00Z', end: '2025-01-10T12:00:00Z', period: 'daily', at: '2025-01-10T11:59:59.999999Z',
    expected: { start: '2025-01-10T00:00:00Z', end: '2025-01-10T12:00:00Z', active: true },
  },
  {
    name: 'endDate on a boundary: the last window is the one before it',
    start: '2025-01-01T00:00:00Z', end: '2025-04-01T00:00:00Z', period: 'monthly', at: '2025-05-15T00:00:00Z',
    expected: { start: '2025-03-01T00:00:00Z', end: '2025-04-01T00:00:00Z', active: false },
  },
  {
    name: 'weekly with an endDate mid-week: the last week is clipped',
    start: '2025-01-06T00:00:00Z', end: '2025-01-23T00:00:00Z', period: 'weekly', at: '2025-01-22T00:00:00Z',
    expected: { start: '2025-01-20T00:00:00Z', end: '2025-01-23T00:00:00Z', active: true },
  },
  // Non-recurring.
  {
    name: 'non-recurring inside its window',
    start: '2025-01-15T00:00:00Z', period: 'monthly', recurring: false, at: '2025-02-01T00:00:00Z',
    expected: { start: '2025-01-15T00:00:00Z', end: '2025-02-15T00:00:00Z', active: true },
  },
  {
    name: 'non-recurring after its window: inactive, its only window',
    start: '2025-01-15T00:00:00Z', period: 'monthly', recurring: false, at: '2025-06-01T00:00:00Z',
    expected: { start: '2025-01-15T00:00:00Z', end: '2025-02-15T00:00:00Z', active: false },
  },
  {
    name: 'non-recurring exactly at the end of its window: inactive',
    start: '2025-01-15T00:00:00Z', period: 'monthly', recurring: false, at: '2025-02-15T00:00:00Z',
    expected: { start: '2025-01-15T00:00:00Z', end: '2025-02-15T00:00:00Z', active: false },
  },
  {
    name: 'non-recurring before its start: inactive',
    start: '2025-01-15T00:00:00Z', period: 'monthly', recurring: false, at: '2025-01-01T00:00:00Z',
    expected: { start: '2025-01-15T00:00:00Z', end: '2025-02-15T00:00:00Z', active: false },
  },
  {
    name: 'non-recurring clipped to endDate, inside',
    start: '2025-01-15T00:00:00Z', end: '2025-02-01T00:00:00Z', period: 'monthly', recurring: false,
    at: '2025-01-20T00:00:00Z',
    expected: { start: '2025-01-15T00:00:00Z', end: '2025-02-01T00:00:00Z', active: true },
  },
  {
    name: 'non-recurring clipped to endDate, after',
    start: '2025-01-15T00:00:00Z', end: '2025-02-01T00:00:00Z', period: 'monthly', recurring: false,
    at: '2025-02-05T00:00:00Z',
    expected: { start: '2025-01-15T00:00:00Z', end: '2025-02-01T00:00:00Z', active: false },
  },
  {
    name: 'non-recurring custom 10 days in Europe/Berlin',
    start: '2025-03-25T23:00:00Z', period: 'custom', days: 10, recurring: false, tz: BERLIN, at: '2025-04-10T00:00:00Z',
    expected: { start: '2025-03-25T23:00:00Z', end: '2025-04-04T22:00:00Z', active: false },
  },
  // Far future.
  {
    name: 'daily UTC, 50 years after the anchor, 1 microsecond after a boundary',
    start: '2025-01-01T00:00:00Z', period: 'daily', at: '2075-01-01T00:00:00.000001Z',
    expected: { start: '2075-01-01T00:00:00Z', end: '2075-01-02T00:00:00Z', active: true },
  },
  {
    name: 'daily America/New_York, 50 years after the anchor, in summer time',
    start: '2025-01-01T05:00:00Z', period: 'daily', tz: NY, at: '2075-07-04T12:00:00Z',
    expected: { start: '2075-07-04T04:00:00Z', end: '2075-07-05T04:00:00Z', active: true },
  },
  {
    name: 'monthly from Jan 31, 50 years on: Feb 2075 still ends on Feb 28',
    start: '2025-01-31T00:00:00Z', period: 'monthly', at: '2075-02-10T00:00:00Z',
    expected: { start: '2075-01-31T00:00:00Z', end: '2075-02-28T00:00:00Z', active: true },
  },
];

const QUERY = `
  SELECT to_char(w.period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS period_start,
         to_char(w.period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS period_end,
         w.active
  FROM budget_period_window($1::timestamptz, $2::timestamptz, $3::text, $4::integer, $5::boolean, $6::text, $7::timestamptz) w`;

describe('budget_period_window (SQL)', () => {
  let client: Client;

  beforeAll(async () => {
    client = new Client({ connectionString: await createTestDatabase() });
    await client.connect();
  });

  afterAll(async () => {
    await client.end();
  });

  async function window(c: WindowCase) {
    const { rows } = await client.query(QUERY, [
      c.start, c.end ?? null, c.period, c.days ?? null, c.recurring ?? true, c.tz ?? 'UTC', c.at,
    ]);
    return rows[0] as { period_start: string; period_end: string; active: boolean };
  }

  it('has at least 30 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    expect(await window(c)).toEqual({
      period_start: micro(c.expected.start),
      period_end: micro(c.expected.end),
      active: c.expected.active,
    });
  });

  it('stays fast 50 years after a daily anchor (no per-period loop)', async () => {
    const far: WindowCase = CASES.find((c) => c.name.startsWith('daily America/New_York, 50 years'))!;
    const started = process.hrtime.bigint();
    for (let i = 0; i < 20; i++) await window(far);
    const perCallMs = Number(process.hrtime.bigint() - started) / 1e6 / 20;
    expect(perCallMs).toBeLessThan(25);
  });

  it('every window of a daily America/New_York budget over 2025 starts at local midnight, chains, and is 23/24/25 h long', async () => {
    const { rows } = await client.query(
      `SELECT to_char(w.period_start AT TIME ZONE 'America/New_York', 'HH24:MI:SS') AS local_start,
              (extract(epoch FROM w.period_end - w.period_start) / 3600)::int AS hours,
              lead(w.period_start) OVER (ORDER BY w.period_start) = w.period_end AS chains
       FROM generate_series('2025-01-01T17:00:00Z'::timestamptz, '2025-12-31T17:00:00Z', interval '1 day') AS at,
            budget_period_window('2025-01-01T05:00:00Z', NULL, 'daily', NULL, true, 'America/New_York', at) w`,
    );
    expect(rows).toHaveLength(365);
    expect(rows.every((r) => r.local_start === '00:00:00')).toBe(true);
    expect(rows.slice(0, -1).every((r) => r.chains === true)).toBe(true);
    const hours = rows.map((r) => r.hours as number);
    expect(hours.filter((h) => h === 23)).toHaveLength(1);
    expect(hours.filter((h) => h === 25)).toHaveLength(1);
    expect(hours.filter((h) => h === 24)).toHaveLength(363);
  });

  it('rejects an unknown period with a stable error code', async () => {
    await expect(
      client.query(QUERY, ['2025-01-01T00:00:00Z', null, 'fortnightly', null, true, 'UTC', '2025-01-02T00:00:00Z']),
    ).rejects.toMatchObject({ code: 'RB400', message: 'INVALID_PERIOD' });
  });
});
