/**
 * Replies the server builds itself (history on join, the replay of every room at login, direct
 * messages that waited for the recipient) can be far larger than a connection's send queue. They
 * are cut into pages here, so the session can write one page at a time and wait for the queue to
 * drain in between, instead of queueing everything at once and cutting its own client off as a
 * slow consumer.
 *
 * @module
 */

import type { HistoryFrame, MessageFrame } from "../protocol/frames.ts";
import type { Mode } from "../protocol/outgoing.ts";
import { formatTextEvent, historyLines } from "../protocol/text_mode.ts";
import { utf8Length } from "../protocol/unicode.ts";

/** What a replay holds: pages of history, and direct messages that waited (`offline: true`). */
export type ReplayItem = HistoryFrame | MessageFrame;

/** One page of a replay: its bytes, and the ids of the waiting direct messages in it. */
export interface ReplayPage {
  bytes: Uint8Array;
  /** Waiting direct messages this page delivers: forget them once it is written. */
  waiting: number[];
}

const encoder = new TextEncoder();

/** One line of a replay, and the waiting message it carries (if any). */
interface Unit {
  bytes: Uint8Array;
  waiting?: number;
}

/**
 * Cuts `items` into pages of about `pageBytes` (a single line larger than that is a page of its
 * own), in order. In JSON mode a history frame too large for a page is split into several
 * history frames for the same room or conversation, oldest first; each says `more: true` when
 * older messages exist before it. In text mode a history keeps its one header line.
 *
 * @param items the replay, in the order it is to be written
 * @param mode the connection's mode
 * @param pageBytes the size a page should not exceed
 * @returns the pages, each to be written (and drained) before the next
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { replayPages } from "./replay.ts";
 * const messages = Array.from({ length: 10 }, (_, i) => ({
 *   type: "message" as const, id: i + 1, room: "#a", from: "bob", text: "x".repeat(100), ts: 0,
 * }));
 * const pages = [...replayPages([{ type: "history", room: "#a", messages, more: false }], "json", 400)];
 * assert.ok(pages.length >= 3);
 * const ids = pages.flatMap((p) => JSON.parse(new TextDecoder().decode(p.bytes)).messages)
 *   .map((m: { id: number }) => m.id);
 * assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
 * ```
 */
export function* replayPages(
  items: readonly ReplayItem[],
  mode: Mode,
  pageBytes: number,
): Generator<ReplayPage> {
  let parts: Uint8Array[] = [];
  let size = 0;
  let waiting: number[] = [];
  const page = (): ReplayPage => {
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    const out = { bytes, waiting };
    parts = [];
    size = 0;
    waiting = [];
    return out;
  };
  for (const item of items) {
    for (const unit of units(item, mode, pageBytes)) {
      if (size > 0 && size + unit.bytes.length > pageBytes) yield page();
      parts.push(unit.bytes);
      size += unit.bytes.length;
      if (unit.waiting !== undefined) waiting.push(unit.waiting);
    }
  }
  if (size > 0) yield page();
}

function* units(item: ReplayItem, mode: Mode, pageBytes: number): Generator<Unit> {
  if (item.type === "message") {
    const text = mode === "json" ? JSON.stringify(item) : formatTextEvent(item);
    if (text === undefined) return;
    const unit: Unit = { bytes: encoder.encode(text + "\n") };
    if (item.offline) unit.waiting = item.id;
    yield unit;
    return;
  }
  if (mode === "text") {
    for (const line of historyLines(item)) yield { bytes: encoder.encode(line + "\n") };
    return;
  }
  yield* historyFrames(item, pageBytes);
}

/** A history frame as one line, or as several smaller frames when it exceeds `pageBytes`. */
function* historyFrames(frame: HistoryFrame, pageBytes: number): Generator<Unit> {
  const whole = encoder.encode(JSON.stringify(frame) + "\n");
  if (whole.length <= pageBytes || frame.messages.length <= 1) {
    yield { bytes: whole };
    return;
  }
  const overhead = JSON.stringify({ ...frame, messages: [], more: true }).length + 1;
  let start = 0;
  let size = overhead;
  const emit = (end: number): Unit => {
    const more = start === 0 ? frame.more : true;
    const part = { ...frame, messages: frame.messages.slice(start, end), more };
    start = end;
    size = overhead;
    return { bytes: encoder.encode(JSON.stringify(part) + "\n") };
  };
  for (let i = 0; i < frame.messages.length; i++) {
    const bytes = utf8Length(JSON.stringify(frame.messages[i])) + 1;
    if (i > start && size + bytes > pageBytes) yield emit(i);
    size += bytes;
  }
  yield emit(frame.messages.length);
}

/**
 * The waiting direct messages that sessions are replaying right now, per account: a message
 * being replayed is not also delivered live when its sender's commit completes, and is forgotten
 * (its waiting row deleted) only after the page that carries it was written.
 */
export class ReplayClaims {
  readonly #claims = new Map<number, Map<number, number>>();

  /** Marks `ids` as being replayed to account `userId`. */
  claim(userId: number, ids: readonly number[]): void {
    if (ids.length === 0) return;
    let mine = this.#claims.get(userId);
    if (mine === undefined) this.#claims.set(userId, mine = new Map());
    for (const id of ids) mine.set(id, (mine.get(id) ?? 0) + 1);
  }

  /** Ends the claims `claim` made on `ids`. */
  release(userId: number, ids: readonly number[]): void {
    const mine = this.#claims.get(userId);
    if (mine === undefined) return;
    for (const id of ids) {
      const n = (mine.get(id) ?? 1) - 1;
      if (n <= 0) mine.delete(id);
      else mine.set(id, n);
    }
    if (mine.size === 0) this.#claims.delete(userId);
  }

  /** Whether message `id` is being replayed to account `userId`. */
  has(userId: number, id: number): boolean {
    return this.#claims.get(userId)?.has(id) ?? false;
  }
}
