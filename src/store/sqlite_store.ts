/**
 * The SQLite engine: one database through `node:sqlite`, in WAL mode, with versioned
 * migrations. It is synchronous, so the server never calls it on the main thread: it runs on the
 * store's worker thread (see `sqlite_worker.ts`), which hands it whole batches of operations
 * ({@linkcode SqliteDatabase.execute}) and commits each batch once. Tests use it directly.
 *
 * Everything {@linkcode SqliteDatabase} needs at run time is the class itself, {@linkcode dmKey},
 * `nameKey`, `MIGRATIONS`, {@linkcode SchemaTooNewError}, `DatabaseSync` and `sqliteBackup`
 * (`node:sqlite`'s `backup`), besides globals such as `Deno`: the worker is built from their
 * source text (so that starting it needs no permission to read source files). Keep it that way:
 * no other module-level names in the class body, no `using` (it compiles to helpers).
 *
 * @module
 */

import { backup as sqliteBackup, DatabaseSync } from "node:sqlite";
import type { SQLInputValue, StatementSync } from "node:sqlite";
import type { FileRef, MessageFrame } from "../protocol/frames.ts";
import { replyQuote } from "../protocol/frames.ts";
import { nameKey } from "../protocol/names.ts";
import { MIGRATIONS } from "./migrations.ts";
import type {
  AdminEvent,
  AuditEntry,
  FileRecord,
  FileUses,
  HistoryTarget,
  NewMessage,
  Placed,
  ReadPlace,
  Restriction,
  RoomRecord,
  SearchScope,
  StoredMessage,
  Target,
  UnreadState,
  UserRecord,
} from "./store.ts";

/** How hard SQLite works to make a commit survive: `full` survives power loss. */
export type SyncMode = "full" | "normal";

/** Options for opening a SQLite store. */
export interface SqliteOptions {
  /** `full` (default): an acknowledged write survives power loss; `normal`: a crash only. */
  sync?: SyncMode;
}

/** The database is from a newer parley than this one. */
export class SchemaTooNewError extends Error {
  /** The database's schema version. */
  readonly found: number;
  /** The newest schema version this build knows. */
  readonly known: number;

  /**
   * @param found the database's schema version
   * @param known the newest version this build knows
   */
  constructor(found: number, known: number) {
    super(
      `Cannot open the database: its schema version ${found} is newer than this parley's (${known}); ` +
        `upgrade parley or use another --data folder`,
    );
    this.name = "SchemaTooNewError";
    this.found = found;
    this.known = known;
  }
}

/**
 * The key under which the direct messages between two names are stored together (and numbered):
 * both names' keys, sorted, joined by a space.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dmKey } from "./sqlite_store.ts";
 * assert.equal(dmKey("Bob", "alice"), "alice bob");
 * assert.equal(dmKey("alice", "BOB"), dmKey("bob", "Alice"));
 * ```
 */
export function dmKey(a: string, b: string): string {
  const [x, y] = [nameKey(a), nameKey(b)].sort();
  return `${x} ${y}`;
}

/** The operations of a batch, named after the {@linkcode Store} part and method they serve. */
export type OpName =
  | "accounts.createUser"
  | "accounts.getUser"
  | "accounts.getUserById"
  | "accounts.listUsers"
  | "accounts.setPasswordHash"
  | "accounts.setDisabled"
  | "accounts.setAdmin"
  | "accounts.deleteUser"
  | "accounts.createSession"
  | "accounts.useSession"
  | "accounts.deleteSession"
  | "accounts.deleteSessionsOf"
  | "memberships.of"
  | "memberships.ofSession"
  | "memberships.add"
  | "memberships.remove"
  | "messages.append"
  | "messages.history"
  | "messages.historyAfter"
  | "messages.pendingFor"
  | "messages.removePending"
  | "messages.takePending"
  | "messages.addPending"
  | "messages.get"
  | "messages.edit"
  | "messages.remove"
  | "messages.react"
  | "messages.search"
  | "messages.index"
  | "messages.markRead"
  | "messages.unread"
  | "files.create"
  | "files.get"
  | "files.uses"
  | "files.bytesOwnedBy"
  | "files.blobInUse"
  | "files.expire"
  | "moderation.claimRoom"
  | "moderation.setTopic"
  | "moderation.setModes"
  | "moderation.operators"
  | "moderation.setOperator"
  | "moderation.restrictions"
  | "moderation.restrict"
  | "moderation.unrestrict"
  | "moderation.invite"
  | "moderation.takeInvite"
  | "moderation.audit"
  | "moderation.auditLog"
  | "moderation.postAdminEvent"
  | "moderation.adminEventsAfter"
  | "moderation.lastAdminEvent"
  | "moderation.backup";

/** One operation of a batch: its name and its arguments (structured-cloneable). */
export interface Op {
  op: OpName;
  args: unknown[];
}

/** An error as it crosses from the worker: enough to rebuild it on the other side. */
export interface ErrorData {
  name: string;
  message: string;
  /** `node:sqlite`'s error code (`ERR_SQLITE_ERROR`). */
  code?: string;
  /** SQLite's extended result code (e.g. 787 for a foreign key violation). */
  errcode?: number;
  errstr?: string;
  /** {@linkcode SchemaTooNewError}'s versions. */
  found?: number;
  known?: number;
}

/**
 * How one operation of a batch ended. A backup's value is a promise until
 * {@linkcode SqliteDatabase.settle} waits for it.
 */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: ErrorData };

/** Counters of an engine's work. */
export interface EngineStats {
  /** Batches executed. */
  batches: number;
  /** Transactions committed (one per batch that wrote). */
  commits: number;
  /** Operations executed. */
  ops: number;
}

interface UserRow {
  id: number;
  name: string;
  password_hash: string;
  created: number;
  disabled: number;
  admin: number;
}

interface RoomRow {
  name: string;
  owner_id: number | null;
  topic: string | null;
  topic_by: string | null;
  invite_only: number;
  moderated: number;
}

interface RestrictionRow {
  kind: Restriction["kind"];
  user_id: number | null;
  name_key: string | null;
  ip: string | null;
  by_name: string;
  reason: string | null;
  ts: number;
}

interface AuditRow {
  id: number;
  ts: number;
  actor: string;
  action: string;
  room: string | null;
  target: string | null;
  detail: string | null;
}

interface MessageRow {
  id: number;
  room: string | null;
  from_name: string;
  to_name: string | null;
  text: string;
  action: number;
  ts: number;
  file_json: string | null;
  reply_to: number | null;
  edited: number | null;
  deleted: number;
}

interface FileRow {
  id: string;
  sha256: string;
  size: number;
  name: string;
  type: string;
  owner_id: number;
  created: number;
}

/**
 * One SQLite database, operated synchronously in batches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SqliteDatabase } from "./sqlite_store.ts";
 * const db = SqliteDatabase.open(":memory:");
 * const [created, placed, again] = db.execute([
 *   { op: "accounts.createUser", args: ["alice", "$argon2id$…", 0] },
 *   { op: "messages.append", args: [{ room: "#general", from: "alice", text: "hi", ts: 0 }] },
 *   { op: "messages.append", args: [{ room: "#general", from: "alice", text: "hi", ts: 1 }] },
 * ]);
 * assert.equal(created?.ok, true);
 * assert.deepEqual(placed, { ok: true, value: { id: 1, seq: 1 } });
 * assert.deepEqual(again, { ok: true, value: { id: 2, seq: 2 } });
 * assert.equal(db.stats.commits, 1, "one batch, one commit");
 * db.close();
 * ```
 */
export class SqliteDatabase {
  /** Operations that may write: a batch holding one runs in a transaction, each in a savepoint. */
  static readonly WRITES: ReadonlySet<string> = new Set([
    "accounts.createUser",
    "accounts.setPasswordHash",
    "accounts.setDisabled",
    "accounts.setAdmin",
    "accounts.deleteUser",
    "accounts.createSession",
    "accounts.useSession",
    "accounts.deleteSession",
    "accounts.deleteSessionsOf",
    "memberships.add",
    "memberships.remove",
    "messages.append",
    "messages.removePending",
    "messages.takePending",
    "messages.addPending",
    "messages.edit",
    "messages.remove",
    "messages.search", // it indexes what was stored since the indexer last ran
    "messages.index",
    "messages.markRead",
    "messages.react",
    "files.create",
    "files.expire",
    "moderation.claimRoom",
    "moderation.setTopic",
    "moderation.setModes",
    "moderation.setOperator",
    "moderation.restrict",
    "moderation.unrestrict",
    "moderation.invite",
    "moderation.takeInvite",
    "moderation.audit",
    "moderation.postAdminEvent",
  ]);

  /**
   * `moderation.backup` copies the database with SQLite's online backup API, which must not run
   * inside the batch's transaction: a batch is split around it, the operations before it
   * committed first.
   */
  static readonly BACKUP = "moderation.backup";

  /** A session token's expiry is pushed back only when it would move by more than this. */
  static readonly SESSION_EXTEND_STEP = 24 * 3600 * 1000;

  static readonly HISTORY_ROOM = `SELECT m.id, r.name AS room, m.from_name, m.to_name, m.text,
      m.action, m.ts, m.file_json, m.reply_to, m.edited, m.deleted
    FROM messages m JOIN rooms r ON r.id = m.room_id
    WHERE m.room_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?`;
  static readonly HISTORY_DM = `SELECT id, NULL AS room, from_name, to_name, text, action, ts,
      file_json, reply_to, edited, deleted
    FROM messages WHERE dm_key = ? AND id < ? ORDER BY id DESC LIMIT ?`;
  static readonly HISTORY_ROOM_AFTER = `SELECT m.id, r.name AS room, m.from_name, m.to_name,
      m.text, m.action, m.ts, m.file_json, m.reply_to, m.edited, m.deleted
    FROM messages m JOIN rooms r ON r.id = m.room_id
    WHERE m.room_id = ? AND m.id > ? ORDER BY m.id LIMIT ?`;
  static readonly HISTORY_DM_AFTER = `SELECT id, NULL AS room, from_name, to_name, text, action,
      ts, file_json, reply_to, edited, deleted
    FROM messages WHERE dm_key = ? AND id > ? ORDER BY id LIMIT ?`;
  static readonly PENDING = `SELECT m.id, NULL AS room, m.from_name, m.to_name, m.text, m.action,
      m.ts, m.file_json, m.reply_to, m.edited, m.deleted
    FROM pending_dms p JOIN messages m ON m.id = p.message_id
    WHERE p.user_id = ? ORDER BY m.id`;
  static readonly GET = `SELECT m.id, r.name AS room, m.from_name, m.to_name, m.text, m.action,
      m.ts, m.file_json, m.reply_to, m.edited, m.deleted, m.from_account
    FROM messages m LEFT JOIN rooms r ON r.id = m.room_id WHERE m.id = ?`;
  /** The messages a page's replies answer (a JSON array of ids), for their quotes. */
  static readonly QUOTED = `SELECT id, from_name, text, deleted FROM messages
    WHERE id IN (SELECT value FROM json_each(?))`;
  /** The reactions of a page of messages (a JSON array of ids), counted per emoji. */
  static readonly REACTIONS = `SELECT message_id, emoji, count(*) AS n FROM message_reactions
    WHERE message_id IN (SELECT value FROM json_each(?)) GROUP BY message_id, emoji`;
  /**
   * Full-text search, newest first: the index yields matches in descending id order (the
   * `CROSS JOIN` keeps it the outer loop, so no sort and the scan stops at the limit), each
   * looked up by id and kept when in scope: ?1 the MATCH expression, ?2 a JSON array of room
   * ids, ?3 the name key whose direct messages count (or null), ?4 the limit. A pair's `dm_key`
   * is its two name keys, sorted, joined by a space (names have none): the name matches one side
   * exactly.
   */
  static readonly SEARCH = `SELECT m.id, r.name AS room, m.from_name, m.to_name, m.text, m.action,
      m.ts, m.file_json, m.reply_to, m.edited, m.deleted
    FROM messages_fts f CROSS JOIN messages m ON m.id = f.rowid
      LEFT JOIN rooms r ON r.id = m.room_id
    WHERE messages_fts MATCH ?1 AND m.deleted = 0
      AND (m.room_id IN (SELECT value FROM json_each(?2))
        OR (?3 IS NOT NULL AND m.room_id IS NULL
          AND (substr(m.dm_key, 1, length(?3) + 1) = ?3 || ' '
            OR substr(m.dm_key, -length(?3) - 1) = ' ' || ?3)))
    ORDER BY f.rowid DESC LIMIT ?4`;
  static readonly FTS_INSERT = "INSERT INTO messages_fts (rowid, text) VALUES (?, ?)";
  /** How many unindexed messages a search indexes first. */
  static readonly SEARCH_CATCH_UP = 5000;
  static readonly FTS_DELETE = "DELETE FROM messages_fts WHERE rowid = ?";
  // The id is the INTEGER PRIMARY KEY (one more than the highest); the sequence number is one
  // more than that of the room's or pair's latest message (the highest id, found through the
  // (room_id, id) or (dm_key, id) index: ids and sequence numbers grow together). Both are
  // assigned inside the batch's write transaction, which SQLite gives one writer at a time, so
  // two processes sharing the database cannot hand out the same ones.
  static readonly APPEND_ROOM = `INSERT INTO messages (room_id, dm_key, from_name, to_name, text,
      action, ts, file_id, file_json, reply_to, from_account, seq)
    VALUES (?, NULL, ?, NULL, ?, ?, ?, ?, ?, ?, ?,
      coalesce((SELECT seq FROM messages WHERE room_id = ? ORDER BY id DESC LIMIT 1), 0) + 1)
    RETURNING id, seq`;
  static readonly APPEND_DM = `INSERT INTO messages (room_id, dm_key, from_name, to_name, text,
      action, ts, file_id, file_json, reply_to, from_account, seq)
    VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
      coalesce((SELECT seq FROM messages WHERE dm_key = ? ORDER BY id DESC LIMIT 1), 0) + 1)
    RETURNING id, seq`;
  /** A pair's latest direct message. */
  static readonly LAST_DM = "SELECT id FROM messages WHERE dm_key = ? ORDER BY id DESC LIMIT 1";
  static readonly INSERT_PENDING = "INSERT INTO pending_dms (user_id, message_id) VALUES (?, ?)";
  static readonly RESTRICTIONS = `SELECT kind, user_id, name_key, ip, by_name, reason, ts
    FROM room_restrictions WHERE room_id = ? ORDER BY id`;
  static readonly AUDIT_LOG = "SELECT * FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?";
  static readonly ADMIN_EVENTS = `SELECT id, ts, kind, user_id, name FROM admin_events
    WHERE id > ? ORDER BY id`;

  readonly #db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #roomIds = new Map<string, number>();
  /**
   * Pairs of names whose two `dm_partners` rows exist (rows are never deleted), so that a
   * conversation's later messages skip writing them. Emptied with `#roomIds` when a transaction
   * is undone, and when it grows past {@linkcode SqliteDatabase.KNOWN_PAIRS}.
   */
  readonly #pairs = new Set<string>();
  static readonly KNOWN_PAIRS = 50_000;
  readonly #stats: EngineStats = { batches: 0, commits: 0, ops: 0 };

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Opens (creating if needed) the database at `path` (or `:memory:`) and brings its schema up
   * to date.
   *
   * @throws {SchemaTooNewError} when the database was written by a newer parley
   */
  static open(path: string, options: SqliteOptions = {}): SqliteDatabase {
    const db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${options.sync === "normal" ? "NORMAL" : "FULL"}`);
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA foreign_keys = ON");
      SqliteDatabase.#migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteDatabase(db);
  }

  /** The schema version of the open database. */
  get schemaVersion(): number {
    return SqliteDatabase.#userVersion(this.#db);
  }

  /** A copy of the counters. */
  get stats(): EngineStats {
    return { ...this.#stats };
  }

  /**
   * Runs `EXPLAIN QUERY PLAN` for the history, pending, append, restrictions, audit log,
   * administrators' feed, get, reactions and search queries (tests prove indexes).
   */
  explain(): string[] {
    const queries: [string, SQLInputValue[]][] = [
      [SqliteDatabase.HISTORY_ROOM, [1, 1, 1]],
      [SqliteDatabase.HISTORY_DM, ["a b", 1, 1]],
      [SqliteDatabase.HISTORY_ROOM_AFTER, [1, 1, 1]],
      [SqliteDatabase.HISTORY_DM_AFTER, ["a b", 1, 1]],
      [SqliteDatabase.PENDING, [1]],
      ["SELECT seq FROM messages WHERE room_id = ? ORDER BY id DESC LIMIT 1", [1]],
      ["SELECT seq FROM messages WHERE dm_key = ? ORDER BY id DESC LIMIT 1", ["a b"]],
      [SqliteDatabase.LAST_DM, ["a b"]],
      [SqliteDatabase.RESTRICTIONS, [1]],
      [SqliteDatabase.AUDIT_LOG, [1, 1]],
      [SqliteDatabase.ADMIN_EVENTS, [1]],
      [SqliteDatabase.GET, [1]],
      [SqliteDatabase.REACTIONS, ["[1,2]"]],
      [SqliteDatabase.QUOTED, ["[1,2]"]],
      [SqliteDatabase.SEARCH, ['"a"*', "[1,2]", "a", 10]],
    ];
    return queries.map(([sql, params]) =>
      (this.#db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[])
        .map((r) => r.detail).join("; ")
    );
  }

  /**
   * Executes a batch. A batch holding any write runs in one transaction (`BEGIN IMMEDIATE` …
   * `COMMIT`: one fsync for all of it), each write in its own savepoint, so that a failing
   * operation undoes only itself and fails alone. Operations run in order, so a read sees the
   * writes before it. When the commit itself fails, every operation fails with its error. A
   * backup splits the batch: what comes before it is committed first, and it copies that. Its
   * outcome's value is a promise: pass the outcomes to {@linkcode SqliteDatabase.settle}.
   *
   * @returns one outcome per operation, in order
   */
  execute(ops: readonly Op[]): Outcome[] {
    this.#stats.batches++;
    this.#stats.ops += ops.length;
    if (!ops.some((o) => o.op === SqliteDatabase.BACKUP)) return this.#executeRun(ops);
    const outcomes: Outcome[] = [];
    let from = 0;
    for (let i = 0; i <= ops.length; i++) {
      if (i < ops.length && ops[i]!.op !== SqliteDatabase.BACKUP) continue;
      if (i > from) outcomes.push(...this.#executeRun(ops.slice(from, i)));
      if (i < ops.length) outcomes.push(this.#attempt(ops[i]!));
      from = i + 1;
    }
    return outcomes;
  }

  /**
   * Executes operations of which none is a backup: see {@linkcode SqliteDatabase.execute}. The
   * batch first runs without savepoints (nearly every batch succeeds whole, and a savepoint per
   * write costs a tenth of an insert); when a write fails, the whole transaction is undone and the
   * batch runs again with a savepoint per write, so only the failing one fails.
   */
  #executeRun(ops: readonly Op[]): Outcome[] {
    const writes = ops.some((o) => SqliteDatabase.WRITES.has(o.op));
    if (!writes) return ops.map((o) => this.#attempt(o));
    return this.#transaction(ops, false) ?? this.#transaction(ops, true)!;
  }

  /**
   * One transaction over `ops`. Without `isolate`, a failing write undoes everything and answers
   * undefined; with it, each write runs in its own savepoint.
   */
  #transaction(ops: readonly Op[], isolate: boolean): Outcome[] | undefined {
    try {
      this.#db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      const failed: Outcome = { ok: false, error: SqliteDatabase.errorData(error) };
      return ops.map(() => failed);
    }
    const outcomes: Outcome[] = [];
    try {
      for (const o of ops) {
        if (!SqliteDatabase.WRITES.has(o.op)) {
          outcomes.push(this.#attempt(o));
          continue;
        }
        if (!isolate) {
          const outcome = this.#attempt(o);
          if (!outcome.ok) {
            this.#db.exec("ROLLBACK");
            this.#forget(); // rooms and pairs written in the undone transaction are gone again
            return undefined;
          }
          outcomes.push(outcome);
          continue;
        }
        this.#db.exec("SAVEPOINT op");
        const outcome = this.#attempt(o);
        if (!outcome.ok) {
          this.#db.exec("ROLLBACK TO op");
          // A room or a pair written by the undone operation is gone again.
          this.#forget();
        }
        this.#db.exec("RELEASE op");
        outcomes.push(outcome);
      }
      this.#db.exec("COMMIT");
      this.#stats.commits++;
      return outcomes;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      this.#forget();
      const failed: Outcome = { ok: false, error: SqliteDatabase.errorData(error) };
      return ops.map(() => failed);
    }
  }

  /** Forgets what was learnt of rooms' ids and known pairs (after a rollback). */
  #forget(): void {
    this.#roomIds.clear();
    this.#pairs.clear();
  }

  /**
   * Waits for the outcomes whose value is a promise (backups), making a rejected one a failure.
   * Returns `outcomes` itself when none is.
   */
  static settle(outcomes: Outcome[]): Outcome[] | Promise<Outcome[]> {
    if (!outcomes.some((o) => o.ok && o.value instanceof Promise)) return outcomes;
    return Promise.all(outcomes.map(async (o): Promise<Outcome> => {
      if (!o.ok || !(o.value instanceof Promise)) return o;
      try {
        return { ok: true, value: await o.value };
      } catch (error) {
        return { ok: false, error: SqliteDatabase.errorData(error) };
      }
    }));
  }

  /** Closes the database. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** What crosses from the worker for an error. */
  static errorData(error: unknown): ErrorData {
    if (!(error instanceof Error)) return { name: "Error", message: String(error) };
    const data: ErrorData = { name: error.name, message: error.message };
    const extra = error as Error & Partial<Omit<ErrorData, "name" | "message">>;
    if (typeof extra.code === "string") data.code = extra.code;
    if (typeof extra.errcode === "number") data.errcode = extra.errcode;
    if (typeof extra.errstr === "string") data.errstr = extra.errstr;
    if (typeof extra.found === "number") data.found = extra.found;
    if (typeof extra.known === "number") data.known = extra.known;
    return data;
  }

  #attempt(o: Op): Outcome {
    try {
      return { ok: true, value: this.#call(o) };
    } catch (error) {
      return { ok: false, error: SqliteDatabase.errorData(error) };
    }
  }

  #call({ op, args: a }: Op): unknown {
    // An argument left out crossed from the main thread as JSON's null (the interface has no
    // null arguments): read it as left out.
    for (let i = 0; i < a.length; i++) if (a[i] === null) a[i] = undefined;
    const s = (i: number) => a[i] as string;
    const n = (i: number) => a[i] as number;
    // Bytes cross from the main thread as hex (see `worker_store.ts`), or come as they are.
    const bytes = (i: number) => {
      const v = a[i] as Uint8Array | { hex: string };
      return v instanceof Uint8Array ? v : Uint8Array.fromHex(v.hex);
    };
    switch (op) {
      case "accounts.createUser":
        return this.#createUser(s(0), s(1), n(2));
      case "accounts.getUser":
        return this.#user(this.#stmt("SELECT * FROM users WHERE name_key = ?").get(nameKey(s(0))));
      case "accounts.getUserById":
        return this.#user(this.#stmt("SELECT * FROM users WHERE id = ?").get(n(0)));
      case "accounts.listUsers":
        return (this.#stmt("SELECT * FROM users ORDER BY name_key").all() as unknown as UserRow[])
          .map((row) => this.#user(row)!);
      case "accounts.setPasswordHash":
        this.#stmt("UPDATE users SET password_hash = ? WHERE id = ?").run(s(1), n(0));
        return undefined;
      case "accounts.setDisabled":
        this.#stmt("UPDATE users SET disabled = ? WHERE id = ?").run(a[1] ? 1 : 0, n(0));
        if (a[1]) this.#stmt("DELETE FROM sessions WHERE user_id = ?").run(n(0));
        return undefined;
      case "accounts.setAdmin":
        this.#stmt("UPDATE users SET admin = ? WHERE id = ?").run(a[1] ? 1 : 0, n(0));
        return undefined;
      case "accounts.deleteUser":
        // Its rooms lose their owner; its roles, bans, mutes and invitations go (foreign keys).
        this.#stmt("DELETE FROM users WHERE id = ?").run(n(0));
        return undefined;
      case "accounts.createSession":
        this.#stmt(
          "INSERT INTO sessions (token_hash, user_id, created, expires) VALUES (?, ?, ?, ?)",
        ).run(bytes(1), n(0), n(2), n(3));
        return undefined;
      case "accounts.useSession":
        return this.#useSession(bytes(0), n(1), n(2));
      case "accounts.deleteSession":
        this.#stmt("DELETE FROM sessions WHERE token_hash = ?").run(bytes(0));
        return undefined;
      case "accounts.deleteSessionsOf":
        this.#stmt("DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?")
          .run(n(0), a[1] === undefined || a[1] === null ? null : bytes(1));
        return undefined;
      case "memberships.of":
        return (this.#stmt(
          `SELECT r.name FROM memberships m JOIN rooms r ON r.id = m.room_id
           WHERE m.user_id = ? ORDER BY r.name_key`,
        ).all(n(0)) as { name: string }[]).map((r) => r.name);
      case "memberships.ofSession":
        return (this.#stmt(
          `SELECT r.name FROM sessions s JOIN memberships m ON m.user_id = s.user_id
           JOIN rooms r ON r.id = m.room_id WHERE s.token_hash = ? ORDER BY r.name_key`,
        ).all(bytes(0)) as { name: string }[]).map((r) => r.name);
      case "memberships.add":
        this.#stmt("INSERT OR IGNORE INTO memberships (user_id, room_id) VALUES (?, ?)")
          .run(n(0), this.#roomId(s(1)));
        return undefined;
      case "memberships.remove":
        this.#stmt(
          `DELETE FROM memberships WHERE user_id = ?
           AND room_id = (SELECT id FROM rooms WHERE name_key = ?)`,
        ).run(n(0), nameKey(s(1)));
        return undefined;
      case "messages.append":
        return this.#append(a[0] as NewMessage);
      case "messages.history":
        return this.#history(a[0] as HistoryTarget, a[1] as number | undefined, n(2));
      case "messages.historyAfter":
        return this.#historyAfter(a[0] as HistoryTarget, n(1), n(2));
      case "messages.pendingFor":
        return this.#messages(
          this.#stmt(SqliteDatabase.PENDING).all(n(0)) as unknown as MessageRow[],
        );
      case "messages.removePending": {
        const remove = this.#stmt("DELETE FROM pending_dms WHERE user_id = ? AND message_id = ?");
        for (const id of a[1] as number[]) remove.run(n(0), id);
        return undefined;
      }
      case "messages.takePending":
        return Number(
          this.#stmt("DELETE FROM pending_dms WHERE user_id = ? AND message_id = ?")
            .run(n(0), n(1)).changes,
        ) > 0;
      case "messages.addPending":
        this.#stmt(SqliteDatabase.INSERT_PENDING).run(n(0), n(1));
        return undefined;
      case "messages.get":
        return this.#get(n(0));
      case "messages.edit":
        this.#edit(n(0), s(1), n(2));
        return undefined;
      case "messages.remove":
        this.#remove(n(0));
        return undefined;
      case "messages.react":
        return this.#react(n(0), s(1), s(2), a[3] === true);
      case "messages.markRead":
        return this.#markRead(n(0), a[1] as ReadPlace, n(2));
      case "messages.unread":
        return this.#unread(n(0), s(1), a[2] as string[], n(3));
      case "messages.index":
        return this.#catchUp(n(0));
      case "messages.search":
        return this.#search(a[0] as string[], a[1] as SearchScope, n(2));
      case "files.create": {
        const f = a[0] as FileRecord;
        this.#stmt(
          `INSERT INTO files (id, sha256, size, name, type, owner_id, created)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(f.id, f.sha256, f.size, f.name, f.type, f.ownerId, f.created);
        return undefined;
      }
      case "files.get":
        return this.#file(s(0));
      case "files.uses":
        return this.#fileUses(s(0));
      case "files.bytesOwnedBy":
        return (this.#stmt("SELECT coalesce(sum(size), 0) AS n FROM files WHERE owner_id = ?")
          .get(n(0)) as { n: number }).n;
      case "files.blobInUse":
        return this.#blobInUse(s(0));
      case "files.expire":
        // No retention is -Infinity, which crosses from the main thread as JSON's null.
        return this.#expireFiles(a[0] === undefined ? -Infinity : n(0), n(1));
      case "moderation.claimRoom":
        return this.#claimRoom(s(0), a[1] as number | undefined);
      case "moderation.setTopic":
        this.#stmt("UPDATE rooms SET topic = ?, topic_by = ? WHERE id = ?").run(
          (a[1] as string | undefined) ?? null,
          a[1] === undefined ? null : s(2),
          this.#roomId(s(0)),
        );
        return undefined;
      case "moderation.setModes": {
        const modes = a[1] as { inviteOnly: boolean; moderated: boolean };
        this.#stmt("UPDATE rooms SET invite_only = ?, moderated = ? WHERE id = ?")
          .run(modes.inviteOnly ? 1 : 0, modes.moderated ? 1 : 0, this.#roomId(s(0)));
        return undefined;
      }
      case "moderation.operators": {
        const roomId = this.#findRoom(s(0));
        if (roomId === undefined) return [];
        return (this.#stmt("SELECT user_id FROM room_operators WHERE room_id = ? ORDER BY user_id")
          .all(roomId) as { user_id: number }[]).map((r) => r.user_id);
      }
      case "moderation.setOperator":
        if (a[2]) {
          this.#stmt("INSERT OR IGNORE INTO room_operators (room_id, user_id) VALUES (?, ?)")
            .run(this.#roomId(s(0)), n(1));
        } else {
          this.#stmt(
            `DELETE FROM room_operators WHERE user_id = ?
             AND room_id = (SELECT id FROM rooms WHERE name_key = ?)`,
          ).run(n(1), nameKey(s(0)));
        }
        return undefined;
      case "moderation.restrictions": {
        const roomId = this.#findRoom(s(0));
        if (roomId === undefined) return [];
        return (this.#stmt(SqliteDatabase.RESTRICTIONS).all(roomId) as unknown as RestrictionRow[])
          .map(SqliteDatabase.#restriction);
      }
      case "moderation.restrict":
        this.#restrict(s(0), a[1] as Restriction);
        return undefined;
      case "moderation.unrestrict":
        return this.#unrestrict(s(0), s(1) as Restriction["kind"], a[2] as Target);
      case "moderation.invite": {
        const t = a[1] as Target;
        this.#stmt(
          "INSERT OR IGNORE INTO room_invites (room_id, user_id, name_key) VALUES (?, ?, ?)",
        )
          .run(this.#roomId(s(0)), ...SqliteDatabase.#who(t));
        return undefined;
      }
      case "moderation.takeInvite":
        return this.#takeInvite(s(0), a[1] as Target);
      case "moderation.audit": {
        const e = a[0] as Omit<AuditEntry, "id">;
        this.#stmt(
          `INSERT INTO audit_log (ts, actor, action, room, target, detail)
           VALUES (?, ?, ?, ?, ?, ?)`,
        ).run(e.ts, e.actor, e.action, e.room ?? null, e.target ?? null, e.detail ?? null);
        return undefined;
      }
      case "moderation.auditLog":
        return (this.#stmt(SqliteDatabase.AUDIT_LOG).all(
          (a[1] as number | undefined) ?? Number.MAX_SAFE_INTEGER,
          n(0),
        ) as unknown as AuditRow[]).map(SqliteDatabase.#auditEntry);
      case "moderation.postAdminEvent": {
        const e = a[0] as Omit<AdminEvent, "id">;
        return (this.#stmt(
          "INSERT INTO admin_events (ts, kind, user_id, name) VALUES (?, ?, ?, ?) RETURNING id",
        ).get(e.ts, e.kind, e.userId, e.name) as { id: number }).id;
      }
      case "moderation.adminEventsAfter":
        return (this.#stmt(SqliteDatabase.ADMIN_EVENTS).all(n(0)) as {
          id: number;
          ts: number;
          kind: AdminEvent["kind"];
          user_id: number;
          name: string;
        }[]).map((r): AdminEvent => ({
          id: r.id,
          ts: r.ts,
          kind: r.kind,
          userId: r.user_id,
          name: r.name,
        }));
      case "moderation.lastAdminEvent":
        return (this.#stmt("SELECT coalesce(max(id), 0) AS id FROM admin_events").get() as {
          id: number;
        }).id;
      case "moderation.backup":
        return this.#backup(s(0));
      default:
        throw new Error(`Unknown store operation ${String(op)}`);
    }
  }

  #stmt(sql: string): StatementSync {
    let stmt = this.#stmts.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#stmts.set(sql, stmt);
    }
    return stmt;
  }

  #createUser(name: string, passwordHash: string, now: number): UserRecord | undefined {
    return this.#user(
      this.#stmt(
        `INSERT INTO users (name, name_key, password_hash, created) VALUES (?, ?, ?, ?)
         ON CONFLICT (name_key) DO NOTHING RETURNING *`,
      ).get(name, nameKey(name), passwordHash, now),
    );
  }

  #useSession(tokenHash: Uint8Array, now: number, expires: number): UserRecord | undefined {
    const row = this.#stmt(
      `SELECT s.expires, u.* FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.token_hash = ? AND s.expires > ?`,
    ).get(tokenHash, now) as (UserRow & { expires: number }) | undefined;
    if (row === undefined) return undefined;
    // Extend a token at most once a day, so that logging in is a read, not a write (and an fsync).
    if (expires - row.expires > SqliteDatabase.SESSION_EXTEND_STEP) {
      this.#stmt("UPDATE sessions SET expires = ? WHERE token_hash = ?").run(expires, tokenHash);
    }
    return this.#user(row);
  }

  #append(m: NewMessage): Placed {
    if ((m.room === undefined) === (m.to === undefined)) {
      throw new Error("A message goes to a room or to a name (one of them)");
    }
    const common: SQLInputValue[] = [
      m.text,
      m.action ? 1 : 0,
      m.ts,
      m.file?.id ?? null,
      m.file === undefined ? null : JSON.stringify(m.file),
      m.replyTo ?? null,
      m.fromAccount ?? null,
    ];
    let placed: Placed;
    if (m.room !== undefined) {
      const roomId = this.#roomId(m.room);
      placed = this.#stmt(SqliteDatabase.APPEND_ROOM).get(
        roomId,
        m.from,
        ...common,
        roomId,
      ) as unknown as Placed;
    } else {
      const key = dmKey(m.from, m.to!);
      placed = this.#stmt(SqliteDatabase.APPEND_DM).get(
        key,
        m.from,
        m.to!,
        ...common,
        key,
      ) as unknown as Placed;
      // Both names' lists of partners have this conversation (a pair's rows are written once:
      // its latest message is found when the list is read).
      if (!this.#pairs.has(key)) {
        const partners = this.#stmt(
          "INSERT OR IGNORE INTO dm_partners (name_key, partner) VALUES (?, ?)",
        );
        const [a, b] = [nameKey(m.from), nameKey(m.to!)];
        partners.run(a, b);
        if (a !== b) partners.run(b, a);
        if (this.#pairs.size >= SqliteDatabase.KNOWN_PAIRS) this.#pairs.clear();
        this.#pairs.add(key);
      }
    }
    const pending = this.#stmt(SqliteDatabase.INSERT_PENDING);
    for (const userId of m.pendingFor ?? []) pending.run(userId, placed.id);
    return { id: placed.id, seq: placed.seq };
  }

  #get(id: number): StoredMessage | undefined {
    const row = this.#stmt(SqliteDatabase.GET).get(id) as
      | (MessageRow & { from_account: number | null })
      | undefined;
    if (row === undefined) return undefined;
    const message: StoredMessage = this.#messages([row])[0]!;
    if (row.from_account !== null) message.fromAccount = row.from_account;
    return message;
  }

  /** Replaces a message's text and its search entry; a deleted message stays deleted. */
  #edit(id: number, text: string, ts: number): void {
    const changed = this.#stmt(
      "UPDATE messages SET text = ?, edited = ? WHERE id = ? AND deleted = 0",
    ).run(text, ts, id).changes;
    if (Number(changed) === 0 || id > this.#indexed()) return; // not indexed yet: it will be
    // A contentless index cannot update a row: delete it, then insert the new text.
    this.#stmt(SqliteDatabase.FTS_DELETE).run(id);
    if (text !== "") this.#stmt(SqliteDatabase.FTS_INSERT).run(id, text);
  }

  /** Moves an account's read marker in a room or a direct conversation forward (never back). */
  #markRead(userId: number, place: ReadPlace, id: number): number {
    const key = "room" in place
      ? `r:${nameKey(place.room)}`
      : `d:${dmKey(this.#userName(userId), place.with)}`;
    return (this.#stmt(
      `INSERT INTO read_markers (user_id, place, message_id) VALUES (?, ?, ?)
       ON CONFLICT (user_id, place) DO UPDATE SET message_id = max(message_id, excluded.message_id)
       RETURNING message_id`,
    ).get(userId, key, id) as { message_id: number }).message_id;
  }

  #userName(userId: number): string {
    const row = this.#stmt("SELECT name FROM users WHERE id = ?").get(userId) as
      | { name: string }
      | undefined;
    if (row === undefined) throw new Error(`No account ${userId}`);
    return row.name;
  }

  /**
   * An account's read state: for each of `rooms`, its marker and how many messages came after it;
   * for its `limit` most recent direct conversations, the partner, the latest message, the marker
   * and how many of the partner's messages came after it. Counts stop at 1000.
   */
  #unread(userId: number, name: string, rooms: readonly string[], limit: number): UnreadState {
    const me = nameKey(name);
    const marker = this.#stmt(
      "SELECT message_id FROM read_markers WHERE user_id = ? AND place = ?",
    );
    const readOf = (place: string) =>
      (marker.get(userId, place) as { message_id: number } | undefined)?.message_id ?? 0;
    const countRoom = this.#stmt(
      `SELECT count(*) AS n FROM (SELECT 1 FROM messages
       WHERE room_id = ? AND id > ? AND deleted = 0 LIMIT 1000)`,
    );
    const roomState = rooms.flatMap((room) => {
      const id = this.#findRoom(room);
      const read = readOf(`r:${nameKey(room)}`);
      const unread = id === undefined ? 0 : (countRoom.get(id, read) as { n: number }).n;
      return [{ room, read, unread }];
    });
    const lastOf = this.#stmt(SqliteDatabase.LAST_DM);
    const partners = (this.#stmt("SELECT partner FROM dm_partners WHERE name_key = ?")
      .all(me) as { partner: string }[])
      .map(({ partner }) => ({
        partner,
        last_id: (lastOf.get(dmKey(me, partner)) as { id: number } | undefined)?.id ?? 0,
      }))
      .filter((p) => p.last_id > 0)
      .sort((x, y) => y.last_id - x.last_id)
      .slice(0, limit);
    const countDm = this.#stmt(
      `SELECT count(*) AS n FROM (SELECT 1 FROM messages
       WHERE dm_key = ? AND id > ? AND deleted = 0 AND lower(from_name) <> ? LIMIT 1000)`,
    );
    const conversations = partners.flatMap(({ partner, last_id }) => {
      const last = this.#get(last_id);
      if (last === undefined) return [];
      const { fromAccount: _, ...message } = last;
      const key = dmKey(me, partner);
      const read = readOf(`d:${key}`);
      const unread = (countDm.get(key, read, me) as { n: number }).n;
      const other = nameKey(message.from) === me ? message.to! : message.from;
      return [{ with: other, read, unread, last: message }];
    });
    return { rooms: roomState, conversations };
  }

  /** Up to which id messages are in the search index. */
  #indexed(): number {
    return (this.#stmt("SELECT indexed FROM search_state WHERE id = 1").get() as {
      indexed: number;
    })
      .indexed;
  }

  /**
   * Puts up to `limit` messages stored since the last time into the search index. Indexing costs
   * more than storing a message (about 16 µs), so it is done here, in chunks, after the fact,
   * not as each message is appended.
   *
   * @returns how many messages it looked at
   */
  #catchUp(limit: number): number {
    const rows = this.#stmt(
      "SELECT id, text, deleted FROM messages WHERE id > ? ORDER BY id LIMIT ?",
    ).all(this.#indexed(), limit) as { id: number; text: string; deleted: number }[];
    if (rows.length === 0) return 0;
    const insert = this.#stmt(SqliteDatabase.FTS_INSERT);
    for (const row of rows) if (row.deleted === 0 && row.text !== "") insert.run(row.id, row.text);
    this.#stmt("UPDATE search_state SET indexed = ? WHERE id = 1").run(rows.at(-1)!.id);
    return rows.length;
  }

  /** Makes a message a tombstone: no text, no file, no search entry, no reactions. */
  #remove(id: number): void {
    const changed = this.#stmt(
      `UPDATE messages SET text = '', file_id = NULL, file_json = NULL, deleted = 1
       WHERE id = ? AND deleted = 0`,
    ).run(id).changes;
    if (Number(changed) === 0) return;
    if (id <= this.#indexed()) this.#stmt(SqliteDatabase.FTS_DELETE).run(id);
    this.#stmt("DELETE FROM message_reactions WHERE message_id = ?").run(id);
  }

  /** Adds or takes back a reaction (idempotently; a missing or deleted message takes none). */
  #react(id: number, emoji: string, who: string, on: boolean): Record<string, number> {
    if (on) {
      this.#stmt(
        `INSERT OR IGNORE INTO message_reactions (message_id, emoji, who)
         SELECT id, ?, ? FROM messages WHERE id = ? AND deleted = 0`,
      ).run(emoji, who, id);
    } else {
      this.#stmt("DELETE FROM message_reactions WHERE message_id = ? AND emoji = ? AND who = ?")
        .run(id, emoji, who);
    }
    const rows = this.#stmt(
      "SELECT emoji, count(*) AS n FROM message_reactions WHERE message_id = ? GROUP BY emoji",
    ).all(id) as { emoji: string; n: number }[];
    // fromEntries defines each key (an emoji `__proto__` would not set the prototype).
    return Object.fromEntries(rows.map((r) => [r.emoji, r.n]));
  }

  #search(words: readonly string[], scope: SearchScope, limit: number): MessageFrame[] {
    const match = SqliteDatabase.matchExpression(words);
    if (match === undefined || limit <= 0) return [];
    // What was stored since the indexer last ran is found too (up to a chunk's worth).
    this.#catchUp(SqliteDatabase.SEARCH_CATCH_UP);
    const roomIds = scope.rooms.flatMap((room) => {
      const id = this.#findRoom(room);
      return id === undefined ? [] : [id];
    });
    const dmsOf = scope.dmsOf === undefined ? null : nameKey(scope.dmsOf);
    if (roomIds.length === 0 && dmsOf === null) return [];
    return this.#messages(
      this.#stmt(SqliteDatabase.SEARCH).all(
        match,
        JSON.stringify(roomIds),
        dmsOf,
        limit,
      ) as unknown as MessageRow[],
    );
  }

  /**
   * The FTS5 query for words a user typed: each word a quoted phrase (a `"` in it doubled), as a
   * prefix (`"word"*`), joined by spaces (all must match); a NUL in a word becomes a space. Nothing in a word is FTS5 syntax: no
   * `OR`, `NEAR`, `*`, column filter or parenthesis gets through. A word with no letters or
   * digits (no token) is ignored beside others, and alone matches nothing. `undefined` for no
   * words.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SqliteDatabase } from "./sqlite_store.ts";
   * assert.equal(SqliteDatabase.matchExpression(["hel", 'a"b', "OR"]), '"hel"* "a""b"* "OR"*');
   * assert.equal(SqliteDatabase.matchExpression([]), undefined);
   * ```
   */
  static matchExpression(words: readonly string[]): string | undefined {
    if (words.length === 0) return undefined;
    // FTS5 reads the expression as a C string: a NUL would end it inside a quoted word.
    return words.map((w) => `"${w.replaceAll("\0", " ").replaceAll('"', '""')}"*`).join(" ");
  }

  #history(target: HistoryTarget, before: number | undefined, limit: number): MessageFrame[] {
    const beforeId = before ?? Number.MAX_SAFE_INTEGER;
    let rows: MessageRow[];
    if ("room" in target) {
      const roomId = this.#findRoom(target.room);
      if (roomId === undefined) return [];
      rows = this.#stmt(SqliteDatabase.HISTORY_ROOM).all(
        roomId,
        beforeId,
        limit,
      ) as unknown as MessageRow[];
    } else {
      rows = this.#stmt(SqliteDatabase.HISTORY_DM).all(
        dmKey(...target.between),
        beforeId,
        limit,
      ) as unknown as MessageRow[];
    }
    return this.#messages(rows.reverse());
  }

  #historyAfter(target: HistoryTarget, after: number, limit: number): MessageFrame[] {
    let rows: MessageRow[];
    if ("room" in target) {
      const roomId = this.#findRoom(target.room);
      if (roomId === undefined) return [];
      rows = this.#stmt(SqliteDatabase.HISTORY_ROOM_AFTER).all(
        roomId,
        after,
        limit,
      ) as unknown as MessageRow[];
    } else {
      rows = this.#stmt(SqliteDatabase.HISTORY_DM_AFTER).all(
        dmKey(...target.between),
        after,
        limit,
      ) as unknown as MessageRow[];
    }
    return this.#messages(rows);
  }

  #file(id: string): FileRecord | undefined {
    const row = this.#stmt("SELECT * FROM files WHERE id = ?").get(id) as FileRow | undefined;
    return row && {
      id: row.id,
      sha256: row.sha256,
      size: row.size,
      name: row.name,
      type: row.type,
      ownerId: row.owner_id,
      created: row.created,
    };
  }

  #fileUses(id: string): FileUses {
    const rows = this.#stmt(
      `SELECT r.name AS room, m.dm_key FROM messages m LEFT JOIN rooms r ON r.id = m.room_id
       WHERE m.file_id = ?`,
    ).all(id) as { room: string | null; dm_key: string | null }[];
    return {
      rooms: rows.flatMap((r) => r.room === null ? [] : [r.room]),
      dmKeys: rows.flatMap((r) => r.dm_key === null ? [] : [r.dm_key]),
    };
  }

  #blobInUse(sha256: string): boolean {
    return this.#stmt("SELECT 1 FROM files WHERE sha256 = ? LIMIT 1").get(sha256) !== undefined;
  }

  #expireFiles(before: number, orphanBefore: number): string[] {
    const doomed = this.#stmt(
      `SELECT id, sha256 FROM files WHERE created < ?
       UNION SELECT f.id, f.sha256 FROM files f WHERE f.created < ?
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.file_id = f.id)`,
    ).all(before, orphanBefore) as { id: string; sha256: string }[];
    const remove = this.#stmt("DELETE FROM files WHERE id = ?");
    for (const f of doomed) remove.run(f.id);
    return [...new Set(doomed.map((f) => f.sha256))].filter((sha) => !this.#blobInUse(sha));
  }

  #claimRoom(name: string, ownerId: number | undefined): { room: RoomRecord; created: boolean } {
    const key = nameKey(name);
    // Only the call that inserts the row owns the room: one that existed (made by a message, a
    // membership or an earlier claim) keeps its owner, or its lack of one.
    const inserted = this.#stmt(
      `INSERT INTO rooms (name, name_key, owner_id) VALUES (?, ?, ?)
       ON CONFLICT (name_key) DO NOTHING RETURNING id`,
    ).get(name, key, ownerId ?? null) as { id: number } | undefined;
    if (inserted !== undefined) this.#roomIds.set(key, inserted.id);
    const roomId = inserted?.id ?? this.#findRoom(name)!;
    const row = this.#stmt(
      "SELECT name, owner_id, topic, topic_by, invite_only, moderated FROM rooms WHERE id = ?",
    ).get(roomId) as unknown as RoomRow;
    // What a row does not have is left out (as it is once it crossed from the worker as JSON).
    const room: RoomRecord = {
      name: row.name,
      inviteOnly: row.invite_only !== 0,
      moderated: row.moderated !== 0,
    };
    if (row.owner_id !== null) room.ownerId = row.owner_id;
    if (row.topic !== null) room.topic = row.topic;
    if (row.topic_by !== null) room.topicBy = row.topic_by;
    return { room, created: inserted !== undefined };
  }

  #restrict(room: string, r: Restriction): void {
    const roomId = this.#roomId(room);
    const [userId, key] = SqliteDatabase.#who(r.target);
    // One ban (and one mute) per account or guest name per room: a new one replaces it.
    this.#stmt(
      `DELETE FROM room_restrictions WHERE room_id = ? AND kind = ?
       AND (user_id = ? OR name_key = ?)`,
    ).run(roomId, r.kind, userId, key);
    this.#stmt(
      `INSERT INTO room_restrictions (room_id, kind, user_id, name_key, ip, by_name, reason, ts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      roomId,
      r.kind,
      userId,
      key,
      "userId" in r.target ? null : r.target.ip ?? null,
      r.by,
      r.reason ?? null,
      r.ts,
    );
  }

  #unrestrict(room: string, kind: Restriction["kind"], target: Target): boolean {
    const roomId = this.#findRoom(room);
    if (roomId === undefined) return false;
    return Number(
      this.#stmt(
        `DELETE FROM room_restrictions WHERE room_id = ? AND kind = ?
         AND (user_id = ? OR name_key = ?)`,
      ).run(roomId, kind, ...SqliteDatabase.#who(target)).changes,
    ) > 0;
  }

  #takeInvite(room: string, target: Target): boolean {
    const roomId = this.#findRoom(room);
    if (roomId === undefined) return false;
    return Number(
      this.#stmt("DELETE FROM room_invites WHERE room_id = ? AND (user_id = ? OR name_key = ?)")
        .run(roomId, ...SqliteDatabase.#who(target)).changes,
    ) > 0;
  }

  /**
   * Copies the whole database to `path`, a new file (mode 0600), with the online backup API in
   * one step (all pages under one read transaction: a consistent snapshot, even while other
   * processes write). `VACUUM INTO` would do too, but Deno disables it (it attaches a database)
   * unless the process has every permission.
   */
  #backup(path: string): Promise<void> {
    // Claim the name first: never over an existing file, and Deno checks the permission to write.
    try {
      Deno.openSync(path, { write: true, createNew: true, mode: 0o600 }).close();
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new Deno.errors.AlreadyExists(`Cannot back up to ${path}: the file already exists`);
      }
      throw error;
    }
    const forget = (error: unknown): never => {
      try {
        Deno.removeSync(path);
      } catch {
        // already gone
      }
      throw error;
    };
    try {
      return sqliteBackup(this.#db, path, { rate: -1 }).then(() => undefined, forget);
    } catch (error) {
      return forget(error);
    }
  }

  /** A target's `user_id` and `name_key` columns (one of them null). */
  static #who(target: Target): [number | null, string | null] {
    return "userId" in target ? [target.userId, null] : [null, nameKey(target.name)];
  }

  static #restriction(row: RestrictionRow): Restriction {
    let target: Target;
    if (row.user_id !== null) target = { userId: row.user_id };
    else if (row.ip !== null) target = { name: row.name_key!, ip: row.ip };
    else target = { name: row.name_key! };
    const restriction: Restriction = { kind: row.kind, target, by: row.by_name, ts: row.ts };
    if (row.reason !== null) restriction.reason = row.reason;
    return restriction;
  }

  static #auditEntry(row: AuditRow): AuditEntry {
    const entry: AuditEntry = { id: row.id, ts: row.ts, actor: row.actor, action: row.action };
    if (row.room !== null) entry.room = row.room;
    if (row.target !== null) entry.target = row.target;
    if (row.detail !== null) entry.detail = row.detail;
    return entry;
  }

  #findRoom(name: string): number | undefined {
    const key = nameKey(name);
    const known = this.#roomIds.get(key);
    if (known !== undefined) return known;
    const row = this.#stmt("SELECT id FROM rooms WHERE name_key = ?").get(key) as
      | { id: number }
      | undefined;
    if (row !== undefined) this.#roomIds.set(key, row.id);
    return row?.id;
  }

  #roomId(name: string): number {
    const known = this.#findRoom(name);
    if (known !== undefined) return known;
    const key = nameKey(name);
    const row = this.#stmt(
      `INSERT INTO rooms (name, name_key) VALUES (?, ?)
       ON CONFLICT (name_key) DO UPDATE SET name = name RETURNING id`,
    ).get(name, key) as { id: number };
    this.#roomIds.set(key, row.id);
    return row.id;
  }

  #user(row: unknown): UserRecord | undefined {
    if (row === undefined) return undefined;
    const r = row as UserRow;
    return {
      id: r.id,
      name: r.name,
      passwordHash: r.password_hash,
      created: r.created,
      disabled: r.disabled !== 0,
      admin: r.admin !== 0,
    };
  }

  /** The frames of rows, with their reactions (one query for them all). */
  #messages(rows: readonly MessageRow[]): MessageFrame[] {
    const frames = rows.map(SqliteDatabase.#message);
    if (frames.length === 0) return frames;
    const answered = [
      ...new Set(frames.flatMap((f) => f.replyTo === undefined ? [] : [f.replyTo])),
    ];
    if (answered.length > 0) {
      const quoted = new Map(
        (this.#stmt(SqliteDatabase.QUOTED).all(JSON.stringify(answered)) as {
          id: number;
          from_name: string;
          text: string;
          deleted: number;
        }[]).map((r) => [
          r.id,
          replyQuote({ from: r.from_name, text: r.text, ...r.deleted ? { deleted: true } : {} }),
        ]),
      );
      for (const frame of frames) {
        const quote = frame.replyTo === undefined ? undefined : quoted.get(frame.replyTo);
        if (quote !== undefined) frame.quote = quote;
      }
    }
    const counts = this.#stmt(SqliteDatabase.REACTIONS).all(
      JSON.stringify(frames.map((f) => f.id)),
    ) as { message_id: number; emoji: string; n: number }[];
    if (counts.length === 0) return frames;
    const byId = new Map<number, [string, number][]>();
    for (const c of counts) {
      const entries = byId.get(c.message_id);
      if (entries === undefined) byId.set(c.message_id, [[c.emoji, c.n]]);
      else entries.push([c.emoji, c.n]);
    }
    for (const frame of frames) {
      const entries = byId.get(frame.id);
      // fromEntries defines each key (an emoji `__proto__` would not set the prototype).
      if (entries !== undefined) frame.reactions = Object.fromEntries(entries);
    }
    return frames;
  }

  static #message(row: MessageRow): MessageFrame {
    const frame: MessageFrame = {
      type: "message",
      id: row.id,
      from: row.from_name,
      text: row.text,
      ts: row.ts,
    };
    if (row.room !== null) frame.room = row.room;
    if (row.to_name !== null) frame.to = row.to_name;
    if (row.action) frame.action = true;
    if (row.file_json !== null) frame.file = JSON.parse(row.file_json) as FileRef;
    if (row.reply_to !== null) frame.replyTo = row.reply_to;
    if (row.edited !== null) frame.edited = row.edited;
    if (row.deleted) frame.deleted = true;
    return frame;
  }

  static #userVersion(db: DatabaseSync): number {
    return (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  }

  static #migrate(db: DatabaseSync): void {
    const found = SqliteDatabase.#userVersion(db);
    const known = MIGRATIONS.length;
    if (found > known) throw new SchemaTooNewError(found, known);
    for (let v = found; v < known; v++) {
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(MIGRATIONS[v]!);
        db.exec(`PRAGMA user_version = ${v + 1}`);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw new Error(`Cannot migrate the database from schema ${v} to ${v + 1}`, {
          cause: error,
        });
      }
    }
  }
}
