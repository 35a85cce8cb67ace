/**
 * The web client's state and the pure functions that change it: conversations (rooms and
 * direct messages), their messages and notices, unread counts and mentions. No DOM, no I/O, so
 * it is unit-tested under Deno (tests/web_model_test.ts).
 *
 * @module
 */

import type { FileRef, MessageFrame } from "../../protocol/frames.ts";
import { nameKey } from "../../protocol/names.ts";

/** A chat message as the list shows it. */
export interface ChatMessage {
  kind: "message";
  /** Stable list key: `m<id>` once stored, `p<n>` while pending. */
  key: string;
  /** The server's id; absent while the send is pending or after it failed. */
  id?: number;
  from: string;
  text: string;
  /** Server time (ms since the epoch); the local clock while pending. */
  ts: number;
  action: boolean;
  /** A direct message that waited while this account was offline. */
  offline: boolean;
  /** Whether it names the current user (and is not from them). */
  mention: boolean;
  status: "sent" | "pending" | "failed";
  /** Why sending failed. */
  error?: string;
  /** An attached file (downloaded over HTTP with the session token). */
  file?: FileRef;
}

/** A line about the conversation rather than in it: joins, leaves, renames, server notices. */
export interface Notice {
  kind: "notice";
  key: string;
  text: string;
  ts: number;
  /** For presence notices: who joined (so a guest's join and rename can read as one). */
  joined?: string;
}

/** A file on its way to the server (then sent as a message), or an upload that failed. */
export interface Upload {
  /** Unique for the page's life. */
  key: string;
  /** The conversation the message goes to (kept if the reader moves on meanwhile). */
  convKey: string;
  name: string;
  /** In bytes. */
  size: number;
  /** Bytes sent so far. */
  loaded: number;
  /** `failed`: refused or broken; `error` says why, and it can be tried again. */
  status: "uploading" | "failed";
  error?: string;
  /** The message text sent with the file (possibly empty). */
  text: string;
  action: boolean;
}

/** One entry of a conversation's list. */
export type Item = ChatMessage | Notice;

/** A room or a direct-message conversation with one other user. */
export interface Conversation {
  /** `#room` (lower case) for rooms, `@name` (lower case) for direct messages. */
  key: string;
  kind: "room" | "dm";
  /** As shown: the room's canonical name, or the other user's name. */
  name: string;
  /** Oldest first. */
  items: Item[];
  /** Whether the server has older messages than the first one held. */
  more: boolean;
  /** Whether an older page is being fetched. */
  loading: boolean;
  /** Whether the latest history page was asked for (direct messages are fetched on open). */
  fetched: boolean;
  /** Messages from others not yet seen. */
  unread: number;
  /** How many of the unread ones mention the current user. */
  mentions: number;
  /** Rooms: who is in it (online), sorted case-insensitively. */
  members: string[];
}

/** The state of the link to the server, as the status bar shows it. */
export type LinkStatus =
  | { kind: "offline" }
  | { kind: "connecting"; attempt: number }
  | { kind: "online" }
  | { kind: "waiting"; attempt: number; retryAt: number; reason: string };

/** Everything the UI renders. */
export interface ChatState {
  /** `login`: the form; `chat`: the chat screen (possibly reconnecting). */
  screen: "login" | "chat";
  /** The current user's name ("" before the server named us). */
  me: string;
  /** Whether the current user is logged in to an account (not a guest). */
  account: boolean;
  /** Conversations by key. */
  conversations: Readonly<Record<string, Conversation>>;
  /** The key of the conversation shown, if any. */
  active: string | undefined;
  link: LinkStatus;
  /** The login form's busy flag and error. */
  loginBusy: boolean;
  loginError: string | undefined;
  /** False once the server said it requires an account. */
  guestsAllowed: boolean;
  /** Whether desktop notifications are on. */
  notify: boolean;
  /** A short-lived line for the status bar (errors without a conversation). */
  toast: string | undefined;
  /** The latest line for screen readers (a polite live region). */
  announcement: string;
  /** Files being uploaded (or whose upload failed), oldest first. */
  uploads: readonly Upload[];
}

/** The state before anything happened. */
export function initialState(): ChatState {
  return {
    screen: "login",
    me: "",
    account: false,
    conversations: {},
    active: undefined,
    link: { kind: "offline" },
    loginBusy: false,
    loginError: undefined,
    guestsAllowed: true,
    notify: false,
    toast: undefined,
    announcement: "",
    uploads: [],
  };
}

/** The conversation key of a room. */
export function roomKey(room: string): string {
  return nameKey(room);
}

/** The conversation key of the direct messages with `name`. */
export function dmConversationKey(name: string): string {
  return "@" + nameKey(name);
}

/** The key of the conversation a message belongs to, seen by `me`. */
export function conversationOf(
  frame: MessageFrame,
  me: string,
): { key: string; name: string } {
  if (frame.room !== undefined) {
    return { key: roomKey(frame.room), name: frame.room };
  }
  const other = nameKey(frame.from) === nameKey(me) ? (frame.to ?? frame.from) : frame.from;
  return { key: dmConversationKey(other), name: other };
}

/** Whether `text` names `me`: `me` or `@me` as a whole word, any case. */
export function mentions(text: string, me: string): boolean {
  if (me === "") return false;
  // Names are [A-Za-z0-9_-] only: nothing to escape but `-`, which is literal outside [].
  return new RegExp(`(^|[^A-Za-z0-9_-])@?${me}(?![A-Za-z0-9_-])`, "i").test(
    text,
  );
}

/** A received message as an item. */
export function fromFrame(frame: MessageFrame, me: string): ChatMessage {
  const mine = nameKey(frame.from) === nameKey(me);
  const msg: ChatMessage = {
    kind: "message",
    key: `m${frame.id}`,
    id: frame.id,
    from: frame.from,
    text: frame.text,
    ts: frame.ts,
    action: frame.action === true,
    offline: frame.offline === true,
    mention: !mine && mentions(frame.text, me),
    status: "sent",
  };
  if (frame.file !== undefined) msg.file = frame.file;
  return msg;
}

/** An empty conversation. */
export function newConversation(
  kind: "room" | "dm",
  name: string,
): Conversation {
  return {
    key: kind === "room" ? roomKey(name) : dmConversationKey(name),
    kind,
    name,
    items: [],
    more: false,
    loading: false,
    fetched: false,
    unread: 0,
    mentions: 0,
    members: [],
  };
}

/** The id of the first stored message, if any. */
export function firstId(conv: Conversation): number | undefined {
  for (const item of conv.items) {
    if (item.kind === "message" && item.id !== undefined) return item.id;
  }
  return undefined;
}

/**
 * Merges stored messages (oldest first) into `items`: each message not already there (by id)
 * goes before the first held message with a larger id, else at the end. Notices keep their
 * places. A failed or pending local copy of one of `incoming` (same sender, text and attached
 * file) is replaced by it: its send reached the server although the reply was lost.
 *
 * @returns a new array (or `items` itself when nothing changed)
 */
export function mergeMessages(
  items: readonly Item[],
  incoming: readonly ChatMessage[],
): Item[] {
  const have = new Set<number>();
  for (const item of items) {
    if (item.kind === "message" && item.id !== undefined) have.add(item.id);
  }
  const fresh = incoming.filter((m) => m.id !== undefined && !have.has(m.id));
  if (fresh.length === 0) return items as Item[];
  let out = [...items];
  for (const m of fresh) {
    const local = out.findIndex((i) =>
      i.kind === "message" && i.status !== "sent" && i.from === m.from &&
      i.text === m.text && i.file?.id === m.file?.id
    );
    if (local >= 0) out = out.filter((_, n) => n !== local);
    const at = out.findIndex((i) => i.kind === "message" && i.id !== undefined && i.id > m.id!);
    if (at < 0) out.push(m);
    else out.splice(at, 0, m);
  }
  return out;
}

/** Sorts names case-insensitively. */
export function sortNames(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => nameKey(a) < nameKey(b) ? -1 : nameKey(a) > nameKey(b) ? 1 : 0);
}

/** `members` with `name` added (once) or removed, sorted. */
export function withMember(
  members: readonly string[],
  name: string,
  present: boolean,
): string[] {
  const rest = members.filter((m) => nameKey(m) !== nameKey(name));
  return present ? sortNames([...rest, name]) : rest;
}

/** Rooms first (by name), then direct messages (by name). */
export function sortedConversations(state: ChatState): Conversation[] {
  return Object.values(state.conversations).sort((a, b) =>
    a.kind !== b.kind ? (a.kind === "room" ? -1 : 1) : a.key < b.key ? -1 : a.key > b.key ? 1 : 0
  );
}

/** The total of unread messages, for the page title. */
export function totalUnread(state: ChatState): number {
  let n = 0;
  for (const c of Object.values(state.conversations)) n += c.unread;
  return n;
}

/** Whether `name` is in any room we know the members of (our view of "online"). */
export function isOnline(state: ChatState, name: string): boolean {
  const key = nameKey(name);
  return Object.values(state.conversations).some((c) =>
    c.kind === "room" && c.members.some((m) => nameKey(m) === key)
  );
}

/** What a composer line means. */
export type ComposerCommand =
  | { kind: "say"; text: string; action: boolean }
  | { kind: "join"; room: string }
  | { kind: "part"; room: string | undefined }
  | { kind: "dm"; to: string; text: string }
  | { kind: "error"; message: string };

/**
 * Reads what was typed in the composer: plain text, `//text` (a message starting with `/`),
 * `/me`, `/join`, `/part` (`/leave`), `/msg` (`/dm`). Other `/words` are refused so typos are
 * not sent to everyone.
 *
 * @example
 * ```ts
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { parseComposer } from "./model.ts";
 * assert.deepEqual(parseComposer("/me waves"), { kind: "say", text: "waves", action: true });
 * ```
 */
export function parseComposer(input: string): ComposerCommand {
  if (!input.startsWith("/")) {
    return { kind: "say", text: input, action: false };
  }
  if (input.startsWith("//")) {
    return { kind: "say", text: input.slice(1), action: false };
  }
  const m = /^\/(\S+)(?:\s+([\s\S]*))?$/.exec(input);
  const verb = (m?.[1] ?? "").toLowerCase();
  const rest = (m?.[2] ?? "").trim();
  switch (verb) {
    case "me":
      return rest === ""
        ? { kind: "error", message: "Type what you do after /me" }
        : { kind: "say", text: rest, action: true };
    case "join":
      return rest === ""
        ? { kind: "error", message: "Type a room after /join" }
        : { kind: "join", room: rest.startsWith("#") ? rest : `#${rest}` };
    case "part":
    case "leave":
      return {
        kind: "part",
        room: rest === "" ? undefined : rest.startsWith("#") ? rest : `#${rest}`,
      };
    case "msg":
    case "dm": {
      const dm = /^(\S+)\s+([\s\S]+)$/.exec(rest);
      return dm === null
        ? { kind: "error", message: "Use /msg NAME TEXT" }
        : { kind: "dm", to: dm[1]!, text: dm[2]! };
    }
    default:
      return {
        kind: "error",
        message: `Unknown command /${verb}: use /me, /join, /part or /msg (// sends a leading /)`,
      };
  }
}
