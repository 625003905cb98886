import { ACKNOWLEDGE_PATH, DELIVERIES_PATH, FORECAST_PATH, roleAllows, type AlertRow, type Budget, type BudgetStatus, type Delivery, type Forecast } from './api';
import { cumulativeSpend, spendChart } from './chart';
import { failure, type DashboardContext } from './context';
import { h } from './dom';
import { day, instant, money, percent } from './format';
import { statusBar } from './status-bar';

/** A table that scrolls sideways on a narrow screen (focusable, so a keyboard can scroll it too). */
const table = (label: string, head: string[], rows: HTMLTableRowElement[]) =>
  h(
    'div',
    { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': `${label} (table)` },
    h('table', {}, h('thead', {}, h('tr', {}, head.map((title) => h('th', { scope: 'col' }, title)))), h('tbody', {}, rows)),
  );

const figure = (label: string, value: string) => h('div', { class: 'figure' }, h('dt', {}, label), h('dd', {}, value));

function figures(budget: Budget, status: BudgetStatus): HTMLElement {
  const currency = budget.currency;
  return h(
    'dl',
    { class: 'figures' },
    figure('Spent', money(status.currentAmount, currency)),
    figure('Limit', money(status.limit, currency)),
    figure('Remaining', money(status.remaining, currency)),
    figure('Reserved', money(status.reservedAmount, currency)),
    figure('Projected', money(status.projectedTotal, currency)),
    figure(
      status.active ? `Window, ${status.daysRemaining} day${status.daysRemaining === 1 ? '' : 's'} left` : 'Window (not active)',
      `${day(status.periodStart)} → ${day(status.periodEnd)}`,
    ),
  );
}

/** The chart section: spend so far, and the forecast band when this service has a forecast. */
async function spendSection(context: DashboardContext, budget: Budget, status: BudgetStatus, width: number): Promise<HTMLElement> {
  const section = h('section', { 'aria-labelledby': 'spend-heading' }, h('h2', { id: 'spend-heading' }, 'Spend in this window'));
  const now = Date.now();
  const to = new Date(Math.min(now, Date.parse(status.periodEnd))).toISOString();
  const hasForecast = context.catalog.requiredRole('get', FORECAST_PATH) !== undefined;
  const [summary, forecast] = await Promise.allSettled([
    context.api.summary(budget.id, status.periodStart, to),
    hasForecast ? context.api.forecast(budget.id) : Promise.resolve(undefined),
  ]);
  if (summary.status === 'rejected') {
    section.append(failure(context, summary.reason, 'load the spend of this window'));
    return section;
  }
  const band: Forecast | undefined = forecast.status === 'fulfilled' ? forecast.value : undefined;
  section.append(spendChart(status, cumulativeSpend(status, summary.value, now), band, now, width));
  const legend = h(
    'ul',
    { class: 'legend' },
    h('li', { class: 'legend-spend' }, 'spent so far'),
    h('li', { class: 'legend-limit' }, 'limit'),
    h('li', { class: 'legend-projection' }, band ? 'forecast' : 'straight-line projection'),
    band && h('li', { class: 'legend-band' }, '80 % and 95 % forecast bands'),
  );
  section.append(legend);
  if (!hasForecast) {
    section.append(h('p', { class: 'muted', 'data-testid': 'forecast-note' }, 'Forecast not available on this service yet: the dashed line is the straight-line projection of the status.'));
  } else if (forecast.status === 'rejected') {
    section.append(failure(context, forecast.reason, 'load the forecast'));
  } else if (band) {
    section.append(
      h(
        'p',
        { class: 'muted', 'data-testid': 'forecast-note' },
        `Forecast ${money(band.projectedAmount, budget.currency)} by the window's end (95 %: ${money(band.lower95, budget.currency)} to ${money(band.upper95, budget.currency)})` +
          (band.probabilityOverLimit !== undefined ? `, ${percent(band.probabilityOverLimit * 100)} chance of going over the limit.` : '.'),
      ),
    );
  }
  return section;
}

function alertsSection(context: DashboardContext, budget: Budget): HTMLElement {
  const section = h('section', { 'aria-labelledby': 'alerts-heading' }, h('h2', { id: 'alerts-heading' }, 'Alerts in this window'));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading alerts…'));
  section.append(body);
  const required = context.catalog.requiredRole('post', ACKNOWLEDGE_PATH) ?? 'service';
  const mayAcknowledge = roleAllows(context.session.role, required);

  const load = async (message?: HTMLElement) => {
    let alerts: AlertRow[];
    try {
      alerts = await context.api.alerts(budget.id);
    } catch (error) {
      body.replaceChildren(failure(context, error, 'load the alerts'));
      return;
    }
    const acknowledgeButton = (alert: AlertRow) =>
      h(
        'button',
        {
          type: 'button',
          'aria-label': `Acknowledge the ${alert.threshold} % alert`,
          onclick: async (event) => {
            const button = event.currentTarget as HTMLButtonElement;
            button.disabled = true;
            try {
              await context.api.acknowledge(budget.id, alert.id);
              await load(h('p', { class: 'notice', role: 'status' }, `The ${alert.threshold} % alert is acknowledged.`));
            } catch (error) {
              button.disabled = false;
              await load(failure(context, error, 'acknowledge this alert'));
            }
          },
        },
        'Acknowledge',
      );
    const rows = alerts.map((alert) =>
      h(
        'tr',
        { 'data-testid': 'alert-row', 'data-alert-id': alert.id },
        h('td', {}, `${alert.threshold} % (${alert.type})`),
        h(
          'td',
          {},
          alert.acknowledgedAt
            ? `Acknowledged by ${alert.acknowledgedBy ?? 'someone'} at ${instant(alert.acknowledgedAt)}`
            : mayAcknowledge
              ? acknowledgeButton(alert)
              : 'Not acknowledged',
        ),
        h('td', {}, instant(alert.triggeredAt)),
        h('td', {}, `${percent(alert.percentUsed)} · ${money(alert.amount, budget.currency)}`),
        h('td', {}, alert.actions.join(', ')),
      ),
    );
    body.replaceChildren(
      ...(message ? [message] : []),
      alerts.length ? table('Alerts', ['Threshold', 'Acknowledged', 'Fired', 'Spend then', 'Actions'], rows) : h('p', { class: 'muted' }, 'No alert fired in this window.'),
      mayAcknowledge
        ? ''
        : h('p', { class: 'muted', 'data-testid': 'role-note' }, `Acknowledging needs a ${required} or admin key; you are signed in with a ${context.session.role} key.`),
    );
  };
  void load();
  return section;
}

async function usageSection(context: DashboardContext, budget: Budget): Promise<HTMLElement> {
  const section = h('section', { 'aria-labelledby': 'usage-heading' }, h('h2', { id: 'usage-heading' }, 'Recent usage'));
  try {
    const page = await context.api.recentUsage(budget.id);
    const rows = page.data.map((record) =>
      h(
        'tr',
        {},
        h('td', {}, instant(record.occurredAt)),
        h('td', { class: 'number' }, money(record.amount, record.currency)),
        h('td', {}, record.modelId ?? '—'),
        h('td', {}, record.source ?? '—'),
        h('td', {}, record.userId ?? '—'),
      ),
    );
    section.append(rows.length ? table('Recent usage', ['When', 'Amount', 'Model', 'Source', 'User'], rows) : h('p', { class: 'muted' }, 'No usage recorded yet.'));
  } catch (error) {
    section.append(failure(context, error, 'load the recent usage'));
  }
  return section;
}

/** Notification deliveries of this budget's alerts, when this service delivers notifications. */
async function deliveriesSection(context: DashboardContext, budget: Budget): Promise<HTMLElement> {
  const section = h('section', { 'aria-labelledby': 'deliveries-heading', 'data-testid': 'deliveries' }, h('h2', { id: 'deliveries-heading' }, 'Notification deliveries'));
  const required = context.catalog.requiredRole('get', DELIVERIES_PATH);
  if (!required) {
    section.append(h('p', { class: 'muted', 'data-testid': 'deliveries-note' }, 'Notification deliveries are not available on this service yet.'));
    return section;
  }
  if (!roleAllows(context.session.role, required)) {
    section.append(h('p', { class: 'muted', 'data-testid': 'deliveries-note' }, `Seeing deliveries needs a ${required} key; you are signed in with a ${context.session.role} key.`));
    return section;
  }
  try {
    const deliveries = await context.api.deliveries(budget.id);
    const lastAttempt = (delivery: Delivery) => {
      const attempt = delivery.attempts?.at(-1);
      if (!attempt) return '—';
      const outcome = attempt.error ?? attempt.httpStatus ?? attempt.status;
      return `${instant(attempt.at ?? attempt.attemptedAt)}${outcome !== undefined && outcome !== null ? ` (${outcome})` : ''}`;
    };
    const rows = deliveries.map((delivery) =>
      h(
        'tr',
        {},
        h('td', {}, delivery.eventType ?? delivery.type ?? '—'),
        h('td', {}, delivery.channelName ?? delivery.channelId ?? '—'),
        h('td', {}, delivery.status),
        h('td', { class: 'number' }, String(delivery.attempts?.length ?? 0)),
        h('td', {}, lastAttempt(delivery)),
      ),
    );
    section.append(
      rows.length
        ? table('Notification deliveries', ['Event', 'Channel', 'Status', 'Attempts', 'Last attempt'], rows)
        : h('p', { class: 'muted', 'data-testid': 'deliveries-note' }, 'No notification was sent for this budget.'),
    );
  } catch (error) {
    section.append(failure(context, error, 'load the notification deliveries'));
  }
  return section;
}

export async function budgetPage(view: HTMLElement, context: DashboardContext, id: string): Promise<void> {
  const back = h('p', {}, h('a', { href: '#/' }, '← All budgets'));
  view.replaceChildren(back, h('h1', {}, 'Budget'), h('p', { class: 'muted', role: 'status' }, 'Loading…'));
  let budget: Budget;
  let status: BudgetStatus;
  try {
    [budget, status] = await Promise.all([context.api.budget(id), context.api.status(id)]);
  } catch (error) {
    view.replaceChildren(back, h('h1', {}, 'Budget'), failure(context, error, 'load this budget'));
    return;
  }
  const header = h(
    'div',
    { class: 'budget-header' },
    h('h1', {}, budget.name),
    h('p', { class: 'scope' }, `${budget.scopeType} · ${budget.scopeId} · ${budget.period} · ${budget.enforcement} limit`),
    statusBar(budget.id, budget.name, status),
  );
  const alerts = alertsSection(context, budget);
  const [spend, usage, deliveries] = await Promise.all([spendSection(context, budget, status, view.clientWidth), usageSection(context, budget), deliveriesSection(context, budget)]);
  view.replaceChildren(back, header, figures(budget, status), spend, alerts, usage, deliveries);
}
