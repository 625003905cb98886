import { DomainError } from './domain-error';

interface PgErrorLike {
  code?: string;
  message?: string;
  detail?: string;
  constraint?: string;
  column?: string;
}

/** Error codes the driver or the OS uses when PostgreSQL cannot be reached. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300',
]);

const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Connection terminated unexpectedly',
  'Client has encountered a connection error',
  'connect ECONNREFUSED',
  'Cannot use a pool after calling end',
  'Query read timeout',
  'Connection terminated due to connection timeout',
];

export function isConnectionError(error: unknown): boolean {
  const err = error as PgErrorLike | undefined;
  if (!err) return false;
  if (err.code && CONNECTION_ERRORS.has(err.code)) return true;
  const message = err.message ?? '';
  return CONNECTION_MESSAGES.some((m) => message.includes(m));
}

/** 503 DATABASE_UNAVAILABLE: PostgreSQL unreachable, or no connection (or group slot) free in time. */
export function databaseUnavailable(): DomainError {
  return new DomainError(503, 'DATABASE_UNAVAILABLE', 'The database is unreachable or every connection is busy; retry shortly.', undefined, {
    'Retry-After': '5',
  });
}

const CONSTRAINT_FIELDS: Record<string, string> = {
  budget_end_after_start: 'endDate',
  budget_thresholds_ordered: 'criticalThreshold',
  budget_custom_days_iff_custom: 'customPeriodDays',
  budget_not_own_parent: 'parentId',
};

/**
 * Maps a PostgreSQL error to a domain error, or returns undefined when it is not one we can
 * explain (the filter then answers 500 without any driver text).
 */
export function mapPostgresError(error: unknown): DomainError | undefined {
  const err = error as PgErrorLike;
  // Before the code check: the driver's own connection errors ("timeout exceeded when trying to
  // connect", "Connection terminated unexpectedly") carry no code at all.
  if (isConnectionError(err)) return databaseUnavailable();
  const code = err?.code;
  if (!code) return undefined;
  // Raised on purpose by our SQL functions and triggers: RB<status>, message = stable code.
  const raised = /^RB(\d{3})$/.exec(code);
  if (raised) {
    // A function names the request field at fault in the error's COLUMN (RAISE ... USING COLUMN).
    const detail = err.detail ?? err.message ?? '';
    return new DomainError(Number(raised[1]), err.message ?? 'CONFLICT', detail, err.column ? [{ field: err.column, message: detail }] : undefined);
  }
  switch (code) {
    case '23505':
    case '23P01':
      return new DomainError(409, 'CONFLICT', 'The request conflicts with an existing record.');
    case '23503':
      return new DomainError(422, 'REFERENCE_NOT_FOUND', 'A referenced record does not exist.');
    case '23514': {
      const field = err.constraint ? CONSTRAINT_FIELDS[err.constraint] : undefined;
      return new DomainError(
        field ? 400 : 422,
        field ? 'VALIDATION_FAILED' : 'CONSTRAINT_VIOLATION',
        field ? `${field} is not valid for this budget.` : 'The request breaks a rule of the data.',
        field ? [{ field, message: 'is not valid for this budget' }] : undefined,
      );
    }
    case '22023':
      if (/time zone/i.test(err.message ?? '')) {
        return new DomainError(400, 'VALIDATION_FAILED', 'timezone is not a time zone this database knows.', [
          { field: 'timezone', message: 'timezone must be an IANA time zone name known to PostgreSQL' },
        ]);
      }
      return new DomainError(400, 'INVALID_VALUE', 'A value in the request is out of range or malformed.');
    case '22P02':
    case '22007':
    case '22008':
    case '22009':
    case '22015':
    case '22003':
    case '22021':
    case '22P05':
      return new DomainError(400, 'INVALID_VALUE', 'A value in the request is out of range or malformed (or contains a NUL character).');
    case '22001':
      return new DomainError(400, 'VALUE_TOO_LONG', 'A text value is longer than its field allows.');
    case '40001':
    case '40P01':
      return new DomainError(503, 'CONCURRENT_UPDATE', 'The request collided with a concurrent one; retry it.', undefined, {
        'Retry-After': '1',
      });
    case '57014':
      return new DomainError(503, 'QUERY_TIMEOUT', 'The database took too long to answer; retry shortly.', undefined, {
        'Retry-After': '2',
      });
    case 'P0001':
      return new DomainError(422, 'BUSINESS_RULE', err.detail ?? 'The request breaks a business rule.');
    default:
      return undefined;
  }
}
