/**
 * The event loop's lag, measured all the time: a timer due every few milliseconds records how
 * late it ran. A late timer means something held the loop (a synchronous query, a big encode,
 * a garbage collection); the store runs on its worker so that it is never the cause.
 *
 * @module
 */

/** How long the activity must stand still before the probe looks less often. */
const QUIET_MS = 1000;

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
  readonly #activity: (() => number) | undefined;
  readonly #idleIntervalMs: number;
  /** The activity count last seen, and how many on-time runs saw it unchanged since. */
  #seen = 0;
  #quiet = 0;
  #stats: LagStats = { samples: 0, maxMs: 0, over5ms: 0, over50ms: 0 };

  /**
   * @param intervalMs how often to look, in ms
   * @param onSample told how late each run came, in ms (for a histogram); must be cheap
   * @param idle with `activity`, a count that moves while the server works (lines read,
   *   events delivered, connections opened): once it stood still for a second of runs that
   *   were all on time, the probe looks every `intervalMs` of `idle` instead (100 ms by
   *   default), and at `intervalMs` again from the run that sees it move or comes 5 ms late. An idle
   *   server is not woken 200 times a second (about 3 % of a core here), and a busy one is
   *   probed as before, from at most one idle interval after it got busy.
   */
  constructor(
    intervalMs = 5,
    onSample?: (lateMs: number) => void,
    idle?: { activity: () => number; intervalMs?: number },
  ) {
    this.#intervalMs = intervalMs;
    this.#onSample = onSample;
    this.#activity = idle?.activity;
    this.#idleIntervalMs = Math.max(intervalMs, idle?.intervalMs ?? 100);
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
    const quiet = this.#quiet * this.#intervalMs >= QUIET_MS;
    const ms = quiet ? this.#idleIntervalMs : this.#intervalMs;
    this.#due = performance.now() + ms;
    this.#timer = setTimeout(() => this.#tick(), ms) as unknown as number;
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
    if (this.#activity !== undefined) {
      const seen = this.#activity();
      if (seen !== this.#seen || late > 5) {
        this.#seen = seen;
        this.#quiet = 0;
      } else this.#quiet++;
    }
    this.#arm();
  }

  [Symbol.dispose](): void {
    clearTimeout(this.#timer);
  }
}
