import { isString, length, maxLength } from 'class-validator';
import { isJsonObject, toUtcInstant } from './validation';

/**
 * Fast paths past class-transformer and class-validator for the bodies of the hot routes.
 *
 * A fast path builds the instance the ValidationPipe would build from a body, or declines
 * (undefined) and the pipe judges the body as before, naming the fields. It must never accept
 * what the pipe refuses, so its rules call the predicates the DTO's decorators call; it may
 * decline anything unusual, and does wherever the two libraries do more than the rules say:
 * - a body or object that is not a plain JSON object of this realm (a path parameter object is
 *   Fastify's own: IdParamDto checks it itself);
 * - a key the DTO does not declare (the pipe also drops `constructor` and keys Object.prototype
 *   has, and accepts them: the fast path leaves those bodies to it);
 * - a string with surrogates or variation selectors (validator.js counts their length its own way);
 * - free JSON holding, at any depth, a key Object.prototype has: class-transformer drops it from
 *   the copy it makes, or fails on `constructor`.
 * What the pipe costs is its metadata walk per object: 12–18 µs a body, a third of a batch's CPU.
 * test/fast-path.spec.ts holds every fast path to the pipe on generated bodies.
 */
export type FastPath<T> = (value: unknown) => T | undefined;

const FAST_PATHS = new WeakMap<object, FastPath<object>>();

/** Gives a DTO class its fast path (exactly that class: a subclass needs its own). */
export function setFastPath<T extends object>(type: new () => T, accept: FastPath<T>): void {
  FAST_PATHS.set(type, accept);
}

/** Gives a DTO class the fast path of an object checked property by property (`acceptObject`). */
export function setObjectFastPath<T extends object>(type: new () => T, rules: ObjectRules): void {
  setFastPath(type, (value) => acceptObject(value, type, rules));
}

/** The instance `type`'s fast path builds from `value`, or undefined when it declines or has none. */
export function fastPathInstance<T extends object>(type: new () => T, value: unknown): T | undefined {
  return (FAST_PATHS.get(type) as FastPath<T> | undefined)?.(value);
}

/** One property's decorators, as a predicate of its value. */
export type Rule = (value: unknown) => boolean;

/** validator.js counts a surrogate pair or a variation selector apart; such strings are declined. */
const UNUSUAL_TEXT = /[\uD800-\uDFFF\uFE0E\uFE0F]/;

/** IsString + Length(min, max). */
export const text = (min: number, max: number): Rule => (value) =>
  isString(value) && !UNUSUAL_TEXT.test(value) && length(value, min, max);
/** IsString + MaxLength(max). */
export const textUpTo = (max: number): Rule => (value) => isString(value) && !UNUSUAL_TEXT.test(value) && maxLength(value, max);
/** IsOptional: null and undefined skip the rules. */
export const optional = (rule: Rule): Rule => (value) => value === null || value === undefined || rule(value);
/** IsOmittable (and PartialType's ValidateIf): only undefined skips the rules. */
export const omittable = (rule: Rule): Rule => (value) => value === undefined || rule(value);
/** IsTagList. */
export const tagList: Rule = (value) => Array.isArray(value) && value.length <= 20 && value.every(text(1, 64));
/** UtcInstant's validation (its Transform is applied by `acceptObject`'s `instants`). */
export const instant: Rule = (value) => toUtcInstant(value) !== undefined;

/** No key, at any depth, that class-transformer would drop or fail on. */
export function plainJson(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(plainJson);
  if (typeof value !== 'object' || value === null) return true;
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key of Object.keys(value)) {
    if (key in Object.prototype || !plainJson((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  isJsonObject(value) && Object.getPrototypeOf(value) === Object.prototype;

export interface ObjectRules {
  /** Every property the DTO declares, with its rule. */
  rules: Record<string, Rule>;
  /** The properties that must be present (the rest are optional or omittable). */
  required: readonly string[];
  /** Properties carrying UtcInstant: normalised to UTC as its Transform does. */
  instants?: readonly string[];
}

/** An instance of `type` from a body every rule accepts, or undefined. */
export function acceptObject<T extends object>(value: unknown, type: new () => T, { rules, required, instants = [] }: ObjectRules): T | undefined {
  if (!isPlainObject(value)) return undefined;
  const keys = Object.keys(value);
  for (const key of keys) {
    if (!Object.hasOwn(rules, key) || !rules[key](value[key])) return undefined;
  }
  for (const key of required) if (!Object.hasOwn(value, key)) return undefined;
  const instance = new type() as Record<string, unknown>;
  for (const key of keys) instance[key] = value[key];
  for (const key of instants) if (value[key] !== undefined) instance[key] = toUtcInstant(value[key]);
  return instance as T;
}
