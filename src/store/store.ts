/**
 * The storage interface: accounts, session tokens, rooms, memberships, messages and offline
 * delivery. The embedded SQLite implementation is the default; others (Postgres) come later
 * behind the same interface.
 *
 * Calls are synchronous and small: each is one indexed statement or one short transaction.
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
}

/**
 * A message to store: the message as recipients see it (a room message with `room`, a direct one
 * with `to`), and the accounts to hold a direct message for until they next log in.
 */
export type NewMessage = Omit<MessageFrame, "type" | "offline"> & { pendingFor?: number[] };

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

/** Storage for everything that outlives a connection. */
export interface Store extends Disposable {
  /** Creates an account; `undefined` when the name is taken (case-insensitively). */
  createUser(name: string, passwordHash: string, now: number): UserRecord | undefined;
  /** The account of that name (case-insensitive). */
  getUser(name: string): UserRecord | undefined;
  /** The account of that id. */
  getUserById(id: number): UserRecord | undefined;
  /** Every account, by name. */
  listUsers(): UserRecord[];
  /** Replaces an account's password hash. */
  setPasswordHash(userId: number, passwordHash: string): void;
  /** Disables or enables an account; disabling ends its sessions. */
  setDisabled(userId: number, disabled: boolean): void;
  /** Deletes an account with its sessions, memberships and pending messages. */
  deleteUser(userId: number): void;

  /** Stores a session token's hash. */
  createSession(userId: number, tokenHash: Uint8Array, now: number, expires: number): void;
  /**
   * The account a live (unexpired) token hash belongs to. Pushes its expiry back to `expires`
   * (at most once a day: logging in by token is normally a read).
   */
  useSession(tokenHash: Uint8Array, now: number, expires: number): UserRecord | undefined;
  /** Revokes one token. */
  deleteSession(tokenHash: Uint8Array): void;
  /** Revokes every token of an account but `keep`. */
  deleteSessionsOf(userId: number, keep?: Uint8Array): void;

  /** The rooms an account is in, as stored. */
  memberships(userId: number): string[];
  /** Records that an account is in a room. */
  addMembership(userId: number, room: string): void;
  /** Records that an account left a room. */
  removeMembership(userId: number, room: string): void;

  /** The highest message id stored (0 when none). */
  lastMessageId(): number;
  /** Appends messages (and their pending deliveries) in one transaction. */
  appendMessages(messages: readonly NewMessage[]): void;
  /** Up to `limit` messages before id `before` (all when undefined), oldest first. */
  history(target: HistoryTarget, before: number | undefined, limit: number): MessageFrame[];
  /** Direct messages waiting for an account, oldest first (they stay until removed). */
  pendingFor(userId: number): MessageFrame[];
  /** Forgets direct messages waiting for an account (once they were delivered). */
  removePending(userId: number, messageIds: readonly number[]): void;
  /** Forgets one direct message waiting for an account; whether it was still waiting. */
  takePendingMessage(userId: number, messageId: number): boolean;
  /** Marks a stored direct message as waiting for an account's next login. */
  addPending(userId: number, messageId: number): void;

  /** Records an uploaded file. */
  createFile(file: FileRecord): void;
  /** A file's record. */
  getFile(id: string): FileRecord | undefined;
  /** Where a file was sent. */
  fileUses(id: string): FileUses;
  /** The bytes of the files an account owns. */
  bytesOwnedBy(userId: number): number;
  /** Whether any file's record has that SHA-256 (so its blob must stay). */
  blobInUse(sha256: string): boolean;
  /**
   * Forgets files created before `before` (all of them), and files created before `orphanBefore`
   * that no message references.
   *
   * @returns the SHA-256 of each blob no remaining file uses, to delete from disk
   */
  expireFiles(before: number, orphanBefore: number): string[];
}
