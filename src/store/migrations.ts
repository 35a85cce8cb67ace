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
  // 1 -> 2: files, referenced by messages.
  `
  CREATE TABLE files (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX files_owner ON files(owner_id);
  CREATE INDEX files_sha256 ON files(sha256);
  CREATE INDEX files_created ON files(created);
  ALTER TABLE messages ADD COLUMN file_id TEXT;
  ALTER TABLE messages ADD COLUMN file_json TEXT;
  CREATE INDEX messages_file ON messages(file_id) WHERE file_id IS NOT NULL;
  `,
  // 2 -> 3: each message's sequence number within its room or its pair of direct-message names
  // (1, 2, 3… in id order), assigned by the store when it appends.
  `
  ALTER TABLE messages ADD COLUMN seq INTEGER;
  UPDATE messages SET seq = numbered.seq
    FROM (SELECT id, row_number() OVER (PARTITION BY room_id ORDER BY id) AS seq
          FROM messages WHERE room_id IS NOT NULL) AS numbered
    WHERE messages.id = numbered.id;
  UPDATE messages SET seq = numbered.seq
    FROM (SELECT id, row_number() OVER (PARTITION BY dm_key ORDER BY id) AS seq
          FROM messages WHERE room_id IS NULL AND dm_key IS NOT NULL) AS numbered
    WHERE messages.id = numbered.id;
  CREATE UNIQUE INDEX messages_room_seq ON messages(room_id, seq);
  CREATE UNIQUE INDEX messages_dm_seq ON messages(dm_key, seq);
  `,
  // 3 -> 4: administrators; rooms' owners, topics and modes; operators, bans and mutes,
  // invitations; the audit log; the feed of administrators' changes for running servers.
  // A guest is kept by its case-folded name (and, for bans and mutes, its address).
  `
  ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE rooms ADD COLUMN owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
  ALTER TABLE rooms ADD COLUMN topic TEXT;
  ALTER TABLE rooms ADD COLUMN topic_by TEXT;
  ALTER TABLE rooms ADD COLUMN invite_only INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE rooms ADD COLUMN moderated INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX rooms_owner ON rooms(owner_id);
  CREATE TABLE room_operators (
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (room_id, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX room_operators_user ON room_operators(user_id);
  CREATE TABLE room_restrictions (
    id INTEGER PRIMARY KEY,
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('ban', 'mute')),
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    name_key TEXT,
    ip TEXT,
    by_name TEXT NOT NULL,
    reason TEXT,
    ts INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (name_key IS NULL))
  );
  CREATE INDEX room_restrictions_room ON room_restrictions(room_id);
  CREATE UNIQUE INDEX room_restrictions_account ON room_restrictions(room_id, kind, user_id)
    WHERE user_id IS NOT NULL;
  CREATE UNIQUE INDEX room_restrictions_guest ON room_restrictions(room_id, kind, name_key)
    WHERE name_key IS NOT NULL;
  CREATE INDEX room_restrictions_user ON room_restrictions(user_id);
  CREATE TABLE room_invites (
    id INTEGER PRIMARY KEY,
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    name_key TEXT,
    CHECK ((user_id IS NULL) <> (name_key IS NULL))
  );
  CREATE UNIQUE INDEX room_invites_account ON room_invites(room_id, user_id)
    WHERE user_id IS NOT NULL;
  CREATE UNIQUE INDEX room_invites_guest ON room_invites(room_id, name_key)
    WHERE name_key IS NOT NULL;
  CREATE INDEX room_invites_user ON room_invites(user_id);
  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    room TEXT,
    target TEXT,
    detail TEXT
  );
  CREATE TABLE admin_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('revoke', 'role')),
    user_id INTEGER NOT NULL,
    name TEXT NOT NULL
  );
  `,
  // 4 -> 5: replies, authors' accounts, edits and deletions (a deleted message stays as a
  // tombstone: its text is '' and its file gone), reactions, and full-text search. The search
  // index is contentless (it keeps no copy of the text), its rowid the message's id; it holds
  // the messages not deleted (those with text), and is filled here from the existing ones.
  `
  ALTER TABLE messages ADD COLUMN reply_to INTEGER;
  ALTER TABLE messages ADD COLUMN from_account INTEGER REFERENCES users(id) ON DELETE SET NULL;
  ALTER TABLE messages ADD COLUMN edited INTEGER;
  ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX messages_from_account ON messages(from_account) WHERE from_account IS NOT NULL;
  CREATE TABLE message_reactions (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    emoji TEXT NOT NULL,
    who TEXT NOT NULL,
    PRIMARY KEY (message_id, emoji, who)
  ) WITHOUT ROWID;
  CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='', contentless_delete=1);
  INSERT INTO messages_fts (rowid, text)
    SELECT id, text FROM messages WHERE text <> '' AND deleted = 0;
  -- Messages are indexed after they are stored, not as they are (see SqliteDatabase.#catchUp):
  -- every message up to 'indexed' is in messages_fts.
  CREATE TABLE search_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed INTEGER NOT NULL
  );
  INSERT INTO search_state (id, indexed) SELECT 1, coalesce(max(id), 0) FROM messages;
  `,
  // 5 -> 6: read markers (per account and conversation) and each name's direct-message partners
  // with their latest message, so unread counts and the conversation list come from the server.
  `
  CREATE TABLE read_markers (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    place TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, place)
  ) WITHOUT ROWID;
  CREATE TABLE dm_partners (
    name_key TEXT NOT NULL,
    partner TEXT NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (name_key, partner)
  ) WITHOUT ROWID;
  CREATE INDEX dm_partners_recent ON dm_partners(name_key, last_id);
  INSERT INTO dm_partners (name_key, partner, last_id)
    SELECT substr(dm_key, 1, instr(dm_key, ' ') - 1), substr(dm_key, instr(dm_key, ' ') + 1), max(id)
    FROM messages WHERE dm_key IS NOT NULL GROUP BY dm_key;
  INSERT OR REPLACE INTO dm_partners (name_key, partner, last_id)
    SELECT substr(dm_key, instr(dm_key, ' ') + 1), substr(dm_key, 1, instr(dm_key, ' ') - 1), max(id)
    FROM messages WHERE dm_key IS NOT NULL GROUP BY dm_key;
  `,
  // 6 -> 7: fewer index pages written per message. Each index a message enters is one more page
  // (4 KiB) to write to the log at every commit, and a page of its own when its key is not the
  // newest (a pair's, an author's); a direct message entered seven indexes (two of them for its
  // NULL room) and updated two partners' rows with their index. Now: the room or pair index
  // only, partial, so a message enters one of them; the sequence number is found through it (the
  // highest id's); a pair of partners is written once, its latest message found when the
  // conversation list is read. The author's index served only deleting an account (which sets
  // its messages' from_account to NULL): that now reads the messages table through, once per
  // deleted account, instead of every message paying for it.
  `
  DROP INDEX messages_from_account;
  DROP INDEX messages_room_seq;
  DROP INDEX messages_dm_seq;
  DROP INDEX messages_room;
  DROP INDEX messages_dm;
  CREATE INDEX messages_room ON messages(room_id, id) WHERE room_id IS NOT NULL;
  CREATE INDEX messages_dm ON messages(dm_key, id) WHERE dm_key IS NOT NULL;
  CREATE TABLE dm_partners_7 (
    name_key TEXT NOT NULL,
    partner TEXT NOT NULL,
    PRIMARY KEY (name_key, partner)
  ) WITHOUT ROWID;
  INSERT INTO dm_partners_7 (name_key, partner) SELECT name_key, partner FROM dm_partners;
  DROP TABLE dm_partners;
  ALTER TABLE dm_partners_7 RENAME TO dm_partners;
  `,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
