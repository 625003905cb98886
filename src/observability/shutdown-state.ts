import { Injectable, type OnModuleDestroy } from '@nestjs/common';

/**
 * Where this instance is in its shutdown. `draining` (main.ts, on SIGTERM): /health/ready answers
 * 503 so load balancers stop sending, but requests are still served. `closing` (app.close()
 * began): new requests get 503 problem+json with Connection: close (app.setup.ts) while those in
 * flight finish.
 */
@Injectable()
export class ShutdownState implements OnModuleDestroy {
  private phase: 'serving' | 'draining' | 'closing' = 'serving';

  begin(): void {
    if (this.phase === 'serving') this.phase = 'draining';
  }

  /** Nest runs destroy hooks before it closes the HTTP server. */
  onModuleDestroy(): void {
    this.phase = 'closing';
  }

  get shuttingDown(): boolean {
    return this.phase !== 'serving';
  }

  get closing(): boolean {
    return this.phase === 'closing';
  }
}
