import { databaseUnavailable } from './errors/postgres-errors';

/** An item waiting in a WaitingLine, and how to answer its caller. */
export interface Waiting<T, A> {
  item: T;
  resolve(answer: A): void;
  reject(error: unknown): void;
}

interface Entry<T, A> extends Waiting<T, A> {
  timer: NodeJS.Timeout;
}

/**
 * Requests waiting for one of a few slots to the database (group commit's writes, grouped checks),
 * oldest first. One still waiting after `timeoutMs` (DATABASE_CONNECT_TIMEOUT_MS, what a request
 * waited for a pooled connection before requests were grouped) leaves the line answered 503: it
 * was never sent, so it is safe to retry.
 */
export class WaitingLine<T, A> {
  private entries: Entry<T, A>[] = [];

  constructor(private readonly timeoutMs: number) {}

  get length(): number {
    return this.entries.length;
  }

  /** Queues `item`; settled by whoever takes it, or with 503 after timeoutMs. */
  wait(item: T): Promise<A> {
    return new Promise<A>((resolve, reject) => {
      const entry: Entry<T, A> = {
        item,
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.entries.indexOf(entry);
          if (at < 0) return;
          this.entries.splice(at, 1);
          reject(databaseUnavailable());
        }, this.timeoutMs),
      };
      this.entries.push(entry);
    });
  }

  /**
   * Takes the oldest items, at most `max`, in order; an item `accept` refuses (asked in line order)
   * keeps its place at the front for a later take.
   */
  take(max: number, accept: (item: T) => boolean = () => true): Waiting<T, A>[] {
    const taken: Waiting<T, A>[] = [];
    const skipped: Entry<T, A>[] = [];
    let next = 0;
    for (; next < this.entries.length && taken.length < max; next++) {
      const entry = this.entries[next];
      if (!accept(entry.item)) {
        skipped.push(entry);
        continue;
      }
      clearTimeout(entry.timer);
      taken.push(entry);
    }
    this.entries = [...skipped, ...this.entries.slice(next)];
    return taken;
  }
}
