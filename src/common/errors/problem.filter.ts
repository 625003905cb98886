import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { toProblem } from './problem';

export const PROBLEM_JSON = 'application/problem+json';

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: unknown): void {
  const { body, headers } = toProblem(error, request.url, request.id);
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  reply.status(body.status).type(PROBLEM_JSON).send(body);
}

/** The one place every error becomes an RFC 9457 problem+json response. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    sendProblem(http.getResponse<FastifyReply>(), http.getRequest<FastifyRequest>(), exception);
  }
}
