/**
 * The JSON dialect: one JSON object per line on TCP and TLS, one per message on a WebSocket
 * (docs/protocol.md, "JSON mode").
 *
 * @module
 */

import type { ChatError } from "../protocol/errors.ts";
import type { HistoryFrame, ServerFrame } from "../protocol/frames.ts";
import { parseClientFrame, ParseError } from "../protocol/frames.ts";
import type { ReplayItem, Result } from "../protocol/requests.ts";
import { utf8Length } from "../protocol/unicode.ts";
import type { Dialect, Parsed } from "./dialect.ts";

const encoder = new TextEncoder();

function line(frame: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(frame) + "\n");
}

/**
 * The JSON dialect.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { json } from "./json.ts";
 * const view = { name: "alice", current: "#general", online: true };
 * const bytes = json.result({ command: "part", reply: { type: "ack", room: "#a" } }, "7", view);
 * assert.equal(new TextDecoder().decode(bytes!), '{"type":"ack","room":"#a","ref":"7"}\n');
 * ```
 */
export const json: Dialect = {
  name: "json",

  parse(text: string): Parsed {
    const parsed = parseClientFrame(text);
    if (parsed instanceof ParseError) return { error: parsed, ref: parsed.ref };
    return { request: parsed, ref: parsed.ref };
  },

  result(result: Result, ref: string | undefined): Uint8Array | null {
    if (result.command === "pong") return null;
    return line(ref === undefined ? result.reply : { ...result.reply, ref });
  },

  error(error: ChatError, ref: string | undefined): Uint8Array {
    const frame: ServerFrame = { type: "error", code: error.code, message: error.message };
    if (error.retryAfter !== undefined) frame.retryAfter = error.retryAfter;
    if (error.need !== undefined) frame.need = error.need;
    if (ref !== undefined) frame.ref = ref;
    return line(frame);
  },

  event(frame: ServerFrame): Uint8Array {
    return line(frame);
  },

  start(): null {
    return null;
  },

  *replayUnits(item: ReplayItem, pageBytes: number) {
    if (item.type === "message") {
      yield item.offline ? { bytes: line(item), waiting: item.id } : { bytes: line(item) };
      return;
    }
    yield* historyFrames(item, pageBytes);
  },
};

/** A history frame as one line, or as several smaller frames when it exceeds `pageBytes`. */
function* historyFrames(frame: HistoryFrame, pageBytes: number): Generator<{ bytes: Uint8Array }> {
  const whole = line(frame);
  if (whole.length <= pageBytes || frame.messages.length <= 1) {
    yield { bytes: whole };
    return;
  }
  const overhead = JSON.stringify({ ...frame, messages: [], more: true }).length + 1;
  let start = 0;
  let size = overhead;
  const emit = (end: number) => {
    const more = start === 0 ? frame.more : true;
    const part = { ...frame, messages: frame.messages.slice(start, end), more };
    start = end;
    size = overhead;
    return { bytes: line(part) };
  };
  for (let i = 0; i < frame.messages.length; i++) {
    const bytes = utf8Length(JSON.stringify(frame.messages[i])) + 1;
    if (i > start && size + bytes > pageBytes) yield emit(i);
    size += bytes;
  }
  yield emit(frame.messages.length);
}
