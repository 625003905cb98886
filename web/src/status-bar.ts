import type { BudgetStatus } from './api';
import { h } from './dom';
import { percent } from './format';

/**
 * A progress bar coloured by status: the fill's width is percentUsed (capped at the track's end;
 * the number beside it is not capped).
 */
export function statusBar(budgetId: string, name: string, status: BudgetStatus | null): HTMLElement {
  if (!status) return h('span', { class: 'muted' }, 'no status');
  const fill = h('span', { class: `fill status-${status.status}` });
  fill.style.width = `${Math.min(Math.max(status.percentUsed, 0), 100)}%`;
  return h(
    'span',
    { class: 'meter' },
    h(
      'span',
      {
        class: 'bar',
        role: 'progressbar',
        'aria-label': `${name}: ${percent(status.percentUsed)} used, ${status.status}`,
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': Math.min(status.percentUsed, 100),
        'data-budget-id': budgetId,
        'data-percent-used': status.percentUsed,
      },
      fill,
    ),
    statusBadge(status),
  );
}

export const statusBadge = (status: BudgetStatus) =>
  h('span', { class: `badge status-${status.status}` }, `${percent(status.percentUsed)} · ${status.active ? status.status : 'inactive'}`);
