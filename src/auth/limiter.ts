/**
 * Concurrency and rate limits for authentication: a semaphore capping concurrent password
 * hashes, and keyed token buckets for failed logins and registrations.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";

/**
 * Runs at most `limit` tasks at once, with at most `queue` waiting; beyond that it refuses
 * with `busy` instead of queueing without bound.
 */
export class Semaphore {
  readonly #limit: number;
  readonly #queue: number;
  #running = 0;
  #waiting: (() => void)[] = [];
  #refused = 0;

  /**
   * @param limit tasks at once
   * @param queue tasks that may wait
   */
  constructor(limit: number, queue: number) {
    this.#limit = limit;
    this.#queue = queue;
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Tasks refused `busy` so far. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Runs `task` when a slot is free.
   *
   * @throws {ChatError} `busy` when too many are waiting
   */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) {
      if (this.#waiting.length >= this.#queue) {
        this.#refused++;
        throw new ChatError("busy", "The server is busy: try again in a moment", 1);
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

/**
 * Token buckets by key (an IP, an account): `burst` events, then one every `intervalMs`.
 * Full buckets are forgotten, so memory follows only the keys that are being limited.
 */
export class KeyedThrottle {
  readonly #burst: number;
  readonly #intervalMs: number;
  readonly #buckets = new Map<string, { tokens: number; stamp: number }>();

  /**
   * @param burst events allowed at once
   * @param intervalMs one more event allowed every this many ms
   */
  constructor(burst: number, intervalMs: number) {
    this.#burst = burst;
    this.#intervalMs = intervalMs;
  }

  #refill(key: string, now: number): { tokens: number; stamp: number } {
    const b = this.#buckets.get(key) ?? { tokens: this.#burst, stamp: now };
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.stamp) / this.#intervalMs);
    b.stamp = now;
    return b;
  }

  /** Seconds until `key` may act again (0: now). Does not use a token. */
  retryAfter(key: string, now: number = Date.now()): number {
    const b = this.#refill(key, now);
    if (b.tokens >= this.#burst) this.#buckets.delete(key);
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * this.#intervalMs) / 1000);
  }

  /** Uses one token of `key` (an attempt that counts against it). */
  hit(key: string, now: number = Date.now()): void {
    const b = this.#refill(key, now);
    b.tokens = Math.max(0, b.tokens - 1);
    this.#buckets.set(key, b);
  }

  /**
   * Uses one token of `key` if it has one: the check and the charge in one step, so attempts
   * made at the same time cannot all pass the check before any of them is charged.
   *
   * @returns 0 when a token was taken, else the seconds until one is available (nothing taken)
   */
  take(key: string, now: number = Date.now()): number {
    const wait = this.retryAfter(key, now);
    if (wait === 0) this.hit(key, now);
    return wait;
  }

  /** Gives back a token taken by {@linkcode KeyedThrottle.take} (never above the burst). */
  refund(key: string, now: number = Date.now()): void {
    const b = this.#refill(key, now);
    b.tokens = Math.min(this.#burst, b.tokens + 1);
    if (b.tokens >= this.#burst) this.#buckets.delete(key);
    else this.#buckets.set(key, b);
  }
}
