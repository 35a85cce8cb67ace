/**
 * {@linkcode Reconnector}: the one reconnect loop of parley's clients. It calls an attempt
 * function (connect, then restore the session) until one succeeds, waiting
 * {@linkcode backoffDelay} before each (optionally not before the first), and reports what it
 * is doing so that a UI can show "reconnecting in 3 s". It stops on an abort, and after
 * `maxAttempts` failures in a row.
 *
 * @module
 */

import { backoffDelay } from "./backoff.ts";
import type { BackoffOptions } from "./backoff.ts";
import { describe } from "./errors.ts";

/** The policy: the backoff and how many attempts in a row to make. */
export interface ReconnectPolicy extends BackoffOptions {
  /** Give up after this many failed attempts in a row. @default Infinity */
  maxAttempts?: number;
}

/** What a {@linkcode Reconnector} is doing; `attempt` counts from 1 within one run. */
export type ReconnectState =
  | { kind: "connecting"; attempt: number }
  | { kind: "waiting"; attempt: number; retryAt: number; delayMs: number; reason: string };

/** How a run ended: connected (with what the attempt returned), or not. */
export type ReconnectResult<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; aborted: boolean; attempts: number; reason: string };

/** Options for one {@linkcode Reconnector.run}. */
export interface RunOptions {
  /** Aborting stops the run (during a wait, at once; during an attempt, after it). */
  signal: AbortSignal;
  /** Make the first attempt at once rather than after a backoff delay. @default false */
  immediate?: boolean;
  /** Why a reconnect is needed (shown while waiting for the first attempt). */
  reason?: string;
  /** Called on every state change. */
  onState?: (state: ReconnectState) => void;
}

/**
 * Runs attempts with backoff.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reconnector } from "./reconnect.ts";
 * let calls = 0;
 * const r = new Reconnector({ baseMs: 1, capMs: 4 });
 * const result = await r.run(async () => {
 *   if (++calls < 3) throw new Error("down");
 *   return "up";
 * }, { signal: new AbortController().signal });
 * assert.deepEqual(result, { ok: true, value: "up", attempts: 3 });
 * ```
 */
export class Reconnector {
  readonly policy: ReconnectPolicy;
  #skip: (() => void) | undefined;

  constructor(policy: ReconnectPolicy = {}) {
    this.policy = policy;
  }

  /** Ends the current wait now: the next attempt starts at once. */
  retryNow(): void {
    this.#skip?.();
  }

  /**
   * Calls `attempt` until it resolves, the signal aborts, or `maxAttempts` attempts failed.
   * A failed attempt must clean up after itself (close what it opened).
   *
   * @param attempt makes one attempt; given its number, counting from 1
   */
  async run<T>(
    attempt: (n: number) => Promise<T>,
    options: RunOptions,
  ): Promise<ReconnectResult<T>> {
    const max = this.policy.maxAttempts ?? Infinity;
    const { signal } = options;
    let reason = options.reason ?? "disconnected";
    for (let i = 0; i < max; i++) {
      if (signal.aborted) return { ok: false, aborted: true, attempts: i, reason: "aborted" };
      if (i > 0 || !options.immediate) {
        const delayMs = backoffDelay(options.immediate ? i - 1 : i, this.policy);
        options.onState?.({
          kind: "waiting",
          attempt: i + 1,
          retryAt: Date.now() + delayMs,
          delayMs,
          reason,
        });
        await this.#sleep(delayMs, signal);
        if (signal.aborted) return { ok: false, aborted: true, attempts: i, reason: "aborted" };
      }
      options.onState?.({ kind: "connecting", attempt: i + 1 });
      try {
        const value = await attempt(i + 1);
        return { ok: true, value, attempts: i + 1 };
      } catch (error) {
        reason = describe(error);
      }
    }
    return {
      ok: false,
      aborted: false,
      attempts: max,
      reason: `gave up reconnecting after ${max} attempts (${reason})`,
    };
  }

  /** Waits `ms`, or less on an abort or {@linkcode Reconnector.retryNow}; never rejects. */
  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        if (this.#skip === done) this.#skip = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#skip = done;
    });
  }
}
