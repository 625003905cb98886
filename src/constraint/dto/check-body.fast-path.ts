import { isBoolean, isInt, matches, max, min } from 'class-validator';
import { type ObjectRules, omittable, optional, type Rule, tagList, text } from '../../common/fast-path';
import { currencyCode, money, providerId, tokenCount, USAGE_RULES } from '../../usage/dto/usage-body.fast-path';

/** The fast paths (common/fast-path.ts) of a check's body and of RelayCore's two calls, property by property. */

/** CheckConstraintsDto. */
const CHECK_RULES: Record<string, Rule> = {
  estimatedCost: omittable(money),
  estimatedInputTokens: omittable(tokenCount),
  estimatedOutputTokens: omittable(tokenCount),
  provider: omittable(providerId),
  modelId: optional(text(1, 200)),
  tags: optional(tagList),
  reserve: omittable(isBoolean),
  reservationTtlSeconds: omittable((value) => isInt(value) && min(value, 1) && max(value, 3600)),
};

/** IntegrationScopesDto: each scope id matches `scopeId` (Matches, without IsString). */
const scopeRules = (scopeId: RegExp): Record<string, Rule> => {
  const rule = optional((value) => matches(value as string, scopeId));
  return { organizationId: rule, teamId: rule, userId: rule, projectId: rule, customerId: rule };
};

const { userId: _u, teamId: _t, projectId: _p, customerId: _c, requestId: _r, source: _s, ...USAGE_KEPT } = USAGE_RULES;

export const CHECK: ObjectRules = { rules: CHECK_RULES, required: [] };

/** IntegrationCheckDto: the scopes, a check and its currency. */
export const integrationCheck = (scopeId: RegExp): ObjectRules => ({
  rules: { ...scopeRules(scopeId), ...CHECK_RULES, currency: currencyCode },
  required: ['currency'],
});

/** IntegrationUsageDto: the scopes, a usage less its scope and request fields, a required requestId and the source. */
export const integrationUsage = (scopeId: RegExp): ObjectRules => ({
  rules: { ...scopeRules(scopeId), ...USAGE_KEPT, requestId: text(1, 200), source: omittable(text(1, 100)) },
  required: ['currency', 'requestId'],
  instants: ['occurredAt'],
});
