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
import type { Caller, Command, Services } from "../commands/command.ts";
import { checkGuard } from "../commands/guards.ts";
import { arrive, logsIn, webUrl } from "../commands/connection.ts";
import { COMMANDS } from "../commands/table.ts";
import type { Dialect, Parsed, SessionView } from "../dialects/dialect.ts";
import { json } from "../dialects/json.ts";
import { text } from "../dialects/text.ts";
import { IrcDialect } from "../irc/dialect.ts";
import type { IrcWorld } from "../irc/world.ts";
import { ChatError } from "../protocol/errors.ts";
import { DEFAULT_ROOM, nameKey } from "../protocol/names.ts";
import { encodeLine, Outgoing } from "../protocol/outgoing.ts";
import type { MessageFrame } from "../protocol/frames.ts";
import type { Outcome, Request, RequestType } from "../protocol/requests.ts";
import type { WebPort } from "../protocol/sniff.ts";
import type { UserRecord } from "../store/store.ts";
import type { Connection, InboundEvent } from "../transport/connection.ts";
import { type FlushScheduler, Outbox } from "./outbox.ts";
import { ReplyQueue } from "./replies.ts";
import { writeReplay } from "./replay.ts";
import { FloodGate } from "./flood.ts";
import type { TokenBucket } from "./token_bucket.ts";
import {
  BANNER,
  FOREIGN_LINGER_MS,
  foreignAnswer,
  foreignProtocol,
  speaksChat,
} from "./turn_away.ts";
import { dueDeadline } from "./deadlines.ts";

import { within } from "./within.ts";
import { samePassword } from "./server_password.ts";

export { BANNER, SNIFF_MS } from "./turn_away.ts";

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

/** What sessions count: integer fields, bumped in place (src/server/metrics.ts reads them). */
export interface SessionCounters {
  /** Events queued to a session. */
  deliveries: number;
  /** Sessions closed because their send queue overflowed. */
  sendQueueCutoffs: number;
  /** Messages accepted, to rooms and to people. */
  roomMessages: number;
  directMessages: number;
}

/** The keepalive the server sends to a silent JSON connection. */
const PING = new Outgoing({ type: "ping" });
/** The most replies that may wait for a commit before the session stops reading. */
const MAX_PIPELINE = 64;
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
  /** Per-command rate limits (the `rate` guards), made on first use. */
  readonly #rates = new Map<string, TokenBucket>();
  #dialect: Dialect | undefined;
  /** Whether the server's password (`--server-password`) is still to be given. */
  #locked: boolean | undefined;
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
    this.#counters = ctx.counters ?? {
      deliveries: 0,
      sendQueueCutoffs: 0,
      roomMessages: 0,
      directMessages: 0,
    };
    this.remote = conn.remote;
    this.remoteIp = conn.remoteIp;
    if (conn.framed) this.#dialect = json;
    else if (options.irc === true && ctx.irc !== undefined) {
      this.#dialect = new IrcDialect(ctx.irc, this, (bytes) => this.#outbox.push(bytes));
    }
    const { config } = ctx;
    this.#flood = new FloodGate(config.floodBurst, config.floodRate, (seconds) => {
      this.#say(new ChatError("rate_limited", "Slow down: your lines are being delayed", seconds));
    });
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
        this.#counters.sendQueueCutoffs++;
        this.close();
      },
      onError: () => this.close(),
      scheduler: ctx.flusher,
    });
    this.#replies = new ReplyQueue((ref, answer) => this.#answer(ref, answer), conn.remote);
  }

  /** Queues an event in this connection's dialect. Never blocks, never throws. */
  deliver(event: Outgoing): void {
    const dialect = this.#dialect ?? text;
    const bytes = event.bytes(dialect.events ?? dialect);
    if (bytes === null || dialect.hold?.(bytes) === true) return;
    this.#outbox.push(bytes);
    this.#counters.deliveries++;
    const frame = event.frame;
    if (
      (dialect === text || dialect.fileLink !== undefined) && frame.type === "message" &&
      frame.file !== undefined
    ) {
      this.#fileLink(frame);
    }
  }

  /**
   * A text-mode account that receives a file gets a link `curl` can fetch: signed for it,
   * expiring (src/files/capability.ts). The only per-recipient bytes of a fan-out, and only for
   * file messages in text mode.
   */
  #fileLink(frame: MessageFrame): void {
    const { files, web, config } = this.#ctx;
    if (files === undefined || web === undefined || this.user === undefined) return;
    const wildcard = config.host === "0.0.0.0" || config.host === "::";
    const host = wildcard ? this.#conn.localIp ?? "localhost" : config.host;
    const url = files.links.url(webUrl(web, host), frame.file!.id, this.user.id, Date.now());
    const line = this.#dialect?.fileLink?.(frame, url) ?? encodeLine(`* Download (24 h): ${url}`);
    this.#outbox.push(line);
  }

  /**
   * Serves the connection until the peer leaves, quits, or the session is closed. Never
   * rejects: whatever goes wrong ends this session only.
   */
  async run(): Promise<void> {
    const events = this.#conn.messages()[Symbol.asyncIterator]();
    try {
      let next = events.next();
      const sniffing = !this.#conn.framed && this.#dialect === undefined;
      if (sniffing && await speaksChat(next)) this.#outbox.push(encodeLine(BANNER));
      for (;;) {
        const result = await next;
        if (result.done || this.closed) break;
        const foreign = sniffing && !this.#started ? foreignProtocol(result.value) : undefined;
        if (foreign === "irc" && this.#ctx.irc !== undefined) {
          // IRC registration on the chat port: the connection is handed to the IRC dialect.
          this.#dialect = new IrcDialect(this.#ctx.irc, this, (bytes) => this.#outbox.push(bytes));
        } else if (foreign !== undefined) {
          this.#started = true;
          const answer = await foreignAnswer(foreign, result.value, events, {
            remote: this.remote,
            web: this.#ctx.web,
            ircPort: this.#ctx.irc?.ircPort,
          });
          if (answer !== undefined) this.#outbox.push(new TextEncoder().encode(answer));
          return await this.#flush(FOREIGN_LINGER_MS);
        }
        if (!(await this.#consume(result.value))) break;
        next = events.next();
      }
      await this.#replies.idle();
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
    if (this.#locked === undefined) {
      this.#locked = this.#ctx.config.serverPassword !== undefined && this.#dialect.name !== "irc";
    }
    if (this.#locked && this.#dialect === text) return this.#unlockText(event.line);
    const parsed = this.#dialect.parse(event.line, this.#view());
    if (this.#locked) {
      // JSON: the first frame is a hello with the server's password (IRC checks PASS itself).
      const given = parsed !== undefined && "request" in parsed && parsed.request.type === "hello"
        ? parsed.request.serverPassword
        : undefined;
      if (!samePassword(given, this.#ctx.config.serverPassword!)) return this.#refuseLocked();
      this.#locked = false;
    }
    if (!this.#started) {
      this.#started = true;
      // A first hello that logs in comes online as the account, never as a guest first. A
      // dialect that registers (IRC) arrives at the request that ends its registration.
      const login = parsed !== undefined && "request" in parsed && logsIn(parsed.request);
      if (this.#dialect.registers !== true && !login) this.arrive();
    }
    return this.#run(parsed);
  }

  /** Text mode on a server with a password: the first line must be `/pass PASSWORD`. */
  #unlockText(line: string): boolean {
    const m = /^\/pass (.*)$/.exec(line);
    if (m === null || !samePassword(m[1], this.#ctx.config.serverPassword!)) {
      return this.#refuseLocked();
    }
    this.#locked = false;
    this.#outbox.push(encodeLine("* Server password accepted"));
    return true;
  }

  /** Refuses a session that did not give the server's password, and ends it. */
  #refuseLocked(): false {
    this.#say(
      new ChatError(
        "auth_failed",
        "This server needs its password first: /pass PASSWORD " +
          'in text mode, or "serverPassword" in hello',
      ),
    );
    return false;
  }

  /** Runs what a dialect read: requests, an error, or an answer of the dialect's own. */
  #run(parsed: Parsed): boolean | Promise<boolean> {
    if (parsed === undefined) return true;
    if ("error" in parsed) return this.#replies.respond(parsed.ref, parsed.error);
    if ("local" in parsed) {
      const close = parsed.close === true;
      const { local } = parsed;
      return this.#replies.respond(
        undefined,
        local instanceof Promise ? local.then((raw) => ({ raw, close })) : { raw: local, close },
      );
    }
    if ("requests" in parsed) {
      let going = true as boolean | Promise<boolean>;
      for (const { request, ref } of parsed.requests) {
        going = going instanceof Promise
          ? going.then((ok) => ok && this.#one(request, ref))
          : going && this.#one(request, ref);
      }
      return going;
    }
    if (parsed.opens === true && !logsIn(parsed.request)) this.arrive();
    return this.#one(parsed.request, parsed.ref);
  }

  /** Runs one request, pipelined or after the replies before it. */
  #one(request: Request, ref: string | undefined): boolean | Promise<boolean> {
    // Sends are pipelined: their acks wait for a commit while later lines are read. Every other
    // command runs once the replies before it are out, so it sees what they did.
    const pipelined = COMMANDS[request.type].pipelined === true;
    if (!pipelined && this.#replies.busy) {
      return this.#replies.idle().then(() => this.#execute(request, ref));
    }
    const done = this.#execute(request, ref);
    return pipelined && this.#replies.pending <= MAX_PIPELINE ? true : done;
  }

  #execute(request: Request, ref: string | undefined): boolean | Promise<boolean> {
    let outcome: Outcome | Promise<Outcome>;
    try {
      // The table is indexed by the request's own type, so the request fits its entry.
      const command = COMMANDS[request.type] as unknown as Command<RequestType>;
      const guarded = checkGuard(command.guard, request, this, this.#ctx, this.#rates);
      outcome = guarded === undefined
        ? command.run(request, this, this.#ctx)
        : guarded.then(() => command.run(request, this, this.#ctx));
    } catch (error) {
      outcome = Promise.reject(error);
    }
    return this.#replies.respond(ref, outcome, request.type);
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
    this.user = login.user;
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
      void Promise.resolve(this.#run(more)).then((ok) => ok || this.close());
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
