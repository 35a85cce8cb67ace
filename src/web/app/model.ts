/**
 * The web client's state and the pure functions that change it: conversations (rooms and
 * direct messages), their messages and notices, unread counts and mentions. No DOM, no I/O, so
 * it is unit-tested under Deno (tests/web_model_test.ts).
 *
 * @module
 */

import { ChatError } from "../../protocol/errors.ts";
import type {
  ClientFrame,
  FileRef,
  MessageFrame,
  ModerationAction,
  Role,
} from "../../protocol/frames.ts";
import { REACTIONS } from "../../protocol/frames.ts";
import { nameKey } from "../../protocol/names.ts";
import { parseTextLine } from "../../protocol/text_mode.ts";
import type { TextCommand } from "../../protocol/text_mode.ts";

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
  /** The id of the message this one answers. */
  replyTo?: number;
  /** When its author last edited it (ms since the epoch). */
  edited?: number;
  /** Deleted: the text is gone (the row stays so that replies still point somewhere). */
  deleted?: true;
  /** Reactions counted per emoji (only emoji someone used). */
  reactions?: Readonly<Record<string, number>>;
  /** The emoji this session reacted with (the server does not say whose reactions they are). */
  mine?: readonly string[];
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
  /** Bytes the server says it has received (`upload_progress`), never the browser's count. */
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
  /** Accounts: the read marker (the last message id read, on any device; 0: none). */
  read: number;
  /** The marker when the conversation was opened with unread messages: the "new messages" line. */
  divider: number | undefined;
  /** Rooms: who is in it (online), sorted case-insensitively. */
  members: string[];
  /** Rooms: the topic (`""` for none). */
  topic: string;
  /** Rooms: the modes (`"+i"`, `"+m"`, `"+im"`; `""` for none). */
  modes: string;
  /** Rooms: the members with a role, by name key (`nameKey`), as `join` and `who` say. */
  roles: Readonly<Record<string, Role>>;
  /** Rooms: members seen muted here (by `mute` events; keys), so the menu offers Unmute. */
  muted: readonly string[];
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
  /**
   * Whether the login form asks for the server's password (`--server-password`): once the
   * server refused a hello for want of it, or one is kept for this tab.
   */
  serverPasswordWanted: boolean;
  /** Whether a kept session token waits for the server's password (the login form resumes it). */
  savedSession: boolean;
  /** Whether desktop notifications are on. */
  notify: boolean;
  /** A short-lived line for the status bar (errors without a conversation). */
  toast: string | undefined;
  /** The latest line for screen readers (a polite live region). */
  announcement: string;
  /** Files being uploaded (or whose upload failed), oldest first. */
  uploads: readonly Upload[];
  /** The message the composer answers, if any (cleared when sent or cancelled). */
  replying: { convKey: string; id: number } | undefined;
  /** A message to scroll to and highlight (a search result opened); `seq` makes each new. */
  focus: { convKey: string; id: number; seq: number } | undefined;
  /** Who is typing, by conversation key: names with when the line expires (ms). */
  typing: Readonly<Record<string, readonly Typist[]>>;
  /** The server announced that it is going away (`shutdown`); cleared once connected again. */
  shutdown: { reason: string; permanent: boolean } | undefined;
  /** The page is the copy the service worker saved: the server could not be reached. */
  savedApp: boolean;
  /** A search typed as `/search`, for the sidebar to run and show; `seq` makes each new. */
  searchAsk: { text: string; room?: string; with?: string; seq: number } | undefined;
}

/**
 * What the connection banner says, or undefined when there is no banner: the server going
 * away as it announced (restarting, or shut down for good), the saved app shown while the
 * server cannot be reached, or a lost connection; with the countdown to the next attempt.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bannerText } from "./model.ts";
 * const waiting = { kind: "waiting" as const, attempt: 1, retryAt: 3000, reason: "closed" };
 * const restart = { reason: "the server is shutting down", permanent: false };
 * assert.equal(
 *   bannerText(waiting, restart, false, 1000),
 *   "The server is restarting (the server is shutting down). Reconnecting in 2 s…",
 * );
 * ```
 */
export function bannerText(
  link: LinkStatus,
  shutdown: ChatState["shutdown"],
  savedApp: boolean,
  now: number,
): string | undefined {
  if (link.kind === "online") return undefined;
  const why = shutdown === undefined || shutdown.reason === "" ? "" : ` (${shutdown.reason})`;
  if (shutdown?.permanent) return `The server has shut down${why}. It said it will not be back.`;
  if (link.kind === "offline") return undefined;
  const seconds = link.kind === "waiting" ? Math.max(0, Math.ceil((link.retryAt - now) / 1000)) : 0;
  const next = seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…";
  if (shutdown !== undefined) return `The server is restarting${why}. ${next}`;
  if (savedApp) {
    return `Offline: showing the saved app; ${next.charAt(0).toLowerCase()}${next.slice(1)}`;
  }
  if (link.kind === "connecting") return link.attempt === 0 ? "Connecting to the server…" : next;
  return `Disconnected (${link.reason}). ${next}`;
}

/** Someone typing in a conversation, shown until `until` (the local clock, ms). */
export interface Typist {
  name: string;
  until: number;
}

/** The line under the message list: "alice is typing…", "alice and bob are typing…". */
export function typingLine(typists: readonly Typist[] | undefined, now: number): string {
  const names = (typists ?? []).filter((t) => t.until > now).map((t) => t.name);
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
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
    serverPasswordWanted: false,
    savedSession: false,
    notify: false,
    toast: undefined,
    announcement: "",
    uploads: [],
    replying: undefined,
    focus: undefined,
    typing: {},
    shutdown: undefined,
    savedApp: false,
    searchAsk: undefined,
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
  if (typeof frame.replyTo === "number") msg.replyTo = frame.replyTo;
  if (typeof frame.edited === "number") msg.edited = frame.edited;
  if (frame.deleted === true) deleteIn(msg);
  const reactions = reactionsFrom(frame.reactions);
  if (reactions !== undefined) msg.reactions = reactions;
  return msg;
}

function deleteIn(msg: ChatMessage): void {
  msg.deleted = true;
  msg.text = "";
  msg.mention = false;
  delete msg.file;
  delete msg.reactions;
  delete msg.mine;
}

/** Reactions as the server sent them, keeping only known emoji with positive counts. */
export function reactionsFrom(value: unknown): Record<string, number> | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const out: Record<string, number> = {};
  for (const emoji of REACTIONS) {
    const n = (value as Record<string, unknown>)[emoji];
    if (typeof n === "number" && n > 0) out[emoji] = n;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** What happened to a stored message: an edit, a deletion, new reaction counts. */
export type MessageChange =
  | { kind: "edited"; text: string; edited: number; me: string }
  | { kind: "deleted" }
  | { kind: "reactions"; reactions: unknown; mine?: readonly string[] };

/**
 * Applies `change` to the message with `id` in `items`.
 *
 * @returns a new array, or `items` itself when no message has that id
 */
export function changeMessage(
  items: readonly Item[],
  id: number,
  change: MessageChange,
): Item[] {
  const at = items.findIndex((i) => i.kind === "message" && i.id === id);
  if (at < 0) return items as Item[];
  const msg: ChatMessage = { ...(items[at] as ChatMessage) };
  if (change.kind === "edited") {
    if (msg.deleted) return items as Item[];
    msg.text = change.text;
    msg.edited = change.edited;
    msg.mention = nameKey(msg.from) !== nameKey(change.me) && mentions(change.text, change.me);
  } else if (change.kind === "deleted") {
    deleteIn(msg);
  } else {
    if (msg.deleted) return items as Item[];
    const reactions = reactionsFrom(change.reactions);
    if (reactions === undefined) delete msg.reactions;
    else msg.reactions = reactions;
    const mine = (change.mine ?? msg.mine ?? []).filter((e) => (reactions?.[e] ?? 0) > 0);
    if (mine.length === 0) delete msg.mine;
    else msg.mine = mine;
  }
  const out = [...items];
  out[at] = msg;
  return out;
}

/** The message with `id` in `items`, if it is held. */
export function findMessage(items: readonly Item[], id: number): ChatMessage | undefined {
  return items.find((i): i is ChatMessage => i.kind === "message" && i.id === id);
}

/** The line a reply quotes: the replied message's sender and first line, or "a message". */
export function quoteOf(items: readonly Item[], id: number): string {
  const msg = findMessage(items, id);
  if (msg === undefined) return "a message";
  if (msg.deleted) return `${msg.from}: message deleted`;
  const line = msg.text.split("\n").find((l) => l.trim() !== "") ??
    (msg.file === undefined ? "" : `(file ${msg.file.name})`);
  const short = line.length > 120 ? `${line.slice(0, 119)}…` : line;
  return `${msg.from}: ${short}`;
}

/** Whether `me` may edit `msg`: an account's own stored message that is not deleted. */
export function canEdit(msg: ChatMessage, me: string, account: boolean): boolean {
  return account && msg.id !== undefined && !msg.deleted && nameKey(msg.from) === nameKey(me);
}

/**
 * Whether `me` may delete `msg`: an account its own messages; operators and above any message
 * in their room, administrators (shown as a room role) any message there.
 */
export function canDelete(
  conv: Conversation,
  msg: ChatMessage,
  me: string,
  account: boolean,
): boolean {
  if (!account || msg.id === undefined || msg.deleted) return false;
  return nameKey(msg.from) === nameKey(me) || canModerate(conv, me);
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
    read: 0,
    divider: undefined,
    members: [],
    topic: "",
    modes: "",
    roles: {},
    muted: [],
  };
}

/** The id of the latest stored message, if any. */
export function lastId(conv: Conversation): number | undefined {
  for (let i = conv.items.length - 1; i >= 0; i--) {
    const item = conv.items[i]!;
    if (item.kind === "message" && item.id !== undefined) return item.id;
  }
  return undefined;
}

/**
 * The unread count and mentions once the marker is at `read`: the held messages of others after
 * it (never more than `before`, the count as it was, since older messages may not be held).
 */
export function unreadAfter(
  conv: Conversation,
  read: number,
  me: string,
  before: number,
): { unread: number; mentions: number } {
  let unread = 0;
  let mentions = 0;
  for (const item of conv.items) {
    if (item.kind !== "message" || item.id === undefined || item.id <= read) continue;
    if (nameKey(item.from) === nameKey(me)) continue;
    unread++;
    if (item.mention) mentions++;
  }
  return { unread: Math.min(unread, before), mentions: Math.min(mentions, unread, before) };
}

/**
 * The id of the first unread message, where the "new messages" line goes: the first message of
 * others after the read marker, or (without one) the `unread`-th last message of others.
 */
export function firstUnread(conv: Conversation, me: string): number | undefined {
  if (conv.unread <= 0) return undefined;
  const others = conv.items.filter((i): i is ChatMessage =>
    i.kind === "message" && i.id !== undefined && nameKey(i.from) !== nameKey(me)
  );
  if (conv.read > 0) return others.find((m) => m.id! > conv.read)?.id;
  return others.at(-Math.min(conv.unread, others.length))?.id;
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
  const changed = incoming.filter((m) => m.id !== undefined && have.has(m.id));
  let out = [...items];
  let replaced = false;
  for (const m of changed) {
    // A later page (or a page asked for again) may carry edits, deletions and reactions.
    const at = out.findIndex((i) => i.kind === "message" && i.id === m.id);
    const held = out[at] as ChatMessage;
    if (
      held.text === m.text && held.edited === m.edited && held.deleted === m.deleted &&
      sameReactions(held.reactions, m.reactions)
    ) continue;
    const mine = (held.mine ?? []).filter((e) => (m.reactions?.[e] ?? 0) > 0);
    out[at] = mine.length === 0 ? m : { ...m, mine };
    replaced = true;
  }
  if (fresh.length === 0) return replaced ? out : items as Item[];
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

function sameReactions(
  a: Readonly<Record<string, number>> | undefined,
  b: Readonly<Record<string, number>> | undefined,
): boolean {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b ?? {}).length && ka.every((k) => a![k] === b?.[k]);
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

// ---- roles and moderation ----

const RANKS: Readonly<Record<Role | "member", number>> = { member: 0, op: 1, owner: 2, admin: 3 };

/** What a role is called in the member list. */
export const ROLE_LABELS: Readonly<Record<Role, string>> = {
  admin: "admin",
  owner: "owner",
  op: "op",
};

/** The role of `name` in a room, if any. */
export function roleOf(conv: Conversation, name: string): Role | undefined {
  return Object.hasOwn(conv.roles, nameKey(name)) ? conv.roles[nameKey(name)] : undefined;
}

/** A room's roles from a `join`/`who` ack (`{ alice: "owner" }`), keyed by name key. */
export function rolesFrom(roles: unknown): Record<string, Role> {
  const out: Record<string, Role> = {};
  if (typeof roles !== "object" || roles === null) return out;
  for (const [name, role] of Object.entries(roles)) {
    if (role === "admin" || role === "owner" || role === "op") out[nameKey(name)] = role;
  }
  return out;
}

/** Whether `me` may set the topic and modes of the room (an operator or above). */
export function canModerate(conv: Conversation, me: string): boolean {
  return conv.kind === "room" && RANKS[roleOf(conv, me) ?? "member"] >= RANKS.op;
}

/** A moderation menu entry. */
export interface MenuAction {
  action: ModerationAction;
  /** As the menu shows it. */
  label: string;
  /** Whether to ask for an optional reason first (kick and ban). */
  reason: boolean;
}

/**
 * What `me` may do to `target` in a room: nothing unless `me` is an operator or above and
 * `target` ranks lower (the server's rule); Kick, Ban, Mute or Unmute; and for the owner and
 * administrators, Make operator or Remove operator.
 *
 * @example
 * ```ts
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { menuActions, newConversation } from "./model.ts";
 * const den = { ...newConversation("room", "#den"), roles: { alice: "owner" as const } };
 * assert.deepEqual(menuActions(den, "alice", "bob").map((a) => a.action), [
 *   "kick", "ban", "mute", "op",
 * ]);
 * assert.deepEqual(menuActions(den, "bob", "alice"), []);
 * ```
 */
export function menuActions(conv: Conversation, me: string, target: string): MenuAction[] {
  if (conv.kind !== "room" || nameKey(me) === nameKey(target)) return [];
  const mine = RANKS[roleOf(conv, me) ?? "member"];
  const role = roleOf(conv, target);
  if (mine < RANKS.op || RANKS[role ?? "member"] >= mine) return [];
  const muted = conv.muted.includes(nameKey(target));
  const actions: MenuAction[] = [
    { action: "kick", label: "Kick", reason: true },
    { action: "ban", label: "Ban", reason: true },
    muted
      ? { action: "unmute", label: "Unmute", reason: false }
      : { action: "mute", label: "Mute", reason: false },
  ];
  if (mine >= RANKS.owner) {
    actions.push(
      role === "op"
        ? { action: "deop", label: "Remove operator", reason: false }
        : { action: "op", label: "Make operator", reason: false },
    );
  }
  return actions;
}

/** What the modes mean, for the room header: `+i` invite only, `+m` moderated. */
export function modeBadges(modes: string): string[] {
  const out: string[] = [];
  if (modes.includes("i")) out.push("invite only");
  if (modes.includes("m")) out.push("moderated");
  return out;
}

/** The composer's moderation commands, read by the server's own text-mode grammar. */
const MODERATION_VERBS = new Set([
  "topic",
  "kick",
  "ban",
  "unban",
  "mute",
  "unmute",
  "op",
  "deop",
  "invite",
  "mode",
  "wall",
]);

/** A moderation request typed in the composer. */
export type ModerationRequest = Extract<
  ClientFrame,
  { type: ModerationAction | "topic" | "mode" | "wall" }
>;

/** What a composer line means. */
export type ComposerCommand =
  | { kind: "say"; text: string; action: boolean }
  | { kind: "request"; frame: ModerationRequest }
  | { kind: "join"; room: string }
  | { kind: "part"; room: string | undefined }
  | { kind: "dm"; to: string; text: string }
  | { kind: "command"; command: TextCommand }
  | { kind: "error"; message: string };

/**
 * Reads what was typed in the composer: plain text, `//text` (a message starting with `/`),
 * `/me`, `/join`, `/part` (`/leave`), `/msg` (`/dm`), and the moderation commands (`/topic`,
 * `/kick`, `/ban`, `/unban`, `/mute`, `/unmute`, `/op`, `/deop`, `/invite`, `/mode`, `/wall`),
 * read as the server's text mode reads them, acting on `room` (the open room) unless they name
 * one; every other command of text mode comes back as `command` (`/nick`, `/who`, `/help`…).
 * Unknown `/words` are refused so typos are not sent to everyone.
 *
 * @example
 * ```ts
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { parseComposer } from "./model.ts";
 * assert.deepEqual(parseComposer("/me waves"), { kind: "say", text: "waves", action: true });
 * ```
 */
export function parseComposer(input: string, room?: string): ComposerCommand {
  if (!input.startsWith("/")) {
    return { kind: "say", text: input, action: false };
  }
  if (input.startsWith("//")) {
    return { kind: "say", text: input.slice(1), action: false };
  }
  const m = /^\/(\S+)(?:\s+([\s\S]*))?$/.exec(input);
  const verb = (m?.[1] ?? "").toLowerCase();
  const rest = (m?.[2] ?? "").trim();
  if (MODERATION_VERBS.has(verb)) {
    try {
      const frame = parseTextLine(input, room);
      if (frame !== undefined && MODERATION_VERBS.has(frame.type)) {
        return { kind: "request", frame: frame as ModerationRequest };
      }
    } catch (error) {
      if (error instanceof ChatError) {
        return { kind: "error", message: error.message.replace(/; \/join one first$/, "") };
      }
      throw error;
    }
  }
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
      // Every other command of the server's text mode, read by its own grammar.
      try {
        const command = parseTextLine(input, room);
        if (command !== undefined) return { kind: "command", command };
        return { kind: "error", message: "Type a command after /" };
      } catch (error) {
        if (!(error instanceof ChatError)) throw error;
        if (error.code === "unknown_command") {
          return {
            kind: "error",
            message: `Unknown command /${verb.slice(0, 32)}: type /help for the list ` +
              "(start with // to send a line beginning with /)",
          };
        }
        return { kind: "error", message: error.message.replace(/; \/join one first$/, "") };
      }
  }
}
