/**
 * A server frame encoded at most once per mode, however many recipients it has.
 *
 * @module
 */

import type { ServerFrame } from "./frames.ts";
import { formatTextEvent } from "./text_mode.ts";

const encoder = new TextEncoder();

/** The two ways a connection speaks: decided by the first line the client sends. */
export type Mode = "text" | "json";

/**
 * One outgoing event with lazily built, cached wire bytes for each mode: a broadcast to a
 * thousand members encodes JSON once and text once, and hands every recipient the same bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Outgoing } from "./outgoing.ts";
 * const out = new Outgoing({ type: "notice", text: "hi" });
 * assert.equal(out.bytes("json"), out.bytes("json")); // the same bytes, encoded once
 * assert.equal(new TextDecoder().decode(out.bytes("text")!), "* hi\n");
 * ```
 */
export class Outgoing {
  /** The event itself. */
  readonly frame: ServerFrame;
  #json: Uint8Array | undefined;
  #text: Uint8Array | null | undefined;

  /** @param frame the event to encode */
  constructor(frame: ServerFrame) {
    this.frame = frame;
  }

  /** The line (newline included) for `mode`, or `null` when that mode does not show it. */
  bytes(mode: Mode): Uint8Array | null {
    if (mode === "json") return this.#json ??= encoder.encode(JSON.stringify(this.frame) + "\n");
    if (this.#text === undefined) {
      const line = formatTextEvent(this.frame);
      this.#text = line === undefined ? null : encoder.encode(line + "\n");
    }
    return this.#text;
  }
}

/** Encodes one text line (a newline is appended). */
export function encodeLine(line: string): Uint8Array {
  return encoder.encode(line + "\n");
}
