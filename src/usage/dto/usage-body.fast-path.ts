import { isString, isUUID, length, matches, maxLength } from 'class-validator';
import { moneyProblem } from '../../common/money';
import { isJsonObject, isSmallJsonObject, toUtcInstant } from '../../common/validation';
import { PROVIDER_PATTERN, TOKENS_MAX } from '../../pricing/dto/token-counts.dto';

/**
 * The fast path of a usage body (RecordUsageDto, a batch's BatchUsageItemDto): every rule of the
 * DTO, through the predicates its decorators call, so that what it accepts class-validator accepts
 * too, and the instance it builds is the one class-transformer would build. It declines (and
 * class-validator judges, naming the fields) anything else, and anything unusual where the two
 * libraries do more than the rules say:
 * - a string with surrogates or variation selectors (validator.js counts their length its own way);
 * - metadata holding a key Object.prototype has (`constructor`, `toString`…), at any depth:
 *   class-transformer drops such keys from the copy it makes, or fails on `constructor`.
 * usage-body.fast-path.spec.ts holds it to class-validator on generated bodies.
 */

type Rule = (value: unknown) => boolean;

/** validator.js counts a surrogate pair or a variation selector apart; those strings are declined. */
const UNUSUAL_TEXT = /[\uD800-\uDFFF\uFE0E\uFE0F]/;

const text = (min: number, max: number): Rule => (value) =>
  isString(value) && !UNUSUAL_TEXT.test(value) && length(value, min, max);
const optional = (rule: Rule): Rule => (value) => value === null || value === undefined || rule(value); // IsOptional
const omittable = (rule: Rule): Rule => (value) => value === undefined || rule(value); // IsOmittable, PartialType's ValidateIf
const tokenCount: Rule = (value) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= TOKENS_MAX;
const tag = text(1, 64);
const CURRENCY = /^[A-Z]{3}$/;

/** No key, at any depth, that class-transformer would drop or fail on. */
function plainJson(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(plainJson);
  if (typeof value !== 'object' || value === null) return true;
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key of Object.keys(value)) {
    if (key in Object.prototype || !plainJson((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

/** RecordUsageDto's rules, property by property (TokenCountsDto's through PartialType). */
const USAGE_RULES: Record<string, Rule> = {
  amount: omittable((value) => moneyProblem(value, true) === undefined),
  currency: (value) => isString(value) && matches(value, CURRENCY),
  source: omittable(text(1, 100)),
  description: optional((value) => isString(value) && !UNUSUAL_TEXT.test(value) && maxLength(value, 2000)),
  modelId: optional(text(1, 200)),
  userId: optional(text(1, 200)),
  teamId: optional(text(1, 200)),
  projectId: optional(text(1, 200)),
  customerId: optional(text(1, 200)),
  tags: optional((value) => Array.isArray(value) && value.length <= 20 && value.every(tag)),
  requestId: optional(text(1, 200)),
  metadata: optional((value) => isSmallJsonObject(value) && plainJson(value)),
  occurredAt: omittable((value) => toUtcInstant(value) !== undefined),
  reservationId: optional((value) => isUUID(value, 'all')),
  provider: omittable((value) => isString(value) && PROVIDER_PATTERN.test(value)),
  inputTokens: omittable(tokenCount),
  outputTokens: omittable(tokenCount),
  cachedInputTokens: omittable(tokenCount),
};

/** BatchUsageItemDto's: RecordUsageDto's and the record's own idempotency key. */
const BATCH_ITEM_RULES: Record<string, Rule> = { ...USAGE_RULES, idempotencyKey: optional(text(1, 200)) };

function acceptUsage<T extends object>(value: unknown, type: new () => T, rules: Record<string, Rule>): T | undefined {
  if (!isJsonObject(value) || Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  const keys = Object.keys(value);
  for (const key of keys) {
    const rule = rules[key];
    if (!Object.hasOwn(rules, key) || !rule(value[key])) return undefined;
  }
  if (!Object.hasOwn(value, 'currency')) return undefined; // the one field that is required
  const instance = new type() as Record<string, unknown>;
  for (const key of keys) instance[key] = value[key];
  // UtcInstant's Transform: the instant normalised to UTC.
  if (value.occurredAt !== undefined) instance.occurredAt = toUtcInstant(value.occurredAt);
  return instance as T;
}

/** A single usage body. */
export const acceptUsageBody = <T extends object>(type: new () => T) => (value: unknown) => acceptUsage(value, type, USAGE_RULES);

/**
 * A batch body: `records`, 1 to `max` objects, each one a batch item's fast path accepts (any
 * other element, or any other key, and class-validator judges the whole body).
 */
export const acceptUsageBatchBody =
  <T extends object, I extends object>(type: new () => T, item: new () => I, max: number) =>
  (value: unknown): T | undefined => {
    if (!isJsonObject(value) || Object.getPrototypeOf(value) !== Object.prototype) return undefined;
    const keys = Object.keys(value);
    const records = value.records;
    if (keys.length !== 1 || !Array.isArray(records) || records.length < 1 || records.length > max) return undefined;
    const items: I[] = [];
    for (const record of records) {
      const accepted = acceptUsage(record, item, BATCH_ITEM_RULES);
      if (!accepted) return undefined;
      items.push(accepted);
    }
    const instance = new type() as Record<string, unknown>;
    instance.records = items;
    return instance as T;
  };
