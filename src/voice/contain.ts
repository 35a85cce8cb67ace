/**
 * Keeps a fault in the media library from ending the chat server: an exception or rejected
 * promise that werift (`npm:werift`) throws in one of its own socket or timer callbacks, which
 * nothing in parley can catch, is logged and dropped instead of ending the process; so is a
 * failed UDP bind (only werift binds UDP sockets in the server). Errors from anywhere else are
 * left alone.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["parley", "voice"]);
let installed = false;

function fromWerift(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // A UDP port of the voice range taken by another process between werift's probe and its bind.
  if ((error as { syscall?: string }).syscall === "bind") return true;
  return typeof error.stack === "string" && /[\\/]werift[\\/@]/.test(error.stack);
}

/**
 * Installs the handlers (once per process).
 *
 * @example
 * ```ts
 * import { containMediaFaults } from "./contain.ts";
 * containMediaFaults();
 * containMediaFaults(); // a second call does nothing
 * ```
 */
export function containMediaFaults(): void {
  if (installed) return;
  installed = true;
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (!fromWerift(event.reason)) return;
    event.preventDefault();
    log.warn("Voice: a media fault was contained: {error}", { error: String(event.reason) });
  });
  globalThis.addEventListener("error", (event) => {
    if (!fromWerift(event.error)) return;
    event.preventDefault();
    log.warn("Voice: a media fault was contained: {error}", { error: String(event.error) });
  });
}
