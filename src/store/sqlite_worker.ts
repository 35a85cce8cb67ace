/**
 * The SQLite store's worker thread: it owns the database (one writer) and executes the batches
 * the main thread posts, so that no query and no fsync ever blocks the event loop.
 *
 * The worker runs {@linkcode workerSource}: the source text of the engine and of
 * {@linkcode serveWorker}, evaluated in a `node:worker_threads` worker. Starting it that way reads
 * no source file, so it works under the server's narrow permissions (read and write the data
 * folder only) and in a compiled binary, where a worker loaded from a module file would need
 * permission to read that file and every module it imports. (`node:worker_threads` rather than a
 * web `Worker` because only it can be unref'd: an idle store never keeps a finished process
 * alive.) The worker inherits the process's permissions.
 *
 * The protocol, one request in flight at a time, answered in order:
 *
 * - `{ t: "open", path, options }` → `{ t: "opened", schemaVersion }` or `{ t: "failed", error }`;
 * - `{ t: "batch", ops }` → `{ t: "done", outcomes, stats, ms }`, sent after the batch's commit
 *   (see {@linkcode SqliteDatabase.execute}), preceded by `{ t: "part", outcomes }` for the first
 *   outcomes when they are many rows: each message is decoded on the main thread in one go, so
 *   answers come in parts of about 2,000 rows (about a millisecond each), between which the
 *   event loop runs;
 * - `{ t: "close" }` → `{ t: "closed" }`.
 *
 * Requests and answers cross as JSON text through a {@linkcode Mailbox}: two growable
 * `SharedArrayBuffer`s (one for the request, one for an answer) and a few counters, with
 * `Atomics.notify` to wake the other side. The worker sleeps in `Atomics.wait` until a request
 * comes (the thread has nothing else to do; while a backup runs it awaits it, so its event loop
 * turns); the main thread waits with `Atomics.waitAsync`, never blocking. This replaced
 * `postMessage` (a string copied in one piece through `node:worker_threads`), which cost the two
 * threads about twice as much CPU per round trip (80–97 µs against 40–54, one core, one direct
 * message's batch; docs/benchmarks.md): at low rates every message is a batch of its own. The
 * worker writes an answer only once the main thread has read the one before, so at most one is
 * unread at any time, and the worker's `exit` (which reaches the main thread by another road) may
 * come before it: the main thread reads what is left before it takes an exit for a crash.
 * Arguments and answers are plain data (strings, numbers, booleans, null, arrays and objects of
 * them), which JSON keeps; an `undefined` property is left out, which reads the same.
 *
 * @module
 */

import { MAX_QUOTE, replyQuote } from "../protocol/frames.ts";
import { nameKey } from "../protocol/names.ts";
import { MIGRATIONS } from "./migrations.ts";
import { dmKey, SchemaTooNewError, SqliteDatabase } from "./sqlite_store.ts";
import type { EngineStats, ErrorData, Op, Outcome, SqliteOptions } from "./sqlite_store.ts";

/** What the main thread sends the worker (as JSON text). */
export type WorkerRequest =
  | { t: "open"; path: string; options: SqliteOptions }
  | { t: "batch"; ops: Op[] }
  | { t: "close" };

/** What the worker answers (as JSON text). */
export type WorkerReply =
  | { t: "opened"; schemaVersion: number }
  | { t: "failed"; error: ErrorData }
  | { t: "part"; outcomes: Outcome[] }
  | { t: "done"; outcomes: Outcome[]; stats: EngineStats; ms: number }
  | { t: "closed" };

/**
 * The memory the two threads share: `control` holds the {@linkcode MAILBOX} counters, `requests`
 * the text of the request, `replies` that of one answer (UTF-8 JSON). Both text buffers are
 * growable `SharedArrayBuffer`s: the writer grows one to fit.
 */
export interface Mailbox {
  control: SharedArrayBuffer;
  requests: SharedArrayBuffer;
  replies: SharedArrayBuffer;
}

/**
 * The slots of a {@linkcode Mailbox}'s `control` (an `Int32Array`): the number of requests sent
 * and the byte length of the last; the number of answers sent and the byte length of the last;
 * the number of answers the main thread has read (the worker writes the next only after that).
 */
export const MAILBOX = {
  requests: 0,
  requestBytes: 1,
  replies: 2,
  replyBytes: 3,
  read: 4,
} as const;

/** The most bytes one request or answer may take. */
export const MAX_MESSAGE_BYTES = 1 << 30;

/** A new {@linkcode Mailbox}. */
export function newMailbox(): Mailbox {
  const text = () => new SharedArrayBuffer(64 * 1024, { maxByteLength: MAX_MESSAGE_BYTES });
  return { control: new SharedArrayBuffer(4 * 5), requests: text(), replies: text() };
}

/**
 * Writes `text` as UTF-8 at the start of `buffer` with `encoder`, growing it when it is too
 * small. (It uses nothing but its parameters: the worker runs its source text.)
 *
 * @returns the byte length written
 * @throws {RangeError} past {@linkcode MAX_MESSAGE_BYTES}
 */
export function writeText(
  encoder: TextEncoder,
  buffer: SharedArrayBuffer,
  text: string,
): number {
  let done = encoder.encodeInto(text, new Uint8Array(buffer));
  if (done.read < text.length) {
    // UTF-8 takes at most three bytes per UTF-16 unit.
    const need = Math.min(buffer.maxByteLength, Math.max(2 * buffer.byteLength, 3 * text.length));
    buffer.grow(need);
    done = encoder.encodeInto(text, new Uint8Array(buffer));
    if (done.read < text.length) {
      throw new RangeError(`Cannot pass ${text.length} characters between the store's threads`);
    }
  }
  return done.written;
}

/** The worker's end of its {@linkcode Mailbox}. */
export interface Channel {
  /** The next request's text (the worker's thread sleeps until it comes). */
  receive(): string;
  /** Sends one answer's text, once the main thread has read the one before. */
  send(reply: string): void;
}

/** The worker's {@linkcode Channel} on `mailbox`. */
export function mailboxChannel(mailbox: Mailbox): Channel {
  const control = new Int32Array(mailbox.control);
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let received = 0;
  let sent = 0;
  return {
    receive() {
      Atomics.wait(control, MAILBOX.requests, received);
      received = Atomics.load(control, MAILBOX.requests);
      const bytes = Atomics.load(control, MAILBOX.requestBytes);
      return decoder.decode(new Uint8Array(mailbox.requests, 0, bytes));
    },
    send(reply) {
      // The main thread reads each answer before the next overwrites it.
      while (Atomics.load(control, MAILBOX.read) < sent) {
        Atomics.wait(control, MAILBOX.read, sent - 1);
      }
      Atomics.store(control, MAILBOX.replyBytes, writeText(encoder, mailbox.replies, reply));
      Atomics.store(control, MAILBOX.replies, ++sent);
      Atomics.notify(control, MAILBOX.replies);
    },
  };
}

/**
 * Serves requests from `channel` with the engine class `engine` until a `close`. It must use
 * nothing but its parameters and globals: the worker runs its source text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SqliteDatabase } from "./sqlite_store.ts";
 * import { serveWorker } from "./sqlite_worker.ts";
 * import type { Channel, WorkerReply } from "./sqlite_worker.ts";
 * const requests = [
 *   { t: "open", path: ":memory:", options: {} },
 *   { t: "batch", ops: [{ op: "accounts.listUsers", args: [] }] },
 *   { t: "close" },
 * ];
 * const replies: WorkerReply[] = [];
 * const channel: Channel = {
 *   receive: () => JSON.stringify(requests.shift()),
 *   send: (reply) => replies.push(JSON.parse(reply)),
 * };
 * await serveWorker(channel, SqliteDatabase);
 * assert.deepEqual(replies.map((r) => r.t), ["opened", "done", "closed"]);
 * const done = replies[1];
 * assert.ok(done?.t === "done");
 * assert.deepEqual(done.outcomes, [{ ok: true, value: [] }]);
 * ```
 */
export async function serveWorker(channel: Channel, engine: typeof SqliteDatabase): Promise<void> {
  /** About how many rows one answer carries. */
  const PART_ROWS = 2000;
  let db: SqliteDatabase | undefined;
  const answer = (outcomes: Outcome[], stats: EngineStats, start: number) => {
    let from = 0;
    let rows = 0;
    for (let i = 0; i + 1 < outcomes.length; i++) {
      const o = outcomes[i]!;
      rows += o.ok && Array.isArray(o.value) ? o.value.length + 1 : 1;
      if (rows < PART_ROWS) continue;
      channel.send(JSON.stringify({ t: "part", outcomes: outcomes.slice(from, i + 1) }));
      from = i + 1;
      rows = 0;
    }
    const rest = from === 0 ? outcomes : outcomes.slice(from);
    channel.send(
      JSON.stringify({ t: "done", outcomes: rest, stats, ms: performance.now() - start }),
    );
  };
  for (;;) {
    try {
      const request = JSON.parse(channel.receive()) as WorkerRequest;
      if (request.t === "open") {
        db = engine.open(request.path, request.options);
        channel.send(JSON.stringify({ t: "opened", schemaVersion: db.schemaVersion }));
      } else if (request.t === "batch") {
        if (db === undefined) throw new Error("The store is not open");
        const start = performance.now();
        const outcomes = engine.settle(db.execute(request.ops));
        const stats = db.stats;
        // A backup's outcomes come later: the event loop turns while it runs.
        answer(Array.isArray(outcomes) ? outcomes : await outcomes, stats, start);
      } else {
        db?.close();
        db = undefined;
        channel.send(JSON.stringify({ t: "closed" }));
        return;
      }
    } catch (error) {
      channel.send(JSON.stringify({ t: "failed", error: engine.errorData(error) }));
    }
  }
}

/**
 * The worker's program: the engine's source and {@linkcode serveWorker}'s, with what they use,
 * as a classic script for a `node:worker_threads` worker started with `eval: true`.
 */
export function workerSource(): string {
  return `(async () => {
"use strict";
const { workerData } = await import("node:worker_threads");
const { DatabaseSync, backup: sqliteBackup } = await import("node:sqlite");
const MIGRATIONS = ${JSON.stringify(MIGRATIONS)};
const nameKey = ${nameKey.toString()};
const MAX_QUOTE = ${MAX_QUOTE};
const replyQuote = ${replyQuote.toString()};
const dmKey = ${dmKey.toString()};
const SchemaTooNewError = ${SchemaTooNewError.toString()};
const SqliteDatabase = ${SqliteDatabase.toString()};
const MAILBOX = ${JSON.stringify(MAILBOX)};
const writeText = ${writeText.toString()};
const mailboxChannel = ${mailboxChannel.toString()};
await (${serveWorker.toString()})(mailboxChannel(workerData), SqliteDatabase);
})();
`;
}
