import {
  ArrayMaxSize, IsArray, IsString, Length, registerDecorator, validate, ValidateIf, ValidateNested, ValidationError, ValidationOptions,
} from 'class-validator';
import { plainToInstance, Transform } from 'class-transformer';
import { FieldError, validationFailed } from './errors/domain-error';

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(?:Z|([+-])(\d{2}):?(\d{2}))$/;
const MINUTE_MS = 60_000;

/**
 * An ISO 8601 / RFC 3339 instant in UTC (`2025-12-31T08:00:00Z`, the fraction kept as given), or
 * undefined when the value is not a real one: no Feb 30, no hour 24, an offset up to ±23:59, and a
 * UTC year from 1 to 9999. Every instant a request carries (body, query, cursor) goes through
 * here before SQL, so PostgreSQL, which takes offsets up to ±15:59 only, never sees another form.
 */
export function toUtcInstant(value: unknown): string | undefined {
  const match = typeof value === 'string' ? INSTANT.exec(value) : null;
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? 0));
  const [sign, offsetHours, offsetMinutes] = [match[8], Number(match[9] ?? 0), Number(match[10] ?? 0)];
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 1900–1999.
  const wall = new Date(0);
  wall.setUTCFullYear(year, month, 0);
  const daysInMonth = wall.getUTCDate();
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;
  wall.setUTCFullYear(year, month - 1, day);
  wall.setUTCHours(hour, minute, second, 0);
  const offsetMs = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * MINUTE_MS;
  const utc = new Date(wall.getTime() - offsetMs);
  if (utc.getUTCFullYear() < 1 || utc.getUTCFullYear() > 9999) return undefined;
  return `${utc.toISOString().slice(0, 19)}${match[7] ?? ''}Z`;
}

/** A property decorator from a predicate; the message is prefixed with the property name. */
export function custom(name: string, validate: (value: unknown) => boolean, message: string, options?: ValidationOptions) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name,
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} ${message}`, ...options },
      validator: { validate },
    });
}

/**
 * An ISO 8601 instant with a zone designator (Z or ±hh:mm up to ±23:59), e.g.
 * 2025-01-01T00:00:00Z, normalised to UTC as it is read (toUtcInstant): the one decorator of
 * every instant field.
 */
export const UtcInstant = (options?: ValidationOptions) => {
  const normalise = Transform(({ value }) => toUtcInstant(value) ?? value);
  const validate = custom(
    'isInstant',
    (value) => toUtcInstant(value) !== undefined,
    'must be an ISO 8601 instant with a time zone designator (offsets up to ±23:59), e.g. 2025-01-01T00:00:00Z',
    options,
  );
  return (target: object, propertyName: string) => {
    normalise(target, propertyName);
    validate(target, propertyName);
  };
};

export const isValidTimeZone = (value: unknown): boolean => {
  if (typeof value !== 'string' || value.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
};

/** An IANA time zone name such as America/New_York, or UTC. */
export const IsIanaTimeZone = (options?: ValidationOptions) =>
  custom('isIanaTimeZone', isValidTimeZone, 'must be an IANA time zone name such as UTC or America/New_York', options);

export const JSON_OBJECT_MAX_BYTES = 16 * 1024;

export const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const isSmallJsonObject = (value: unknown): boolean =>
  isJsonObject(value) && Buffer.byteLength(JSON.stringify(value)) <= JSON_OBJECT_MAX_BYTES;

/** A plain JSON object whose serialised size is at most 16 KiB. */
export const IsSmallJsonObject = (options?: ValidationOptions) =>
  custom('isSmallJsonObject', isSmallJsonObject, 'must be a JSON object of at most 16 KiB', options);

/**
 * A list of JSON objects, each read as `type` and validated (the `@Type` + `@ValidateNested`
 * pair, made strict). class-validator takes an element that is itself a list for more objects to
 * validate, so `records: [[{…}]]` passed and reached the service; here such an element is read as
 * no object, and is refused like a string or a number, naming its index (`records.0`).
 */
export const EachNested = (type: new () => object) => {
  const asElement = (item: unknown) => (isJsonObject(item) ? plainToInstance(type, item) : Array.isArray(item) ? null : item);
  const read = Transform(({ value }) => (Array.isArray(value) ? value.map(asElement) : value));
  const validateEach = ValidateNested({ each: true });
  return (target: object, propertyName: string) => {
    read(target, propertyName);
    validateEach(target, propertyName);
  };
};

/** Trims strings; leaves everything else for the validators to judge. */
export const Trim = () => Transform(({ value }) => (typeof value === 'string' ? value.trim() : value));

/** Flattens class-validator's nested errors into `{ field: "alerts.0.threshold", message }`. */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const error of errors) {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    for (const [constraint, message] of Object.entries(error.constraints ?? {})) {
      // An element of a list of objects (EachNested) that is none: class-validator's wording allows arrays.
      const element = constraint === 'nestedValidation' && /^\d+$/.test(error.property);
      const known = message.replace(/^property (\S+) should not exist$/, 'is not a known field');
      out.push({ field, message: element ? 'must be a JSON object' : known });
    }
    if (error.children?.length) out.push(...flattenValidationErrors(error.children, field));
  }
  return out;
}

/**
 * A rule that reads the whole object (cross-field checks): `predicate(value, object)` must hold.
 * The message is prefixed with the property name.
 */
export function Satisfies<T>(predicate: (value: unknown, object: T) => boolean, message: string) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: `satisfies: ${message}`,
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} ${message}` },
      validator: { validate: (value, args) => predicate(value, args?.object as T) },
    });
}

/**
 * Like IsOptional, but only an absent field is skipped: `null` is validated (and so refused) for
 * fields that cannot be empty. Nullable fields keep IsOptional.
 */
export const IsOmittable = () => ValidateIf((_, value) => value !== undefined);

/**
 * Validates a plain object against a DTO class, the same way the global ValidationPipe does for
 * HTTP. Services use it for in-process callers (the demo, RelayCore embedding the module), and
 * skip it for instances the pipe already validated.
 */
export async function validateInput<T extends object>(type: new () => T, input: unknown): Promise<T> {
  if (input instanceof type) return input;
  const instance = plainToInstance(type, input ?? {}) as T;
  const errors = await validate(instance, VALIDATOR_OPTIONS);
  if (errors.length) throw validationFailed(flattenValidationErrors(errors));
  return instance;
}

export const VALIDATOR_OPTIONS = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
  validationError: { target: false, value: false },
};

/** Length in characters as PostgreSQL counts them (code points), not UTF-16 units. */
export const CodePointLength = (min: number, max: number) =>
  custom(
    'codePointLength',
    (value) => typeof value === 'string' && [...value].length >= min && [...value].length <= max,
    min > 0 ? `must be ${min}–${max} characters long` : `must be at most ${max} characters long`,
  );

/** Query strings carry text: "true" and "false" become booleans, anything else is left to fail. */
export const ToBoolean = () =>
  Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value));

/** A request's tags (SPEC §12.2): an array of at most 20 strings of 1–64 characters. */
export function IsTagList(): PropertyDecorator {
  const decorators = [
    IsArray(),
    ArrayMaxSize(20, { message: 'tags must list at most 20 tags' }),
    IsString({ each: true }),
    Length(1, 64, { each: true, message: 'each tag must be 1–64 characters' }),
  ];
  return (target, propertyKey) => decorators.forEach((decorator) => decorator(target, propertyKey));
}
