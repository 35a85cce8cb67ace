/**
 * Splits a byte stream into UTF-8 lines without ever buffering more than the line limit.
 *
 * @module
 */

/** What {@linkcode LineSplitter.push} yields: a decoded line, or why a line was dropped. */
export type LineEvent =
  | { readonly line: string }
  | { readonly error: "line_too_long" | "bad_utf8" };

const NL = 0x0a;
/** Shared by every splitter: it decodes whole lines only, so it keeps no state between calls. */
const DECODER = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const CR = 0x0d;

/**
 * Cuts bytes into lines ending in `\n` (a `\r` before it is dropped). A line longer than
 * `maxLine` bytes is discarded as it streams in (nothing past the limit is kept) and reported
 * once as `line_too_long` when its end arrives; a line that is not valid UTF-8 is reported as
 * `bad_utf8`. Multi-byte characters split across chunks are reassembled, because lines are cut
 * on bytes and decoded whole.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LineSplitter } from "./line_splitter.ts";
 * const splitter = new LineSplitter(16);
 * const bytes = new TextEncoder().encode("hi\r\nthere");
 * const events = [...splitter.push(bytes), ...splitter.push(new Uint8Array([10]))];
 * assert.deepEqual(events, [{ line: "hi" }, { line: "there" }]);
 * ```
 */
export class LineSplitter {
  readonly #maxLine: number;
  /** The unfinished line's pieces; none while no line is unfinished (most idle connections). */
  #parts: Uint8Array[] | undefined;
  #partLength = 0;
  #discarding = false;

  /** @param maxLine the longest line accepted, in bytes, not counting the line ending */
  constructor(maxLine: number) {
    if (!(maxLine >= 1)) throw new RangeError(`Cannot split lines: maxLine must be >= 1`);
    this.#maxLine = maxLine;
  }

  /** Bytes held for an unfinished line (never more than `maxLine + 1`). */
  get buffered(): number {
    return this.#partLength;
  }

  /**
   * Feeds a chunk and yields every line it completes. The chunk may be reused by the caller
   * once the generator is exhausted.
   */
  *push(chunk: Uint8Array): Generator<LineEvent> {
    const out: LineEvent[] = [];
    this.split(chunk, out);
    yield* out;
  }

  /**
   * Feeds a chunk and appends every line it completes to `out` (what {@linkcode LineSplitter.push}
   * yields), without a generator. The chunk may be reused by the caller on return.
   *
   * @param chunk the bytes read
   * @param out where the events go
   */
  split(chunk: Uint8Array, out: LineEvent[]): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl === -1) {
        this.#keep(chunk.subarray(start));
        return;
      }
      out.push(this.#finish(chunk.subarray(start, nl)));
      start = nl + 1;
    }
  }

  #keep(rest: Uint8Array): void {
    if (this.#discarding || rest.length === 0) return;
    // One byte of slack: a trailing "\r" may belong to the line ending.
    if (this.#partLength + rest.length > this.#maxLine + 1) {
      this.#discarding = true;
      this.#parts = undefined;
      this.#partLength = 0;
      return;
    }
    (this.#parts ??= []).push(rest.slice());
    this.#partLength += rest.length;
  }

  #finish(tail: Uint8Array): LineEvent {
    if (this.#discarding) {
      this.#discarding = false;
      return { error: "line_too_long" };
    }
    let bytes = tail;
    if (this.#partLength > 0) {
      bytes = new Uint8Array(this.#partLength + tail.length);
      let at = 0;
      for (const part of this.#parts!) {
        bytes.set(part, at);
        at += part.length;
      }
      bytes.set(tail, at);
      this.#parts = undefined;
      this.#partLength = 0;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, -1);
    if (bytes.length > this.#maxLine) return { error: "line_too_long" };
    try {
      return { line: DECODER.decode(bytes) };
    } catch {
      return { error: "bad_utf8" };
    }
  }
}
