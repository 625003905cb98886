import type { CreateBudgetRequest, RecordUsageRequest } from '../types/budget';

/**
 * The seed document's examples (shared/seed/budget-management-phase1.md), as written there, for
 * the demo and every spec that sends or calls them. A spec that wants a variant spreads a copy.
 */

/** The seed's CreateBudgetRequest example. */
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
} satisfies CreateBudgetRequest;

/** The seed's RecordUsageRequest example. */
export const SEED_RECORD_USAGE_EXAMPLE = {
  amount: 25.5,
  currency: 'USD',
  source: 'relaycore',
  description: 'GPT-4 API usage',
  metadata: {
    requestId: 'req-789',
    modelId: 'gpt-4',
    userId: 'user-456',
    teamId: 'team-123',
  },
} satisfies RecordUsageRequest;
