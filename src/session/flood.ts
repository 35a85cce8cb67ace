/**
 * Flood control for a session's input: lines past the burst are delayed, never dropped, and
 * the client is told once per episode.
 *
 * @module
 */

import { TokenBucket } from "./token_bucket.ts";

/**
 * Delays a session's lines to `burst` at once, then `rate` per second. It is its own token
 * bucket (one object a session, not two).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FloodGate } from "./flood.ts";
 * const warnings: number[] = [];
 * const gate = new FloodGate(1, 100, (seconds) => warnings.push(seconds));
 * await gate.pass();
 * await gate.pass(); // waits about 10 ms, and says so once
 * await gate.pass();
 * assert.deepEqual(warnings, [1]);
 * ```
 */
export class FloodGate extends TokenBucket {
  readonly #warn: (seconds: number) => void;
  #throttled = false;
  #wakeUp: (() => void) | undefined;

  /**
   * @param burst lines at once
   * @param rate then lines per second (0: no limit)
   * @param warn told, once per episode, how many seconds lines are being delayed by
   */
  constructor(burst: number, rate: number, warn: (seconds: number) => void) {
    super(burst, rate);
    this.#warn = warn;
  }

  /** Resolves when the next line may be handled (at once, or after its delay). */
  pass(): Promise<void> | undefined {
    const wait = this.take();
    if (wait <= 0) {
      this.#throttled = false;
      return undefined;
    }
    if (!this.#throttled) {
      this.#throttled = true;
      this.#warn(Math.max(1, Math.ceil(wait / 1000)));
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#wakeUp?.(), wait);
      this.#wakeUp = () => {
        clearTimeout(timer);
        this.#wakeUp = undefined;
        resolve();
      };
    });
  }

  /** Ends a wait early (the session is ending). */
  wake(): void {
    this.#wakeUp?.();
  }
}
