import type { BudgetStatus, Forecast, UsageSummary } from './api';
import { svg } from './dom';
import { day, money } from './format';

const DAY_MS = 86_400_000;
const HEIGHT = 260;
const PAD = { left: 64, right: 16, top: 16, bottom: 36 };

export interface SpendPoint {
  at: number;
  amount: number;
}

/**
 * The window's cumulative spend as points: 0 at the window's start; for each day of the summary
 * the running total before it at the day's start and with it at the day's end (both clipped to
 * the window and to now), so a quiet stretch stays flat; the status's current amount now.
 * Days are the budget's own (its time zone); placing them on a UTC axis shifts them by at most
 * its offset, which a chart of a window's burn can bear.
 */
export function cumulativeSpend(status: BudgetStatus, summary: UsageSummary, now: number): SpendPoint[] {
  const start = Date.parse(status.periodStart);
  const end = Math.min(Date.parse(status.periodEnd), now);
  const clip = (at: number) => Math.max(start, Math.min(at, end));
  const points: SpendPoint[] = [{ at: start, amount: 0 }];
  let total = 0;
  const days = summary.byDay.filter((row) => row.key !== null).sort((a, b) => (a.key! < b.key! ? -1 : 1));
  for (const row of days) {
    const dayStart = Date.parse(`${row.key}T00:00:00Z`);
    points.push({ at: clip(dayStart), amount: total });
    total += row.amount;
    points.push({ at: clip(dayStart + DAY_MS), amount: total });
  }
  points.push({ at: end, amount: status.currentAmount });
  return points;
}

/**
 * An SVG chart, `width` pixels wide: the cumulative spend of the current window against the limit, the status's
 * straight-line projection to the window's end, and the forecast's 80 % and 95 % bands when the
 * service has a forecast. Drawn as SVG (not canvas) so its text is real text, and with a summary
 * for screen readers.
 */
export function spendChart(status: BudgetStatus, points: SpendPoint[], forecast: Forecast | undefined, now: number, width: number): SVGSVGElement {
  // Drawn at the width it is shown at, so its text keeps its size on a phone.
  const WIDTH = Math.round(Math.min(Math.max(width, 300), 1100));
  const start = Date.parse(status.periodStart);
  const end = Date.parse(status.periodEnd);
  const top = Math.max(status.limit, status.currentAmount, status.projectedTotal, forecast?.upper95 ?? 0) * 1.1 || 1;
  const x = (at: number) => PAD.left + ((at - start) / Math.max(end - start, 1)) * (WIDTH - PAD.left - PAD.right);
  const y = (amount: number) => HEIGHT - PAD.bottom - (amount / top) * (HEIGHT - PAD.top - PAD.bottom);
  const nowX = x(Math.min(now, end));
  const currency = status.currency;
  const line = (values: SpendPoint[]) => values.map((point) => `${x(point.at).toFixed(1)},${y(point.amount).toFixed(1)}`).join(' ');
  const band = (lower: number, upper: number) =>
    `${nowX.toFixed(1)},${y(status.currentAmount).toFixed(1)} ${x(end).toFixed(1)},${y(upper).toFixed(1)} ${x(end).toFixed(1)},${y(lower).toFixed(1)}`;

  const description =
    `Spent ${money(status.currentAmount, currency)} of ${money(status.limit, currency)} between ${day(status.periodStart)} and now; ` +
    `projected ${money(status.projectedTotal, currency)} by ${day(status.periodEnd)}` +
    (forecast ? `; forecast ${money(forecast.projectedAmount, currency)} (95 % band ${money(forecast.lower95, currency)} to ${money(forecast.upper95, currency)}).` : '.');

  return svg(
    'svg',
    { class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc', 'data-testid': 'spend-chart' },
    svg('title', { id: 'chart-title' }, 'Cumulative spend in the current window'),
    svg('desc', { id: 'chart-desc' }, description),
    // Axes: 0 and the limit on the left, the window's first and last day below.
    svg('line', { class: 'axis', x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0) }),
    svg('text', { class: 'tick', x: PAD.left - 6, y: y(0) + 4, 'text-anchor': 'end' }, money(0, currency)),
    svg('text', { class: 'tick', x: PAD.left, y: HEIGHT - 12 }, day(status.periodStart)),
    svg('text', { class: 'tick', x: WIDTH - PAD.right, y: HEIGHT - 12, 'text-anchor': 'end' }, day(status.periodEnd)),
    forecast && svg('polygon', { class: 'band-95', points: band(forecast.lower95, forecast.upper95), 'data-testid': 'forecast-band-95' }),
    forecast && svg('polygon', { class: 'band-80', points: band(forecast.lower80, forecast.upper80), 'data-testid': 'forecast-band-80' }),
    svg('line', { class: 'projection', x1: nowX, y1: y(status.currentAmount), x2: x(end), y2: y(forecast?.projectedAmount ?? status.projectedTotal) }),
    svg('line', { class: 'limit', x1: PAD.left, y1: y(status.limit), x2: WIDTH - PAD.right, y2: y(status.limit) }),
    svg('text', { class: 'tick', x: PAD.left - 6, y: y(status.limit) + 4, 'text-anchor': 'end' }, money(status.limit, currency)),
    svg('polyline', { class: 'spend', points: line(points), 'data-testid': 'spend-line' }),
    svg('circle', { class: 'now', cx: nowX, cy: y(status.currentAmount), r: 4 }),
  );
}
