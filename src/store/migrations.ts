/**
 * Versioned schema migrations. Entry N upgrades a database from schema version N to N+1; the
 * version is kept in SQLite's `user_version`. Never edit a released entry: append a new one.
 *
 * @module
 */

/** The migrations, in order. */
export const MIGRATIONS: readonly string[] = [
  // 0 -> 1: accounts, sessions, rooms, memberships, messages, offline delivery.
  `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX sessions_user ON sessions(user_id);
  CREATE TABLE rooms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE
  );
  CREATE TABLE memberships (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, room_id)
  ) WITHOUT ROWID;
  CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    room_id INTEGER REFERENCES rooms(id),
    dm_key TEXT,
    from_name TEXT NOT NULL,
    to_name TEXT,
    text TEXT NOT NULL,
    action INTEGER NOT NULL DEFAULT 0,
    ts INTEGER NOT NULL
  );
  CREATE INDEX messages_room ON messages(room_id, id);
  CREATE INDEX messages_dm ON messages(dm_key, id);
  CREATE TABLE pending_dms (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages(id),
    PRIMARY KEY (user_id, message_id)
  ) WITHOUT ROWID;
  `,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
