import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiResponse } from '@nestjs/swagger';
import { STATUS_CODES } from 'node:http';

export class FieldErrorDto {
  @ApiProperty({ example: 'amount' })
  field: string;
  @ApiProperty({ example: 'amount must be greater than 0' })
  message: string;
}

/** RFC 9457 problem details, as every error of this API is answered. */
export class ProblemDetailsDto {
  @ApiProperty({ example: 'urn:relaycore:problem:validation-failed' })
  type: string;
  @ApiProperty({ example: 'Bad Request' })
  title: string;
  @ApiProperty({ example: 400 })
  status: number;
  @ApiProperty({ example: 'amount: amount must be greater than 0' })
  detail: string;
  @ApiProperty({ example: '/api/v1/budgets' })
  instance: string;
  @ApiProperty({ example: 'VALIDATION_FAILED', description: 'Stable machine-readable error code.' })
  code: string;
  @ApiProperty({ type: [FieldErrorDto], required: false })
  errors?: FieldErrorDto[];
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed JSON or invalid fields (every invalid field is listed in `errors`).',
  401: 'No API key, or an unknown or revoked one.',
  403: 'The API key\'s role does not allow this operation.',
  404: 'No such resource (or it was deleted).',
  409: 'Conflicts with the current state.',
  412: 'If-Match does not match the current version.',
  413: 'Body larger than 1 MiB.',
  415: 'Body is not application/json.',
  422: 'Breaks a business rule.',
  503: 'The database is unreachable; retry after the Retry-After seconds.',
};

/** Documents the problem+json error responses of an operation (401, 403 and 503 always apply). */
export function ApiProblems(...statuses: number[]) {
  const all = [...new Set([...statuses, 401, 403, 503])].sort();
  return applyDecorators(
    ...all.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status] ?? STATUS_CODES[status],
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDetailsDto' } } },
      }),
    ),
  );
}
