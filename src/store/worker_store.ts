/**
 * The SQLite {@linkcode Store}: a thin main-thread front that sends operations to the database's
 * worker thread (`sqlite_worker.ts`, through shared memory) and settles their promises when the
 * answers come back.
 *
 * Group commit: every operation issued in the same event-loop turn goes to the worker in one
 * message (flushed by `setImmediate`, which runs after the turn's I/O callbacks), as one batch of
 * at most {@linkcode MAX_BATCH} operations. The worker runs a batch that writes in one transaction
 * (one fsync), each write in its own savepoint so that a failing operation fails alone, and
 * answers after the commit: a write's promise resolves only once it is durable. One batch is in
 * flight at a time; what arrives meanwhile waits for the next, which is how commits are shared
 * under load.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { Worker } from "node:worker_threads";
import type { MessageFrame } from "../protocol/frames.ts";
import { SchemaTooNewError } from "./sqlite_store.ts";
import type { ErrorData, Op, OpName, Outcome, SqliteOptions } from "./sqlite_store.ts";
import { MAILBOX, newMailbox, workerSource, writeText } from "./sqlite_worker.ts";
import type { Mailbox, WorkerReply, WorkerRequest } from "./sqlite_worker.ts";
import type {
  AccountStore,
  AdminEvent,
  AuditEntry,
  FileRecord,
  FileStore,
  FileUses,
  HistoryTarget,
  MembershipStore,
  MessageStore,
  ModerationStore,
  NewMessage,
  Placed,
  Restriction,
  RoomRecord,
  SearchScope,
  Store,
  StoredMessage,
  UnreadState,
  UserRecord,
} from "./store.ts";

export { SchemaTooNewError } from "./sqlite_store.ts";
export type { SqliteOptions, SyncMode } from "./sqlite_store.ts";

/** The most operations in one batch (one transaction). */
export const MAX_BATCH = 2000;

/** Counters of a {@linkcode SqliteWorkerStore}'s work (for tests and health checks). */
export interface StoreStats {
  /** Batches the worker executed. */
  readonly batches: number;
  /** Transactions it committed (one per batch that wrote). */
  readonly commits: number;
  /** Operations it executed. */
  readonly ops: number;
  /** Operations waiting for the next batch. */
  readonly queued: number;
  /** Operations in the batch the worker is executing. */
  readonly inFlight: number;
  /**
   * Milliseconds the main thread spent in the store's own code (queueing calls, writing batches
   * as JSON into the mailbox, reading the answers, settling promises), in total: divide by `ops`
   * for the cost per call.
   */
  readonly mainThreadMs: number;
  /** The longest the main thread spent in the store's code at one time, in ms. */
  readonly longestMainThreadMs: number;
  /** How many times the main thread ran the store's code (calls, sends, answers). */
  readonly slices: number;
  /** How many of those took over 5 ms (a garbage collection that lands in one counts). */
  readonly slicesOver5ms: number;
  /** Milliseconds the worker spent executing batches (queries, commits and fsyncs), in total. */
  readonly workerMs: number;
}

interface Waiting {
  op: Op;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * Opens the SQLite database at `path` (`:memory:` for a private in-memory one) on its own worker
 * thread, creating it and bringing its schema up to date if needed.
 *
 * @throws {SchemaTooNewError} when the database was written by a newer parley
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSqliteStore } from "./worker_store.ts";
 * await using store = await openSqliteStore(":memory:");
 * const alice = await store.accounts.createUser("alice", "$argon2id$…", Date.now());
 * assert.ok(alice);
 * assert.equal((await store.accounts.getUser("ALICE"))?.id, alice.id);
 * const placed = await store.messages.append({ room: "#general", from: "alice", text: "hi", ts: 0 });
 * assert.deepEqual(placed, { id: 1, seq: 1 });
 * assert.equal(store.stats.commits, 2);
 * ```
 */
export async function openSqliteStore(
  path: string,
  options: SqliteOptions = {},
): Promise<SqliteWorkerStore> {
  const mailbox = newMailbox();
  const worker = new Worker(workerSource(), {
    eval: true,
    name: "parley-store",
    workerData: mailbox,
  });
  const store = new SqliteWorkerStore(worker, mailbox);
  await store.open(path, options);
  return store;
}

/** A {@linkcode Store} whose SQLite database lives on a worker thread. */
export class SqliteWorkerStore implements Store {
  readonly accounts: AccountStore;
  readonly memberships: MembershipStore;
  readonly messages: MessageStore;
  readonly files: FileStore;
  readonly moderation: ModerationStore;

  readonly #worker: Worker;
  readonly #mailbox: Mailbox;
  readonly #counters: Int32Array;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();
  /** Requests sent, answers read. */
  #sent = 0;
  #read = 0;
  /** Whether an `Atomics.waitAsync` for the next answer is pending. */
  #listening = false;
  #queue: Waiting[] = [];
  #inFlight: Waiting[] | undefined;
  /** How many of the batch in flight were settled by `part` replies. */
  #partsSettled = 0;
  /** The open or close request waiting for its answer. */
  #control: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;
  #scheduled = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #failure: Error | undefined;
  #idle: (() => void)[] = [];
  #schemaVersion = 0;
  #stats = {
    batches: 0,
    commits: 0,
    ops: 0,
    mainThreadMs: 0,
    longestMainThreadMs: 0,
    slices: 0,
    slicesOver5ms: 0,
    workerMs: 0,
  };
  /** When the batch in flight was sent. */
  #sentAt = 0;
  /**
   * Told of each batch the worker answered: how many operations it held, and the milliseconds
   * from sending it to its answer (for the server's metrics). Must be cheap and must not throw.
   */
  onBatch: ((ops: number, ms: number) => void) | undefined;

  /** Use {@linkcode openSqliteStore}. */
  constructor(worker: Worker, mailbox: Mailbox) {
    this.#worker = worker;
    this.#mailbox = mailbox;
    this.#counters = new Int32Array(mailbox.control);
    worker.on("error", (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      this.#fail(new Error(`The store's worker failed: ${message}`, { cause: error }));
    });
    worker.on("exit", (code: number) => {
      // Its last answer may still be unread: the exit takes another road to this thread.
      this.#readAnswer();
      if (!this.#closing || this.#queue.length > 0 || this.#inFlight || this.#control) {
        this.#fail(new Error(`The store's worker exited (code ${code})`));
      }
    });
    const call = <T>(op: OpName) => (...args: unknown[]) => this.#call(op, args) as Promise<T>;
    this.accounts = {
      createUser: call<UserRecord | undefined>("accounts.createUser"),
      getUser: call<UserRecord | undefined>("accounts.getUser"),
      getUserById: call<UserRecord | undefined>("accounts.getUserById"),
      listUsers: call<UserRecord[]>("accounts.listUsers"),
      setPasswordHash: call<void>("accounts.setPasswordHash"),
      setDisabled: call<void>("accounts.setDisabled"),
      setAdmin: call<void>("accounts.setAdmin"),
      deleteUser: call<void>("accounts.deleteUser"),
      createSession: call<void>("accounts.createSession"),
      useSession: call<UserRecord | undefined>("accounts.useSession"),
      deleteSession: call<void>("accounts.deleteSession"),
      deleteSessionsOf: call<void>("accounts.deleteSessionsOf"),
    };
    this.memberships = {
      of: call<string[]>("memberships.of"),
      ofSession: call<string[]>("memberships.ofSession"),
      add: call<void>("memberships.add"),
      remove: call<void>("memberships.remove"),
    };
    this.messages = {
      append: call<Placed>("messages.append") as (message: NewMessage) => Promise<Placed>,
      history: call<MessageFrame[]>("messages.history") as (
        target: HistoryTarget,
        before: number | undefined,
        limit: number,
      ) => Promise<MessageFrame[]>,
      historyAfter: call<MessageFrame[]>("messages.historyAfter") as (
        target: HistoryTarget,
        after: number,
        limit: number,
      ) => Promise<MessageFrame[]>,
      pendingFor: call<MessageFrame[]>("messages.pendingFor"),
      removePending: call<void>("messages.removePending"),
      takePending: call<boolean>("messages.takePending"),
      addPending: call<void>("messages.addPending"),
      get: call<StoredMessage | undefined>("messages.get"),
      edit: call<void>("messages.edit"),
      remove: call<void>("messages.remove"),
      react: call<Record<string, number>>("messages.react"),
      search: call<MessageFrame[]>("messages.search") as (
        words: readonly string[],
        scope: SearchScope,
        limit: number,
      ) => Promise<MessageFrame[]>,
      index: call<number>("messages.index"),
      markRead: call<number>("messages.markRead"),
      unread: call<UnreadState>("messages.unread"),
    };
    this.files = {
      create: call<void>("files.create") as (file: FileRecord) => Promise<void>,
      get: call<FileRecord | undefined>("files.get"),
      uses: call<FileUses>("files.uses"),
      bytesOwnedBy: call<number>("files.bytesOwnedBy"),
      blobInUse: call<boolean>("files.blobInUse"),
      expire: call<string[]>("files.expire"),
    };
    this.moderation = {
      claimRoom: call<{ room: RoomRecord; created: boolean }>("moderation.claimRoom"),
      setTopic: call<void>("moderation.setTopic"),
      setModes: call<void>("moderation.setModes"),
      operators: call<number[]>("moderation.operators"),
      setOperator: call<void>("moderation.setOperator"),
      restrictions: call<Restriction[]>("moderation.restrictions"),
      restrict: call<void>("moderation.restrict"),
      unrestrict: call<boolean>("moderation.unrestrict"),
      invite: call<void>("moderation.invite"),
      takeInvite: call<boolean>("moderation.takeInvite"),
      audit: call<void>("moderation.audit"),
      auditLog: call<AuditEntry[]>("moderation.auditLog"),
      postAdminEvent: call<number>("moderation.postAdminEvent"),
      adminEventsAfter: call<AdminEvent[]>("moderation.adminEventsAfter"),
      lastAdminEvent: call<number>("moderation.lastAdminEvent"),
      backup: call<void>("moderation.backup"),
    };
  }

  /** The schema version of the open database. */
  get schemaVersion(): number {
    return this.#schemaVersion;
  }

  /** A snapshot of the counters. */
  get stats(): StoreStats {
    return {
      ...this.#stats,
      queued: this.#queue.length,
      inFlight: this.#inFlight?.length ?? 0,
    };
  }

  /** Opens the database in the worker (called once, by {@linkcode openSqliteStore}). */
  async open(path: string, options: SqliteOptions): Promise<void> {
    try {
      const reply = await this.#request({ t: "open", path, options: { ...options } });
      if (reply.t === "opened") this.#schemaVersion = reply.schemaVersion;
    } catch (error) {
      this.#closing = true;
      await this.#worker.terminate();
      throw error;
    } finally {
      this.#worker.unref();
    }
  }

  /** Finishes the queued work, closes the database and ends the worker. Later calls reject. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    try {
      await this.#settled();
      if (this.#failure === undefined) await this.#request({ t: "close" });
    } finally {
      await this.#worker.terminate();
    }
  }

  #request(request: WorkerRequest): Promise<WorkerReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const { promise, resolve, reject } = Promise.withResolvers<WorkerReply>();
    this.#control = { resolve, reject };
    this.#worker.ref();
    this.#send(JSON.stringify(request));
    return promise;
  }

  /** Writes a request's text into the mailbox and wakes the worker. */
  #send(text: string): void {
    const counters = this.#counters;
    Atomics.store(
      counters,
      MAILBOX.requestBytes,
      writeText(this.#encoder, this.#mailbox.requests, text),
    );
    Atomics.store(counters, MAILBOX.requests, ++this.#sent);
    Atomics.notify(counters, MAILBOX.requests);
    this.#listen();
  }

  /** Waits, without blocking, for the worker's next answer. */
  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    const next = Atomics.waitAsync(this.#counters, MAILBOX.replies, this.#read);
    // Already there (a part came while the last was handled): read it in the next turn.
    if (next.async) next.value.then(() => this.#receive());
    else setImmediate(() => this.#receive());
  }

  #receive(): void {
    this.#listening = false;
    this.#readAnswer();
    const expecting = this.#inFlight !== undefined || this.#control !== undefined;
    if (expecting && this.#failure === undefined) this.#listen();
  }

  /** Reads the worker's answer if one is unread, lets it write the next, and handles it. */
  #readAnswer(): void {
    const counters = this.#counters;
    if (Atomics.load(counters, MAILBOX.replies) <= this.#read || this.#failure !== undefined) {
      return;
    }
    const start = performance.now();
    const bytes = Atomics.load(counters, MAILBOX.replyBytes);
    const text = this.#decoder.decode(new Uint8Array(this.#mailbox.replies, 0, bytes));
    Atomics.store(counters, MAILBOX.read, ++this.#read);
    Atomics.notify(counters, MAILBOX.read);
    const reply = JSON.parse(text) as WorkerReply;
    this.#stats.mainThreadMs += performance.now() - start;
    this.#onReply(reply);
  }

  #call(op: OpName, args: unknown[]): Promise<unknown> {
    const start = performance.now();
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closing) return Promise.reject(new Error("The store is closed"));
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    // Batches cross as JSON: bytes (token hashes) as hex, which the engine reads back.
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (arg instanceof Uint8Array) args[i] = { hex: arg.toHex() };
    }
    this.#queue.push({ op: { op, args }, resolve, reject });
    this.#schedule();
    this.#spent(start);
    return promise;
  }

  /** Counts the main thread's time in the store since `start`. */
  #spent(start: number): void {
    const ms = performance.now() - start;
    const stats = this.#stats;
    stats.mainThreadMs += ms;
    stats.slices++;
    if (ms > 5) stats.slicesOver5ms++;
    if (ms > stats.longestMainThreadMs) stats.longestMainThreadMs = ms;
  }

  #schedule(): void {
    if (this.#inFlight !== undefined || this.#queue.length === 0) return;
    if (this.#queue.length >= MAX_BATCH) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        const start = performance.now();
        this.#flush();
        this.#spent(start);
      });
    }
  }

  #flush(): void {
    if (this.#inFlight !== undefined || this.#queue.length === 0 || this.#failure) return;
    const batch = this.#queue.length <= MAX_BATCH ? this.#queue : this.#queue.slice(0, MAX_BATCH);
    this.#queue = this.#queue.length <= MAX_BATCH ? [] : this.#queue.slice(MAX_BATCH);
    this.#inFlight = batch;
    this.#sentAt = performance.now();
    this.#worker.ref();
    try {
      const request: WorkerRequest = { t: "batch", ops: batch.map((w) => w.op) };
      this.#send(JSON.stringify(request));
    } catch (error) {
      // An argument JSON cannot write (a BigInt, a cycle) or a batch too large for the mailbox
      // fails its batch (synchronously, so nothing was sent).
      this.#inFlight = undefined;
      const failed = toError(error);
      for (const w of batch) w.reject(failed);
      this.#afterBatch();
    }
  }

  #onReply(reply: WorkerReply): void {
    if (reply.t === "part") {
      // The first outcomes of a large batch, in order (see sqlite_worker.ts).
      const start = performance.now();
      const batch = this.#inFlight ?? [];
      reply.outcomes.forEach((o, i) => settle(batch[this.#partsSettled + i]!, o));
      this.#partsSettled += reply.outcomes.length;
      this.#spent(start);
      return;
    }
    if (reply.t === "done") {
      const start = performance.now();
      const batch = (this.#inFlight ?? []).slice(this.#partsSettled);
      this.onBatch?.(this.#inFlight?.length ?? 0, start - this.#sentAt);
      this.#inFlight = undefined;
      this.#partsSettled = 0;
      this.#stats.batches = reply.stats.batches;
      this.#stats.commits = reply.stats.commits;
      this.#stats.ops = reply.stats.ops;
      this.#stats.workerMs += reply.ms;
      batch.forEach((w, i) => settle(w, reply.outcomes[i]));
      this.#afterBatch();
      this.#spent(start);
      return;
    }
    const control = this.#control;
    this.#control = undefined;
    if (reply.t === "failed") {
      const error = fromErrorData(reply.error);
      const batch = this.#inFlight?.slice(this.#partsSettled);
      if (batch !== undefined) {
        this.#inFlight = undefined;
        this.#partsSettled = 0;
        for (const w of batch) w.reject(error);
        this.#afterBatch();
      } else control?.reject(error);
    } else control?.resolve(reply);
  }

  #afterBatch(): void {
    if (this.#queue.length > 0) {
      // Let the settled callers' continuations queue their next operations first.
      this.#scheduled = false;
      this.#schedule();
      return;
    }
    if (this.#control === undefined) this.#worker.unref();
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves once nothing is queued or in flight. */
  #settled(): Promise<void> {
    if (this.#failure || (this.#queue.length === 0 && this.#inFlight === undefined)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    const waiting = [...(this.#inFlight ?? []), ...this.#queue];
    this.#inFlight = undefined;
    this.#queue = [];
    for (const w of waiting) w.reject(error);
    this.#control?.reject(error);
    this.#control = undefined;
    for (const resolve of this.#idle.splice(0)) resolve();
    this.#worker.unref();
  }
}

function settle(w: Waiting, outcome: Outcome | undefined): void {
  if (outcome === undefined) w.reject(new Error("The store's worker gave no answer"));
  else if (outcome.ok) w.resolve(outcome.value);
  else w.reject(fromErrorData(outcome.error));
}

/** Rebuilds an error that crossed from the worker: its class (when known), name and message. */
function fromErrorData(data: ErrorData): Error {
  if (data.name === "SchemaTooNewError" && data.found !== undefined && data.known !== undefined) {
    return new SchemaTooNewError(data.found, data.known);
  }
  // Deno's own errors (NotCapable, NotFound…) keep their class, so `instanceof` works.
  const classes = Deno.errors as unknown as Record<string, new (message: string) => Error>;
  const DenoError = Object.hasOwn(classes, data.name) ? classes[data.name] : undefined;
  const error = DenoError === undefined ? new Error(data.message) : new DenoError(data.message);
  if (data.name !== "Error") error.name = data.name;
  const extra = error as Error & Partial<ErrorData>;
  if (data.code !== undefined) extra.code = data.code;
  if (data.errcode !== undefined) extra.errcode = data.errcode;
  if (data.errstr !== undefined) extra.errstr = data.errstr;
  return error;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
