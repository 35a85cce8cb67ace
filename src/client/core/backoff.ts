/**
 * The one reconnect policy of parley's clients: exponential backoff with full jitter. The
 * delay before attempt `n` (0 for the first) is uniformly random between 0 and
 * `min(capMs, baseMs · 2^n)`, so clients cut off together do not come back together.
 * Defaults ({@linkcode BACKOFF_DEFAULTS}): `baseMs` 500, `capMs` 10 000.
 *
 * @module
 */

/** The defaults of {@linkcode BackoffOptions}, shared by the terminal client and the web app. */
export const BACKOFF_DEFAULTS = {
  /** The ceiling of the first delay, in ms. */
  baseMs: 500,
  /** The largest ceiling, in ms. */
  capMs: 10_000,
} as const;

/** Options for {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** The ceiling of the first delay, in ms. @default 500 */
  baseMs?: number;
  /** The largest ceiling, in ms. @default 10000 */
  capMs?: number;
  /** A random number in `[0, 1)`; replace it to make delays predictable. @default Math.random */
  random?: () => number;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first): a uniformly random time
 * between 0 and `min(capMs, baseMs * 2 ** attempt)` ("full jitter").
 *
 * @param attempt how many attempts came before this one (0, 1, 2, …)
 * @param options the base, the cap and the random source
 * @returns the delay in whole milliseconds
 * @throws {RangeError} when `baseMs` or `capMs` is negative or not a number
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay } from "./backoff.ts";
 * const max = () => 0.999999;
 * assert.ok(backoffDelay(0, { random: max }) <= 500);
 * assert.ok(backoffDelay(3, { random: max }) <= 4000);
 * assert.ok(backoffDelay(30, { random: max }) <= 10_000);
 * assert.equal(backoffDelay(30, { random: () => 0 }), 0);
 * ```
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
  const cap = options.capMs ?? BACKOFF_DEFAULTS.capMs;
  if (!(base >= 0) || !(cap >= 0)) {
    throw new RangeError("Cannot compute a backoff: baseMs and capMs must be >= 0");
  }
  const ceiling = Math.min(cap, base * 2 ** Math.min(Math.max(attempt, 0), 52));
  return Math.floor((options.random ?? Math.random)() * ceiling);
}
