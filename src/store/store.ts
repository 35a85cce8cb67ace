/**
 * The storage interfaces: what outlives a connection, split by concern. Every call is
 * asynchronous: the SQLite backend runs on its own worker thread, so no query and no fsync ever
 * blocks the event loop, and a Postgres backend fits the same shape. A write resolves only once
 * it is committed (durable); writes that arrive together share one commit (group commit).
 *
 * Every backend passes the conformance suite in tests/store_conformance.ts.
 *
 * @module
 */

import type { FileRef, MessageFrame } from "../protocol/frames.ts";

/** An account. */
export interface UserRecord {
  id: number;
  /** The name as registered (its case is kept). */
  name: string;
  /** The password hash as a PHC string. */
  passwordHash: string;
  /** Milliseconds since the epoch. */
  created: number;
  disabled: boolean;
  /** A server administrator (`parley user admin NAME`). */
  admin: boolean;
}

/**
 * A message to store, as recipients will see it (a room message with `room`, a direct one with
 * `to`) but without its id, which the store assigns; and the accounts to hold a direct message
 * for until they next log in.
 */
export type NewMessage =
  & Omit<MessageFrame, "type" | "id" | "offline" | "edited" | "deleted" | "reactions">
  & {
    pendingFor?: readonly number[];
    /** The author's account (a guest's message has none: it can be neither edited nor deleted by its author). */
    fromAccount?: number;
  };
// A reply's `quote` is not stored: every read gives the quote of the message answered as it is
// then (edited or deleted since), read with the page.

/** A stored message with what the store knows of it besides its frame. */
export type StoredMessage = MessageFrame & {
  /** The author's account, when an account sent it. */
  fromAccount?: number;
};

/** A conversation an account reads: a room, or its direct messages with one name. */
export type ReadPlace = { room: string } | { with: string };

/** Where an account stands in its conversations (counts stop at 1000). */
export interface UnreadState {
  rooms: { room: string; read: number; unread: number }[];
  /** Its direct conversations, the most recent first, each with its latest message. */
  conversations: { with: string; read: number; unread: number; last: MessageFrame }[];
}

/** Whose history a search may read: rooms by name, and the direct messages of a name. */
export interface SearchScope {
  rooms: readonly string[];
  /** The account name whose direct messages (sent and received) are searched too. */
  dmsOf?: string;
}

/**
 * Where the store put a message: its id (increasing across the whole store, so several server
 * processes can share one database) and its sequence number within its room or its pair of
 * direct-message names (1, 2, 3… with no gaps), so that a receiver that sees a gap knows to
 * refill it from the store.
 */
export interface Placed {
  id: number;
  seq: number;
}

/** A stored file's record. */
export interface FileRecord extends FileRef {
  ownerId: number;
  created: number;
}

/** Where a file is referenced: rooms, and the direct-message pairs (`dmKey`) it was sent in. */
export interface FileUses {
  rooms: string[];
  dmKeys: string[];
}

/** Where to read history from: a room, or the direct messages between two names. */
export type HistoryTarget = { room: string } | { between: [string, string] };

/** Accounts and their session tokens. */
export interface AccountStore {
  /** Creates an account; `undefined` when the name is taken (case-insensitively). */
  createUser(name: string, passwordHash: string, now: number): Promise<UserRecord | undefined>;
  /** The account of that name (case-insensitive). */
  getUser(name: string): Promise<UserRecord | undefined>;
  /** The account of that id. */
  getUserById(id: number): Promise<UserRecord | undefined>;
  /** Every account, by name. */
  listUsers(): Promise<UserRecord[]>;
  /** Replaces an account's password hash. */
  setPasswordHash(userId: number, passwordHash: string): Promise<void>;
  /** Disables or enables an account; disabling revokes its session tokens. */
  setDisabled(userId: number, disabled: boolean): Promise<void>;
  /** Makes an account a server administrator, or not. */
  setAdmin(userId: number, admin: boolean): Promise<void>;
  /** Deletes an account with its tokens, memberships and pending messages. */
  deleteUser(userId: number): Promise<void>;

  /** Stores a session token's hash. */
  createSession(userId: number, tokenHash: Uint8Array, now: number, expires: number): Promise<void>;
  /**
   * The account a live (unexpired) token hash belongs to. Pushes its expiry back to `expires`
   * (at most once a day: logging in by token is normally a read).
   */
  useSession(tokenHash: Uint8Array, now: number, expires: number): Promise<UserRecord | undefined>;
  /** Revokes one token. */
  deleteSession(tokenHash: Uint8Array): Promise<void>;
  /** Revokes every token of an account but `keep`. */
  deleteSessionsOf(userId: number, keep?: Uint8Array): Promise<void>;
}

/** Which rooms each account is in. */
export interface MembershipStore {
  /** The rooms an account is in, by name. */
  of(userId: number): Promise<string[]>;
  /**
   * The rooms of the account a session token belongs to (none for an unknown token), whatever
   * the token's expiry: called in the same turn as `accounts.useSession`, which decides whether
   * the token is good, so that a token login reads its account and rooms in one round trip.
   */
  ofSession(tokenHash: Uint8Array): Promise<string[]>;
  /** Records that an account is in a room. */
  add(userId: number, room: string): Promise<void>;
  /** Records that an account left a room. */
  remove(userId: number, room: string): Promise<void>;
}

/** Messages, history, and the direct messages waiting for an account's next login. */
export interface MessageStore {
  /**
   * Stores a message (and its pending deliveries), giving it its id and sequence number.
   * Resolves once committed.
   */
  append(message: NewMessage): Promise<Placed>;
  /** Up to `limit` messages before id `before` (all when undefined), oldest first. */
  history(
    target: HistoryTarget,
    before: number | undefined,
    limit: number,
  ): Promise<MessageFrame[]>;
  /**
   * Up to `limit` messages after id `after`, oldest first: history read forwards (for pages
   * around a message, and paging towards the present).
   */
  historyAfter(target: HistoryTarget, after: number, limit: number): Promise<MessageFrame[]>;
  /** Direct messages waiting for an account, oldest first (they stay until removed). */
  pendingFor(userId: number): Promise<MessageFrame[]>;
  /** Forgets direct messages waiting for an account (once they were delivered). */
  removePending(userId: number, messageIds: readonly number[]): Promise<void>;
  /** Forgets one direct message waiting for an account; whether it was still waiting. */
  takePending(userId: number, messageId: number): Promise<boolean>;
  /** Marks a stored direct message as waiting for an account's next login. */
  addPending(userId: number, messageId: number): Promise<void>;
  /** One message by id (deleted ones too, as tombstones). */
  get(id: number): Promise<StoredMessage | undefined>;
  /** Replaces a message's text, stamping when (its search entry follows). */
  edit(id: number, text: string, ts: number): Promise<void>;
  /** Deletes a message: its text and file go, a tombstone stays (so replies and history hold). */
  remove(id: number): Promise<void>;
  /**
   * Adds (`on`) or takes back a reaction of `who` (an account, `u:ID`) to a message.
   *
   * @returns the message's reactions after it, counted per emoji
   */
  react(id: number, emoji: string, who: string, on: boolean): Promise<Record<string, number>>;
  /**
   * Full-text search (every word must appear, in any order; words are matched as prefixes),
   * newest first, within `scope`; deleted messages never match.
   */
  search(words: readonly string[], scope: SearchScope, limit: number): Promise<MessageFrame[]>;
  /**
   * Indexes up to `limit` messages stored since the last call for search (a backend may index
   * after the fact, to keep appends cheap; a search indexes what is missing first, up to a
   * backend's bound). The server calls it every half second.
   *
   * @returns how many messages it looked at (0: up to date)
   */
  index(limit: number): Promise<number>;
  /**
   * Moves an account's read marker in a conversation forward to message `id` (never back).
   *
   * @returns the marker after it
   */
  markRead(userId: number, place: ReadPlace, id: number): Promise<number>;
  /**
   * An account's read state in `rooms` and in its `limit` most recent direct conversations
   * (`name` is the account's name).
   */
  unread(
    userId: number,
    name: string,
    rooms: readonly string[],
    limit: number,
  ): Promise<UnreadState>;
}

/** Uploaded files' records (the bytes live in the file service's folder). */
export interface FileStore {
  /** Records an uploaded file. */
  create(file: FileRecord): Promise<void>;
  /** A file's record. */
  get(id: string): Promise<FileRecord | undefined>;
  /** Where a file was sent. */
  uses(id: string): Promise<FileUses>;
  /** The bytes of the files an account owns. */
  bytesOwnedBy(userId: number): Promise<number>;
  /** Whether any file's record has that SHA-256 (so its blob must stay). */
  blobInUse(sha256: string): Promise<boolean>;
  /**
   * Forgets files created before `before` (all of them), and files created before `orphanBefore`
   * that no message references.
   *
   * @returns the SHA-256 of each blob no remaining file uses, to delete from disk
   */
  expire(before: number, orphanBefore: number): Promise<string[]>;
}

/** A room's stored settings. */
export interface RoomRecord {
  /** The room's name, in the case of whoever first used it. */
  name: string;
  /** The account that created the room; none for rooms the server or a guest created. */
  ownerId?: number | undefined;
  topic?: string | undefined;
  /** Who set the topic. */
  topicBy?: string | undefined;
  /** `+i`: only invited users (and operators and above) may join. */
  inviteOnly: boolean;
  /** `+m`: only operators and above may send. */
  moderated: boolean;
}

/**
 * Whom a ban or a mute applies to: an account, or a guest by its name (case-folded) and its
 * address.
 */
export type Target = { userId: number } | { name: string; ip?: string };

/** A ban or a mute in one room. */
export interface Restriction {
  kind: "ban" | "mute";
  target: Target;
  /** Who imposed it (a name). */
  by: string;
  reason?: string | undefined;
  ts: number;
}

/** One line of the audit log. */
export interface AuditEntry {
  id: number;
  ts: number;
  /** Who acted: a name, or `admin` for the command line. */
  actor: string;
  /** What was done: `kick`, `ban`, `topic`, `passwd`, `disable`… */
  action: string;
  room?: string | undefined;
  /** Whom it was done to (a name). */
  target?: string | undefined;
  /** The reason, the topic or the modes. */
  detail?: string | undefined;
}

/**
 * An administrator's change to an account, made outside the server (the `parley user` command):
 * servers sharing the database follow these to apply them to live sessions.
 */
export interface AdminEvent {
  id: number;
  ts: number;
  /** `revoke`: end the account's sessions (password changed, disabled, deleted); `role`: its admin flag changed. */
  kind: "revoke" | "role";
  userId: number;
  /** The account's name (it may be deleted by the time the event is read). */
  name: string;
}

/** Rooms' settings, roles, bans, mutes and invitations; the audit log; the administrators' feed. */
export interface ModerationStore {
  /**
   * A room's settings, creating them (owned by `ownerId`) when nobody had used the room before.
   * `created` says whether this call created it.
   */
  claimRoom(
    name: string,
    ownerId: number | undefined,
  ): Promise<{ room: RoomRecord; created: boolean }>;
  /** Sets (or with `undefined`, clears) a room's topic. */
  setTopic(room: string, topic: string | undefined, by: string): Promise<void>;
  /** Sets a room's modes. */
  setModes(room: string, modes: { inviteOnly: boolean; moderated: boolean }): Promise<void>;
  /** The accounts that are operators of a room. */
  operators(room: string): Promise<number[]>;
  /** Names an account operator of a room, or removes it. */
  setOperator(room: string, userId: number, operator: boolean): Promise<void>;
  /** A room's bans and mutes. */
  restrictions(room: string): Promise<Restriction[]>;
  /** Adds a ban or mute (replacing one of the same kind for the same account or name). */
  restrict(room: string, restriction: Restriction): Promise<void>;
  /** Lifts a ban or mute of an account, or of a guest name; whether there was one. */
  unrestrict(room: string, kind: Restriction["kind"], target: Target): Promise<boolean>;
  /** Invites an account or a guest name into a room (once). */
  invite(room: string, target: Target): Promise<void>;
  /** Uses up an invitation; whether there was one. */
  takeInvite(room: string, target: Target): Promise<boolean>;
  /** Records an action in the audit log. */
  audit(entry: Omit<AuditEntry, "id">): Promise<void>;
  /** The latest `limit` entries of the audit log before id `before` (all when undefined), newest first. */
  auditLog(limit: number, before?: number): Promise<AuditEntry[]>;
  /** Records an administrator's change to an account for running servers to apply. */
  postAdminEvent(event: Omit<AdminEvent, "id">): Promise<number>;
  /** The administrators' changes after id `after`, oldest first. */
  adminEventsAfter(after: number): Promise<AdminEvent[]>;
  /** The id of the newest administrators' change (0 when none). */
  lastAdminEvent(): Promise<number>;
  /** Writes a consistent copy of the whole database to `path` while it is in use. */
  backup(path: string): Promise<void>;
}

/**
 * Everything that outlives a connection, one part per concern. Dispose it to finish pending
 * commits and close.
 */
export interface Store extends AsyncDisposable {
  readonly accounts: AccountStore;
  readonly memberships: MembershipStore;
  readonly messages: MessageStore;
  readonly files: FileStore;
  readonly moderation: ModerationStore;
}
