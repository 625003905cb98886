/** A field-level validation message, as listed in problem+json `errors`. */
export interface FieldError {
  field: string;
  message: string;
}

/**
 * An error a service raises on purpose: a stable UPPER_SNAKE code, the HTTP status it maps to,
 * and a sentence a person can act on. The problem+json filter turns it into a response.
 */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = code;
  }
}

export const notFound = (what: string, id: string) =>
  new DomainError(404, `${what.toUpperCase()}_NOT_FOUND`, `No ${what} with id ${id} exists.`);

export const validationFailed = (errors: FieldError[]) =>
  new DomainError(
    400,
    'VALIDATION_FAILED',
    errors.length === 1 ? `${errors[0].field}: ${errors[0].message}` : `${errors.length} fields are invalid.`,
    errors,
  );
