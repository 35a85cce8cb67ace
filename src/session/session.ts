/**
 * The session loop: one per connection, whatever the transport. It reads messages, decides the
 * mode from the first line, checks guards and limits in one place, runs commands against the
 * hub, the store and the accounts, and answers in the connection's mode through a bounded
 * {@linkcode Outbox}. Replies go out in the order the requests came, even when a reply waits
 * for a commit or a password hash.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Accounts, LoggedIn } from "../auth/accounts.ts";
import type { Hub, Member } from "../hub/hub.ts";
import { ChatError } from "../protocol/errors.ts";
import type {
  ClientFrame,
  FileRef,
  HistoryFrame,
  MessageFrame,
  ServerFrame,
} from "../protocol/frames.ts";
import { parseClientFrame, ParseError, PROTO } from "../protocol/frames.ts";
import type { LineEvent } from "../protocol/line_splitter.ts";
import { checkName, DEFAULT_ROOM } from "../protocol/names.ts";
import { encodeLine, Outgoing } from "../protocol/outgoing.ts";
import type { Mode } from "../protocol/outgoing.ts";
import { historyLines, parseTextLine, sanitize, TEXT_HELP } from "../protocol/text_mode.ts";
import type { TextCommand } from "../protocol/text_mode.ts";
import type { ServerConfig } from "../server/config.ts";
import type { FileService } from "../files/files.ts";
import type { CommitQueue } from "../store/commit_queue.ts";
import type { HistoryTarget, Store, UserRecord } from "../store/store.ts";
import type { Connection } from "../transport/connection.ts";
import { type FlushScheduler, Outbox } from "./outbox.ts";
import { TokenBucket } from "./token_bucket.ts";

const log = getLogger(["parley", "session"]);

/** What every session shares: the server's parts and settings. */
export interface SessionContext {
  hub: Hub;
  store: Store;
  commits: CommitQueue;
  /** Writes every session's outbox in shared passes. */
  flusher: FlushScheduler;
  accounts: Accounts;
  /** File transfer, when the server has a data folder. */
  files: FileService | undefined;
  config: Readonly<ServerConfig>;
  /** The server's version, sent in `welcome`. */
  version: string;
}

/** The plain-text line every connection receives first. */
export const BANNER = `* Welcome to parley. Type a message, or /help for commands. ` +
  `(Clients: send {"type":"hello","proto":${PROTO}} for JSON mode.)`;

/** The keepalive the server sends to a silent JSON connection. */
const PING = new Outgoing({ type: "ping" });

/** The most replies that may wait for a commit before the session stops reading. */
const MAX_PIPELINE = 64;
/** The most messages one history page holds. */
const MAX_HISTORY_PAGE = 200;

const encoder = new TextEncoder();

/** What a command answers: fields for the JSON `ack`, lines for text mode, events after. */
interface Reply {
  /** Nothing to answer (a `pong` to the server's `ping`). */
  silent?: boolean;
  ack?: Record<string, unknown>;
  frame?: ServerFrame;
  text?: string[];
  then?: ServerFrame[];
  close?: boolean;
}

type Command = TextCommand["type"];

/**
 * The command table's guards, checked in one place before any handler runs: `open` commands
 * work before the session is online (with `--require-login`, before logging in); `account`
 * commands need a logged-in account.
 */
const GUARDS: Readonly<Record<Command, "open" | "online" | "account">> = {
  hello: "open",
  register: "open",
  login: "open",
  help: "open",
  ping: "open",
  pong: "open",
  quit: "open",
  nick: "online",
  join: "online",
  part: "online",
  rooms: "online",
  who: "online",
  send: "online",
  history: "online",
  logout: "account",
  passwd: "account",
};

/** One connected client. */
export class Session implements Member {
  name = "";
  readonly #conn: Connection;
  readonly #ctx: SessionContext;
  readonly #outbox: Outbox;
  readonly #bucket: TokenBucket;
  /** Set once the session is ending; wakes a flood-control wait early. */
  #closed = false;
  #wakeUp: (() => void) | undefined;
  #mode: Mode | undefined;
  #started = false;
  #online = false;
  /** Whether #general is only the room every guest starts in (not chosen by this user). */
  #autoGeneral = false;
  #current: string | undefined;
  #user: UserRecord | undefined;
  #tokenHash: Uint8Array | undefined;
  #tail: Promise<void> | undefined;
  #pending = 0;
  readonly #startedAt = performance.now();
  #lastInput = performance.now();
  #pinged = false;
  #throttled = false;

  /**
   * @param conn the connection to serve
   * @param ctx the server's parts and settings
   */
  constructor(conn: Connection, ctx: SessionContext) {
    this.#conn = conn;
    this.#ctx = ctx;
    if (conn.framed) this.#mode = "json";
    const { config } = ctx;
    this.#bucket = new TokenBucket(config.floodBurst, config.floodRate);
    this.#outbox = new Outbox({
      maxBytes: config.maxSendq,
      write: (data) => conn.write(data),
      onOverflow: () => {
        log.warn("Closing {remote} ({name}): send queue exceeded {max} bytes", {
          remote: conn.remote,
          name: this.name,
          max: config.maxSendq,
        });
        this.close();
      },
      onError: () => this.close(),
      scheduler: ctx.flusher,
    });
  }

  /** The connection's peer, for logs. */
  get remote(): string {
    return this.#conn.remote;
  }

  /** Queues an event in this connection's mode. Never blocks, never throws. */
  deliver(event: Outgoing): void {
    const bytes = event.bytes(this.#mode ?? "text");
    if (bytes !== null) this.#outbox.push(bytes);
  }

  /**
   * Serves the connection until the peer leaves, quits, or the session is closed. Never
   * rejects: whatever goes wrong ends this session only.
   */
  async run(): Promise<void> {
    try {
      if (!this.#conn.framed) this.#outbox.push(encodeLine(BANNER));
      for await (const event of this.#conn.messages()) {
        if (this.#closed) break;
        this.#lastInput = performance.now();
        this.#pinged = false;
        const wait = this.#bucket.take();
        if (wait > 0) {
          this.#slowDown(wait);
          await this.#sleep(wait);
        } else {
          this.#throttled = false;
        }
        if (this.#closed) break;
        const handled = this.#handle(event);
        if (!(handled instanceof Promise ? await handled : handled)) break;
      }
      await this.#tail;
    } catch (error) {
      log.error("Session {remote} failed: {error}", { remote: this.#conn.remote, error });
    } finally {
      this.#goOffline();
      await this.#flush(1000);
      this.close();
    }
  }

  /**
   * Tells the client the server is going away, flushes what is queued (up to `deadlineMs`),
   * and closes.
   */
  async shutdown(reason: string, deadlineMs: number): Promise<void> {
    this.deliver(new Outgoing({ type: "shutdown", reason, permanent: false }));
    this.#end();
    this.#goOffline();
    await this.#flush(deadlineMs);
    this.close();
  }

  /**
   * Enforces the deadlines; the server calls this periodically. A connection that sent no line
   * within `firstLineTimeoutMs`, or (with `requireLogin`) did not log in within
   * `loginTimeoutMs`, is closed; a JSON connection silent for `pingAfterMs` is pinged, and closed
   * after `idleTimeoutMs`.
   */
  checkTimers(now: number = performance.now()): void {
    const { config } = this.#ctx;
    const age = now - this.#startedAt;
    if (!this.#started && age > config.firstLineTimeoutMs) {
      this.#timeOut(`no line within ${config.firstLineTimeoutMs / 1000} s`);
    } else if (config.requireLogin && !this.#online && age > config.loginTimeoutMs) {
      this.#timeOut(`not logged in within ${config.loginTimeoutMs / 1000} s`);
    } else if (this.#mode === "json") {
      const idle = now - this.#lastInput;
      if (idle > config.idleTimeoutMs) {
        this.#timeOut(`silent for ${Math.round(idle / 1000)} s`);
      } else if (idle > config.pingAfterMs && !this.#pinged) {
        this.#pinged = true;
        this.deliver(PING);
      }
    }
  }

  #timeOut(why: string): void {
    if (this.#closed) return;
    log.info("Closing {remote}: {why}", { remote: this.#conn.remote, why });
    this.#answer(undefined, new ChatError("timeout", `Closing the connection: ${why}`));
    this.#end();
    void this.#flush(1000).then(() => this.close());
  }

  /** Tells a flooding client once per episode that its lines are being delayed. */
  #slowDown(waitMs: number): void {
    if (this.#throttled) return;
    this.#throttled = true;
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    this.#answer(
      undefined,
      new ChatError("rate_limited", "Slow down: your lines are being delayed", seconds),
    );
  }

  #end(): void {
    this.#closed = true;
    this.#wakeUp?.();
  }

  /** Waits `ms`, or less if the session ends meanwhile. */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#wakeUp?.(), ms);
      this.#wakeUp = () => {
        clearTimeout(timer);
        this.#wakeUp = undefined;
        resolve();
      };
    });
  }

  /** Closes the connection at once; idempotent. */
  close(): void {
    this.#end();
    this.#conn.close();
  }

  /**
   * Handles one inbound message. Returns (or resolves to) false when the session should end;
   * a promise means the loop must wait before reading on.
   */
  #handle(event: LineEvent): boolean | Promise<boolean> {
    if ("error" in event) {
      const message = event.error === "line_too_long"
        ? "Line too long: it was discarded"
        : "Invalid UTF-8: the line was discarded";
      return this.#respond(undefined, new ChatError(event.error, message));
    }
    const line = event.line;
    if (!this.#started) this.#start(line);
    let command: TextCommand | undefined;
    let ref: string | undefined;
    try {
      if (this.#mode === "json") {
        const parsed = parseClientFrame(line);
        if (parsed instanceof ParseError) return this.#respond(parsed.ref, parsed);
        command = parsed;
        ref = parsed.ref;
      } else {
        command = parseTextLine(line, this.#online ? this.#current : DEFAULT_ROOM);
        if (command === undefined) return true;
      }
    } catch (error) {
      return this.#respond(ref, this.#asChatError(error, undefined));
    }
    // Sends are pipelined: their acks wait for a commit while later lines are read. Every other
    // command runs once the replies before it are out, so it sees what they did.
    const pipelined = command.type === "send";
    if (!pipelined && this.#tail !== undefined) {
      return this.#tail.then(() => this.#execute(command, ref));
    }
    const done = this.#execute(command, ref);
    return pipelined && this.#pending <= MAX_PIPELINE ? true : done;
  }

  #execute(command: TextCommand, ref: string | undefined): boolean | Promise<boolean> {
    try {
      this.#guard(command.type);
      return this.#respond(ref, this.#run(command));
    } catch (error) {
      return this.#respond(ref, this.#asChatError(error, command.type));
    }
  }

  #start(firstLine: string): void {
    this.#started = true;
    this.#mode ??= firstLine.startsWith("{") ? "json" : "text";
    if (!this.#ctx.config.requireLogin) {
      this.#ctx.hub.connect(this);
      this.#autoGeneral = true;
      this.#comeOnline([DEFAULT_ROOM]);
      if (this.#mode === "text") {
        this.#outbox.push(encodeLine(`* You are ${this.name}, in ${this.#current}`));
      }
    } else if (this.#mode === "text") {
      this.#outbox.push(encodeLine(
        "* This server requires an account: /login NAME PASSWORD or /register NAME PASSWORD",
      ));
    }
    this.#sendHistoryOnJoin(this.#online ? [DEFAULT_ROOM] : []);
  }

  #guard(type: Command): void {
    const guard = GUARDS[type];
    if (guard === "open") return;
    if (!this.#online) {
      throw new ChatError(
        "login_required",
        "Log in first: /login NAME PASSWORD or /register NAME PASSWORD",
      );
    }
    if (guard === "account" && this.#user === undefined) {
      throw new ChatError(
        "login_required",
        "Only logged-in accounts can do that: /login or /register first",
      );
    }
  }

  /** Runs one command: the handlers of the command table. */
  #run(command: TextCommand): Reply | Promise<Reply> {
    const { hub, store } = this.#ctx;
    switch (command.type) {
      case "hello": {
        if (command.proto !== undefined && command.proto !== PROTO) {
          throw new ChatError("bad_frame", `Unsupported protocol version ${command.proto}`);
        }
        return {
          frame: {
            type: "welcome",
            server: "parley",
            version: this.#ctx.version,
            proto: PROTO,
            name: this.name,
          },
          text: [this.#online ? `You are ${this.name}` : "Log in or register to start"],
        };
      }
      case "nick": {
        checkName(command.name);
        const account = store.getUser(command.name);
        if (account !== undefined && account.id !== this.#user?.id) {
          throw new ChatError(
            "name_taken",
            `Cannot rename: ${account.name} is a registered name; /login to use it`,
          );
        }
        hub.rename(this, command.name);
        return { ack: { name: this.name }, text: [`You are now ${this.name}`] };
      }
      case "join": {
        const { room, members, joined } = hub.join(this, command.room);
        if (room === DEFAULT_ROOM) this.#autoGeneral = false;
        this.#current = room;
        if (joined && this.#user !== undefined) store.addMembership(this.#user.id, room);
        return {
          ack: { room, members },
          text: [`You joined ${room}; members (${members.length}): ${members.join(", ")}`],
          then: joined ? this.#historyOnJoin([room]) : [],
        };
      }
      case "part": {
        const room = hub.part(this, command.room);
        if (this.#user !== undefined) store.removeMembership(this.#user.id, room);
        const text = [`You left ${room}`];
        if (this.#current === room) {
          this.#current = hub.roomsOf(this).at(-1);
          text.push(
            this.#current ? `Current room: ${this.#current}` : "You are in no room; /join one",
          );
        }
        return { ack: { room }, text };
      }
      case "rooms": {
        const rooms = hub.rooms();
        return {
          ack: { rooms },
          text: [`Rooms: ${rooms.map((r) => `${r.name} (${r.members})`).join(", ")}`],
        };
      }
      case "who": {
        const { room, members } = hub.who(command.room);
        return {
          ack: { room, members },
          text: [`Members of ${room} (${members.length}): ${members.join(", ")}`],
        };
      }
      case "ping":
        return { frame: { type: "pong" }, text: ["pong"] };
      case "pong":
        return { silent: true };
      case "send":
        return this.#send(command);
      case "history":
        return this.#history(command);
      case "register":
        return this.#ctx.accounts.register(command.name, command.password, this.#conn.remoteIp)
          .then((login) => this.#loggedIn(login, "Registered and logged in"));
      case "login":
        return this.#login(command);
      case "logout":
        this.#ctx.accounts.logout(this.#tokenHash!);
        log.info("{name} logged out", { name: this.name });
        return { ack: {}, text: [`Logged out; goodbye, ${this.name}`], close: true };
      case "passwd":
        return this.#ctx.accounts
          .changePassword(
            this.#user!,
            command.old,
            command.new,
            this.#conn.remoteIp,
            this.#tokenHash,
          )
          .then(() => ({
            ack: {},
            text: ["Password changed; your other sessions must log in again"],
          }));
      case "quit":
        return { ack: {}, text: [`Goodbye, ${this.name}`], close: true };
      case "help":
        return { ack: {}, text: [...TEXT_HELP] };
    }
  }

  #login(command: Extract<ClientFrame, { type: "login" }>): Reply | Promise<Reply> {
    const { accounts } = this.#ctx;
    const ip = this.#conn.remoteIp;
    if (command.token !== undefined) {
      return this.#loggedIn(accounts.resume(command.token, ip), "Logged in");
    }
    if (command.name === undefined || command.password === undefined) {
      throw new ChatError("bad_frame", "Frame 'login' needs 'name' and 'password', or 'token'");
    }
    return accounts.login(command.name, command.password, ip)
      .then((login) => this.#loggedIn(login, "Logged in"));
  }

  /** After a successful login or registration: join the account's rooms, replay, deliver. */
  #loggedIn(login: LoggedIn, verb: string): Reply {
    const { hub, store } = this.#ctx;
    const { user } = login;
    if (this.#user !== undefined && this.#user.id !== user.id) {
      throw new ChatError("forbidden", `Cannot log in: you are logged in as ${this.#user.name}`);
    }
    const stored = store.memberships(user.id);
    const wasOnline = this.#online;
    // An account that left #general is not put back by the guest's automatic join.
    const drop = this.#autoGeneral && stored.length > 0 ? [DEFAULT_ROOM] : [];
    this.#autoGeneral = false;
    const { joined } = hub.login(
      this,
      user,
      stored.length > 0 || wasOnline ? stored : [DEFAULT_ROOM],
      drop,
    );
    this.#user = user;
    this.#tokenHash = login.tokenHash;
    this.#comeOnline(joined);
    for (const room of hub.roomsOf(this)) store.addMembership(user.id, room);
    const pending = store.takePending(user.id).map((m) => ({ ...m, offline: true }));
    const counts = new Map<string, number>();
    for (const m of pending) counts.set(m.from, (counts.get(m.from) ?? 0) + 1);
    const unread = [...counts].map(([from, count]) => ({ from, count }));
    log.info("{remote} logged in as {name}", { remote: this.#conn.remote, name: user.name });
    const summary = unread.length === 0
      ? "no unread direct messages"
      : `unread direct messages: ${unread.map((u) => `${u.from} (${u.count})`).join(", ")}`;
    return {
      ack: { name: user.name, token: login.token, rooms: hub.roomsOf(this), unread },
      text: [`${verb} as ${user.name}; ${summary}`],
      then: [...this.#historyOnJoin(joined), ...pending],
    };
  }

  #comeOnline(joined: readonly string[]): void {
    if (!this.#online) {
      this.#online = true;
      log.info("{remote} is online as {name} ({mode} mode)", {
        remote: this.#conn.remote,
        name: this.name,
        mode: this.#mode,
      });
    }
    const rooms = this.#ctx.hub.roomsOf(this);
    if (this.#current === undefined || !rooms.includes(this.#current)) {
      this.#current = rooms.includes(DEFAULT_ROOM) ? DEFAULT_ROOM : joined[0] ?? rooms[0];
    }
  }

  #send(command: Extract<ClientFrame, { type: "send" }>): Promise<Reply> {
    const { hub, store, commits, config } = this.#ctx;
    const { text } = command;
    let file: FileRef | undefined;
    if (command.file !== undefined) {
      const files = this.#ctx.files;
      if (files === undefined) throw new ChatError("no_such_file", "This server keeps no files");
      const { id, name, size, type, sha256 } = files.attachable(this.#user, command.file);
      file = { id, name, size, type, sha256 };
    } else if (text.trim() === "") {
      throw new ChatError("bad_frame", "Cannot send an empty message");
    }
    if (utf8Length(text, config.maxText) > config.maxText) {
      throw new ChatError(
        "text_too_long",
        `Message too long: the limit is ${config.maxText} bytes`,
      );
    }
    let frame: MessageFrame;
    let offline: UserRecord | undefined;
    if (command.room !== undefined) {
      frame = hub.roomMessage(this, command.room, text, command.action);
    } else if (command.to !== undefined) {
      if (!hub.isOnline(command.to)) {
        const account = store.getUser(command.to);
        if (account !== undefined && !account.disabled) offline = account;
      }
      frame = hub.directMessage(this, command.to, text, command.action, offline?.name);
    } else {
      throw new ChatError("bad_frame", "Frame 'send' needs 'room' or 'to'");
    }
    if (file !== undefined) frame.file = file;
    return commits.append(offline ? { ...frame, pendingFor: [offline.id] } : frame).then(() => {
      hub.publish(this, frame, this.#toRecipient(frame, offline));
      const reply: Reply = { ack: { id: frame.id, ts: frame.ts } };
      if (frame.to !== undefined) {
        reply.text = [`[dm to ${frame.to}] <${this.name}> ${sanitize(text)}`];
      }
      return reply;
    });
  }

  /**
   * Whether a message, now stored, goes to its recipient live (a room message always does). A
   * direct message's recipient may have logged in or out while it was being stored; the waiting
   * (pending) row decides, so that it is delivered exactly once: stored as waiting, it goes live
   * only if the recipient is online now and its login did not take it already; stored for an
   * online recipient who has left since, it waits for the next login.
   */
  #toRecipient(frame: MessageFrame, offline: UserRecord | undefined): boolean {
    const to = frame.to;
    if (to === undefined) return true;
    const { hub, store } = this.#ctx;
    const online = hub.isOnline(to);
    if (offline !== undefined) return online && store.takePendingMessage(offline.id, frame.id);
    if (!online) {
      const account = store.getUser(to);
      if (account !== undefined && !account.disabled) store.addPending(account.id, frame.id);
    }
    return online;
  }

  #history(command: Extract<ClientFrame, { type: "history" }>): Reply {
    const limit = Math.min(Math.max(1, Math.floor(command.limit ?? 50)), MAX_HISTORY_PAGE);
    let target: HistoryTarget;
    let frame: HistoryFrame;
    if (command.room !== undefined) {
      if (!this.#ctx.hub.isIn(this, command.room)) {
        throw new ChatError("not_in_room", `Cannot show history: you are not in ${command.room}`);
      }
      target = { room: command.room };
      frame = {
        type: "history",
        room: this.#ctx.hub.who(command.room).room,
        messages: [],
        more: false,
      };
    } else if (command.with !== undefined) {
      if (this.#user === undefined) {
        throw new ChatError(
          "login_required",
          "Only logged-in accounts have direct message history",
        );
      }
      checkName(command.with);
      target = { between: [this.#user.name, command.with] };
      frame = { type: "history", with: command.with, messages: [], more: false };
    } else {
      throw new ChatError("bad_frame", "Frame 'history' needs 'room' or 'with'");
    }
    this.#fillHistory(frame, target, command.before, limit);
    const text = historyLines(frame);
    return { frame, text: text.length > 0 ? text : ["No messages"] };
  }

  #fillHistory(
    frame: HistoryFrame,
    target: HistoryTarget,
    before: number | undefined,
    limit: number,
  ): void {
    const rows = this.#ctx.store.history(target, before, limit + 1);
    frame.more = rows.length > limit;
    frame.messages = frame.more ? rows.slice(1) : rows;
  }

  /** The history frames replayed for rooms just joined. */
  #historyOnJoin(rooms: readonly string[]): HistoryFrame[] {
    const n = this.#ctx.config.historyOnJoin;
    if (n <= 0) return [];
    return rooms.map((room) => {
      const frame: HistoryFrame = { type: "history", room, messages: [], more: false };
      this.#fillHistory(frame, { room }, undefined, n);
      return frame;
    }).filter((f) => f.messages.length > 0);
  }

  #sendHistoryOnJoin(rooms: readonly string[]): void {
    for (const frame of this.#historyOnJoin(rooms)) this.deliver(new Outgoing(frame));
  }

  /**
   * Answers a request, keeping replies in request order: a reply that is ready while earlier
   * ones still wait (for a commit, a hash) queues behind them.
   */
  #respond(
    ref: string | undefined,
    result: Reply | ChatError | Promise<Reply>,
  ): boolean | Promise<boolean> {
    if (!(result instanceof Promise) && this.#tail === undefined) return this.#answer(ref, result);
    this.#pending++;
    const settled = Promise.resolve(result).catch((error) => this.#asChatError(error, undefined));
    const done = (this.#tail ?? Promise.resolve()).then(() => settled).then((reply) => {
      return this.#answer(ref, reply);
    });
    const tail = done.then(() => {
      if (--this.#pending === 0 && this.#tail === tail) this.#tail = undefined;
    });
    this.#tail = tail;
    return done;
  }

  /** Writes a reply in the connection's mode; returns false when the session should end. */
  #answer(ref: string | undefined, reply: Reply | ChatError): boolean {
    if (reply instanceof ChatError) {
      const frame: ServerFrame = { type: "error", code: reply.code, message: reply.message };
      if (reply.retryAfter !== undefined) frame.retryAfter = reply.retryAfter;
      if (ref !== undefined) frame.ref = ref;
      this.deliver(new Outgoing(frame));
      return true;
    }
    if (reply.silent) return true;
    if (this.#mode === "json") {
      const frame: ServerFrame = reply.frame ?? { type: "ack", ...reply.ack };
      this.#outbox.push(encodeLine(JSON.stringify(ref === undefined ? frame : { ...frame, ref })));
    } else {
      for (const line of reply.text ?? []) {
        this.#outbox.push(
          encodeLine(line.startsWith("[") || line.startsWith("* ") ? line : `* ${line}`),
        );
      }
    }
    for (const frame of reply.then ?? []) this.deliver(new Outgoing(frame));
    return !reply.close;
  }

  #asChatError(error: unknown, type: string | undefined): ChatError {
    if (error instanceof ChatError) return error;
    log.error("Command {type} from {remote} failed: {error}", {
      type,
      remote: this.#conn.remote,
      error,
    });
    return new ChatError("internal", "Internal error: the command failed");
  }

  #goOffline(): void {
    if (!this.#online) return;
    this.#online = false;
    this.#ctx.hub.disconnect(this);
    log.info("{remote} ({name}) went offline", { remote: this.#conn.remote, name: this.name });
  }

  async #flush(deadlineMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#outbox.drained(),
      new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs)),
    ]);
    clearTimeout(timer);
  }
}

/** The UTF-8 length of `text`, computed exactly only when it could exceed `limit`. */
function utf8Length(text: string, limit: number): number {
  return text.length * 3 <= limit ? text.length : encoder.encode(text).length;
}
