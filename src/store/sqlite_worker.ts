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
 * - the worker posts `{ t: "ready" }` once it listens;
 * - `{ t: "open", path, options }` → `{ t: "opened", schemaVersion }` or `{ t: "failed", error }`;
 * - `{ t: "batch", ops }` → `{ t: "done", outcomes, stats, ms }`, posted after the batch's commit
 *   (see {@linkcode SqliteDatabase.execute}), preceded by `{ t: "part", outcomes }` for the first
 *   outcomes when they are many rows: each message is decoded on the main thread in one go, so
 *   answers come in parts of about 2,000 rows (about a millisecond each), between which the
 *   event loop runs;
 *
 * A batch and its answers cross as JSON text, not as objects: a string is copied in one piece,
 * where the structured clone of a batch of objects (and the walk `node:worker_threads` makes of
 * every message, looking for ports to transfer) cost 2.6 times as much (6.7 µs per operation
 * against 2.6 µs, batches of 60 direct messages). Arguments and answers are plain data (strings,
 * numbers, booleans, null, arrays and objects of them), which JSON keeps; an `undefined`
 * property is left out, which reads the same.
 * - `{ t: "close" }` → `{ t: "closed" }`.
 *
 * @module
 */

import { MAX_QUOTE, replyQuote } from "../protocol/frames.ts";
import { nameKey } from "../protocol/names.ts";
import { MIGRATIONS } from "./migrations.ts";
import { dmKey, SchemaTooNewError, SqliteDatabase } from "./sqlite_store.ts";
import type { EngineStats, ErrorData, Op, Outcome, SqliteOptions } from "./sqlite_store.ts";

/** What the main thread posts to the worker. */
export type WorkerRequest =
  | { t: "open"; path: string; options: SqliteOptions }
  | { t: "batch"; ops: Op[] }
  | { t: "close" };

/** A batch request as it crosses: its JSON text. */
export type BatchText = string & { readonly batch: unique symbol };

/** What the worker posts back. */
export type WorkerReply =
  | { t: "ready" }
  | { t: "opened"; schemaVersion: number }
  | { t: "failed"; error: ErrorData }
  | { t: "part"; outcomes: Outcome[] }
  | { t: "done"; outcomes: Outcome[]; stats: EngineStats; ms: number }
  | { t: "closed" };

/** The worker's end of the channel (`parentPort`). Batches and their answers are JSON text. */
export interface Port {
  on(event: "message", listener: (request: WorkerRequest | string) => void): unknown;
  postMessage(reply: WorkerReply | string): void;
}

/**
 * Serves requests on `port` with the engine class `engine`. It must use nothing but its
 * parameters and globals: the worker runs its source text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SqliteDatabase } from "./sqlite_store.ts";
 * import { serveWorker } from "./sqlite_worker.ts";
 * import type { Port, WorkerReply, WorkerRequest } from "./sqlite_worker.ts";
 * const replies: WorkerReply[] = [];
 * let send: (request: WorkerRequest | string) => void = () => {};
 * const port: Port = {
 *   on: (_event, listener) => (send = listener),
 *   postMessage: (r) => replies.push(typeof r === "string" ? JSON.parse(r) : r),
 * };
 * serveWorker(port, SqliteDatabase);
 * send({ t: "open", path: ":memory:", options: {} });
 * send(JSON.stringify({ t: "batch", ops: [{ op: "accounts.listUsers", args: [] }] }));
 * send({ t: "close" });
 * assert.deepEqual(replies.map((r) => r.t), ["ready", "opened", "done", "closed"]);
 * const done = replies[2];
 * assert.ok(done?.t === "done");
 * assert.deepEqual(done.outcomes, [{ ok: true, value: [] }]);
 * ```
 */
export function serveWorker(port: Port, engine: typeof SqliteDatabase): void {
  /** About how many rows one reply message carries. */
  const PART_ROWS = 2000;
  let db: SqliteDatabase | undefined;
  const answer = (outcomes: Outcome[], stats: EngineStats, start: number) => {
    let from = 0;
    let rows = 0;
    for (let i = 0; i + 1 < outcomes.length; i++) {
      const o = outcomes[i]!;
      rows += o.ok && Array.isArray(o.value) ? o.value.length + 1 : 1;
      if (rows < PART_ROWS) continue;
      port.postMessage(JSON.stringify({ t: "part", outcomes: outcomes.slice(from, i + 1) }));
      from = i + 1;
      rows = 0;
    }
    const rest = from === 0 ? outcomes : outcomes.slice(from);
    port.postMessage(
      JSON.stringify({ t: "done", outcomes: rest, stats, ms: performance.now() - start }),
    );
  };
  port.on("message", (message) => {
    try {
      const request: WorkerRequest = typeof message === "string" ? JSON.parse(message) : message;
      if (request.t === "open") {
        db = engine.open(request.path, request.options);
        port.postMessage({ t: "opened", schemaVersion: db.schemaVersion });
      } else if (request.t === "batch") {
        if (db === undefined) throw new Error("The store is not open");
        const start = performance.now();
        const outcomes = engine.settle(db.execute(request.ops));
        const stats = db.stats;
        if (Array.isArray(outcomes)) answer(outcomes, stats, start);
        else {
          // A backup: the next request comes only after this answer, so nothing interleaves.
          outcomes.then(
            (settled) => answer(settled, stats, start),
            (error) => port.postMessage({ t: "failed", error: engine.errorData(error) }),
          );
        }
      } else {
        db?.close();
        db = undefined;
        port.postMessage({ t: "closed" });
      }
    } catch (error) {
      port.postMessage({ t: "failed", error: engine.errorData(error) });
    }
  });
  port.postMessage({ t: "ready" });
}

/**
 * The worker's program: the engine's source and {@linkcode serveWorker}'s, with what they use,
 * as a classic script for a `node:worker_threads` worker started with `eval: true`.
 */
export function workerSource(): string {
  return `(async () => {
"use strict";
const { parentPort } = await import("node:worker_threads");
const { DatabaseSync, backup: sqliteBackup } = await import("node:sqlite");
const MIGRATIONS = ${JSON.stringify(MIGRATIONS)};
const nameKey = ${nameKey.toString()};
const MAX_QUOTE = ${MAX_QUOTE};
const replyQuote = ${replyQuote.toString()};
const dmKey = ${dmKey.toString()};
const SchemaTooNewError = ${SchemaTooNewError.toString()};
const SqliteDatabase = ${SqliteDatabase.toString()};
(${serveWorker.toString()})(parentPort, SqliteDatabase);
})();
`;
}
