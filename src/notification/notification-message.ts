/** An outbox event as it leaves the service (SPEC §13: `{ type, timestamp, data }`). */
export interface OutboxEvent {
  id: string;
  type: string;
  occurredAt: Date;
  data: Record<string, unknown>;
}

interface AlertData {
  budget: { id: string; name: string; scopeType: string; scopeId: string; currency: string; amount: number };
  alert: { alertId: string; threshold: number; type: string; percentUsed: number; amount: number; periodEnd: string };
  status: { currentAmount: number; remainingAmount: number; percentUsed: number; status: string };
}

/** The JSON body of a webhook; the same bytes on every retry (jsonb orders keys deterministically). */
export function eventBody(event: OutboxEvent): string {
  return JSON.stringify({ type: event.type, timestamp: event.occurredAt.toISOString(), data: event.data });
}

/** A sentence, a title and labelled facts of an event, shared by Slack and email. */
interface Summary {
  title: string;
  text: string;
  facts: [string, string][];
  link?: string;
}

function summarise(event: OutboxEvent, publicBaseUrl: string | undefined): Summary {
  if (event.type === 'budget.alert.triggered') {
    const { budget, alert, status } = event.data as unknown as AlertData;
    const what = alert.type === 'forecast' ? 'is projected to reach' : 'reached';
    return {
      title: `Budget alert: ${budget.name}`,
      text: `Budget "${budget.name}" (${budget.scopeType} ${budget.scopeId}) ${what} ${alert.threshold}% of its limit: ` +
        `${status.currentAmount} of ${budget.amount} ${budget.currency} used (${status.percentUsed}%, ${status.status}).`,
      facts: [
        ['Budget', `${budget.name} (${budget.scopeType} ${budget.scopeId})`],
        ['Used', `${status.percentUsed}% (alert ${alert.alertId} at ${alert.threshold}%, ${alert.type})`],
        ['Amount', `${status.currentAmount} of ${budget.amount} ${budget.currency}, ${status.remainingAmount} left`],
        ['Window ends', alert.periodEnd],
      ],
      link: publicBaseUrl ? `${publicBaseUrl}/api/v1/budgets/${budget.id}/status` : undefined,
    };
  }
  if (event.type === 'notification.test') {
    return {
      title: 'RelayCore test notification',
      text: 'A test notification from the RelayCore Budget Service: this channel is set up correctly.',
      facts: [['Sent at', event.occurredAt.toISOString()]],
    };
  }
  return { title: event.type, text: `${event.type}: ${JSON.stringify(event.data)}`, facts: [] };
}

/** A Slack incoming-webhook message: text (notifications, fallbacks) plus Block Kit blocks. */
export function slackMessage(event: OutboxEvent, publicBaseUrl: string | undefined): Record<string, unknown> {
  const summary = summarise(event, publicBaseUrl);
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: summary.title.slice(0, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: summary.text } },
  ];
  if (summary.facts.length) {
    blocks.push({ type: 'section', fields: summary.facts.map(([label, value]) => ({ type: 'mrkdwn', text: `*${label}*\n${value}` })) });
  }
  if (summary.link) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `<${summary.link}|Open the budget's status>` } });
  return { text: summary.text, blocks };
}

const escapeHtml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function emailMessage(event: OutboxEvent, publicBaseUrl: string | undefined): { subject: string; text: string; html: string } {
  const summary = summarise(event, publicBaseUrl);
  const lines = [summary.text, '', ...summary.facts.map(([label, value]) => `${label}: ${value}`)];
  if (summary.link) lines.push('', summary.link);
  const rows = summary.facts.map(([label, value]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`);
  const link = summary.link ? `<p><a href="${escapeHtml(summary.link)}">Open the budget's status</a></p>` : '';
  return {
    subject: `[RelayCore] ${summary.title}`,
    text: lines.join('\n'),
    html: `<p>${escapeHtml(summary.text)}</p><table>${rows.join('')}</table>${link}`,
  };
}
