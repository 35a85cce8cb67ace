/**
 * A token bucket for flood control.
 *
 * @module
 */

/**
 * Allows `burst` events at once, refilled at `rate` per second. {@linkcode TokenBucket.take}
 * never refuses: it returns how long the caller should wait first, so a flooder is slowed
 * (its reads are delayed) rather than losing anything. A rate of 0 or less disables the limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TokenBucket } from "./token_bucket.ts";
 * const bucket = new TokenBucket(2, 1, 0);
 * assert.equal(bucket.take(0), 0);
 * assert.equal(bucket.take(0), 0);
 * assert.equal(bucket.take(0), 1000); // the burst is spent: wait for the next token
 * ```
 */
export class TokenBucket {
  readonly #burst: number;
  readonly #rate: number;
  #tokens: number;
  #stamp: number;

  /**
   * @param burst how many events may come at once
   * @param rate events per second refilled
   * @param now the current time in ms
   */
  constructor(burst: number, rate: number, now: number = performance.now()) {
    this.#burst = Math.max(1, burst);
    this.#rate = rate;
    this.#tokens = this.#burst;
    this.#stamp = now;
  }

  /** Takes one token; returns the milliseconds to wait before acting (0: act now). */
  take(now: number = performance.now()): number {
    if (this.#rate <= 0) return 0;
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#stamp) / 1000) * this.#rate);
    this.#stamp = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#rate) * 1000;
  }

  /**
   * Takes one token if there is one; else takes nothing and returns the milliseconds until one
   * is due (for a refusal that should not grow the debt, unlike {@linkcode TokenBucket.take}).
   */
  tryTake(now: number = performance.now()): number {
    const wait = this.take(now);
    if (wait > 0) this.#tokens += 1;
    return wait;
  }
}
