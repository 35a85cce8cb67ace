/**
 * A server event encoded at most once per dialect, however many recipients it has.
 *
 * @module
 */

import type { ServerFrame } from "./frames.ts";

const encoder = new TextEncoder();

/** What can encode an event: a dialect (src/dialects/). */
export interface EventEncoder {
  event(frame: ServerFrame): Uint8Array | null;
}

/**
 * One outgoing event with lazily built, cached wire bytes for each dialect: a broadcast to a
 * thousand members encodes JSON once and text once, and hands every recipient the same bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Outgoing } from "./outgoing.ts";
 * import { json } from "../dialects/json.ts";
 * import { text } from "../dialects/text.ts";
 * const out = new Outgoing({ type: "notice", text: "hi" });
 * assert.equal(out.bytes(json), out.bytes(json)); // the same bytes, encoded once
 * assert.equal(new TextDecoder().decode(out.bytes(text)!), "* hi\n");
 * ```
 */
export class Outgoing {
  /** The event itself. */
  readonly frame: ServerFrame;
  // Two slots cover text and JSON without a Map per event; more dialects share a Map.
  #first: EventEncoder | undefined;
  #firstBytes: Uint8Array | null = null;
  #second: EventEncoder | undefined;
  #secondBytes: Uint8Array | null = null;
  #more: Map<EventEncoder, Uint8Array | null> | undefined;

  /** @param frame the event to encode */
  constructor(frame: ServerFrame) {
    this.frame = frame;
  }

  /** The bytes for `dialect`, or `null` when that dialect does not show this event. */
  bytes(dialect: EventEncoder): Uint8Array | null {
    if (this.#first === dialect) return this.#firstBytes;
    if (this.#second === dialect) return this.#secondBytes;
    if (this.#first === undefined) {
      this.#first = dialect;
      return this.#firstBytes = dialect.event(this.frame);
    }
    if (this.#second === undefined) {
      this.#second = dialect;
      return this.#secondBytes = dialect.event(this.frame);
    }
    this.#more ??= new Map();
    let bytes = this.#more.get(dialect);
    if (bytes === undefined) this.#more.set(dialect, bytes = dialect.event(this.frame));
    return bytes;
  }
}

/** Encodes one text line (a newline is appended). */
export function encodeLine(line: string): Uint8Array {
  return encoder.encode(line + "\n");
}
