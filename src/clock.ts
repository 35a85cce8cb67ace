/**
 * The wall clock, as a dependency: the composition root passes one to every part that stamps
 * or expires things (messages, tokens, files), so tests can set the time.
 *
 * @module
 */

/** Where the time comes from. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The system's clock. */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that moves only when told to (for tests).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock(1000);
 * clock.advance(500);
 * assert.equal(clock.now(), 1500);
 * ```
 */
export class ManualClock implements Clock {
  #now: number;

  /** @param start the time it shows first, in ms since the epoch */
  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves the clock forward by `ms`. */
  advance(ms: number): void {
    this.#now += ms;
  }
}
