/**
 * Replies the server builds itself (history on join, the replay of every room at login, direct
 * messages that waited for the recipient) can be far larger than a connection's send queue. They
 * are cut into pages here, so the session can write one page at a time and wait for the queue to
 * drain in between, instead of queueing everything at once and cutting its own client off as a
 * slow consumer.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Dialect } from "../dialects/dialect.ts";
import type { ReplayItem } from "../protocol/requests.ts";
import type { DirectMessages } from "../services/direct_messages.ts";
import type { Outbox } from "./outbox.ts";
import { settlesWithin } from "../transport/byte_conn.ts";

const log = getLogger(["parley", "session"]);

export type { ReplayItem };

/** One page of a replay: its bytes, and the ids of the waiting direct messages in it. */
export interface ReplayPage {
  bytes: Uint8Array;
  /** Waiting direct messages this page delivers: forget them once it is written. */
  waiting: number[];
}

/**
 * Cuts `items` into pages of about `pageBytes` (a single line larger than that is a page of its
 * own), in order. In JSON mode a history frame too large for a page is split into several
 * history frames for the same room or conversation, oldest first; each says `more: true` when
 * older messages exist before it. In text mode a history keeps its one header line.
 *
 * @param items the replay, in the order it is to be written
 * @param dialect the connection's dialect (it cuts each item into units that stay whole)
 * @param pageBytes the size a page should not exceed
 * @returns the pages, each to be written (and drained) before the next
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { replayPages } from "./replay.ts";
 * import { json } from "../dialects/json.ts";
 * const messages = Array.from({ length: 10 }, (_, i) => ({
 *   type: "message" as const, id: i + 1, room: "#a", from: "bob", text: "x".repeat(100), ts: 0,
 * }));
 * const pages = [...replayPages([{ type: "history", room: "#a", messages, more: false }], json, 400)];
 * assert.ok(pages.length >= 3);
 * const ids = pages.flatMap((p) => JSON.parse(new TextDecoder().decode(p.bytes)).messages)
 *   .map((m: { id: number }) => m.id);
 * assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
 * ```
 */
export function* replayPages(
  items: readonly ReplayItem[],
  dialect: Dialect,
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
    for (const unit of dialect.replayUnits(item, pageBytes)) {
      if (size > 0 && size + unit.bytes.length > pageBytes) yield page();
      parts.push(unit.bytes);
      size += unit.bytes.length;
      if (unit.waiting !== undefined) waiting.push(unit.waiting);
    }
  }
  if (size > 0) yield page();
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

/** Where a replay is written, and what it needs to know of its session. */
export interface ReplayTarget {
  outbox: Outbox;
  dialect: Dialect;
  /** The size of a page. */
  pageBytes: number;
  /** How long the client may read nothing of a replay before it is closed. */
  idleTimeoutMs: number;
  /** For logs. */
  remote: string;
  /** The account the waiting direct messages are for. */
  userId: number | undefined;
  dms: DirectMessages;
  closed(): boolean;
  close(): void;
}

/**
 * Writes a server-built reply page by page, each once the send queue has room for it, so that
 * no replay, however large, can exceed the queue and cut its own client off. A page that
 * carries waiting direct messages is waited for until written; only then are they forgotten,
 * so a connection lost mid-replay loses none. A client that reads nothing of a replay for the
 * idle timeout is closed.
 */
export async function writeReplay(items: readonly ReplayItem[], to: ReplayTarget): Promise<void> {
  const { outbox, userId, dms, pageBytes } = to;
  const waiting = items.flatMap((i) => i.type === "message" && i.offline ? [i.id] : []);
  const drain = async (): Promise<boolean> => {
    if (!(await settlesWithin(outbox.drained(), to.idleTimeoutMs))) {
      log.debug("Closing {remote}: it read nothing of a replay for {seconds} s", {
        remote: to.remote,
        seconds: to.idleTimeoutMs / 1000,
      });
      to.close();
      return false;
    }
    return !outbox.failed && !to.closed();
  };
  try {
    for (const page of replayPages(items, to.dialect, pageBytes)) {
      if (outbox.size > 0 && outbox.size + page.bytes.length > pageBytes) {
        if (!(await drain())) return;
      }
      if (to.closed() || !outbox.push(page.bytes)) return;
      if (page.waiting.length > 0 && userId !== undefined) {
        if (!(await drain())) return;
        await dms.delivered(userId, page.waiting);
      }
    }
  } finally {
    if (userId !== undefined) dms.release(userId, waiting);
  }
}
