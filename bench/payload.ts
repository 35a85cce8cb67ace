/**
 * The benchmark's message text, the same for every protocol: a send timestamp, the sender and
 * its sequence number, and the step, then padding:
 *
 * ```
 * t=1795258667122483 s=12:345 k=3 xxxxxxxx
 * ```
 *
 * Receivers find it in the raw bytes of a line or packet without decoding the line: the first
 * `=` whose previous byte is `t` and which starts the text (after `"`, `:` or at the start).
 *
 * @module
 */

const EQ = 0x3d;
const T = 0x74;
const SPACE = 0x20;
const COLON = 0x3a;
const QUOTE = 0x22;
const ZERO = 0x30;

/** The current time in microseconds since the epoch, comparable across processes. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The text of one benchmark message, padded with `x` to at least `size` characters.
 *
 * @param t the send time in µs ({@linkcode nowMicros})
 * @param sender the sender's id
 * @param seq the sender's sequence number
 * @param step the step the message belongs to
 * @param pad the padding appended (spaces and `x` only)
 * @returns the text
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stampText } from "./payload.ts";
 * assert.equal(stampText(5, 1, 2, 3, "xx"), "t=5 s=1:2 k=3 xx");
 * ```
 */
export function stampText(t: number, sender: number, seq: number, step: number, pad: string) {
  return `t=${t} s=${sender}:${seq} k=${step} ${pad}`;
}

/**
 * The padding that brings a stamp of typical length to `size` characters.
 *
 * @param size the wanted text length in bytes
 */
export function padding(size: number): string {
  const typical = stampText(1_800_000_000_000_000, 1000, 1_000_000, 10, "").length;
  return "x".repeat(Math.max(1, size - typical));
}

/** A parsed stamp; reused between calls to avoid allocation. */
export interface Stamp {
  /** Send time, µs. */
  t: number;
  /** Sender id. */
  sender: number;
  /** Sequence number. */
  seq: number;
  /** Step. */
  step: number;
}

/**
 * Finds and parses a stamp in `buf[start, end)`, writing it into `out`.
 *
 * @returns whether the bytes held a stamp
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStamp } from "./payload.ts";
 * const buf = new TextEncoder().encode('{"text":"t=5 s=1:2 k=3 xx"}');
 * const out = { t: 0, sender: 0, seq: 0, step: 0 };
 * assert.ok(parseStamp(buf, 0, buf.length, out));
 * assert.deepEqual(out, { t: 5, sender: 1, seq: 2, step: 3 });
 * ```
 */
export function parseStamp(buf: Uint8Array, start: number, end: number, out: Stamp): boolean {
  const eq = buf.indexOf(EQ, start);
  if (eq < 0 || eq >= end - 1 || eq === start || buf[eq - 1] !== T) return false;
  if (eq - 1 > start) {
    const before = buf[eq - 2];
    if (before !== QUOTE && before !== COLON && before !== SPACE) return false;
  }
  let i = eq + 1;
  let t = 0;
  let c = buf[i]!;
  while (i < end && c >= ZERO && c <= ZERO + 9) {
    t = t * 10 + c - ZERO;
    c = buf[++i]!;
  }
  // " s="
  if (i + 3 >= end || c !== SPACE || buf[i + 2] !== EQ) return false;
  i += 3;
  let sender = 0;
  c = buf[i]!;
  while (i < end && c >= ZERO && c <= ZERO + 9) {
    sender = sender * 10 + c - ZERO;
    c = buf[++i]!;
  }
  if (c !== COLON) return false;
  let seq = 0;
  c = buf[++i]!;
  while (i < end && c >= ZERO && c <= ZERO + 9) {
    seq = seq * 10 + c - ZERO;
    c = buf[++i]!;
  }
  // " k="
  if (i + 3 >= end || c !== SPACE || buf[i + 2] !== EQ) return false;
  i += 3;
  let step = 0;
  c = buf[i]!;
  while (i < end && c >= ZERO && c <= ZERO + 9) {
    step = step * 10 + c - ZERO;
    c = buf[++i]!;
  }
  out.t = t;
  out.sender = sender;
  out.seq = seq;
  out.step = step;
  return true;
}
