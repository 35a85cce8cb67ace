/**
 * The session loop: one per connection, whatever the transport. It reads lines, picks the
 * dialect from the first one, applies flood control, checks each command's guards from the
 * command table (`src/commands/`), runs it, and hands the typed outcome to the dialect to write
 * through a bounded {@linkcode Outbox}, in request order ({@linkcode ReplyQueue}). It routes
 * nothing and formats nothing itself.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { AccountLogin } from "../auth/accounts.ts";
import type { Caller, Services } from "../commands/command.ts";
import { arrive, logsIn } from "../commands/connection.ts";
import type { Dialect, SessionView } from "../dialects/dialect.ts";
import { json } from "../dialects/json.ts";
import { text } from "../dialects/text.ts";
import { IrcDialect } from "../irc/dialect.ts";
import type { IrcWorld } from "../irc/world.ts";
import { ChatError } from "../protocol/errors.ts";
import { DEFAULT_ROOM, nameKey } from "../protocol/names.ts";
import { encodeLine, Outgoing } from "../protocol/outgoing.ts";
import type { Outcome } from "../protocol/requests.ts";
import type { WebPort } from "../protocol/sniff.ts";
import type { UserRecord } from "../store/store.ts";
import type { Connection, InboundEvent } from "../transport/connection.ts";
import { type FlushScheduler, Outbox, type OutboxOptions } from "./outbox.ts";
import { ReplyQueue } from "./replies.ts";
import { writeReplay } from "./replay.ts";
import { FloodGate } from "./flood.ts";
import { Dispatcher } from "./dispatch.ts";
import {
  BANNER,
  FOREIGN_LINGER_MS,
  foreignAnswer,
  foreignProtocol,
  speaksChat,
} from "./turn_away.ts";
import { dueDeadline } from "./deadlines.ts";

import { within } from "./within.ts";
import {
  type GateVerdict,
  PASSWORD_ACCEPTED,
  passwordRequired,
  ServerPasswordGate,
} from "./server_password.ts";
import { newCounters, type SessionCounters } from "./counters.ts";
import { downloadLink, wantsLink } from "./file_link.ts";

export { BANNER, SNIFF_MS } from "./turn_away.ts";
export type { SessionCounters } from "./counters.ts";

const log = getLogger(["parley", "session"]);

/** What every session shares: the services, and how outboxes are written. */
export interface SessionContext extends Services {
  /** Writes every session's outbox in shared passes. */
  flusher: FlushScheduler;
  /** Where the web client is served (set once its listener is up), for HTTP on the chat port. */
  web: WebPort | undefined;
  /** Where sessions count what they do, for the server's metrics. */
  counters?: SessionCounters;
  /** The IRC dialect's shared part, when the server speaks IRC. */
  irc?: IrcWorld | undefined;
}

/**
 * What a session's {@linkcode Outbox} calls: one object with methods, not an options object of
 * closures (an idle session keeps fewer objects).
 */
class OutboxHooks implements OutboxOptions {
  readonly #session: Session;
  readonly #conn: Connection;
  readonly maxBytes: number;
  readonly scheduler: FlushScheduler;

  constructor(session: Session, conn: Connection, maxBytes: number, scheduler: FlushScheduler) {
    this.#session = session;
    this.#conn = conn;
    this.maxBytes = maxBytes;
    this.scheduler = scheduler;
  }

  write(data: Uint8Array): Promise<void> {
    return this.#conn.write(data);
  }

  onOverflow(): void {
    // The client's doing (it reads too slowly): debug, like every client fault.
    log.debug("Closing {remote} ({name}): send queue exceeded {max} bytes", {
      remote: this.#conn.remote,
      name: this.#session.name,
      max: this.maxBytes,
    });
    this.#session.sendQueueCutoff();
  }

  onError(): void {
    this.#session.close();
  }
}

/**
 * The account record a session keeps: a copy without the password hash (nothing a session does
 * reads it: a password change reads the account again), in one object shape for every session.
 * The store's records arrive from its worker with properties of their own (a dictionary each,
 * hundreds of bytes a session), so the copy is also what keeps an idle session small.
 */
export function heldUser(user: UserRecord): UserRecord {
  return {
    id: user.id,
    name: user.name,
    passwordHash: "",
    created: user.created,
    disabled: user.disabled,
    admin: user.admin,
  };
}

/** The gate of a server without a password: it never shuts, so every session shares it. */
const OPEN_GATE = new ServerPasswordGate(undefined);

/** The keepalive the server sends to a silent JSON connection. */
const PING = new Outgoing({ type: "ping" });
/** One connected client. */
export class Session implements Caller {
  name = "";
  current: string | undefined;
  autoGeneral = false;
  readonly remote: string;
  readonly remoteIp: string;
  // Set by the session only (the command table sees them read-only, through Caller).
  online = false;
  closed = false;
  user: UserRecord | undefined;
  tokenHash: Uint8Array | undefined;
  readonly #conn: Connection;
  readonly #ctx: SessionContext;
  readonly #outbox: Outbox;
  readonly #flood: FloodGate;
  readonly #replies: ReplyQueue;
  readonly #counters: SessionCounters;
  readonly #dispatch: Dispatcher;
  #dialect: Dialect | undefined;
  /** Shut until the server's password (`--server-password`) is given. */
  readonly #gate: ServerPasswordGate;
  #started = false;
  #arrived = false;
  readonly #startedAt = performance.now();
  #lastInput = performance.now();
  #pinged = false;

  /**
   * @param conn the connection to serve
   * @param ctx the server's services and settings
   */
  constructor(conn: Connection, ctx: SessionContext, options: { irc?: boolean } = {}) {
    this.#conn = conn;
    this.#ctx = ctx;
    this.#counters = ctx.counters ?? newCounters();
    const password = ctx.config.serverPassword;
    this.#gate = password === undefined ? OPEN_GATE : new ServerPasswordGate(password);
    this.remote = conn.remote;
    this.remoteIp = conn.remoteIp;
    const { config } = ctx;
    this.#outbox = new Outbox(new OutboxHooks(this, conn, config.maxSendq, ctx.flusher));
    if (options.irc === true && ctx.irc !== undefined) {
      // The IRC ports, and IRC over WebSocket (`/irc`: framed, one IRC line per message).
      this.#dialect = new IrcDialect(ctx.irc, this, this.#outbox.push.bind(this.#outbox));
    } else if (conn.framed) this.#dialect = json;
    // Bound methods, not arrow functions: nothing keeps the constructor's scope alive.
    this.#flood = new FloodGate(config.floodBurst, config.floodRate, this.#slowDown.bind(this));
    this.#replies = new ReplyQueue(this.#answer.bind(this), conn.remote);
    this.#dispatch = new Dispatcher(this, ctx, this.#replies);
  }

  /** Queues an event in this connection's dialect. Never blocks, never throws. */
  deliver(event: Outgoing): void {
    const dialect = this.#dialect ?? text;
    const bytes = event.bytes(dialect.events ?? dialect);
    if (bytes === null || dialect.hold?.(bytes) === true) return;
    this.#outbox.push(bytes);
    this.#counters.deliveries++;
    const frame = event.frame;
    if (frame.type !== "message" || !wantsLink(dialect, frame)) return;
    const link = downloadLink(this.#ctx, this.#conn.localIp, this.user?.id, frame, dialect);
    if (link !== undefined) this.#outbox.push(link);
  }

  /**
   * Serves the connection until the peer leaves, quits, or the session is closed. Never
   * rejects: whatever goes wrong ends this session only.
   */
  async run(): Promise<void> {
    // Kept small: an idle session waits here, and a suspended function holds all its registers.
    const events = this.#conn.messages()[Symbol.asyncIterator]();
    try {
      if (await this.#open(events)) {
        for (;;) {
          const result = await events.next();
          if (result.done || this.closed || !(await this.#consume(result.value))) break;
        }
        await this.#replies.idle();
      }
    } catch (error) {
      log.error("Session {remote} failed: {error}", { remote: this.#conn.remote, error });
    } finally {
      this.#goOffline();
      await this.#flush(1000);
      this.close();
      void events.return?.();
    }
  }

  /**
   * Reads up to the first line the session handles: on a connection that may speak another
   * protocol (a plain port), greets one that speaks first or not at all with the banner, and
   * answers one that speaks HTTP, IRC (without an IRC dialect) or TLS; true when the session
   * goes on reading.
   */
  async #open(events: AsyncIterator<InboundEvent>): Promise<boolean> {
    if (this.#conn.framed || this.#dialect !== undefined) return true;
    let next = events.next();
    if (await speaksChat(next)) this.#outbox.push(encodeLine(BANNER));
    while (!this.#started) {
      const result = await next;
      if (result.done || this.closed) return false;
      const foreign = foreignProtocol(result.value);
      if (foreign === "irc" && this.#ctx.irc !== undefined) {
        // IRC registration on the chat port: the connection is handed to the IRC dialect.
        this.#dialect = new IrcDialect(this.#ctx.irc, this, this.#outbox.push.bind(this.#outbox));
      } else if (foreign !== undefined) {
        this.#started = true;
        const answer = await foreignAnswer(foreign, result.value, events, {
          remote: this.remote,
          web: this.#ctx.web,
          ircPort: this.#ctx.irc?.ircPort,
        });
        if (answer !== undefined) this.#outbox.push(new TextEncoder().encode(answer));
        await this.#flush(FOREIGN_LINGER_MS);
        return false;
      }
      if (!(await this.#consume(result.value))) return false;
      if (!this.#started) next = events.next();
    }
    return true;
  }

  /** Handles one inbound event under flood control; false when the session should end. */
  async #consume(event: InboundEvent): Promise<boolean> {
    this.#counters.lines++;
    this.#lastInput = performance.now();
    this.#pinged = false;
    const delayed = this.#flood.pass();
    if (delayed !== undefined) await delayed;
    if (this.closed) return false;
    const handled = this.#handle(event);
    return handled instanceof Promise ? await handled : handled;
  }

  /**
   * Handles one inbound line. Returns (or resolves to) false when the session should end; a
   * promise means the loop must wait before reading on.
   */
  #handle(event: InboundEvent): boolean | Promise<boolean> {
    if ("error" in event) {
      if (event.error === "tls_hello") return false;
      const message = event.error === "line_too_long"
        ? "Line too long: it was discarded"
        : "Invalid UTF-8: the line was discarded";
      return this.#replies.respond(undefined, new ChatError(event.error, message));
    }
    this.#dialect ??= event.line.startsWith("{") ? json : text;
    const gate = this.#gate.before(this.#dialect, event.line);
    if (gate !== undefined) return this.#gated(gate);
    const parsed = this.#dialect.parse(event.line, this.#view());
    const refused = this.#gate.after(parsed);
    if (refused !== undefined) {
      // Answers the refused frame itself (its ref), so a client sees its hello refused.
      const ref = parsed !== undefined && "ref" in parsed ? parsed.ref : undefined;
      return this.#gated(refused, ref);
    }
    if (!this.#started) {
      this.#started = true;
      // A first hello that logs in comes online as the account, never as a guest first. A
      // dialect that registers (IRC) arrives at the request that ends its registration.
      const login = parsed !== undefined && "request" in parsed && logsIn(parsed.request);
      if (this.#dialect.registers !== true && !login) this.arrive();
    }
    return this.#dispatch.run(parsed);
  }

  /** A line the server's password gate took: it goes on after `/pass`, or ends refused. */
  #gated(verdict: GateVerdict, ref?: string): boolean {
    if (verdict === "refused") return !this.#say(passwordRequired(), ref);
    this.#outbox.push(encodeLine(PASSWORD_ACCEPTED));
    return true;
  }

  /** Arrives (see `arrive`), once: at the first line, or after a hello whose login failed. */
  arrive(): void {
    if (this.#arrived) return;
    this.#arrived = true;
    const { start, replay } = arrive(this, this.#ctx);
    const greeting = this.#dialect!.start(start);
    if (greeting !== null) this.#outbox.push(greeting);
    // Through the reply queue, so the commands after it wait for the replay to be written.
    if (replay !== undefined) this.#replies.respond(undefined, replay);
  }

  #view(): SessionView {
    return { name: this.name, current: this.current, online: this.online };
  }

  /** Records a login (the command table's `logIn` calls this) and brings the session online. */
  loggedIn(login: AccountLogin, joined: readonly string[]): void {
    this.user = heldUser(login.user);
    this.tokenHash = login.tokenHash;
    this.comeOnline(joined);
  }

  /** Its user was put out of a room: the current room moves on if it was that one. */
  removed(room: string): void {
    if (this.current !== undefined && nameKey(this.current) === nameKey(room)) {
      this.current = this.#ctx.hub.roomsOf(this).at(-1);
    }
  }

  /** Brings the session online (once), and picks its current room among its rooms. */
  comeOnline(joined: readonly string[]): void {
    if (!this.online) {
      this.online = true;
      log.info("{remote} is online as {name} ({mode} mode)", {
        remote: this.#conn.remote,
        name: this.name,
        mode: this.#dialect?.name,
      });
    }
    const rooms = this.#ctx.hub.roomsOf(this);
    if (this.current === undefined || !rooms.includes(this.current)) {
      this.current = rooms.includes(DEFAULT_ROOM) ? DEFAULT_ROOM : joined[0] ?? rooms[0];
    }
  }

  /** Writes an answer in the connection's dialect; false when the session should end. */
  #answer(ref: string | undefined, answer: Outcome | ChatError): boolean | Promise<boolean> {
    const done = this.#write(ref, answer);
    const more = this.#dialect?.followUp?.();
    if (more === undefined) return done;
    // What a dialect asks for after this reply (IRC: its registration, the names of its rooms)
    // runs once the reply is written, before the next line is read.
    return Promise.resolve(done).then((going) => {
      if (!going || this.closed) return false;
      void Promise.resolve(this.#dispatch.run(more)).then((ok) => ok || this.close());
      return true;
    });
  }

  #write(ref: string | undefined, answer: Outcome | ChatError): boolean | Promise<boolean> {
    if (answer instanceof ChatError) return this.#say(answer, ref);
    if (answer.raw !== undefined && answer.raw !== null) this.#outbox.push(answer.raw);
    if (answer.result !== undefined) {
      if (answer.result.command === "send") {
        if (answer.result.message.room !== undefined) this.#counters.roomMessages++;
        else this.#counters.directMessages++;
      }
      const bytes = this.#dialect!.result(answer.result, ref, this.#view());
      if (bytes !== null) this.#outbox.push(bytes);
    }
    if (answer.replay === undefined || answer.replay.length === 0) return !answer.close;
    const { dms, config } = this.#ctx;
    return writeReplay(answer.replay, {
      outbox: this.#outbox,
      dialect: this.#dialect!,
      pageBytes: Math.max(1024, Math.floor(config.maxSendq / 4)),
      idleTimeoutMs: config.idleTimeoutMs,
      remote: this.#conn.remote,
      userId: this.user?.id,
      dms,
      closed: () => this.closed,
      close: () => this.close(),
    }).then(() => !answer.close && !this.closed);
  }

  /** Flood control delays its lines: it is told so, once per episode. */
  #slowDown(seconds: number): void {
    this.#say(new ChatError("rate_limited", "Slow down: your lines are being delayed", seconds));
  }

  /** Writes an error; true (an error never ends the session by itself). */
  #say(error: ChatError, ref?: string): true {
    this.#outbox.push((this.#dialect ?? text).error(error, ref));
    return true;
  }

  /**
   * Enforces the deadlines; the server calls this periodically. A connection that sent no line
   * within `firstLineTimeoutMs`, or (with `requireLogin`) did not log in within
   * `loginTimeoutMs`, is closed; a JSON connection silent for `pingAfterMs` is pinged, and closed
   * after `idleTimeoutMs`.
   */
  checkTimers(now: number = performance.now()): void {
    const due = dueDeadline(this.#ctx.config, now, {
      startedAt: this.#startedAt,
      // A dialect that registers (IRC) has started once its registration is done.
      started: this.#started && (this.#dialect?.registers !== true || this.#arrived || this.online),
      online: this.online,
      lastInput: this.#lastInput,
      pinged: this.#pinged,
      pings: this.#dialect === json || this.#dialect?.name === "irc",
    });
    if (due === "ping") {
      this.#pinged = true;
      this.deliver(PING);
    } else if (due !== undefined) this.#end("timeout", due.close);
  }

  /**
   * Ends this session because its login is no longer valid: tells the client why (`auth_failed`),
   * takes it offline, flushes and closes.
   */
  revoke(why: string): void {
    this.#end("auth_failed", why);
  }

  /** Tells the client why, takes the session offline, flushes what is queued and closes. */
  #end(code: "timeout" | "auth_failed", why: string): void {
    if (this.closed) return;
    if (code === "timeout") {
      log.debug("Closing {remote}: {why}", { remote: this.#conn.remote, why });
    }
    this.#say(new ChatError(code, code === "timeout" ? `Closing the connection: ${why}` : why));
    this.#stop();
    if (code === "auth_failed") this.#goOffline();
    void this.#flush(1000).then(() => this.close());
  }

  /**
   * Tells the client the server is going away (unless `told`: the server told everyone first),
   * flushes what is queued (up to `deadlineMs`), and closes.
   */
  async shutdown(reason: string, deadlineMs: number, told = false): Promise<void> {
    if (!told) this.deliver(new Outgoing({ type: "shutdown", reason, permanent: false }));
    this.#stop();
    this.#goOffline();
    await this.#flush(deadlineMs);
    this.close();
  }

  /** Its send queue overflowed (its outbox says so): counted, and the session is closed. */
  sendQueueCutoff(): void {
    this.#counters.sendQueueCutoffs++;
    this.close();
  }

  /** Closes the connection at once; idempotent. */
  close(): void {
    this.#stop();
    this.#dialect?.ended?.();
    this.#conn.close();
  }

  #stop(): void {
    this.closed = true;
    this.#flood.wake();
  }

  #goOffline(): void {
    if (!this.online) return;
    this.online = false;
    this.#ctx.hub.disconnect(this);
    log.info("{remote} ({name}) went offline", { remote: this.#conn.remote, name: this.name });
  }

  async #flush(deadlineMs: number): Promise<void> {
    await within(this.#outbox.drained(), deadlineMs);
  }
}
