import { Injectable } from '@nestjs/common';

/** The service's notion of "now"; tests replace `now` to move time without waiting. */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }
}
