import { isString, isUUID, matches } from 'class-validator';
import { acceptObject, instant, isPlainObject, type ObjectRules, omittable, optional, plainJson, type Rule, tagList, text, textUpTo } from '../../common/fast-path';
import { moneyProblem } from '../../common/money';
import { isSmallJsonObject } from '../../common/validation';
import { PROVIDER_PATTERN, TOKENS_MAX } from '../../pricing/dto/token-counts.dto';

/** The fast paths (common/fast-path.ts) of the usage bodies: RecordUsageDto's rules, property by property. */

export const money: Rule = (value) => moneyProblem(value, true) === undefined;
export const tokenCount: Rule = (value) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= TOKENS_MAX;
export const providerId: Rule = (value) => isString(value) && PROVIDER_PATTERN.test(value);
export const currencyCode: Rule = (value) => isString(value) && matches(value, /^[A-Z]{3}$/);
export const smallJsonObject: Rule = (value) => isSmallJsonObject(value) && plainJson(value);

/** RecordUsageDto (TokenCountsDto's properties through PartialType, which skips only undefined). */
export const USAGE_RULES: Record<string, Rule> = {
  amount: omittable(money),
  currency: currencyCode,
  source: omittable(text(1, 100)),
  description: optional(textUpTo(2000)),
  modelId: optional(text(1, 200)),
  userId: optional(text(1, 200)),
  teamId: optional(text(1, 200)),
  projectId: optional(text(1, 200)),
  customerId: optional(text(1, 200)),
  tags: optional(tagList),
  requestId: optional(text(1, 200)),
  metadata: optional(smallJsonObject),
  occurredAt: omittable(instant),
  reservationId: optional((value) => isUUID(value, 'all')),
  provider: omittable(providerId),
  inputTokens: omittable(tokenCount),
  outputTokens: omittable(tokenCount),
  cachedInputTokens: omittable(tokenCount),
};

export const USAGE: ObjectRules = { rules: USAGE_RULES, required: ['currency'], instants: ['occurredAt'] };
/** BatchUsageItemDto: a usage and the record's own idempotency key. */
const BATCH_ITEM: ObjectRules = { ...USAGE, rules: { ...USAGE_RULES, idempotencyKey: optional(text(1, 200)) } };

/**
 * A batch body: `records`, 1 to `max` objects, each one a batch item's fast path accepts (any
 * other element, or any other key, and the pipe judges the whole body).
 */
export const acceptUsageBatchBody =
  <T extends object, I extends object>(type: new () => T, item: new () => I, max: number) =>
  (value: unknown): T | undefined => {
    if (!isPlainObject(value) || Object.keys(value).length !== 1) return undefined;
    const records = value.records;
    if (!Array.isArray(records) || records.length < 1 || records.length > max) return undefined;
    const items: I[] = [];
    for (const record of records) {
      const accepted = acceptObject(record, item, BATCH_ITEM);
      if (!accepted) return undefined;
      items.push(accepted);
    }
    const instance = new type() as Record<string, unknown>;
    instance.records = items;
    return instance as T;
  };
