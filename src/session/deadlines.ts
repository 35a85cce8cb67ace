/**
 * A session's deadlines: the first line, the login (with `--require-login`), and silence on a
 * JSON connection (pinged first, closed later).
 *
 * @module
 */

import type { ServerConfig } from "../server/config.ts";

/** What the deadlines look at. */
export interface DeadlineState {
  /** When the connection began (`performance.now()`). */
  startedAt: number;
  /** Whether it sent its first line. */
  started: boolean;
  online: boolean;
  /** When it last sent anything. */
  lastInput: number;
  /** Whether it was pinged since. */
  pinged: boolean;
  /** Whether its dialect has keepalives (JSON). */
  pings: boolean;
}

type Deadlines = Pick<
  ServerConfig,
  "firstLineTimeoutMs" | "requireLogin" | "loginTimeoutMs" | "idleTimeoutMs" | "pingAfterMs"
>;

/**
 * What is due at `now`: closing (and why), a ping, or nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dueDeadline } from "./deadlines.ts";
 * const config = {
 *   firstLineTimeoutMs: 10_000, requireLogin: false, loginTimeoutMs: 60_000,
 *   idleTimeoutMs: 90_000, pingAfterMs: 30_000,
 * };
 * const state = {
 *   startedAt: 0, started: true, online: true, lastInput: 0, pinged: false, pings: true,
 * };
 * assert.equal(dueDeadline(config, 31_000, state), "ping");
 * assert.deepEqual(dueDeadline(config, 91_000, state), { close: "silent for 91 s" });
 * ```
 */
export function dueDeadline(
  config: Deadlines,
  now: number,
  state: DeadlineState,
): { close: string } | "ping" | undefined {
  const age = now - state.startedAt;
  if (!state.started && age > config.firstLineTimeoutMs) {
    return { close: `no line within ${config.firstLineTimeoutMs / 1000} s` };
  }
  if (config.requireLogin && !state.online && age > config.loginTimeoutMs) {
    return { close: `not logged in within ${config.loginTimeoutMs / 1000} s` };
  }
  if (!state.pings) return undefined;
  const idle = now - state.lastInput;
  if (idle > config.idleTimeoutMs) return { close: `silent for ${Math.round(idle / 1000)} s` };
  if (idle > config.pingAfterMs && !state.pinged) return "ping";
  return undefined;
}
