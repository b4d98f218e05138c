/** Reconnect delays: exponential with full jitter. */
export interface BackoffOptions {
  /** The first delay's upper bound, ms. Default 250. */
  baseMs?: number;
  /** The largest delay, ms. Default 15000. */
  maxMs?: number;
}

export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  #attempt = 0;
  constructor(o: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.baseMs = o.baseMs ?? 250;
    this.maxMs = o.maxMs ?? 15000;
  }
  /** The next delay: uniform in [0, min(max, base * 2^attempt)). */
  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.floor(this.random() * cap);
  }
  reset(): void {
    this.#attempt = 0;
  }
}
