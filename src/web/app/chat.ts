/// <reference lib="dom" />
/**
 * The web client's controller: owns the {@linkcode Link} and the {@linkcode StateStore}, sets
 * the session up on every new link (hello, then login by token, password or as a guest, then the
 * rooms), turns server events into state, and offers the actions the components call.
 *
 * @module
 */

import type {
  DeletedFrame,
  EditedFrame,
  FileRef,
  HistoryFrame,
  MessageFrame,
  ModerationAction,
  ModerationFrame,
  PresenceFrame,
  ReactionsFrame,
  RoomInfo,
  RoomState,
  ServerLimits,
  TopicFrame,
  TypingFrame,
  UnreadCount,
  WallFrame,
} from "../../protocol/frames.ts";
import { PROTO, REACTIONS } from "../../protocol/frames.ts";
import { ConnectionClosedError, ServerError } from "../../client/core/errors.ts";
import type { ServerEvent, VoiceEvent } from "../../client/core/frames.ts";
import type { VoicePort } from "./voice.ts";
import type { Peer } from "../../client/core/peer.ts";
import { restore } from "../../client/core/restore.ts";
import type { RestorePlan } from "../../client/core/restore.ts";
import { isValidName, isValidRoom, nameKey } from "../../protocol/names.ts";
import { utf8Length } from "../../protocol/unicode.ts";
import { formatSize, formatTextEvent } from "../../protocol/text_mode.ts";
import type { TextCommand } from "../../protocol/text_mode.ts";
import type { RequestFrame } from "../../client/core/frames.ts";
import { HELP_LINES } from "./commands.ts";
import { Link } from "./connection.ts";
import type { LinkState } from "./connection.ts";
import {
  changeMessage,
  conversationOf,
  dmConversationKey,
  findMessage,
  firstId,
  firstUnread,
  fromFrame,
  initialState,
  lastId,
  mergeMessages,
  newConversation,
  parseComposer,
  rolesFrom,
  roomKey,
  sortedConversations,
  unreadAfter,
  withMember,
} from "./model.ts";
import type {
  ChatMessage,
  Conversation,
  Item,
  MessageChange,
  ModerationRequest,
  Notice,
  Upload,
} from "./model.ts";
import {
  fetchFile,
  FileError,
  newUploadId,
  notificationsAllowed,
  notify,
  requestNotifications,
  saveBlob,
  UploadCancelled,
  uploadFile,
} from "./browser.ts";
import type { UploadTask } from "./browser.ts";
import { hasThumbnail, revealText, saveName } from "./format.ts";
import { KEYS, load, loadForTab, save, saveForTab } from "./storage.ts";
import { StateStore } from "./state_store.ts";

/** How the session is (re)established on each new link. */
type Auth =
  | { kind: "login" | "register"; name: string; password: string }
  | { kind: "token"; token: string }
  | { kind: "guest"; name: string | undefined };

/**
 * The most message text a server takes by default (`--max-text`), in UTF-8 bytes: used until the
 * server's `welcome` says what it takes.
 */
export const MAX_TEXT = 4096;

/** Why `text` is too long to send (more than `max` bytes), or undefined when it is not. */
function tooLong(text: string, max: number): string | undefined {
  const bytes = utf8Length(text);
  return bytes > max ? `Too long: ${bytes} bytes, the most is ${max}` : undefined;
}

/**
 * The limits a `welcome` carries that the web app checks; defaults for a server without them
 * (a parley 0.1 server announces none).
 */
function serverLimits(
  limits: ServerLimits | undefined,
): Pick<ServerLimits, "maxText" | "maxFileSize"> {
  const positive = (n: number | undefined): n is number => Number.isFinite(n) && n! > 0;
  return {
    maxText: positive(limits?.maxText) ? limits.maxText : MAX_TEXT,
    maxFileSize: positive(limits?.maxFileSize) ? limits.maxFileSize : 0,
  };
}

/** The most bytes of images kept in memory for thumbnails (oldest dropped first). */
const BLOB_CACHE_BYTES = 64 * 1024 * 1024;

/** How often `typing` is sent while one types (the server passes on at most this often). */
export const TYPING_EVERY_MS = 3000;
/** How long "alice is typing…" shows after her last `typing` event. */
export const TYPING_SHOWN_MS = 5000;

/** What guests are told when they try to send a file. */
export const GUEST_FILES = "Files need an account: log in or register to send them";

/** A setup failure that must not be retried: back to the login form with `message`. */
class SetupRefused extends Error {}

/** A topic, moderation or wall event as a line: the server's text-mode words without "* ". */
function systemLine(frame: TopicFrame | ModerationFrame | WallFrame): string {
  return (formatTextEvent(frame) ?? "").replace(/^\* /, "");
}

/** Reaction counts as a line: `👍 2, 🎉 1` (or `none`). */
function reactionList(reactions: Record<string, number>): string {
  const parts = Object.entries(reactions).map(([emoji, n]) => `${emoji} ${n}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The controller. */
export class Chat {
  readonly store: StateStore = new StateStore(initialState());
  readonly #link: Link;
  #auth: Auth | undefined;
  /** The server's password (`--server-password`), sent in every hello; kept for this tab. */
  #serverPassword: string | undefined;
  /** Whether a session was set up on some link: then a lost link is retried, not reported. */
  #established = false;
  #pendingSeq = 0;
  /** What the server takes, from its `welcome` (defaults until then). */
  #limits: Pick<ServerLimits, "maxText" | "maxFileSize"> = { maxText: MAX_TEXT, maxFileSize: 0 };
  #toastTimer: ReturnType<typeof setTimeout> | undefined;
  /** Each conversation's unsent composer text. */
  readonly #drafts = new Map<string, string>();
  readonly #draftListeners = new Set<(key: string) => void>();
  /** The files of the uploads in `state.uploads` (kept to try again), with their requests. */
  readonly #uploads = new Map<
    string,
    { file: File; task: UploadTask | undefined; id: string | undefined }
  >();
  /** When `typing` was last sent, by conversation key. */
  readonly #typingSent = new Map<string, number>();
  #typingTimer: ReturnType<typeof setTimeout> | undefined;
  /** Fetched (or just uploaded) images for thumbnails, by file id; oldest first. */
  readonly #blobs = new Map<string, { size: number; blob: Promise<Blob> }>();

  /** Who hears voice events (src/web/app/voice.ts). */
  readonly #voiceListeners = new Set<(frame: VoiceEvent) => void>();

  /** Voice's requests and events, for {@linkcode VoiceClient}. */
  readonly voicePort: VoicePort = {
    request: (frame) => this.#link.request(frame),
    listen: (listener) => {
      this.#voiceListeners.add(listener);
      return () => this.#voiceListeners.delete(listener);
    },
  };

  constructor(options: { url?: string } = {}) {
    this.#link = new Link({
      ...(options.url === undefined ? {} : { url: options.url }),
      onEvent: (frame) => this.#onEvent(frame),
      onOpen: (peer) => this.#setUp(peer),
      onState: (state) => this.#onLinkState(state),
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.#markRead(this.store.state.active);
    });
    addEventListener("online", () => this.#link.retryNow());
  }

  /** Starts: logs back in with a kept token, or shows the login form. */
  boot(): void {
    const wanted = load(KEYS.notify) === "1" && notificationsAllowed();
    this.store.update(() => ({ notify: wanted }));
    this.#serverPassword = loadForTab(KEYS.serverPassword) ?? undefined;
    if (this.#serverPassword !== undefined) {
      this.store.update(() => ({ serverPasswordWanted: true }));
    }
    const token = load(KEYS.token);
    if (token === null) return;
    this.#auth = { kind: "token", token };
    this.store.update(() => ({ screen: "chat" }));
    this.#link.start();
  }

  /**
   * Sets the server's password (`--server-password`) the next hellos carry, kept for this tab
   * only (sessionStorage); an empty one is forgotten.
   */
  setServerPassword(password: string): void {
    this.#serverPassword = password === "" ? undefined : password;
    saveForTab(KEYS.serverPassword, this.#serverPassword ?? null);
  }

  /** Logs back in with the kept session token (after the server asked for its password). */
  resume(): void {
    const token = load(KEYS.token);
    if (token === null) return;
    this.#begin({ kind: "token", token });
  }

  /** Logs in with a name and password. */
  login(name: string, password: string): void {
    this.#begin({ kind: "login", name, password });
  }

  /** Creates an account and logs in. */
  register(name: string, password: string): void {
    this.#begin({ kind: "register", name, password });
  }

  /** Joins as a guest, taking `name` when given. */
  guest(name?: string): void {
    this.#begin({ kind: "guest", name: name === "" ? undefined : name });
  }

  #begin(auth: Auth): void {
    this.#auth = auth;
    this.#established = false;
    this.store.update(() => ({ loginBusy: true, loginError: undefined, savedSession: false }));
    this.#link.stop();
    this.#link.start();
  }

  /**
   * Skips the wait before the next reconnect attempt; after a server that shut down for good
   * (the link was stopped), starts connecting again.
   */
  retryNow(): void {
    if (this.#link.state.kind === "idle" && this.#auth !== undefined) {
      this.store.update(() => ({ shutdown: undefined }));
      this.#link.start();
      return;
    }
    this.#link.retryNow();
  }

  /**
   * Finds out whether this page is the service worker's saved copy (src/web/app/sw.js), given
   * because the server could not be reached: then the banner says so until connected. The
   * navigation's `deliveryType` says it where the browser has it; else the worker is asked.
   */
  checkSavedApp(): void {
    const sw = typeof navigator === "undefined" ? undefined : navigator.serviceWorker;
    if (sw?.controller == null) return;
    // Where the browser says so (Navigation Timing's deliveryType), that is enough.
    const entry = performance.getEntriesByType("navigation")[0] as
      | (PerformanceEntry & { deliveryType?: string })
      | undefined;
    if (entry?.deliveryType === "cache-storage") {
      this.store.update(() => ({ savedApp: true }));
      return;
    }
    sw.addEventListener("message", (ev: MessageEvent) => {
      const data = ev.data as { type?: unknown; offline?: unknown } | null;
      if (data?.type !== "served" || data.offline !== true) return;
      if (this.store.state.link.kind !== "online") this.store.update(() => ({ savedApp: true }));
    });
    sw.controller.postMessage({ type: "served?" });
  }

  /** Logs out (revoking the token) or, for a guest, quits; then shows the login form. */
  async logout(reason = "bye"): Promise<void> {
    const account = this.store.state.account;
    try {
      await this.#link.request(
        account ? { type: "logout" } : { type: "quit", reason },
      );
    } catch {
      // Not connected or already gone: forgetting the token locally is what matters here.
    }
    this.#reset(undefined);
  }

  /**
   * The server refused the hello for want of its password (none given, a wrong one, or it
   * changed since): the login form asks for it. A kept session token stays, to resume with.
   */
  #wantServerPassword(auth: Auth): void {
    const wrong = this.#serverPassword !== undefined;
    this.setServerPassword("");
    const token = auth.kind === "token" ? auth.token : undefined;
    this.#reset(
      wrong
        ? "Wrong server password: check it and try again"
        : "This server needs its password: type it under Server password",
    );
    if (token !== undefined) save(KEYS.token, token);
    this.store.update(() => ({ serverPasswordWanted: true, savedSession: token !== undefined }));
  }

  /** Ends the session locally and shows the login form with `error`. */
  #reset(error: string | undefined): void {
    this.#link.stop();
    this.#auth = undefined;
    this.#established = false;
    save(KEYS.token, null);
    const uploads = [...this.#uploads.values()];
    this.#uploads.clear();
    for (const u of uploads) u.task?.cancel();
    this.#blobs.clear();
    this.#drafts.clear();
    this.store.update((s) => ({
      ...initialState(),
      guestsAllowed: s.guestsAllowed,
      serverPasswordWanted: s.serverPasswordWanted,
      notify: s.notify,
      loginError: error,
    }));
  }

  // ---- setting the session up on a new link ----

  /**
   * Sets the session up on a new link with the client core's `restore` (hello; the token, the
   * name and password, or the guest's name; a guest's rooms), then the rooms' members and the
   * direct messages.
   */
  async #setUp(peer: Peer): Promise<void> {
    const auth = this.#auth;
    if (auth === undefined) throw new SetupRefused("Not logged in");
    const held = sortedConversations(this.store.state).filter((c) => c.kind === "room");
    const plan: RestorePlan = { hello: { type: "hello", client: "parley-web", proto: PROTO } };
    if (this.#serverPassword !== undefined) plan.hello.serverPassword = this.#serverPassword;
    if (auth.kind === "token") {
      plan.token = auth.token;
      plan.tokenInHello = true;
    } else if (auth.kind === "guest") {
      const wanted = auth.name ?? (this.#established ? this.store.state.me : undefined);
      if (wanted !== undefined) plan.name = wanted;
      // A guest's rooms are ours to take back; an account's are the server's.
      if (this.#established) plan.rooms = held.map((c) => c.name);
    } else {
      plan.credentials = { ...auth, register: auth.kind === "register" };
    }
    plan.onLogin = (ack) => {
      this.#auth = { kind: "token", token: ack.token };
      save(KEYS.token, ack.token);
      this.store.update(() => ({ me: ack.name, account: true }));
      // Before any other await: the offline messages that follow are counted here.
      this.#applyUnread(ack.unread);
    };
    try {
      const done = await restore(peer, plan);
      this.#limits = serverLimits(done.welcome.limits);
      if (auth.kind === "guest") {
        if (done.welcome.name === "") {
          this.store.update(() => ({ guestsAllowed: false }));
          throw new SetupRefused("This server requires an account: log in or register");
        }
        if (done.identityError !== undefined) {
          if (!this.#established) throw done.identityError;
          this.#toast(`You are ${done.name} now: ${done.identityError.message}`);
        }
        auth.name = done.name;
        this.store.update(() => ({ me: done.name }));
      } else if (done.identityError !== undefined) {
        throw done.identityError;
      }
      this.store.update(() => ({
        screen: "chat",
        loginBusy: false,
        loginError: undefined,
      }));
      await this.#setUpRooms(done.rooms, done.joined, done.lostRooms);
      if (this.store.state.account) await this.#setUpDms();
      this.#established = true;
      this.#pickActive();
    } catch (error) {
      if (error instanceof ServerError && error.need === "serverPassword") {
        this.#wantServerPassword(auth);
      } else if (error instanceof SetupRefused) {
        this.#reset(error.message);
      } else if (error instanceof ServerError && !this.#established) {
        this.#reset(
          auth.kind === "token" ? "Your session has ended: log in again" : error.message,
        );
      } else if (
        error instanceof ServerError && error.code === "auth_failed"
      ) {
        this.#reset("Your session has ended: log in again");
      }
      throw error;
    }
  }

  /**
   * Brings the conversations in line with the rooms the session is in: members from the join
   * acks (else asked for), rooms no longer joined (left on another device, or not re-joined)
   * dropped.
   */
  async #setUpRooms(
    rooms: string[],
    joined: ({ room: string; members: string[] } & Partial<RoomState>)[],
    lost: { room: string; error: ServerError }[],
  ): Promise<void> {
    const keys = new Set(rooms.map(roomKey));
    for (const c of sortedConversations(this.store.state)) {
      if (c.kind === "room" && !keys.has(c.key)) this.#dropConversation(c.key);
    }
    for (const { error } of lost) this.#toast(error.message);
    const acks = new Map(joined.map((ack) => [roomKey(ack.room), ack]));
    await Promise.all(rooms.map((room) => {
      const ack = acks.get(roomKey(room));
      if (ack === undefined) return this.#who(room);
      this.#setMembers(ack.room, ack.members, ack);
      return undefined;
    }));
  }

  async #who(room: string): Promise<void> {
    const ack = await this.#link.request({ type: "who", room });
    this.#setMembers(ack.room, ack.members, ack);
  }

  /** A room's members, and its topic, modes and roles as a `join` or `who` ack says them. */
  #setMembers(room: string, members: string[], state: Partial<RoomState>): void {
    this.store.conversation(
      roomKey(room),
      () => ({
        name: room,
        members: [...members],
        topic: typeof state.topic === "string" ? state.topic : "",
        modes: typeof state.modes === "string" ? state.modes : "",
        roles: rolesFrom(state.roles),
      }),
      () => newConversation("room", room),
    );
  }

  /**
   * Accounts: the read markers and unread counts of every room and the recent direct
   * conversations (`unread`), then the latest direct messages of each of those conversations
   * (and of those opened meanwhile). A room without a marker yet (never read on any device)
   * keeps the count of what arrived in this session.
   */
  async #setUpDms(): Promise<void> {
    const me = this.store.state.me;
    const names = new Map<string, string>();
    try {
      const ack = await this.#link.request({ type: "unread" });
      for (const r of ack.rooms) {
        const key = roomKey(r.room);
        if (this.store.state.conversations[key] === undefined || !(r.read > 0)) continue;
        this.#setMarker(key, r.read, r.unread);
      }
      for (const c of ack.conversations) {
        if (!isValidName(c.with)) continue;
        const key = dmConversationKey(c.with);
        names.set(nameKey(c.with), c.with);
        this.store.conversation(key, () => ({}), () => newConversation("dm", c.with));
        if (c.last !== undefined && typeof c.last.id === "number") {
          const last = fromFrame(c.last, me);
          this.store.conversation(key, (conv) => ({ items: mergeMessages(conv.items, [last]) }));
        }
        this.#setMarker(key, c.read, c.unread);
      }
    } catch (error) {
      if (!(error instanceof ServerError)) throw error;
    }
    for (const c of Object.values(this.store.state.conversations)) {
      if (c.kind === "dm") names.set(nameKey(c.name), c.name);
    }
    await Promise.all([...names.values()].map(async (name) => {
      this.store.conversation(
        dmConversationKey(name),
        () => ({}),
        () => newConversation("dm", name),
      );
      try {
        this.#applyHistory(
          await this.#link.request({ type: "history", with: name }),
        );
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
      }
    }));
    this.#sendRead(this.store.state.active);
  }

  /** A read marker from the server, with its count of unread messages when it gave one. */
  #setMarker(key: string, read: number, unread?: number): void {
    const me = this.store.state.me;
    const seen = this.#isSeen(key);
    this.store.conversation(key, (c) => {
      const at = Math.max(c.read, Number.isFinite(read) ? read : 0);
      const counted = unreadAfter(c, at, me, unread ?? c.unread);
      return {
        read: at,
        unread: seen ? 0 : unread === undefined ? counted.unread : Math.max(0, unread),
        mentions: seen ? 0 : counted.mentions,
      };
    });
  }

  /**
   * Tells the server (accounts) that the open conversation is read up to its latest message,
   * when the tab is visible and the marker is behind.
   */
  #sendRead(key: string | undefined): void {
    const s = this.store.state;
    const conv = key === undefined ? undefined : s.conversations[key];
    if (conv === undefined || !s.account || s.link.kind !== "online") return;
    if (!this.#isSeen(conv.key)) return;
    const id = lastId(conv);
    if (id === undefined || id <= conv.read) return;
    this.store.conversation(conv.key, () => ({ read: id }));
    const target = conv.kind === "room" ? { room: conv.name } : { with: conv.name };
    this.#link.request({ type: "read", ...target, id }).catch(() => {});
  }

  #applyUnread(unread: UnreadCount[]): void {
    for (const { from, count } of unread) {
      if (!isValidName(from) || !(count > 0)) continue;
      const key = dmConversationKey(from);
      const seen = this.#isSeen(key);
      this.store.conversation(
        key,
        () => ({ unread: seen ? 0 : count }),
        () => newConversation("dm", from),
      );
    }
  }

  /** Makes sure some conversation is shown: the kept one, else the first room. */
  #pickActive(): void {
    const s = this.store.state;
    if (s.active !== undefined && s.conversations[s.active] !== undefined) {
      return;
    }
    const kept = load(KEYS.active);
    const key = kept !== null && s.conversations[kept] !== undefined
      ? kept
      : sortedConversations(s)[0]?.key;
    if (key !== undefined) this.select(key);
  }

  #onLinkState(state: LinkState): void {
    if (
      state.kind === "waiting" && !this.#established &&
      this.#auth?.kind !== "token"
    ) {
      // A first login attempt that cannot reach the server: say so rather than retry forever.
      this.#link.stop();
      this.store.update(() => ({
        loginBusy: false,
        loginError: `Cannot reach the server (${state.reason}): try again`,
      }));
      return;
    }
    const link = state.kind === "open"
      ? { kind: "online" as const }
      : state.kind === "idle"
      ? { kind: "offline" as const }
      : state;
    if (state.kind === "open") this.store.update(() => ({ shutdown: undefined, savedApp: false }));
    const announcement = state.kind === "waiting"
      ? "Disconnected: reconnecting"
      : state.kind === "open" && this.#established
      ? "Connected"
      : this.store.state.announcement;
    this.store.update(() => ({ link, announcement }));
  }

  // ---- server events ----

  #onEvent(frame: ServerEvent): void {
    switch (frame.type) {
      case "message":
        return this.#onMessage(frame);
      case "history":
        return this.#applyHistory(frame);
      case "presence":
        return this.#onPresence(frame);
      case "notice":
        return this.#notice(this.store.state.active, frame.text);
      case "error":
        return this.#toast(frame.message);
      case "shutdown": {
        // Said when the connection drops (the banner), rather than at once.
        if (frame.permanent) this.#link.stop();
        const shutdown = { reason: frame.reason, permanent: frame.permanent === true };
        return this.store.update(() => ({
          shutdown,
          announcement: frame.permanent
            ? `The server has shut down: ${frame.reason}`
            : `The server is restarting: ${frame.reason}`,
        }));
      }
      case "upload_progress":
        return this.#onUploadProgress(frame.upload, frame.received);
      case "topic":
        return this.#onTopic(frame);
      case "moderation":
        return this.#onModeration(frame);
      case "wall": {
        const line = systemLine(frame);
        this.store.update(() => ({ announcement: line }));
        return this.#notice(this.store.state.active, line);
      }
      case "edited":
        return this.#onChange(frame, {
          kind: "edited",
          text: frame.text,
          edited: frame.edited,
          me: this.store.state.me,
        });
      case "deleted":
        return this.#onChange(frame, { kind: "deleted" });
      case "reactions":
        return this.#onChange(frame, { kind: "reactions", reactions: frame.reactions });
      case "typing":
        return this.#onTyping(frame);
      case "read":
        return this.#setMarker(
          "room" in frame ? roomKey(frame.room) : dmConversationKey(frame.with),
          frame.id,
        );
      case "voice_state":
      case "voice_offer":
      case "voice_ended":
      case "call_state":
        for (const listener of this.#voiceListeners) listener(frame);
        return;
      default:
        return; // replies nobody waits for any more
    }
  }

  #onMessage(frame: MessageFrame): void {
    const s = this.store.state;
    const { key, name } = conversationOf(frame, s.me);
    const dm = frame.room === undefined;
    if (!dm && s.conversations[key] === undefined) return; // a room we just left
    const msg = fromFrame(frame, s.me);
    const mine = nameKey(frame.from) === nameKey(s.me);
    const seen = this.#isSeen(key);
    // Offline direct messages were counted by the login ack already.
    const counts = !mine && !seen && !msg.offline;
    this.store.conversation(
      key,
      (c) => ({
        items: mergeMessages(c.items, [msg]),
        unread: counts ? c.unread + 1 : c.unread,
        mentions: counts && msg.mention ? c.mentions + 1 : c.mentions,
      }),
      () => newConversation(dm ? "dm" : "room", name),
    );
    if (seen) this.#sendRead(key);
    if (mine) return;
    if (this.store.state.typing[key]?.some((t) => nameKey(t.name) === nameKey(frame.from))) {
      this.#setTypist(key, frame.from, 0);
    }
    const where = dm ? "direct message" : name;
    const said = frame.file === undefined
      ? frame.text
      : `${frame.text}${frame.text === "" ? "" : " "}(file ${revealText(frame.file.name)})`;
    if (key === s.active) {
      this.store.update(() => ({
        announcement: `${frame.from}: ${said}`,
      }));
    } else if (dm || msg.mention) {
      this.store.update(() => ({
        announcement: `New ${where} from ${frame.from}`,
      }));
    }
    if ((dm || msg.mention) && !msg.offline && document.hidden && s.notify) {
      const title = dm ? `${msg.from} (direct message)` : `${msg.from} in ${where}`;
      notify(title, said, key, () => this.select(key));
    }
  }

  /** The conversation an `edited`, `deleted` or `reactions` event is about. */
  #placeKey(frame: EditedFrame | DeletedFrame | ReactionsFrame): string {
    if ("room" in frame) return roomKey(frame.room);
    const me = nameKey(this.store.state.me);
    return dmConversationKey(nameKey(frame.from) === me ? frame.to : frame.from);
  }

  #onChange(frame: EditedFrame | DeletedFrame | ReactionsFrame, change: MessageChange): void {
    this.#changeMessage(this.#placeKey(frame), frame.id, change);
  }

  #changeMessage(key: string, id: number, change: MessageChange): void {
    this.store.conversation(key, (c) => ({ items: changeMessage(c.items, id, change) }));
  }

  #onTyping(frame: TypingFrame): void {
    const key = "room" in frame ? roomKey(frame.room) : dmConversationKey(frame.name);
    if (this.store.state.conversations[key] === undefined && "room" in frame) return;
    if (nameKey(frame.name) === nameKey(this.store.state.me)) return;
    this.#setTypist(key, frame.name, Date.now() + TYPING_SHOWN_MS);
  }

  /** Shows (or, with `until` 0, hides) "NAME is typing…" in conversation `key`. */
  #setTypist(key: string, name: string, until: number): void {
    const now = Date.now();
    this.store.update((s) => {
      const rest = (s.typing[key] ?? []).filter((t) =>
        nameKey(t.name) !== nameKey(name) && t.until > now
      );
      const list = until > now ? [...rest, { name, until }] : rest;
      const typing = { ...s.typing };
      if (list.length === 0) delete typing[key];
      else typing[key] = list;
      return { typing };
    });
    this.#scheduleTypingExpiry();
  }

  #scheduleTypingExpiry(): void {
    clearTimeout(this.#typingTimer);
    const all = Object.values(this.store.state.typing).flat();
    if (all.length === 0) return;
    const next = Math.min(...all.map((t) => t.until));
    this.#typingTimer = setTimeout(() => {
      const now = Date.now();
      this.store.update((s) => {
        const typing: Record<string, readonly { name: string; until: number }[]> = {};
        for (const [key, list] of Object.entries(s.typing)) {
          const live = list.filter((t) => t.until > now);
          if (live.length > 0) typing[key] = live;
        }
        return { typing };
      });
      this.#scheduleTypingExpiry();
    }, Math.max(0, next - Date.now()) + 20);
  }

  #applyHistory(frame: HistoryFrame): void {
    const h = frame as HistoryFrame;
    if (!Array.isArray(h.messages)) return;
    const room = h.room;
    const key = room !== undefined
      ? roomKey(room)
      : h.with !== undefined
      ? dmConversationKey(h.with)
      : "";
    if (key === "") return;
    const me = this.store.state.me;
    const msgs = h.messages.map((m) => fromFrame(m, me));
    const create = () => newConversation(room !== undefined ? "room" : "dm", room ?? h.with!);
    this.store.conversation(key, (c) => {
      const oldest = firstId(c);
      const first = msgs[0]?.id;
      const olderPage = oldest === undefined ||
        (first !== undefined && first <= oldest);
      return {
        items: mergeMessages(c.items, msgs),
        more: olderPage ? h.more : c.more,
        fetched: true,
      };
    }, create);
    if (this.#isSeen(key)) this.#sendRead(key);
  }

  #onPresence(frame: PresenceFrame): void {
    const s = this.store.state;
    const self = nameKey(frame.name) === nameKey(s.me);
    if (frame.event === "joined" && frame.room !== undefined) {
      const key = roomKey(frame.room);
      if (self) {
        // Another of our sessions joined: follow it.
        if (s.conversations[key] !== undefined) return;
        this.store.conversation(
          key,
          () => ({}),
          () => newConversation("room", frame.room!),
        );
        this.#who(frame.room).catch(() => {});
        this.#link.request({ type: "history", room: frame.room })
          .then((h) => this.#applyHistory(h), () => {});
        return;
      }
      this.store.conversation(
        key,
        (c) => ({ members: withMember(c.members, frame.name, true) }),
      );
      this.#notice(key, `${frame.name} joined ${frame.room}`, frame.name);
      // The newcomer may have a role here (the owner, an operator, an administrator).
      if (this.store.state.conversations[key] !== undefined) this.#who(frame.room).catch(() => {});
    } else if (frame.event === "left" && frame.room !== undefined) {
      const key = roomKey(frame.room);
      if (self) return this.#dropConversation(key);
      this.store.conversation(
        key,
        (c) => ({ members: withMember(c.members, frame.name, false) }),
      );
      this.#notice(key, `${frame.name} left ${frame.room}`);
    } else if (frame.event === "quit" || frame.event === "renamed") {
      const renamed = frame.event === "renamed" && frame.newName !== undefined;
      if (self && renamed) {
        this.store.update(() => ({ me: frame.newName! }));
        this.#toast(`You are now ${frame.newName}`);
      }
      for (const c of Object.values(s.conversations)) {
        if (
          c.kind !== "room" ||
          !c.members.some((m) => nameKey(m) === nameKey(frame.name))
        ) {
          continue;
        }
        this.store.conversation(c.key, (cur) => ({
          members: renamed
            ? withMember(
              withMember(cur.members, frame.name, false),
              frame.newName!,
              true,
            )
            : withMember(cur.members, frame.name, false),
        }));
        const last = c.items.at(-1);
        if (renamed && last?.kind === "notice" && last.joined === frame.name) {
          // A guest who joined and at once took a name (or logged in) reads as one join.
          const room = c.name;
          this.#replaceItem(c.key, last.key, () => ({
            ...last,
            text: `${frame.newName} joined ${room}`,
            joined: frame.newName!,
          }));
          continue;
        }
        this.#notice(
          c.key,
          renamed ? `${frame.name} is now known as ${frame.newName}` : `${frame.name} quit`,
        );
      }
      if (renamed && !self) this.#renameDm(frame.name, frame.newName!);
    }
  }

  #onTopic(frame: TopicFrame): void {
    const key = roomKey(frame.room);
    if (this.store.state.conversations[key] === undefined) return;
    this.store.conversation(key, () => ({ topic: frame.topic ?? "" }));
    this.#systemNotice(key, systemLine(frame));
  }

  /**
   * A moderation event: the room's state follows it (modes, roles, who is muted, who is out),
   * and it shows as a line in the server's words. Kicked or banned ourselves, the room is left
   * (the server sends no `left` for it) and the notice shows where the reader is now.
   */
  #onModeration(frame: ModerationFrame): void {
    const key = roomKey(frame.room);
    const s = this.store.state;
    if (s.conversations[key] === undefined) return;
    const line = systemLine(frame);
    if (frame.action === "mode") {
      this.store.conversation(key, () => ({ modes: frame.modes }));
      return this.#systemNotice(key, line);
    }
    const target = nameKey(frame.name);
    if ((frame.action === "kick" || frame.action === "ban") && target === nameKey(s.me)) {
      this.#dropConversation(key);
      this.#toast(`${line}: you are no longer in ${frame.room}`);
      const now = this.store.state.active;
      if (now !== undefined) this.#notice(now, line);
      return;
    }
    this.store.conversation(key, (c) => {
      const roles = { ...c.roles };
      switch (frame.action) {
        case "op":
          if (roles[target] === undefined) roles[target] = "op";
          return { roles };
        case "deop":
          if (roles[target] === "op") delete roles[target];
          return { roles };
        case "mute":
          return { muted: [...c.muted.filter((m) => m !== target), target] };
        case "unmute":
          return { muted: c.muted.filter((m) => m !== target) };
        case "kick":
        case "ban":
          delete roles[target];
          return { roles, members: withMember(c.members, frame.name, false) };
        default:
          return {};
      }
    });
    this.#systemNotice(key, line);
  }

  /** A notice read out too when its conversation is the one shown. */
  #systemNotice(key: string, line: string): void {
    this.#notice(key, line);
    if (this.store.state.active === key) this.store.update(() => ({ announcement: line }));
  }

  #renameDm(from: string, to: string): void {
    const s = this.store.state;
    const old = s.conversations[dmConversationKey(from)];
    if (old === undefined || s.conversations[dmConversationKey(to)] !== undefined) return;
    const conversations = { ...s.conversations };
    delete conversations[old.key];
    conversations[dmConversationKey(to)] = { ...old, key: dmConversationKey(to), name: to };
    this.store.update(() => ({
      conversations,
      active: s.active === old.key ? dmConversationKey(to) : s.active,
    }));
  }

  // ---- actions ----

  /** Shows conversation `key` and marks it read. */
  select(key: string): void {
    const conv = this.store.state.conversations[key];
    if (conv === undefined) return;
    const changed = this.store.state.active !== key;
    if (changed) {
      const divider = firstUnread(conv, this.store.state.me);
      this.store.conversation(key, () => ({ divider }));
    }
    this.store.update(() => ({ active: key }));
    save(KEYS.active, key);
    this.#markRead(key);
    // Big rooms announce no presence: refresh the member list when a room is opened.
    if (changed && conv.kind === "room" && this.store.state.link.kind === "online") {
      this.#who(conv.name).catch(() => {});
    }
  }

  /** Downloads an attached file (accounts only: the token is the credential). */
  async download(file: FileRef): Promise<void> {
    if (this.#token() === undefined) return this.#toast("Log in to an account to download files");
    try {
      saveBlob(await this.fileBlob(file), saveName(file.name));
    } catch (error) {
      this.#toast(`Cannot download ${revealText(file.name)}: ${errorText(error)}`);
    }
  }

  /**
   * An attached file's content, fetched with the session token and checked against its
   * SHA-256. Images that get a thumbnail are kept (up to a bound) so that a conversation shown
   * again, or a download after the preview, does not fetch them twice.
   *
   * @throws {FileError} when not logged in to an account, or the server refuses
   */
  fileBlob(file: FileRef): Promise<Blob> {
    const token = this.#token();
    if (token === undefined) {
      return Promise.reject(new FileError("Log in to an account to see files", 401));
    }
    const kept = this.#blobs.get(file.id);
    if (kept !== undefined) {
      // Most recently used last.
      this.#blobs.delete(file.id);
      this.#blobs.set(file.id, kept);
      return kept.blob;
    }
    const blob = fetchFile(file, token);
    if (hasThumbnail(file)) this.#keepBlob(file.id, file.size, blob);
    return blob;
  }

  #keepBlob(id: string, size: number, blob: Promise<Blob>): void {
    const entry = { size, blob };
    this.#blobs.set(id, entry);
    blob.catch(() => {
      if (this.#blobs.get(id) === entry) this.#blobs.delete(id);
    });
    let total = 0;
    for (const e of this.#blobs.values()) total += e.size;
    for (const [key, e] of this.#blobs) {
      if (total <= BLOB_CACHE_BYTES || key === id) break;
      this.#blobs.delete(key);
      total -= e.size;
    }
  }

  #token(): string | undefined {
    return this.#auth?.kind === "token" && this.store.state.account ? this.#auth.token : undefined;
  }

  // ---- uploads ----

  /**
   * Uploads `files` and sends each in a message to conversation `convKey` as soon as it is
   * stored; the first carries `text` (possibly empty). Progress and failures show in
   * `state.uploads`, where each can be cancelled or tried again.
   *
   * @returns why nothing was started (guests, an empty file, text too long), or undefined
   */
  attach(convKey: string, files: readonly File[], text = "", action = false): string | undefined {
    if (files.length === 0) return undefined;
    if (this.#token() === undefined) return GUEST_FILES;
    if (this.store.state.conversations[convKey] === undefined) {
      return "Join a room or open a conversation first";
    }
    const empty = files.find((f) => f.size === 0);
    if (empty !== undefined) {
      return `${revealText(empty.name) || "That file"} is empty: nothing to send`;
    }
    const long = tooLong(text, this.#limits.maxText);
    if (long !== undefined) return long;
    const big = files.find((f) =>
      this.#limits.maxFileSize > 0 && f.size > this.#limits.maxFileSize
    );
    if (big !== undefined) {
      return `${revealText(big.name) || "That file"} is too large: the most is ${
        formatSize(this.#limits.maxFileSize)
      }`;
    }
    files.forEach((file, i) => {
      const upload: Upload = {
        key: `u${++this.#pendingSeq}`,
        convKey,
        name: file.name === "" ? "file" : file.name,
        size: file.size,
        loaded: 0,
        status: "uploading",
        text: i === 0 ? text : "",
        action: i === 0 && action,
      };
      this.#uploads.set(upload.key, { file, task: undefined, id: undefined });
      this.store.update((s) => ({ uploads: [...s.uploads, upload] }));
      this.#startUpload(upload.key);
    });
    const names = files.map((f) => revealText(f.name)).join(", ");
    this.store.update(() => ({ announcement: `Uploading ${names}` }));
    return undefined;
  }

  /** Tries a failed upload again. */
  retryUpload(key: string): void {
    if (!this.#uploads.has(key)) return;
    this.#patchUpload(key, (u) => {
      const { error: _e, ...rest } = u;
      return { ...rest, status: "uploading", loaded: 0 };
    });
    this.#startUpload(key);
  }

  /** Stops an upload, or forgets a failed one; its text goes back to the composer. */
  cancelUpload(key: string): void {
    const entry = this.#uploads.get(key);
    if (entry === undefined) return;
    if (entry.task !== undefined) return entry.task.cancel(); // then handled as cancelled
    this.#dropUpload(key, true);
  }

  #startUpload(key: string): void {
    const entry = this.#uploads.get(key);
    const upload = this.store.state.uploads.find((u) => u.key === key);
    const token = this.#token();
    if (entry === undefined || upload === undefined) return;
    if (token === undefined) {
      this.#patchUpload(key, (u) => ({ ...u, status: "failed", error: GUEST_FILES }));
      return;
    }
    entry.id = newUploadId();
    const task = uploadFile(entry.file, token, entry.id);
    entry.task = task;
    task.done.then(
      (ref) => {
        if (this.#uploads.get(key) !== entry) return; // logged out meanwhile
        this.#dropUpload(key, false);
        if (hasThumbnail(ref)) this.#keepBlob(ref.id, ref.size, Promise.resolve(entry.file));
        const conv = this.store.state.conversations[upload.convKey];
        if (conv === undefined) {
          return this.#toast(`${revealText(ref.name)} was not sent: that conversation is closed`);
        }
        const problem = this.#send(conv, upload.text, upload.action, ref);
        if (problem !== undefined) this.#toast(`${revealText(ref.name)} was not sent: ${problem}`);
      },
      (error) => {
        if (this.#uploads.get(key) !== entry) return;
        entry.task = undefined;
        if (error instanceof UploadCancelled) return this.#dropUpload(key, true);
        const why = errorText(error);
        this.#patchUpload(key, (u) => ({ ...u, status: "failed", error: why }));
        this.store.update(() => ({
          announcement: `Cannot upload ${revealText(upload.name)}: ${why}`,
        }));
      },
    );
  }

  /**
   * The server's count of an upload's bytes (`upload_progress`): the bar shows what reached
   * the server, never more (one render per percent, however often the frames come).
   */
  #onUploadProgress(id: string, received: number): void {
    for (const [key, entry] of this.#uploads) {
      if (entry.id !== id || entry.task === undefined) continue;
      this.#patchUpload(key, (u) => {
        const loaded = Math.min(Math.max(u.loaded, received), u.size);
        const percent = (n: number) => Math.floor((n / Math.max(u.size, 1)) * 100);
        return percent(loaded) === percent(u.loaded) && loaded !== u.size ? u : { ...u, loaded };
      });
    }
  }

  #patchUpload(key: string, change: (u: Upload) => Upload): void {
    this.store.update((s) => ({
      uploads: s.uploads.map((u) => u.key === key ? change(u) : u),
    }));
  }

  #dropUpload(key: string, giveBack: boolean): void {
    const upload = this.store.state.uploads.find((u) => u.key === key);
    this.#uploads.delete(key);
    this.store.update((s) => ({ uploads: s.uploads.filter((u) => u.key !== key) }));
    if (giveBack && upload !== undefined && upload.text !== "") {
      // As it was typed: an action with its /me, a leading / doubled again.
      const t = upload.text;
      this.#giveBack(upload.convKey, upload.action ? `/me ${t}` : t.startsWith("/") ? `/${t}` : t);
    }
  }

  // ---- drafts ----

  /** The unsent composer text of conversation `key`. */
  draft(key: string): string {
    return this.#drafts.get(key) ?? "";
  }

  /** Keeps the composer text of conversation `key` (the composer calls this as one types). */
  setDraft(key: string, text: string): void {
    if (text === "") this.#drafts.delete(key);
    else this.#drafts.set(key, text);
  }

  /** Calls `listener` with a conversation key when its draft changed from here (not typed). */
  onDraftChange(listener: (key: string) => void): () => void {
    this.#draftListeners.add(listener);
    return () => this.#draftListeners.delete(listener);
  }

  /** Puts text that was not sent back in the composer, unless something new is typed there. */
  #giveBack(key: string, text: string): void {
    if (this.draft(key).trim() !== "") return;
    this.setDraft(key, text);
    for (const listener of this.#draftListeners) listener(key);
  }

  /**
   * Handles what was typed in the composer of the active conversation.
   *
   * @returns an error to show under the composer (the text stays), or undefined when accepted
   */
  async submit(input: string): Promise<string | undefined> {
    const s = this.store.state;
    const conv = s.active === undefined ? undefined : s.conversations[s.active];
    if (input.trim() === "") return undefined;
    const cmd = parseComposer(input, conv?.kind === "room" ? conv.name : undefined);
    switch (cmd.kind) {
      case "error":
        return cmd.message;
      case "request":
        return await this.#moderationRequest(cmd.frame, conv?.key);
      case "join":
        return await this.join(cmd.room);
      case "part": {
        const room = cmd.room ??
          (conv?.kind === "room" ? conv.name : undefined);
        if (room === undefined) return "Type a room after /part";
        return await this.part(room);
      }
      case "dm": {
        const error = this.openDm(cmd.to);
        if (error !== undefined) return error;
        return this.#send(
          this.store.state.conversations[dmConversationKey(cmd.to)]!,
          cmd.text,
          false,
        );
      }
      case "say":
        if (conv === undefined) {
          return "Join a room or open a conversation first";
        }
        return this.#send(conv, cmd.text, cmd.action, undefined, this.#replyingIn(conv.key));
      case "command":
        return await this.#command(cmd.command, conv?.key);
    }
  }

  /**
   * Runs a text-mode command typed in the composer: those the page has controls for do what
   * the controls do; the others are sent as their frame and answered with a notice in
   * `shownIn`, the conversation they were typed in.
   *
   * @returns the refusal to show under the composer, or undefined
   */
  async #command(command: TextCommand, shownIn: string | undefined): Promise<string | undefined> {
    const say = (text: string) => this.#notice(shownIn, text);
    if (command.type === "help") {
      say(HELP_LINES.join("\n"));
      return undefined;
    }
    if (command.type === "quit" || command.type === "logout") {
      await this.logout(command.type === "quit" ? command.reason : undefined);
      return undefined;
    }
    if (command.type === "search") {
      const scope = command.room !== undefined
        ? { room: command.room }
        : command.with !== undefined
        ? { with: command.with }
        : {};
      this.store.update(() => ({
        searchAsk: { text: command.text, ...scope, seq: ++this.#pendingSeq },
      }));
      return undefined;
    }
    if (this.store.state.link.kind !== "online") return "Not connected: wait for the reconnect";
    try {
      switch (command.type) {
        case "nick": {
          const ack = await this.#link.request(command);
          this.#renamed(ack.name);
          return undefined;
        }
        case "who": {
          const ack = await this.#link.request(command);
          if (this.store.state.conversations[roomKey(ack.room)] !== undefined) {
            this.#setMembers(ack.room, ack.members, ack);
          }
          say(`Members of ${ack.room} (${ack.members.length}): ${ack.members.join(", ")}`);
          return undefined;
        }
        case "rooms": {
          const { rooms } = await this.#link.request(command);
          say(`Rooms: ${rooms.map((r) => `${r.name} (${r.members})`).join(", ")}`);
          return undefined;
        }
        case "ping": {
          const t0 = performance.now();
          await this.#link.request(command);
          say(`pong (${Math.round(performance.now() - t0)} ms)`);
          return undefined;
        }
        case "unread": {
          const ack = await this.#link.request(command);
          const parts = [
            ...ack.rooms.filter((r) => r.unread > 0).map((r) => `${r.room} (${r.unread})`),
            ...ack.conversations.filter((c) => c.unread > 0).map((c) => `${c.with} (${c.unread})`),
          ];
          say(parts.length === 0 ? "Nothing unread" : `Unread: ${parts.join(", ")}`);
          return undefined;
        }
        case "passwd":
          await this.#link.request(command);
          say("Password changed; your other sessions must log in again");
          return undefined;
        case "login":
        case "register":
          return await this.#loginHere(command);
        case "history":
          if (command.around !== undefined) return await this.#context(command.around, command);
          return await this.#historyCommand(command, shownIn);
        case "read":
          await this.#link.request(command);
          say(`Marked ${command.room ?? command.with ?? "this conversation"} as read`);
          return undefined;
        case "voice_who": {
          const ack = await this.#link.request(command);
          const names = ack.participants.map((p) => p.name + (p.muted ? " (muted)" : ""));
          say(
            !ack.enabled
              ? "Voice is off on this server"
              : names.length === 0
              ? `Nobody is in ${ack.room}'s voice: Join voice above the conversation`
              : `In ${ack.room}'s voice: ${names.join(", ")}`,
          );
          return undefined;
        }
        case "send": {
          // /reply ID TEXT: where the answered message is, as the Reply button does.
          const key = this.#holding(command.replyTo!);
          const conv = key === undefined ? undefined : this.store.state.conversations[key];
          if (conv !== undefined) {
            return this.#send(conv, command.text, false, undefined, command.replyTo);
          }
          const ack = await this.#link.request(command);
          say(`Reply sent (message ${ack.id})`);
          return undefined;
        }
        case "edit": {
          const key = this.#holding(command.id);
          if (key !== undefined) return await this.edit(key, command.id, command.text);
          await this.#link.request(command);
          say(`Message ${command.id} edited`);
          return undefined;
        }
        case "delete": {
          const key = this.#holding(command.id);
          if (key !== undefined) return await this.remove(key, command.id);
          await this.#link.request(command);
          say(`Message ${command.id} deleted`);
          return undefined;
        }
        case "react": {
          const ack = await this.#link.request(command);
          const key = this.#holding(command.id);
          if (key !== undefined) {
            const held = findMessage(this.store.state.conversations[key]!.items, command.id);
            const mine = (held?.mine ?? []).filter((e) => e !== command.emoji);
            this.#changeMessage(key, command.id, {
              kind: "reactions",
              reactions: ack.reactions,
              mine: command.off ? mine : [...mine, command.emoji],
            });
          } else say(`Reactions of message ${command.id}: ${reactionList(ack.reactions)}`);
          return undefined;
        }
        default: {
          // Anything else the grammar gives (sends, joins, moderation) is read before here.
          const reply = await this.#link.request(command as RequestFrame);
          say(`Done (${reply.type})`);
          return undefined;
        }
      }
    } catch (error) {
      return errorText(error);
    }
  }

  /**
   * `/context ID [N]`: the page of history around message `id`, then its conversation opened at
   * it (as a search result is).
   */
  async #context(
    id: number,
    frame: Extract<TextCommand, { type: "history" }>,
  ): Promise<string | undefined> {
    const reply = await this.#link.request(frame);
    const target = reply.messages.find((m) => m.id === id);
    if (target === undefined) return `No message ${id} that you may read`;
    await this.openMessage(target);
    return undefined;
  }

  /** The conversation holding message `id`, if any. */
  #holding(id: number): string | undefined {
    for (const c of Object.values(this.store.state.conversations)) {
      if (findMessage(c.items, id) !== undefined) return c.key;
    }
    return undefined;
  }

  /** The guest's new name (`/nick`): in the footer, the member lists, and for reconnects. */
  #renamed(name: string): void {
    const old = this.store.state.me;
    if (this.#auth?.kind === "guest") this.#auth.name = name;
    this.store.update(() => ({ me: name }));
    for (const c of Object.values(this.store.state.conversations)) {
      if (c.kind !== "room" || !c.members.some((m) => nameKey(m) === nameKey(old))) continue;
      this.store.conversation(c.key, (cur) => ({
        members: withMember(withMember(cur.members, old, false), name, true),
      }));
    }
    this.#toast(`You are now ${name}`);
  }

  /**
   * `/login` or `/register` typed by a guest: the same connection becomes the account (the
   * server keeps the guest's rooms), then the account's rooms and direct messages are set up
   * as after the login form.
   */
  async #loginHere(
    frame: Extract<TextCommand, { type: "login" | "register" }>,
  ): Promise<string | undefined> {
    if (this.store.state.account) return "You are logged in already: log out first";
    const ack = await this.#link.request(frame);
    this.#auth = { kind: "token", token: ack.token };
    save(KEYS.token, ack.token);
    this.store.update(() => ({ me: ack.name, account: true }));
    this.#applyUnread(ack.unread);
    await this.#setUpRooms(ack.rooms, [], []);
    await this.#setUpDms();
    this.#toast(`Logged in as ${ack.name}`);
    return undefined;
  }

  /** `/history [#room|NAME] [N]`: that conversation's last N messages, loaded and opened. */
  async #historyCommand(
    frame: Extract<TextCommand, { type: "history" }>,
    shownIn: string | undefined,
  ): Promise<string | undefined> {
    if (frame.with !== undefined) {
      const problem = this.openDm(frame.with);
      if (problem !== undefined) return problem;
    } else if (frame.room !== undefined) {
      const key = roomKey(frame.room);
      if (this.store.state.conversations[key] === undefined) {
        return `Cannot show the history of ${frame.room}: you are not in it`;
      }
      this.select(key);
    }
    const history = await this.#link.request(frame);
    this.#applyHistory(history);
    const where = history.room ?? history.with ?? "";
    const n = history.messages.length;
    this.#notice(
      this.store.state.active ?? shownIn,
      n === 0
        ? `No messages in ${where}`
        : `History of ${where}: the last ${n} message${n === 1 ? "" : "s"} shown` +
          (history.more ? " (scroll up for more)" : ""),
    );
    return undefined;
  }

  /** The id of the message the composer of `key` answers, if any. */
  #replyingIn(key: string): number | undefined {
    const r = this.store.state.replying;
    return r?.convKey === key ? r.id : undefined;
  }

  #send(
    conv: Conversation,
    text: string,
    action: boolean,
    file?: FileRef,
    replyTo?: number,
  ): string | undefined {
    if (text.trim() === "" && file === undefined) return "Type a message first";
    const long = tooLong(text, this.#limits.maxText);
    if (long !== undefined) return long;
    const online = this.store.state.link.kind === "online";
    if (!online && file === undefined) {
      return "Not connected: wait for the reconnect";
    }
    const pending: ChatMessage = {
      kind: "message",
      key: `p${++this.#pendingSeq}`,
      from: this.store.state.me,
      text,
      ts: Date.now(),
      action,
      offline: false,
      mention: false,
      status: "pending",
      ...(file === undefined ? {} : { file }),
      ...(replyTo === undefined ? {} : { replyTo }),
    };
    if (replyTo !== undefined) this.store.update(() => ({ replying: undefined }));
    this.#typingSent.delete(conv.key);
    if (!online) {
      // The file is uploaded already: keep it on screen to send again once reconnected.
      this.store.conversation(conv.key, (c) => ({
        items: [...c.items, { ...pending, status: "failed", error: "Not sent: not connected" }],
      }));
      return undefined;
    }
    this.store.conversation(
      conv.key,
      (c) => ({ items: [...c.items, pending] }),
    );
    const target = conv.kind === "room" ? { room: conv.name } : { to: conv.name };
    this.#link.request({
      type: "send",
      ...target,
      text,
      ...(action ? { action } : {}),
      ...(file === undefined ? {} : { file: file.id }),
      ...(replyTo === undefined ? {} : { replyTo }),
    }).then(
      (ack) => {
        const id = ack.id;
        this.#replaceItem(
          conv.key,
          pending.key,
          (items) =>
            items.some((i) => i.kind === "message" && i.id === id) ? undefined : {
              ...pending,
              id,
              key: `m${id}`,
              ts: ack.ts,
              status: "sent",
            },
        );
      },
      (error) => {
        const why = error instanceof ConnectionClosedError
          ? "Not sent: the connection was lost"
          : `Not sent: ${errorText(error)}`;
        this.#replaceItem(conv.key, pending.key, () => ({
          ...pending,
          status: "failed",
          error: why,
        }));
      },
    );
    return undefined;
  }

  /** Sends a failed message again. */
  retry(convKey: string, itemKey: string): void {
    const conv = this.store.state.conversations[convKey];
    const item = conv?.items.find((i) => i.key === itemKey);
    if (conv === undefined || item?.kind !== "message") return;
    if (this.store.state.link.kind !== "online") {
      this.#toast("Not connected: wait for the reconnect");
      return;
    }
    this.#replaceItem(convKey, itemKey, () => undefined);
    const error = this.#send(
      this.store.state.conversations[convKey]!,
      item.text,
      item.action,
      item.file,
      item.replyTo,
    );
    if (error !== undefined) this.#toast(error);
  }

  // ---- replies, edits, deletions, reactions, typing ----

  /** Makes the composer of conversation `key` answer message `id` (`undefined`: stop). */
  replyTo(key: string, id: number | undefined): void {
    this.store.update(() => ({ replying: id === undefined ? undefined : { convKey: key, id } }));
  }

  /** Edits message `id` of conversation `key`; returns the refusal to show, if any. */
  async edit(key: string, id: number, text: string): Promise<string | undefined> {
    if (text.trim() === "") return "Type the new text (or delete the message)";
    const long = tooLong(text, this.#limits.maxText);
    if (long !== undefined) return long;
    if (this.store.state.link.kind !== "online") return "Not connected: wait for the reconnect";
    try {
      const ack = await this.#link.request({ type: "edit", id, text });
      this.#changeMessage(key, id, {
        kind: "edited",
        text,
        edited: ack.edited,
        me: this.store.state.me,
      });
      return undefined;
    } catch (error) {
      return errorText(error);
    }
  }

  /** Deletes message `id` of conversation `key`; returns the refusal to show, if any. */
  async remove(key: string, id: number): Promise<string | undefined> {
    if (this.store.state.link.kind !== "online") return "Not connected: wait for the reconnect";
    try {
      await this.#link.request({ type: "delete", id });
      this.#changeMessage(key, id, { kind: "deleted" });
      const r = this.store.state.replying;
      if (r?.id === id) this.store.update(() => ({ replying: undefined }));
      return undefined;
    } catch (error) {
      return errorText(error);
    }
  }

  /** Adds this account's `emoji` to message `id`, or takes it back when it is there. */
  async react(key: string, id: number, emoji: string): Promise<void> {
    if (!REACTIONS.includes(emoji)) return;
    if (!this.store.state.account) return this.#toast("Reactions need an account: log in");
    const msg = findMessage(this.store.state.conversations[key]?.items ?? [], id);
    if (msg === undefined || msg.deleted) return;
    const off = msg.mine?.includes(emoji) === true;
    try {
      const ack = await this.#link.request({
        type: "react",
        id,
        emoji,
        ...(off ? { off: true } : {}),
      });
      const now = findMessage(this.store.state.conversations[key]?.items ?? [], id);
      const mine = (now?.mine ?? []).filter((e) => e !== emoji);
      this.#changeMessage(key, id, {
        kind: "reactions",
        reactions: ack.reactions,
        mine: off ? mine : [...mine, emoji],
      });
    } catch (error) {
      this.#toast(`Cannot react: ${errorText(error)}`);
    }
  }

  /**
   * Searches every room the user is in (and an account's direct messages) for messages with
   * all the words of `text`, newest first.
   *
   * @throws {ServerError} when the server refuses (too many words, rate limited)
   */
  async search(
    text: string,
    scope: { room?: string; with?: string } = {},
  ): Promise<MessageFrame[]> {
    const ack = await this.#link.request({
      type: "search",
      text: text.trim(),
      limit: 50,
      ...scope,
    });
    return ack.messages.filter((m) => typeof m.id === "number");
  }

  /**
   * Opens the conversation of a message (a search result) and scrolls to it, first loading the
   * page of history that ends with it when it is not held.
   */
  async openMessage(frame: MessageFrame): Promise<void> {
    const s = this.store.state;
    const { key, name } = conversationOf(frame, s.me);
    if (frame.room === undefined) {
      const problem = this.openDm(name);
      if (problem !== undefined) return this.#toast(problem);
    } else if (s.conversations[key] === undefined) {
      return this.#toast(`You are not in ${frame.room} any more`);
    } else this.select(key);
    const conv = this.store.state.conversations[key];
    if (conv !== undefined && findMessage(conv.items, frame.id) === undefined) {
      try {
        const target = frame.room === undefined ? { with: name } : { room: frame.room };
        this.#applyHistory(
          await this.#link.request({ type: "history", ...target, before: frame.id + 1, limit: 50 }),
        );
      } catch (error) {
        this.#toast(`Cannot load that message: ${errorText(error)}`);
      }
    }
    this.store.update(() => ({
      focus: { convKey: key, id: frame.id, seq: ++this.#pendingSeq },
    }));
  }

  /**
   * Says that the user is typing in conversation `key` (the composer calls this on input):
   * sent at most every {@linkcode TYPING_EVERY_MS}, never for commands.
   */
  typing(key: string, text: string): void {
    const conv = this.store.state.conversations[key];
    if (conv === undefined || this.store.state.link.kind !== "online") return;
    if (text.trim() === "" || (text.startsWith("/") && !text.startsWith("//"))) return;
    const now = Date.now();
    if (now - (this.#typingSent.get(key) ?? -Infinity) < TYPING_EVERY_MS) return;
    this.#typingSent.set(key, now);
    const target = conv.kind === "room" ? { room: conv.name } : { to: conv.name };
    this.#link.request({ type: "typing", ...target }).catch(() => {});
  }

  #replaceItem(
    key: string,
    itemKey: string,
    make: (items: Item[]) => Item | undefined,
  ): void {
    this.store.conversation(key, (c) => {
      const at = c.items.findIndex((i) => i.key === itemKey);
      if (at < 0) return {};
      const next = make(c.items);
      const items = [...c.items];
      if (next === undefined) items.splice(at, 1);
      else items[at] = next;
      return { items };
    });
  }

  /** Joins `room` and shows it; returns an error to show, if any. */
  async join(room: string): Promise<string | undefined> {
    if (!isValidRoom(room)) {
      return "A room name is # then 1-64 letters, digits, _ or -";
    }
    const known = this.store.state.conversations[roomKey(room)];
    if (known !== undefined) {
      this.select(known.key);
      return undefined;
    }
    try {
      const ack = await this.#link.request({ type: "join", room });
      const name = ack.room;
      this.#setMembers(name, ack.members, ack);
      this.select(roomKey(name));
      return undefined;
    } catch (error) {
      // A refusal in the server's words ("Cannot join #den: you are banned from it").
      if (error instanceof ServerError && error.message.startsWith("Cannot join")) {
        return error.message;
      }
      return `Cannot join ${room}: ${errorText(error)}`;
    }
  }

  /**
   * Acts on `name` in room conversation `key` (kick, ban, mute, op, …), with an optional reason
   * for kicks and bans.
   *
   * @returns the server's refusal to show, or undefined when done (the room's event follows)
   */
  moderate(
    key: string,
    action: ModerationAction,
    name: string,
    reason = "",
  ): Promise<string | undefined> {
    const conv = this.store.state.conversations[key];
    if (conv?.kind !== "room") return Promise.resolve("That is not a room");
    const frame: ModerationRequest = { type: action, room: conv.name, name };
    if (reason.trim() !== "" && (action === "kick" || action === "ban")) {
      frame.reason = reason.trim();
    }
    return this.#moderationRequest(frame, undefined);
  }

  /** Sets the topic of room conversation `key` (`""` clears it); returns a refusal, if any. */
  setTopic(key: string, text: string): Promise<string | undefined> {
    const conv = this.store.state.conversations[key];
    if (conv?.kind !== "room") return Promise.resolve("That is not a room");
    return this.#moderationRequest(
      { type: "topic", room: conv.name, text: text.trim() },
      undefined,
    );
  }

  /**
   * Sends a moderation request. A question (`/topic`, `/mode` without a value) is answered in
   * `shownIn`, the conversation it was typed in; changes show through the events they cause.
   */
  async #moderationRequest(
    frame: ModerationRequest,
    shownIn: string | undefined,
  ): Promise<string | undefined> {
    if (this.store.state.link.kind !== "online") return "Not connected: wait for the reconnect";
    try {
      // The acks of topic and mode carry `topic` and `modes`; the others, nothing.
      const reply = (await this.#link.request(frame)) as { topic?: string; modes?: string };
      if (frame.type === "topic" && frame.text === undefined && shownIn !== undefined) {
        const topic = reply.topic;
        this.#notice(
          shownIn,
          topic === undefined ? `${frame.room} has no topic` : `Topic of ${frame.room}: ${topic}`,
        );
      } else if (frame.type === "mode" && frame.modes === undefined && shownIn !== undefined) {
        const modes = reply.modes ?? "";
        this.#notice(
          shownIn,
          modes === "" ? `${frame.room} has no modes` : `Modes of ${frame.room}: ${modes}`,
        );
      } else if (frame.type === "topic") {
        const topic = reply.topic ?? "";
        this.store.conversation(roomKey(frame.room), () => ({ topic }));
      }
      return undefined;
    } catch (error) {
      return errorText(error);
    }
  }

  /** Leaves `room`; returns an error to show, if any. */
  async part(room: string): Promise<string | undefined> {
    try {
      await this.#link.request({ type: "part", room });
      this.#dropConversation(roomKey(room));
      return undefined;
    } catch (error) {
      return `Cannot leave ${room}: ${errorText(error)}`;
    }
  }

  /** Opens (creating if needed) the direct messages with `name`; returns an error, if any. */
  openDm(name: string): string | undefined {
    const s = this.store.state;
    if (!isValidName(name)) return "A name is 1-32 letters, digits, _ or -";
    if (nameKey(name) === nameKey(s.me)) return "That is you";
    const key = dmConversationKey(name);
    this.store.conversation(key, () => ({}), () => newConversation("dm", name));
    this.select(key);
    const conv = this.store.state.conversations[key]!;
    if (s.account && !conv.fetched && s.link.kind === "online") {
      this.store.conversation(key, () => ({ fetched: true }));
      this.#link.request({ type: "history", with: conv.name })
        .then((h) => this.#applyHistory(h), () => {});
    }
    return undefined;
  }

  /** Closes a direct-message conversation (its history stays on the server). */
  closeDm(key: string): void {
    const conv = this.store.state.conversations[key];
    if (conv?.kind !== "dm") return;
    this.#dropConversation(key);
  }

  /** Fetches the page of messages before the first one held. */
  async loadOlder(key: string): Promise<void> {
    const conv = this.store.state.conversations[key];
    const before = conv === undefined ? undefined : firstId(conv);
    if (
      conv === undefined || !conv.more || conv.loading || before === undefined
    ) return;
    if (conv.kind === "dm" && !this.store.state.account) return;
    this.store.conversation(key, () => ({ loading: true }));
    try {
      const target = conv.kind === "room" ? { room: conv.name } : { with: conv.name };
      this.#applyHistory(
        await this.#link.request({
          type: "history",
          ...target,
          before,
          limit: 50,
        }),
      );
    } catch (error) {
      this.#toast(`Cannot load older messages: ${errorText(error)}`);
    } finally {
      this.store.conversation(key, () => ({ loading: false }));
    }
  }

  /** The server's rooms with their member counts (for suggestions). */
  async listRooms(): Promise<RoomInfo[]> {
    return (await this.#link.request({ type: "rooms" })).rooms;
  }

  /** Turns desktop notifications on (asking the browser's permission) or off. */
  async setNotify(on: boolean): Promise<void> {
    const problem = on ? await requestNotifications() : undefined;
    if (problem !== undefined) return this.#toast(problem);
    save(KEYS.notify, on ? "1" : null);
    this.store.update(() => ({ notify: on }));
  }

  // ---- helpers ----

  #isSeen(key: string): boolean {
    return this.store.state.active === key && !document.hidden;
  }

  #markRead(key: string | undefined): void {
    const conv = key === undefined ? undefined : this.store.state.conversations[key];
    if (conv === undefined || document.hidden) return;
    if (conv.unread !== 0 || conv.mentions !== 0) {
      this.store.conversation(conv.key, () => ({ unread: 0, mentions: 0 }));
    }
    this.#sendRead(conv.key);
  }

  #notice(key: string | undefined, text: string, joined?: string): void {
    if (
      key === undefined || this.store.state.conversations[key] === undefined
    ) {
      this.#toast(text);
      return;
    }
    const notice: Notice = {
      kind: "notice",
      key: `n${++this.#pendingSeq}`,
      text,
      ts: Date.now(),
    };
    if (joined !== undefined) notice.joined = joined;
    this.store.conversation(key, (c) => ({ items: [...c.items, notice] }));
  }

  #toast(text: string): void {
    clearTimeout(this.#toastTimer);
    this.store.update(() => ({ toast: text, announcement: text }));
    this.#toastTimer = setTimeout(
      () => this.store.update(() => ({ toast: undefined })),
      8000,
    );
  }

  #dropConversation(key: string): void {
    const s = this.store.state;
    if (s.conversations[key] === undefined) return;
    const conversations = { ...s.conversations };
    delete conversations[key];
    this.store.update(() => ({
      conversations,
      active: s.active === key ? undefined : s.active,
    }));
    if (s.active === key) this.#pickActive();
  }
}
