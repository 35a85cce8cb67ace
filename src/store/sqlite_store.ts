/**
 * The embedded store: SQLite through `node:sqlite`, in WAL mode, with versioned migrations.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { SQLInputValue, StatementSync } from "node:sqlite";
import type { FileRef, MessageFrame } from "../protocol/frames.ts";
import { nameKey } from "../protocol/names.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "./migrations.ts";
import type {
  FileRecord,
  FileUses,
  HistoryTarget,
  NewMessage,
  Store,
  UserRecord,
} from "./store.ts";

/** How hard SQLite works to make a commit survive: `full` survives power loss. */
export type SyncMode = "full" | "normal";

/** Options for {@linkcode SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** `full` (default): an acknowledged message survives power loss; `normal`: a crash only. */
  sync?: SyncMode;
}

/** The database is from a newer parley than this one. */
export class SchemaTooNewError extends Error {
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
  }
}

interface UserRow {
  id: number;
  name: string;
  password_hash: string;
  created: number;
  disabled: number;
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

/** A session token's expiry is pushed back only when it would move by more than this. */
const SESSION_EXTEND_STEP = 24 * 3600 * 1000;

/** The key under which the direct messages between two names are stored together. */
export function dmKey(a: string, b: string): string {
  const [x, y] = [nameKey(a), nameKey(b)].sort();
  return `${x} ${y}`;
}

/**
 * A {@linkcode Store} in one SQLite file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SqliteStore } from "./sqlite_store.ts";
 * using store = SqliteStore.open(":memory:");
 * const alice = store.createUser("alice", "$argon2id$…", Date.now());
 * assert.ok(alice);
 * assert.equal(store.getUser("ALICE")?.id, alice.id);
 * ```
 */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #roomIds = new Map<string, number>();

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Opens (creating if needed) the database at `path` and brings its schema up to date.
   *
   * @throws {SchemaTooNewError} when the database was written by a newer parley
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    const db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${options.sync === "normal" ? "NORMAL" : "FULL"}`);
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA foreign_keys = ON");
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteStore(db);
  }

  /** The schema version of the open database. */
  get schemaVersion(): number {
    return userVersion(this.#db);
  }

  /** Runs `EXPLAIN QUERY PLAN` for the history queries (used by tests to prove indexes). */
  explainHistory(): string[] {
    const plans: string[] = [];
    const queries: [string, SQLInputValue[]][] = [
      [HISTORY_ROOM, [1, 1, 1]],
      [HISTORY_DM, ["a b", 1, 1]],
      [PENDING, [1]],
    ];
    for (const [sql, params] of queries) {
      const rows = this.#db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as {
        detail: string;
      }[];
      plans.push(rows.map((r) => r.detail).join("; "));
    }
    return plans;
  }

  #stmt(sql: string): StatementSync {
    let stmt = this.#stmts.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#stmts.set(sql, stmt);
    }
    return stmt;
  }

  #tx<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  createUser(name: string, passwordHash: string, now: number): UserRecord | undefined {
    const row = this.#stmt(
      `INSERT INTO users (name, name_key, password_hash, created) VALUES (?, ?, ?, ?)
       ON CONFLICT (name_key) DO NOTHING RETURNING *`,
    ).get(name, nameKey(name), passwordHash, now) as UserRow | undefined;
    return row && toUser(row);
  }

  getUser(name: string): UserRecord | undefined {
    const row = this.#stmt("SELECT * FROM users WHERE name_key = ?").get(nameKey(name));
    return row && toUser(row as unknown as UserRow);
  }

  getUserById(id: number): UserRecord | undefined {
    const row = this.#stmt("SELECT * FROM users WHERE id = ?").get(id);
    return row && toUser(row as unknown as UserRow);
  }

  listUsers(): UserRecord[] {
    return (this.#stmt("SELECT * FROM users ORDER BY name_key").all() as unknown as UserRow[])
      .map(toUser);
  }

  setPasswordHash(userId: number, passwordHash: string): void {
    this.#stmt("UPDATE users SET password_hash = ? WHERE id = ?").run(passwordHash, userId);
  }

  setDisabled(userId: number, disabled: boolean): void {
    this.#tx(() => {
      this.#stmt("UPDATE users SET disabled = ? WHERE id = ?").run(disabled ? 1 : 0, userId);
      if (disabled) this.#stmt("DELETE FROM sessions WHERE user_id = ?").run(userId);
    });
  }

  deleteUser(userId: number): void {
    this.#stmt("DELETE FROM users WHERE id = ?").run(userId);
  }

  createSession(userId: number, tokenHash: Uint8Array, now: number, expires: number): void {
    this.#stmt("INSERT INTO sessions (token_hash, user_id, created, expires) VALUES (?, ?, ?, ?)")
      .run(tokenHash, userId, now, expires);
  }

  useSession(tokenHash: Uint8Array, now: number, expires: number): UserRecord | undefined {
    const row = this.#stmt(
      `SELECT s.expires, u.* FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.token_hash = ? AND s.expires > ?`,
    ).get(tokenHash, now) as (UserRow & { expires: number }) | undefined;
    if (row === undefined) return undefined;
    // Extend a token at most once a day, so that logging in is a read, not a write (and an fsync).
    if (expires - row.expires > SESSION_EXTEND_STEP) {
      this.#stmt("UPDATE sessions SET expires = ? WHERE token_hash = ?").run(expires, tokenHash);
    }
    return toUser(row);
  }

  deleteSession(tokenHash: Uint8Array): void {
    this.#stmt("DELETE FROM sessions WHERE token_hash = ?").run(tokenHash);
  }

  deleteSessionsOf(userId: number, keep?: Uint8Array): void {
    this.#stmt("DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?")
      .run(userId, keep ?? null);
  }

  memberships(userId: number): string[] {
    return (this.#stmt(
      `SELECT r.name FROM memberships m JOIN rooms r ON r.id = m.room_id
       WHERE m.user_id = ? ORDER BY r.name_key`,
    ).all(userId) as { name: string }[]).map((r) => r.name);
  }

  addMembership(userId: number, room: string): void {
    this.#stmt("INSERT OR IGNORE INTO memberships (user_id, room_id) VALUES (?, ?)")
      .run(userId, this.#roomId(room));
  }

  removeMembership(userId: number, room: string): void {
    this.#stmt(
      `DELETE FROM memberships WHERE user_id = ?
       AND room_id = (SELECT id FROM rooms WHERE name_key = ?)`,
    ).run(userId, nameKey(room));
  }

  lastMessageId(): number {
    const row = this.#stmt("SELECT max(id) AS id FROM messages").get() as { id: number | null };
    return row.id ?? 0;
  }

  appendMessages(messages: readonly NewMessage[]): void {
    if (messages.length === 0) return;
    const insert = this.#stmt(
      `INSERT INTO messages (id, room_id, dm_key, from_name, to_name, text, action, ts, file_id,
         file_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const pending = this.#stmt(INSERT_PENDING);
    this.#tx(() => {
      for (const m of messages) {
        const values: SQLInputValue[] = [
          m.id,
          m.room === undefined ? null : this.#roomId(m.room),
          m.to === undefined ? null : dmKey(m.from, m.to),
          m.from,
          m.to ?? null,
          m.text,
          m.action ? 1 : 0,
          m.ts,
          m.file?.id ?? null,
          m.file === undefined ? null : JSON.stringify(m.file),
        ];
        insert.run(...values);
        for (const userId of m.pendingFor ?? []) pending.run(userId, m.id);
      }
    });
  }

  history(target: HistoryTarget, before: number | undefined, limit: number): MessageFrame[] {
    const beforeId = before ?? Number.MAX_SAFE_INTEGER;
    let rows: MessageRow[];
    if ("room" in target) {
      const roomId = this.#roomIds.get(nameKey(target.room)) ?? this.#findRoom(target.room);
      if (roomId === undefined) return [];
      rows = this.#stmt(HISTORY_ROOM).all(roomId, beforeId, limit) as unknown as MessageRow[];
    } else {
      const key = dmKey(...target.between);
      rows = this.#stmt(HISTORY_DM).all(key, beforeId, limit) as unknown as MessageRow[];
    }
    return rows.reverse().map(toMessage);
  }

  pendingFor(userId: number): MessageFrame[] {
    return (this.#stmt(PENDING).all(userId) as unknown as MessageRow[]).map(toMessage);
  }

  removePending(userId: number, messageIds: readonly number[]): void {
    if (messageIds.length === 0) return;
    const stmt = this.#stmt("DELETE FROM pending_dms WHERE user_id = ? AND message_id = ?");
    this.#tx(() => {
      for (const id of messageIds) stmt.run(userId, id);
    });
  }

  takePendingMessage(userId: number, messageId: number): boolean {
    const stmt = this.#stmt("DELETE FROM pending_dms WHERE user_id = ? AND message_id = ?");
    return Number(stmt.run(userId, messageId).changes) > 0;
  }

  addPending(userId: number, messageId: number): void {
    this.#stmt(INSERT_PENDING).run(userId, messageId);
  }

  createFile(file: FileRecord): void {
    this.#stmt(
      `INSERT INTO files (id, sha256, size, name, type, owner_id, created)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(file.id, file.sha256, file.size, file.name, file.type, file.ownerId, file.created);
  }

  getFile(id: string): FileRecord | undefined {
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

  fileUses(id: string): FileUses {
    const rows = this.#stmt(
      `SELECT r.name AS room, m.dm_key FROM messages m LEFT JOIN rooms r ON r.id = m.room_id
       WHERE m.file_id = ?`,
    ).all(id) as { room: string | null; dm_key: string | null }[];
    return {
      rooms: rows.flatMap((r) => r.room === null ? [] : [r.room]),
      dmKeys: rows.flatMap((r) => r.dm_key === null ? [] : [r.dm_key]),
    };
  }

  bytesOwnedBy(userId: number): number {
    const row = this.#stmt("SELECT coalesce(sum(size), 0) AS n FROM files WHERE owner_id = ?")
      .get(userId) as { n: number };
    return row.n;
  }

  blobInUse(sha256: string): boolean {
    return this.#stmt("SELECT 1 FROM files WHERE sha256 = ? LIMIT 1").get(sha256) !== undefined;
  }

  expireFiles(before: number, orphanBefore: number): string[] {
    return this.#tx(() => {
      const doomed = this.#stmt(
        `SELECT id, sha256 FROM files WHERE created < ?
         UNION SELECT f.id, f.sha256 FROM files f WHERE f.created < ?
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.file_id = f.id)`,
      ).all(before, orphanBefore) as { id: string; sha256: string }[];
      const remove = this.#stmt("DELETE FROM files WHERE id = ?");
      for (const f of doomed) remove.run(f.id);
      return [...new Set(doomed.map((f) => f.sha256))].filter((sha) => !this.blobInUse(sha));
    });
  }

  #findRoom(name: string): number | undefined {
    const row = this.#stmt("SELECT id FROM rooms WHERE name_key = ?").get(nameKey(name)) as
      | { id: number }
      | undefined;
    if (row !== undefined) this.#roomIds.set(nameKey(name), row.id);
    return row?.id;
  }

  #roomId(name: string): number {
    const key = nameKey(name);
    const known = this.#roomIds.get(key) ?? this.#findRoom(name);
    if (known !== undefined) return known;
    const row = this.#stmt("INSERT INTO rooms (name, name_key) VALUES (?, ?) RETURNING id")
      .get(name, key) as { id: number };
    this.#roomIds.set(key, row.id);
    return row.id;
  }

  [Symbol.dispose](): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

const HISTORY_ROOM = `SELECT m.id, r.name AS room, m.from_name, m.to_name, m.text, m.action, m.ts,
    m.file_json
  FROM messages m JOIN rooms r ON r.id = m.room_id
  WHERE m.room_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?`;
const HISTORY_DM = `SELECT id, NULL AS room, from_name, to_name, text, action, ts, file_json
  FROM messages WHERE dm_key = ? AND id < ? ORDER BY id DESC LIMIT ?`;
const INSERT_PENDING = "INSERT INTO pending_dms (user_id, message_id) VALUES (?, ?)";
const PENDING = `SELECT m.id, NULL AS room, m.from_name, m.to_name, m.text, m.action, m.ts,
    m.file_json
  FROM pending_dms p JOIN messages m ON m.id = p.message_id
  WHERE p.user_id = ? ORDER BY m.id`;

function userVersion(db: DatabaseSync): number {
  return (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
}

function migrate(db: DatabaseSync): void {
  const found = userVersion(db);
  if (found > SCHEMA_VERSION) throw new SchemaTooNewError(found, SCHEMA_VERSION);
  for (let v = found; v < SCHEMA_VERSION; v++) {
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

function toUser(row: UserRow): UserRecord {
  return {
    id: row.id,
    name: row.name,
    passwordHash: row.password_hash,
    created: row.created,
    disabled: row.disabled !== 0,
  };
}

function toMessage(row: MessageRow): MessageFrame {
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
  return frame;
}
