import { Decimal } from '../common/money';
import { type DerivedStatus, type StatusFigures, deriveStatus, percentOf, statusLabel } from './budget-status.calculator';

/**
 * SPEC §2 "Status": the figures derived at read time (issue 3, acceptance 6).
 * `now` is always passed explicitly; the process clock is pinned to an unrelated date so that any
 * dependence on Date.now would show.
 */

beforeAll(() => {
  jest.useFakeTimers({ now: new Date('1999-12-31T23:59:59.000Z') });
});
afterAll(() => {
  jest.useRealTimers();
});

const HOUR = 3_600_000;
const DAY = 86_400_000;

// A 30-day window; MID is 10 days in, 20 days left.
const START = new Date('2030-06-01T00:00:00.000Z');
const END = new Date('2030-07-01T00:00:00.000Z');
const MID = new Date('2030-06-11T00:00:00.000Z');

function figures(overrides: Partial<StatusFigures> = {}): StatusFigures {
  return {
    currentAmount: '0',
    limit: '1000',
    warningThreshold: 75,
    criticalThreshold: 90,
    periodStart: START,
    periodEnd: END,
    active: true,
    now: MID,
    ...overrides,
  };
}

const at = (base: Date, ms: number) => new Date(base.getTime() + ms);

describe('deriveStatus at 0 %, 50 %, 80 %, 95 %, 100 % and 150 % of a 1000 limit (10 days in, 20 left)', () => {
  const LEVELS: Array<[string, string, DerivedStatus]> = [
    ['0 %: normal, nothing burnt', '0',
      { percentUsed: 0, remaining: 1000, overage: 0, status: 'normal', daysRemaining: 20, burnRate: 0, projectedTotal: 0 }],
    ['50 %: normal', '500',
      { percentUsed: 50, remaining: 500, overage: 0, status: 'normal', daysRemaining: 20, burnRate: 50, projectedTotal: 1500 }],
    ['80 %: warning (≥ 75)', '800',
      { percentUsed: 80, remaining: 200, overage: 0, status: 'warning', daysRemaining: 20, burnRate: 80, projectedTotal: 2400 }],
    ['95 %: critical (≥ 90)', '950',
      { percentUsed: 95, remaining: 50, overage: 0, status: 'critical', daysRemaining: 20, burnRate: 95, projectedTotal: 2850 }],
    ['100 %: exceeded (current ≥ limit), remaining 0, no overage', '1000',
      { percentUsed: 100, remaining: 0, overage: 0, status: 'exceeded', daysRemaining: 20, burnRate: 100, projectedTotal: 3000 }],
    ['150 %: exceeded, percent not clamped, overage 500', '1500',
      { percentUsed: 150, remaining: 0, overage: 500, status: 'exceeded', daysRemaining: 20, burnRate: 150, projectedTotal: 4500 }],
  ];

  it.each(LEVELS)('%s', (_name, current, expected) => {
    expect(deriveStatus(figures({ currentAmount: current }))).toEqual(expected);
  });
});

describe('deriveStatus: status thresholds', () => {
  it.each([
    ['74.99 % → normal', '749.9', 'normal'],
    ['exactly 75 % → warning', '750', 'warning'],
    ['89.99 % → warning', '899.9', 'warning'],
    ['exactly 90 % → critical', '900', 'critical'],
    ['99.99 % → critical', '999.9', 'critical'],
  ] as const)('%s', (_name, current, status) => {
    expect(deriveStatus(figures({ currentAmount: current })).status).toBe(status);
  });

  it('thresholds given as NUMERIC strings (warning 75.5, critical 90.25)', () => {
    const f = (current: string) => figures({ currentAmount: current, warningThreshold: '75.5', criticalThreshold: '90.25' });
    expect(deriveStatus(f('754.9')).status).toBe('normal');
    expect(deriveStatus(f('755')).status).toBe('warning');
    expect(deriveStatus(f('902.4')).status).toBe('warning');
    expect(deriveStatus(f('902.5')).status).toBe('critical');
  });
});

describe('deriveStatus: daysRemaining is the ceiling of (periodEnd − now) in days', () => {
  it.each([
    ['19.75 days left → 20', at(MID, 6 * HOUR), 20],
    ['exactly 1 day left → 1', at(END, -DAY), 1],
    ['1 day and 1 ms left → 2', at(END, -DAY - 1), 2],
    ['1 hour left → 1', at(END, -HOUR), 1],
    ['1 ms left → 1', at(END, -1), 1],
    ['at the window start, 30 days left → 30', START, 30],
  ] as const)('%s', (_name, now, days) => {
    expect(deriveStatus(figures({ now })).daysRemaining).toBe(days);
  });
});

describe('deriveStatus: burnRate = current / elapsed days, elapsed at least 1 hour', () => {
  it('at the window start: elapsed counts as 1 hour (10 spent → 240 / day), projection over the 30 days left', () => {
    const status = deriveStatus(figures({ currentAmount: '10', now: START }));
    expect(status.burnRate).toBe(240);
    expect(status.projectedTotal).toBe(10 + 240 * 30);
    expect(status.daysRemaining).toBe(30);
  });

  it('10 minutes in: still 1 hour (240 / day); projected = 10 + 240 × 29.9930555… days', () => {
    const status = deriveStatus(figures({ currentAmount: '10', now: at(START, 10 * 60_000) }));
    expect(status.burnRate).toBe(240);
    // 10 + 240 × (30 d − 10 min) / 1 d = 7208.3333333333… (10 decimals)
    expect(status.projectedTotal).toBe(7208.3333333333);
  });

  it('exactly 1 hour in: 240 / day; 2 hours in: 120 / day', () => {
    expect(deriveStatus(figures({ currentAmount: '10', now: at(START, HOUR) })).burnRate).toBe(240);
    expect(deriveStatus(figures({ currentAmount: '10', now: at(START, 2 * HOUR) })).burnRate).toBe(120);
  });

  it('non-integer elapsed days: 500 over 10.25 days, money rounded to 10 decimals', () => {
    const now = at(MID, 6 * HOUR);
    const status = deriveStatus(figures({ currentAmount: '500', now }));
    const burn = new Decimal(500).div('10.25');
    expect(status.burnRate).toBe(burn.toDecimalPlaces(10).toNumber());
    expect(status.projectedTotal).toBe(new Decimal(500).add(burn.mul('19.75')).toDecimalPlaces(10).toNumber());
    expect(status.burnRate).toBeCloseTo(48.7804878049, 10);
  });
});

describe('deriveStatus: inactive budgets', () => {
  it('after its end: daysRemaining 0, no projection beyond the spend, burn over the elapsed time', () => {
    const now = new Date('2030-07-05T00:00:00.000Z'); // 34 days after START, 4 after END
    const status = deriveStatus(figures({ active: false, currentAmount: '700', now }));
    expect(status.daysRemaining).toBe(0);
    expect(status.projectedTotal).toBe(700);
    expect(status.burnRate).toBe(new Decimal(700).div(34).toDecimalPlaces(10).toNumber()); // 20.5882352941
    expect(status.burnRate).toBe(20.5882352941);
    expect(status.percentUsed).toBe(70);
    expect(status.remaining).toBe(300);
    expect(status.overage).toBe(0);
    expect(status.status).toBe('normal');
  });

  it('after its end, over the limit: daysRemaining 0, exceeded, overage kept', () => {
    const status = deriveStatus(figures({ active: false, currentAmount: '1200', now: at(END, 3 * DAY) }));
    expect(status.daysRemaining).toBe(0);
    expect(status.projectedTotal).toBe(1200);
    expect(status.percentUsed).toBe(120);
    expect(status.overage).toBe(200);
    expect(status.status).toBe('exceeded');
  });

  it('exactly at its end: daysRemaining 0', () => {
    const status = deriveStatus(figures({ active: false, currentAmount: '100', now: END }));
    expect(status.daysRemaining).toBe(0);
    expect(status.projectedTotal).toBe(100);
  });

  it('before its start: nothing spent, nothing burnt or projected; the window has not begun (30 days)', () => {
    const now = new Date('2030-05-25T00:00:00.000Z'); // 7 days before START
    const status = deriveStatus(figures({ active: false, currentAmount: '0', now }));
    expect(status).toEqual({
      percentUsed: 0,
      remaining: 1000,
      overage: 0,
      status: 'normal',
      // The window [START, END) has not started: its whole 30 days remain (not 37 days until END).
      daysRemaining: 30,
      burnRate: 0,
      projectedTotal: 0,
    });
  });
});

describe('percent rounding to 2 decimals', () => {
  it.each([
    ['1 of 3 → 33.33', '1', '3', 33.33],
    ['2 of 3 → 66.67', '2', '3', 66.67],
    ['1 of 7 → 14.29', '1', '7', 14.29],
    ['0.001 of 1000 → 0 (rounded down)', '0.001', '1000', 0],
    ['0.06 of 1000 → 0.01', '0.06', '1000', 0.01],
    ['2 of 1 → 200 (not clamped)', '2', '1', 200],
  ] as const)('%s', (_name, current, limit, percent) => {
    expect(deriveStatus(figures({ currentAmount: current, limit })).percentUsed).toBe(percent);
    expect(percentOf(current, limit)).toBe(percent);
  });

  it('a percent that rounds up to a threshold does not reach it (89.996 % shows 90 but is warning, SPEC §12.1)', () => {
    const status = deriveStatus(figures({ currentAmount: '899.96' }));
    expect(status.percentUsed).toBe(90);
    expect(status.status).toBe('warning');
  });

  it('limit 3, spent 2.6999: shows 90 % (rounded) but 89.99666… % is warning, not critical', () => {
    const status = deriveStatus(figures({ currentAmount: '2.6999', limit: '3' }));
    expect(status.percentUsed).toBe(90);
    expect(status.status).toBe('warning');
  });

  it('a percent that rounds down stays below (74.994 % → 74.99 → normal)', () => {
    const status = deriveStatus(figures({ currentAmount: '749.94' }));
    expect(status.percentUsed).toBe(74.99);
    expect(status.status).toBe('normal');
  });

  it('99.9999 % rounds to 100 but is not exceeded until current ≥ limit', () => {
    const status = deriveStatus(figures({ currentAmount: '999.999' }));
    expect(status.percentUsed).toBe(100);
    expect(status.status).toBe('critical');
    expect(status.remaining).toBe(0.001);
    expect(status.overage).toBe(0);
  });
});

describe('exactness with 10 fractional digits', () => {
  it('0.0000000001 of 0.0000000003: 33.33 %, remaining 0.0000000002', () => {
    const status = deriveStatus(figures({ currentAmount: '0.0000000001', limit: '0.0000000003' }));
    expect(status.percentUsed).toBe(33.33);
    expect(status.remaining).toBe(0.0000000002);
    expect(status.overage).toBe(0);
    expect(status.status).toBe('normal');
  });

  it('0.1 + 0.2 (as the exact string 0.3) against a 0.3 limit: exceeded, remaining 0, overage 0', () => {
    const current = new Decimal('0.1').add('0.2').toFixed();
    expect(current).toBe('0.3');
    const status = deriveStatus(figures({ currentAmount: current, limit: '0.3' }));
    expect(status.percentUsed).toBe(100);
    expect(status.remaining).toBe(0);
    expect(status.overage).toBe(0);
    expect(status.status).toBe('exceeded');
  });

  it('one 1e-10 under a 1234.5678901235 limit: remaining 0.0000000001, critical, not exceeded', () => {
    const status = deriveStatus(figures({ currentAmount: '1234.5678901234', limit: '1234.5678901235' }));
    expect(status.remaining).toBe(0.0000000001);
    expect(status.overage).toBe(0);
    expect(status.percentUsed).toBe(100);
    expect(status.status).toBe('critical');
  });

  it('one 1e-10 over a 1000 limit: overage 0.0000000001, exceeded', () => {
    const status = deriveStatus(figures({ currentAmount: '1000.0000000001' }));
    expect(status.overage).toBe(0.0000000001);
    expect(status.remaining).toBe(0);
    expect(status.status).toBe('exceeded');
  });

  it('burn rate of 0.0000000003 over 3 days is exactly 0.0000000001 / day', () => {
    const status = deriveStatus(figures({ currentAmount: '0.0000000003', limit: '1', now: at(START, 3 * DAY) }));
    expect(status.burnRate).toBe(0.0000000001);
    expect(status.projectedTotal).toBe(0.000000003); // 0.0000000003 + 0.0000000001 × 27
  });
});

describe('statusLabel', () => {
  it.each([
    ['current ≥ limit wins', '100', '100', 75, 'exceeded'],
    ['critical at the critical threshold', '90', '100', 75, 'critical'],
    ['warning at the warning threshold', '75', '100', 75, 'warning'],
    ['normal below warning', '74', '100', 75, 'normal'],
    ['exactly: 1e-10 below the critical threshold is warning', '89.9999999999', '100', 75, 'warning'],
    ['exactly: 2 of 3 (66.666… %) is below a warning of 66.67 (it shows 66.67)', '2', '3', '66.67', 'normal'],
  ] as const)('%s', (_name, current, limit, warning, label) => {
    expect(statusLabel(new Decimal(current), new Decimal(limit), warning, 90)).toBe(label);
  });
});
