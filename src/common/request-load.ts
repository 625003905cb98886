import { Injectable } from '@nestjs/common';

/**
 * The HTTP requests this application is serving now, kept by configureApp's hooks (counted from
 * onRequest until the response closes, however it ends). Background work reads it to give way to
 * the hot path: the alert relay sends one batch per poll while requests crowd in.
 */
@Injectable()
export class RequestLoad {
  inFlight = 0;
}
