/**
 * The restart schedule of a service: 1 s after the first exit, doubling to at most a minute, back
 * to 1 s once the service has stayed up for a while (so a crash a day later restarts promptly).
 */

/** Settings of {@link Backoff}. */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** A run at least this long resets the schedule. */
  resetAfterMs?: number;
  /** The clock; `Date.now` unless a test passes a fake one. */
  now?: () => number;
}

/** Exponential restart delays with a reset after a long enough run. */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly resetAfterMs: number;
  readonly #now: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 1000;
    this.maxMs = opts.maxMs ?? 60_000;
    this.resetAfterMs = opts.resetAfterMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
  }

  /** The delay before the next start of a task that started at `startedAt` and has exited now. */
  next(startedAt: number): number {
    if (this.#now() - startedAt >= this.resetAfterMs) this.#attempt = 0;
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** this.#attempt);
    if (delay < this.maxMs) this.#attempt++;
    return delay;
  }

  /** Forgets earlier failures (after an explicit restart). */
  reset(): void {
    this.#attempt = 0;
  }
}
