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
import type { AccountLogin, Accounts } from "../auth/accounts.ts";
import type { Hub, Member } from "../hub/hub.ts";
import { ChatError } from "../protocol/errors.ts";
import type {
  ClientFrame,
  FileRef,
  HistoryFrame,
  MessageFrame,
  ServerFrame,
  ServerLimits,
} from "../protocol/frames.ts";
import type { AckFields } from "../protocol/frames.ts";
import { parseClientFrame, ParseError, PROTO } from "../protocol/frames.ts";
import { checkName, DEFAULT_ROOM } from "../protocol/names.ts";
import { encodeLine, Outgoing } from "../protocol/outgoing.ts";
import type { Mode } from "../protocol/outgoing.ts";
import { historyLines, parseTextLine, sanitize, TEXT_HELP } from "../protocol/text_mode.ts";
import type { TextCommand } from "../protocol/text_mode.ts";
import { httpAnswer, ircAnswer, sniffFirstLine } from "../protocol/sniff.ts";
import type { ForeignProtocol, WebPort } from "../protocol/sniff.ts";
import { isBlank, textProblem, utf8Length } from "../protocol/unicode.ts";
import type { ServerConfig } from "../server/config.ts";
import type { FileService } from "../files/files.ts";
import type { CommitQueue } from "../store/commit_queue.ts";
import type { HistoryTarget, Store, UserRecord } from "../store/store.ts";
import type { Connection, InboundEvent } from "../transport/connection.ts";
import { type FlushScheduler, Outbox } from "./outbox.ts";
import { type ReplayClaims, type ReplayItem, replayPages } from "./replay.ts";
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
  /** Where the web client is served (set once its listener is up), for HTTP on the chat port. */
  web: WebPort | undefined;
  /** The waiting direct messages being replayed right now. */
  claims: ReplayClaims;
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
/**
 * How long a plain connection may take to speak first before it gets the banner. A browser, a
 * TLS client or an IRC client speaks at once: waiting this long lets the session answer it in its
 * own protocol, with no chat banner in front; a person at `nc` does not notice 100 ms.
 */
export const SNIFF_MS = 100;
/** How many lines a turned-away connection may send while it is answered (an HTTP head). */
const FOREIGN_LINES = 100;
/** How long a turned-away connection is read (and ignored) before it is closed. */
const FOREIGN_LINGER_MS = 1000;

/** What a command answers: fields for the JSON `ack`, lines for text mode, events after. */
interface Reply {
  /** Nothing to answer (a `pong` to the server's `ping`). */
  silent?: boolean;
  ack?: AckFields[keyof AckFields];
  frame?: ServerFrame;
  text?: string[];
  /** Built by the server after the reply (history, waiting DMs): written page by page. */
  replay?: ReplayItem[];
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
        // The client's doing (it reads too slowly): debug, like every client fault.
        log.debug("Closing {remote} ({name}): send queue exceeded {max} bytes", {
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
    const events = this.#conn.messages()[Symbol.asyncIterator]();
    try {
      let next = events.next();
      const sniffing = !this.#conn.framed;
      if (sniffing) {
        // A client that speaks at once may be a browser, a TLS or an IRC client: look at what
        // it says before greeting it in a protocol it does not speak.
        const early = await within(next, SNIFF_MS);
        const foreign = early === undefined || early.done
          ? undefined
          : foreignProtocol(early.value);
        if (foreign === undefined) this.#outbox.push(encodeLine(BANNER));
      }
      for (;;) {
        const result = await next;
        if (result.done || this.#closed) break;
        const foreign = sniffing && !this.#started ? foreignProtocol(result.value) : undefined;
        if (foreign !== undefined) return await this.#turnAway(foreign, result.value, events);
        if (!(await this.#consume(result.value))) break;
        next = events.next();
      }
      await this.#tail;
    } catch (error) {
      log.error("Session {remote} failed: {error}", { remote: this.#conn.remote, error });
    } finally {
      this.#goOffline();
      await this.#flush(1000);
      this.close();
      void events.return?.();
    }
  }

  /** Handles one inbound event under flood control; false when the session should end. */
  async #consume(event: InboundEvent): Promise<boolean> {
    this.#lastInput = performance.now();
    this.#pinged = false;
    const wait = this.#bucket.take();
    if (wait > 0) {
      this.#slowDown(wait);
      await this.#sleep(wait);
    } else {
      this.#throttled = false;
    }
    if (this.#closed) return false;
    const handled = this.#handle(event);
    return handled instanceof Promise ? await handled : handled;
  }

  /**
   * Answers a client that opened with another protocol in that protocol, and closes: nothing it
   * sent reaches a room, and none of it (an IRC `PASS` among it) is logged.
   */
  async #turnAway(
    foreign: ForeignProtocol | "tls",
    first: InboundEvent,
    events: AsyncIterator<InboundEvent>,
  ): Promise<void> {
    this.#started = true;
    log.debug("Turned away {remote}: it spoke {protocol} on the chat port", {
      remote: this.#conn.remote,
      protocol: foreign,
    });
    if (foreign === "tls") return; // nothing to say that a TLS client could read
    let answer = ircAnswer();
    const deadline = performance.now() + FOREIGN_LINGER_MS;
    if (foreign === "http") {
      // Read the request head, so the answer can name the host the browser used.
      let host: string | undefined;
      for (let i = 0; i < FOREIGN_LINES; i++) {
        const result = await within(events.next(), deadline - performance.now());
        if (result === undefined || result.done || !("line" in result.value)) break;
        const line = result.value.line;
        if (line === "") break;
        const m = /^host:\s*(.*)$/i.exec(line);
        if (m !== null) host = m[1];
      }
      answer = httpAnswer("line" in first ? first.line : "", host, this.#ctx.web);
    }
    this.#outbox.push(new TextEncoder().encode(answer));
    await this.#flush(FOREIGN_LINGER_MS);
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
    log.debug("Closing {remote}: {why}", { remote: this.#conn.remote, why });
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
  #handle(event: InboundEvent): boolean | Promise<boolean> {
    if ("error" in event) {
      if (event.error === "tls_hello") return false;
      const message = event.error === "line_too_long"
        ? "Line too long: it was discarded"
        : "Invalid UTF-8: the line was discarded";
      return this.#respond(undefined, new ChatError(event.error, message));
    }
    const line = event.line;
    if (!this.#started) {
      const replay = this.#start(line);
      // Through the reply queue, so the commands after it wait for the replay to be written.
      if (replay.length > 0) this.#respond(undefined, Promise.resolve({ silent: true, replay }));
    }
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

  /** Starts the session at its first line; returns the history to replay for #general. */
  #start(firstLine: string): ReplayItem[] {
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
    return this.#historyOnJoin(this.#online ? [DEFAULT_ROOM] : []);
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
            limits: this.#limits(),
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
          replay: joined ? this.#historyOnJoin([room]) : [],
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
          .then(() => {
            const others = this.#endOtherSessions(
              "Your password was changed in another session: log in again",
            );
            log.info("{name} changed the password; {others} other sessions ended", {
              name: this.name,
              others,
            });
            return { ack: {}, text: ["Password changed; your other sessions must log in again"] };
          });
      case "quit":
        return { ack: {}, text: [`Goodbye, ${this.name}`], close: true };
      case "help":
        return { ack: {}, text: [...TEXT_HELP] };
    }
  }

  /** The limits `welcome` announces. */
  #limits(): ServerLimits {
    const { config, files } = this.#ctx;
    return {
      maxLine: config.maxLine,
      maxText: config.maxText,
      maxFileSize: files === undefined ? 0 : config.maxFileSize,
      floodBurst: config.floodBurst,
      floodRate: config.floodRate,
    };
  }

  /** Ends every other live session of this account (its tokens are revoked already). */
  #endOtherSessions(why: string): number {
    let ended = 0;
    for (const member of this.#ctx.hub.sessionsOf(this.name)) {
      if (member === this || !(member instanceof Session)) continue;
      member.revoke(why);
      ended++;
    }
    return ended;
  }

  /**
   * Ends this session because its login is no longer valid: tells the client why (`auth_failed`),
   * takes it offline, flushes and closes.
   */
  revoke(why: string): void {
    if (this.#closed) return;
    this.#answer(undefined, new ChatError("auth_failed", why));
    this.#end();
    this.#goOffline();
    void this.#flush(1000).then(() => this.close());
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
  #loggedIn(login: AccountLogin, verb: string): Reply {
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
    // Claimed now, so that a commit completing before the replay starts does not deliver them
    // live as well; forgotten only once written to this connection (see #replay).
    const pending = store.pendingFor(user.id).map((m) => ({ ...m, offline: true }));
    this.#ctx.claims.claim(user.id, pending.map((m) => m.id));
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
      replay: [...this.#historyOnJoin(joined), ...pending],
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
    let { text } = command;
    // What is stored is what is delivered: text no store or client could keep whole is refused.
    const problem = textProblem(text);
    if (problem !== undefined) throw new ChatError("bad_frame", `Cannot send: ${problem}`);
    let file: FileRef | undefined;
    if (command.file !== undefined) {
      const files = this.#ctx.files;
      if (files === undefined) throw new ChatError("no_such_file", "This server keeps no files");
      const { id, name, size, type, sha256 } = files.attachable(this.#user, command.file);
      file = { id, name, size, type, sha256 };
      if (isBlank(text)) text = "";
    } else if (isBlank(text)) {
      throw new ChatError("bad_frame", "Cannot send an empty message");
    }
    if (utf8Length(text) > config.maxText) {
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
    if (offline !== undefined) {
      // A login replaying it delivers it; else whoever deletes the waiting row delivers it.
      if (!online || this.#ctx.claims.has(offline.id, frame.id)) return false;
      return store.takePendingMessage(offline.id, frame.id);
    }
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

  /**
   * Writes a reply in the connection's mode; returns (or resolves to, after a replay) false when
   * the session should end.
   */
  #answer(ref: string | undefined, reply: Reply | ChatError): boolean | Promise<boolean> {
    if (reply instanceof ChatError) {
      const frame: ServerFrame = { type: "error", code: reply.code, message: reply.message };
      if (reply.retryAfter !== undefined) frame.retryAfter = reply.retryAfter;
      if (ref !== undefined) frame.ref = ref;
      this.deliver(new Outgoing(frame));
      return true;
    }
    if (reply.silent) {
      // nothing to answer
    } else if (this.#mode === "json") {
      const frame: ServerFrame = reply.frame ?? { type: "ack", ...reply.ack };
      this.#outbox.push(encodeLine(JSON.stringify(ref === undefined ? frame : { ...frame, ref })));
    } else {
      for (const line of reply.text ?? []) {
        this.#outbox.push(
          encodeLine(line.startsWith("[") || line.startsWith("* ") ? line : `* ${line}`),
        );
      }
    }
    if (reply.replay === undefined || reply.replay.length === 0) return !reply.close;
    return this.#replay(reply.replay).then(() => !reply.close && !this.#closed);
  }

  /**
   * Writes a server-built reply page by page, each page once the send queue has room for it,
   * so that no replay, however large, can exceed the queue and cut its own client off. A page
   * that carries waiting direct messages is waited for until written; only then are they
   * forgotten, so a connection lost mid-replay loses none (the login that read them claimed them
   * in {@linkcode ReplayClaims}; the claim ends here). A client that reads nothing for the idle
   * timeout is closed.
   */
  async #replay(items: readonly ReplayItem[]): Promise<void> {
    const { claims, config, store } = this.#ctx;
    const userId = this.#user?.id;
    const waiting = userId === undefined
      ? []
      : items.flatMap((i) => i.type === "message" && i.offline ? [i.id] : []);
    const pageBytes = Math.max(1024, Math.floor(config.maxSendq / 4));
    try {
      for (const page of replayPages(items, this.#mode ?? "text", pageBytes)) {
        if (this.#outbox.size > 0 && this.#outbox.size + page.bytes.length > pageBytes) {
          if (!(await this.#drain())) return;
        }
        if (this.#closed || !this.#outbox.push(page.bytes)) return;
        if (page.waiting.length > 0 && userId !== undefined) {
          if (!(await this.#drain())) return;
          store.removePending(userId, page.waiting);
        }
      }
    } finally {
      if (userId !== undefined) claims.release(userId, waiting);
    }
  }

  /** Waits until everything queued is written; false if the connection failed or is stuck. */
  async #drain(): Promise<boolean> {
    const limit = this.#ctx.config.idleTimeoutMs;
    if (await within(this.#outbox.drained().then(() => true), limit) === undefined) {
      log.debug("Closing {remote}: it read nothing of a replay for {seconds} s", {
        remote: this.#conn.remote,
        seconds: limit / 1000,
      });
      this.close();
      return false;
    }
    return !this.#outbox.failed && !this.#closed;
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
    await within(this.#outbox.drained(), deadlineMs);
  }
}

/** `promise`'s result if it settles within `ms`, else undefined (the promise still runs). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) =>
        timer = setTimeout(() => resolve(undefined), Math.max(0, ms))
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Which other protocol a connection's first event opens, if any. */
function foreignProtocol(event: InboundEvent): ForeignProtocol | "tls" | undefined {
  if ("error" in event) return event.error === "tls_hello" ? "tls" : undefined;
  return sniffFirstLine(event.line);
}
