/**
 * A growable byte buffer that strings are encoded straight into, so a sender builds a tick's
 * worth of frames with one allocation per write rather than one per message.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Appends bytes and UTF-8 strings; {@linkcode ByteSink.take} hands out a copy and starts over.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ByteSink } from "./byte_sink.ts";
 * const sink = new ByteSink(4);
 * sink.str("hello ");
 * sink.byte(0x21);
 * assert.equal(new TextDecoder().decode(sink.take()), "hello !");
 * assert.equal(sink.length, 0);
 * ```
 */
export class ByteSink {
  #buf: Uint8Array;
  #len = 0;

  /** @param capacity the initial size in bytes @default 4096 */
  constructor(capacity = 4096) {
    this.#buf = new Uint8Array(capacity);
  }

  /** Bytes held. */
  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /**
   * Appends a string as UTF-8.
   *
   * @param s the string
   */
  str(s: string): void {
    this.#reserve(s.length * 3);
    this.#len += encoder.encodeInto(s, this.#buf.subarray(this.#len)).written;
  }

  /**
   * Appends bytes.
   *
   * @param bytes the bytes
   */
  bytes(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /**
   * Appends one byte.
   *
   * @param b a value from 0 to 255
   */
  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  /** A copy of the bytes held; the sink is then empty. */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#len);
    this.#len = 0;
    return out;
  }
}
