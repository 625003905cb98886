/** The seed document's CreateBudgetRequest example, as the e2e specs send it. */
export const SEED_CREATE_BUDGET_EXAMPLE = {
  name: 'Q1 2025 AI Development Budget',
  description: 'Budget for AI development activities',
  scopeType: 'team',
  scopeId: 'team-engineering-ai',
  amount: 5000,
  currency: 'USD',
  period: 'quarterly',
  startDate: '2025-01-01T00:00:00Z',
  recurring: true,
  alerts: [{ threshold: 80, actions: ['notify', 'restrict-models'], notificationChannels: ['email', 'slack'] }],
};
