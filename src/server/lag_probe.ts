/**
 * The event loop's lag, measured all the time: a timer due every few milliseconds records how
 * late it ran. A late timer means something held the loop (a synchronous query, a big encode,
 * a garbage collection); the store runs on its worker so that it is never the cause.
 *
 * @module
 */

/** What the probe saw. */
export interface LagStats {
  /** Timer runs observed. */
  samples: number;
  /** The latest a run came, in ms. */
  maxMs: number;
  /** Runs more than 5 ms late. */
  over5ms: number;
  /** Runs more than 50 ms late. */
  over50ms: number;
}

/**
 * Measures event-loop lag until disposed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LagProbe } from "./lag_probe.ts";
 * using probe = new LagProbe(1);
 * await new Promise((resolve) => setTimeout(resolve, 30));
 * const busyUntil = performance.now() + 20;
 * while (performance.now() < busyUntil) continue; // holds the loop
 * await new Promise((resolve) => setTimeout(resolve, 10));
 * assert.ok(probe.stats.maxMs >= 15, `saw ${probe.stats.maxMs} ms`);
 * ```
 */
export class LagProbe implements Disposable {
  readonly #intervalMs: number;
  #timer: number | undefined;
  #due = 0;
  readonly #onSample: ((lateMs: number) => void) | undefined;
  #stats: LagStats = { samples: 0, maxMs: 0, over5ms: 0, over50ms: 0 };

  /**
   * @param intervalMs how often to look, in ms
   * @param onSample told how late each run came, in ms (for a histogram); must be cheap
   */
  constructor(intervalMs = 5, onSample?: (lateMs: number) => void) {
    this.#intervalMs = intervalMs;
    this.#onSample = onSample;
    this.#arm();
  }

  /** What it saw since it started (or was reset). */
  get stats(): LagStats {
    return { ...this.#stats, maxMs: Math.round(this.#stats.maxMs * 10) / 10 };
  }

  /** Starts counting afresh. */
  reset(): void {
    this.#stats = { samples: 0, maxMs: 0, over5ms: 0, over50ms: 0 };
  }

  #arm(): void {
    this.#due = performance.now() + this.#intervalMs;
    this.#timer = setTimeout(() => this.#tick(), this.#intervalMs) as unknown as number;
    Deno.unrefTimer(this.#timer); // never keeps a finished process alive
  }

  #tick(): void {
    const late = Math.max(0, performance.now() - this.#due);
    const s = this.#stats;
    s.samples++;
    if (late > s.maxMs) s.maxMs = late;
    if (late > 5) s.over5ms++;
    if (late > 50) s.over50ms++;
    this.#onSample?.(late);
    this.#arm();
  }

  [Symbol.dispose](): void {
    clearTimeout(this.#timer);
  }
}
