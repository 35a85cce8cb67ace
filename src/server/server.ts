/**
 * The chat server: listeners, the accept loop, per-connection tasks, connection limits and
 * graceful shutdown.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import tls from "node:tls";
import { Accounts } from "../auth/accounts.ts";
import { Hub } from "../hub/hub.ts";
import { encodeLine, Outgoing } from "../protocol/outgoing.ts";
import { DEFAULT_ROOM } from "../protocol/names.ts";
import { heldUser, Session } from "../session/session.ts";
import type { SessionContext } from "../session/session.ts";
import { FlushScheduler } from "../session/outbox.ts";
import { ReplayClaims } from "../session/replay.ts";
import { openSqliteStore, SqliteWorkerStore } from "../store/worker_store.ts";
import type { Store } from "../store/store.ts";
import type { Broker } from "../broker/broker.ts";
import { InProcessBroker } from "../broker/in_process.ts";
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { DirectMessages } from "../services/direct_messages.ts";
import { Messages } from "../services/messages.ts";
import { Conversation } from "../services/conversation.ts";
import { Moderation } from "../services/moderation.ts";
import { FileService } from "../files/files.ts";
import type { UploadProgress } from "../files/files.ts";
import { NodeSocketConnection } from "../transport/node_socket.ts";
import { httpHandler } from "./http.ts";
import { serveHttp } from "./http_server.ts";
import { type ByteConn, closeQuietly, settlesWithin } from "../transport/byte_conn.ts";
import { NodeByteConn } from "../transport/node_byte_conn.ts";
import { connDuplex } from "../transport/conn_duplex.ts";
import { StreamConnection } from "../transport/tcp.ts";
import { MAX_LINE_BYTES, MAX_TAG_BYTES } from "../irc/message.ts";
import { IrcWorld } from "../irc/world.ts";
import type { Connection } from "../transport/connection.ts";
import { VERSION } from "../version.ts";
import { DEFAULT_CONFIG } from "./config.ts";
import type { ServerConfig } from "./config.ts";
import { acceptLoop } from "./accept.ts";
import { claimDataFolder, databaseError, StartError } from "./data_folder.ts";
import type { DataFolder } from "./data_folder.ts";
import { ConnectionLimits } from "./limits.ts";
import { LagProbe } from "./lag_probe.ts";
import { countResponses, renderMetrics, ServerCounters, tokenRole } from "./metrics.ts";
import type { ServerSnapshot } from "./metrics.ts";
import type { Admission, Refusal } from "./limits.ts";
import { Voice } from "../voice/voice.ts";
import { containMediaFaults } from "../voice/contain.ts";
import { Calls } from "../voice/calls.ts";
import { loadMedia, mediaLoaded } from "../voice/peer.ts";

const log = getLogger(["parley", "server"]);

/** A listener's bound address as a URL-ish string: `tcp://127.0.0.1:5000`. */
export interface ListenAddress {
  scheme: "tcp" | "tls" | "irc" | "ircs" | "http" | "https";
  hostname: string;
  port: number;
}

/**
 * A running parley server. Dispose it (or call {@linkcode ChatServer.shutdown}) to stop:
 * it stops accepting, tells every client, flushes their queues within the grace period, and
 * waits for every connection task to end.
 *
 * @example
 * ```ts ignore
 * import { ChatServer } from "./server.ts";
 * await using server = await ChatServer.start({
 *   host: "127.0.0.1", port: 0, httpPort: 0, data: ":memory:",
 * });
 * console.log(server.addresses); // the chat port and the web port, each a free one
 * ```
 */
export class ChatServer implements AsyncDisposable {
  /** The settings in force. */
  readonly config: Readonly<ServerConfig>;
  /** The hub routing between sessions. */
  readonly hub: Hub;
  /** Where accounts, rooms and history live. */
  readonly store: Store;
  readonly #ctx: SessionContext;
  #listener: Deno.Listener | undefined;
  #tls: Deno.Listener | undefined;
  #webListener: Deno.Listener | undefined;
  #webTls: Deno.Listener | undefined;
  #irc: Deno.Listener | undefined;
  #ircTls: Deno.Listener | undefined;
  /** Certificate and key for both TLS ports; replaced by {@linkcode ChatServer.reloadTls}. */
  #tlsContext: tls.SecureContext | undefined;
  /** Accepted TLS connections still in their handshake. */
  readonly #handshaking = new Set<Deno.Conn>();
  /** Open HTTP connections (closed at the end of shutdown's grace period). */
  readonly #webConns = new Set<ByteConn>();
  readonly #webTasks = new Set<Promise<void>>();
  readonly #webStop = new AbortController();
  /** HTTP connections over the caps being answered (see #refuseHttp). */
  #refusing = 0;
  readonly #startedAt = Date.now();
  /** The administrators' feed (see #followAdmin): its timer, the last change applied. */
  #adminFeed: ReturnType<typeof setInterval> | undefined;
  #adminSeen = 0;
  #following = false;
  /** The database files as of the feed's last poll, and the polls skipped since. */
  #adminStamp = "";
  #adminIdle = 0;
  /** Search indexing (see #indexSome): whether it is up to date, as of which sends. */
  #indexCaughtUp = false;
  #indexSent = 0;
  #indexIdle = 0;
  /** What `/metrics` reports that is counted as it happens. */
  readonly #counters = new ServerCounters();
  /** How late the event loop runs (reported on the admin `/healthz` and `/metrics`). */
  readonly #lag = new LagProbe(5, (late) => this.#counters.lagSeconds.observe(late / 1000), {
    activity: () => {
      const c = this.#counters;
      return c.lines + c.deliveries + c.tcpOpened + c.tlsOpened + c.wsOpened;
    },
  });
  readonly #files: FileService | undefined;
  #fileSweep: ReturnType<typeof setInterval> | undefined;
  readonly #limits: ConnectionLimits;
  #sweep: ReturnType<typeof setInterval> | undefined;
  readonly #tasks = new Set<Promise<void>>();
  readonly #sessions = new Set<Session>();
  readonly #accepting: Promise<void>[] = [];
  /** Origins refused so far (logged once each). */
  readonly #origins = new Set<string>();
  #stopping: Promise<void> | undefined;
  /** The data folder's lock, when the server opened the store there. */
  #folder: DataFolder | undefined;

  private constructor(config: ServerConfig, store: Store, deps: ServerDeps) {
    this.config = config;
    this.store = store;
    const clock = deps.clock ?? systemClock;
    this.hub = new Hub({
      presenceLimit: config.presenceLimit,
      broker: deps.broker ?? new InProcessBroker(),
    });
    const accounts = new Accounts(store.accounts, {
      ...config,
      exemptLoopback: !config.limitLoopback,
      clock,
    });
    this.#limits = new ConnectionLimits(config);
    if (store instanceof SqliteWorkerStore) {
      store.onBatch = (ops, ms) => this.#counters.batch(ops, ms);
    }
    if (config.data !== ":memory:") {
      this.#files = new FileService(store, accounts, {
        clock,
        dir: `${config.data}/files`,
        maxFileSize: config.maxFileSize,
        quota: config.fileQuota,
        uploadBurst: config.uploadBurst,
        uploadIntervalMs: config.uploadIntervalMs,
        retentionMs: config.fileRetentionMs,
        progress: (p) => this.#uploadProgress(p),
      });
    }
    const moderation = new Moderation(this.hub, store, clock);
    this.#ctx = {
      hub: this.hub,
      store,
      accounts,
      messages: new Messages(this.hub, store.messages, moderation, clock),
      moderation,
      conversation: new Conversation(this.hub, store.messages, moderation, clock, config.maxText),
      dms: new DirectMessages(this.hub, store, new ReplayClaims(), clock),
      files: this.#files,
      config,
      version: VERSION,
      limits: {
        maxLine: config.maxLine,
        maxText: config.maxText,
        maxFileSize: this.#files === undefined ? 0 : config.maxFileSize,
        floodBurst: config.floodBurst,
        floodRate: config.floodRate,
      },
      flusher: new FlushScheduler(),
      web: undefined,
      counters: this.#counters,
      voice: config.voice ? startVoice(this.hub, config) : undefined,
    };
    if (config.irc) {
      this.#ctx.irc = new IrcWorld(this.#ctx, {
        serverName: config.serverName,
        serverPassword: config.serverPassword,
      });
    }
    const voice = this.#ctx.voice;
    if (voice !== undefined) {
      const calls = new Calls(this.hub, voice, this.#ctx.dms, { ringMs: config.callRingMs });
      this.#ctx.calls = calls;
      this.hub.onGone = (member) => calls.gone(member);
    }
  }

  /**
   * Opens the store in the data folder (unless `deps` gives one) and starts listening with
   * `config` (missing fields take {@linkcode DEFAULT_CONFIG}); with `deps.listen` false it opens
   * no port at all, and connections come through {@linkcode ChatServer.serve} (in-process tests
   * over `memoryConnection` (src/transport/memory.ts)).
   *
   * @throws when the data folder or database cannot be opened, or the port cannot be bound
   */
  static async start(
    config: Partial<ServerConfig> = {},
    deps: ServerDeps = {},
  ): Promise<ChatServer> {
    const full = { ...DEFAULT_CONFIG, ...config };
    if (deps.listen === false) {
      Object.assign(full, { plain: false, http: false, tlsCert: undefined, tlsKey: undefined });
    }
    if ((full.tlsCert === undefined) !== (full.tlsKey === undefined)) {
      throw new TypeError("give both --tls-cert and --tls-key, or neither");
    }
    if (!full.plain && full.tlsCert === undefined && deps.listen !== false) {
      throw new TypeError("--no-plain needs --tls-cert and --tls-key");
    }
    if (full.voice && !await loadMedia()) {
      log.warn("Voice is off: its media library (npm:werift) could not be loaded");
    }
    const { store, folder } = deps.store === undefined
      ? await openStore(full)
      : { store: deps.store, folder: undefined };
    let server: ChatServer;
    try {
      server = new ChatServer(full, store, deps);
      server.#folder = folder;
    } catch (error) {
      await store[Symbol.asyncDispose]();
      folder?.release();
      throw error;
    }
    try {
      // The server's own rooms have no owner: claimed before anyone can join them first.
      await store.moderation.claimRoom(DEFAULT_ROOM, undefined);
      // The hashing threads start before anything listens: a thread that starts its runtime
      // after clients have used up the file descriptors takes the process down (Deno panics).
      if (!(await server.#ctx.accounts.lowPriorityHashing())) {
        log.warn("Password hashing runs at normal priority: allow --allow-sys=setPriority");
      }
      server.#adminSeen = await store.moderation.lastAdminEvent();
      server.#adminFeed = setInterval(() => {
        void server.#followAdmin();
        server.#indexSome();
      }, ADMIN_POLL_MS);
      if (full.plain) {
        server.#listener = server.#listen("tcp", full.port, (conn, _remote, admission) => {
          const connection = new StreamConnection(conn, { kind: "tcp", maxLine: full.maxLine });
          server.#serve(connection, admission);
        });
      }
      if (full.tlsCert !== undefined) server.#listenTls();
      if (full.irc && deps.listen !== false) server.#listenIrc();
      if (full.http) {
        server.#listenHttp();
        server.#ctx.web = { port: server.#webAddress()!.port, secure: full.tlsCert !== undefined };
      }
      const tick = Math.min(full.firstLineTimeoutMs, full.pingAfterMs, full.loginTimeoutMs) / 4;
      server.#sweep = setInterval(() => server.#checkTimers(), Math.max(100, Math.min(5000, tick)));
      const sweepFiles = () =>
        void server.#files?.sweep().catch((error) =>
          log.error("File sweep failed: {error}", { error })
        );
      sweepFiles();
      server.#fileSweep = setInterval(sweepFiles, 3600_000);
    } catch (error) {
      server.#closeListeners();
      clearInterval(server.#adminFeed);
      server.#ctx.accounts.close();
      server.#lag[Symbol.dispose]();
      await store[Symbol.asyncDispose]();
      folder?.release();
      throw error;
    }
    return server;
  }

  /**
   * The web port: the embedded client, `/ws`, files and `/healthz`, served by parley's own
   * HTTP/1.1 server so that every connection counts against the caps from its accept, and has a
   * header deadline and an idle keep-alive deadline. HTTPS runs on `node:tls`, like the chat
   * TLS port (a handshake deadline that really closes the socket, certificates reloaded in
   * place).
   */
  #listenHttp(): void {
    const { config } = this;
    const secure = config.tlsCert !== undefined;
    const handler = countResponses(
      this.#counters,
      httpHandler({
        allowOrigins: config.allowOrigins,
        maxLine: config.maxLine,
        serve: (conn) => void this.#serve(conn, HELD_BY_HTTP),
        ...this.#ctx.irc === undefined
          ? {}
          : { irc: { serve: (conn) => void this.#serve(conn, HELD_BY_HTTP, true) } },
        health: (detailed) => {
          const status = this.#stopping === undefined ? "ok" : "stopping";
          if (!detailed) return { status };
          const store = (this.store as { stats?: Record<string, number> }).stats;
          return {
            status,
            version: VERSION,
            uptime: Math.round((Date.now() - this.#startedAt) / 1000),
            connections: this.connections,
            ...memory(),
            eventLoop: this.#lag.stats,
            ...store === undefined ? {} : { store },
          };
        },
        originRefused: (origin) => this.#originRefused(origin),
        files: this.#files,
        metrics: {
          authorize: (token, ip) => tokenRole((t, i) => this.#ctx.accounts.resume(t, i), token, ip),
          render: () => renderMetrics(this.#counters, this.#snapshot()),
        },
      }),
    );
    const serve = (conn: ByteConn, remoteAddr: Deno.NetAddr, admission: Admission) => {
      this.#webConns.add(conn);
      const remote = `${remoteAddr.hostname}:${remoteAddr.port}`;
      this.#trackWeb(
        serveHttp(conn, {
          remoteAddr,
          secure,
          handler,
          headerTimeoutMs: config.headerTimeoutMs,
          keepAliveTimeoutMs: config.keepAliveTimeoutMs,
          signal: this.#webStop.signal,
          onClientError: (reason) => log.debug("HTTP {remote}: {reason}", { remote, reason }),
          onServerError: (error) =>
            log.error("HTTP request from {remote} failed: {error}", { remote, error }),
        }).finally(() => {
          this.#webConns.delete(conn);
          admission.release();
        }),
      );
    };
    if (secure) {
      this.#webTls = this.#listenTlsOn(
        "https",
        config.httpPort,
        (socket, remote, admission) => {
          serve(new NodeByteConn(socket, remote), remote, admission);
        },
        ["http/1.1"],
        true,
      );
      return;
    }
    this.#webListener = this.#listen("http", config.httpPort, (conn, remoteAddr, admission) => {
      if ("reason" in admission) {
        this.#refused(`${remoteAddr.hostname}:${remoteAddr.port}`, admission);
        this.#refuseHttp(conn, remoteAddr, admission);
        return;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // gone already: serving it will notice
      }
      serve(conn, remoteAddr, admission);
    });
  }

  /**
   * Listens on `port` with an {@linkcode acceptLoop} and hands each accepted connection to
   * `onConn` with its peer and its place under the caps (or the refusal, for `onConn` to answer).
   */
  #listen(
    scheme: ListenAddress["scheme"],
    port: number,
    onConn: (conn: Deno.TcpConn, remote: Deno.NetAddr, admission: Admission | Refusal) => void,
  ): Deno.Listener<Deno.TcpConn> {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: this.config.host, port });
    } catch (error) {
      throw listenError(error, port, PORT_FLAGS[scheme], this.config.host);
    }
    const { hostname, port: bound } = listener.addr;
    this.#accepting.push(acceptLoop(listener, (conn) => {
      const remote = conn.remoteAddr;
      onConn(conn, remote, this.#limits.admit(remote.hostname));
    }, {
      name: `${scheme}://${hostname}:${bound}`,
      stopping: () => this.#stopping !== undefined,
    }));
    return listener;
  }

  /**
   * Answers an HTTP connection over the caps, once its request arrived (a response sent before
   * it confuses clients): 429, or 503 when the server is full, then closes. Refusals get a short
   * head deadline and are capped in number, so refused connections cannot pile up instead.
   */
  #refuseHttp(conn: Deno.Conn, remoteAddr: Deno.NetAddr, refusal: Refusal): void {
    if (this.#refusing >= MAX_REFUSING) {
      closeQuietly(conn);
      return;
    }
    this.#refusing++;
    const status = refusal.kind === "full" ? 503 : 429;
    const answer = () =>
      new Response(`${refusal.reason}\n`, {
        status,
        headers: { "content-type": "text/plain; charset=utf-8", connection: "close" },
      });
    this.#trackWeb(
      serveHttp(conn, {
        remoteAddr,
        secure: false,
        handler: answer,
        headerTimeoutMs: REFUSAL_HEAD_MS,
        keepAliveTimeoutMs: REFUSAL_HEAD_MS,
      }).finally(() => this.#refusing--),
    );
  }

  #trackWeb(task: Promise<void>): void {
    this.#webTasks.add(task);
    task.finally(() => this.#webTasks.delete(task));
  }

  /**
   * Logs a WebSocket refused for its Origin, once per origin: a page served under a domain name
   * the operator did not list is most often the operator's own site.
   */
  #originRefused(origin: string): void {
    if (this.#origins.has(origin) || this.#origins.size >= 100) return;
    this.#origins.add(origin);
    log.info(
      "Refused a WebSocket from origin {origin}; if that is this server's address, " +
        "start it with --allow-origin {origin}",
      { origin: origin.slice(0, 200) },
    );
  }

  /** The TLS context options: certificate and key from their files, TLS 1.2 at least. */
  #secureContext(): tls.SecureContextOptions {
    return {
      cert: Deno.readTextFileSync(this.config.tlsCert!),
      key: Deno.readTextFileSync(this.config.tlsKey!),
      minVersion: "TLSv1.2",
    };
  }

  /**
   * The IRC ports: plain, and over TLS when there is a certificate. Their connections speak
   * IRC from the first line (src/irc/), with IRC's own line limit: 512 bytes and 8191 of tags.
   */
  #listenIrc(): void {
    const maxLine = MAX_LINE_BYTES + MAX_TAG_BYTES;
    this.#irc = this.#listen("irc", this.config.ircPort, (conn, _remote, admission) => {
      const connection = new StreamConnection(conn, { kind: "tcp", maxLine });
      this.#serve(connection, admission, true);
    });
    this.#ctx.irc!.ircPort = (this.#irc.addr as Deno.NetAddr).port;
    if (this.config.tlsCert === undefined) return;
    this.#ircTls = this.#listenTlsOn(
      "ircs",
      this.config.ircTlsPort,
      (socket, remote, admission) => {
        const conn = new NodeSocketConnection(socket, { kind: "tls", maxLine, remote });
        this.#serve(conn, admission, true);
      },
    );
  }

  /** The chat TLS port: the same sessions as plain TCP, over TLS. */
  #listenTls(): void {
    this.#tls = this.#listenTlsOn("tls", this.config.tlsPort, (socket, remote, admission) => {
      const conn = new NodeSocketConnection(socket, {
        kind: "tls",
        maxLine: this.config.maxLine,
        remote,
      });
      this.#serve(conn, admission);
    });
  }

  /**
   * A TLS listener on `port`: parley's own accept loop (so it survives running out of
   * descriptors), `node:tls` over each accepted connection. A connection counts against the
   * caps from its accept, its handshake included (one over them is closed before any handshake
   * work), must finish its handshake within `--handshake-timeout`, and is handed to `onSecure`
   * with its place under the caps, released when the socket closes. With `redirectPlain`, a
   * connection whose first byte does not start a TLS handshake (0x16) is read as a plain HTTP
   * request and answered with a redirect to https:// on the same port.
   */
  #listenTlsOn(
    scheme: "tls" | "ircs" | "https",
    port: number,
    onSecure: (socket: tls.TLSSocket, remote: Deno.NetAddr, admission: Admission) => void,
    alpn?: string[],
    redirectPlain = false,
  ): Deno.Listener {
    this.#tlsContext ??= tls.createSecureContext(this.#secureContext());
    const listener = this.#listen(scheme, port, (conn, remote, admission) => {
      if ("reason" in admission) {
        this.#refused(`${remote.hostname}:${remote.port}`, admission);
        closeQuietly(conn);
      } else if (redirectPlain) {
        void this.#sniffTls(conn, remote, admission, (first) => {
          this.#handshake(conn, remote, admission, onSecure, alpn, first);
        }, (listener.addr as Deno.NetAddr).port);
      } else this.#handshake(conn, remote, admission, onSecure, alpn);
    });
    return listener;
  }

  /**
   * Reads the first bytes of a connection to the HTTPS port: a TLS handshake (0x16) goes on to
   * `tlsHandshake` with them; anything else is taken for plain HTTP and answered with a 301 to
   * https:// on the same port (see {@linkcode plainHttpAnswer}), then closed. Either way within
   * the handshake deadline.
   */
  async #sniffTls(
    conn: Deno.TcpConn,
    remote: Deno.NetAddr,
    admission: Admission,
    tlsHandshake: (first: Uint8Array) => void,
    port: number,
  ): Promise<void> {
    this.#handshaking.add(conn);
    const timer = setTimeout(() => closeQuietly(conn), this.config.handshakeTimeoutMs);
    let head = new Uint8Array(0);
    let handedOn = false;
    try {
      const buf = new Uint8Array(PLAIN_HEAD_MAX);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        const got = new Uint8Array(head.length + n);
        got.set(head);
        got.set(buf.subarray(0, n), head.length);
        head = got;
        if (head[0] === 0x16) {
          clearTimeout(timer);
          this.#handshaking.delete(conn);
          handedOn = true;
          tlsHandshake(head);
          return;
        }
        const text = new TextDecoder().decode(head);
        if (text.includes("\r\n\r\n") || text.includes("\n\n") || head.length >= PLAIN_HEAD_MAX) {
          log.debug("Plain HTTP on the HTTPS port from {remote}: redirected", {
            remote: `${remote.hostname}:${remote.port}`,
          });
          const answer = new TextEncoder().encode(plainHttpAnswer(text, port));
          for (let at = 0; at < answer.length;) at += await conn.write(answer.subarray(at));
          return;
        }
      }
    } catch {
      // the peer left, or the deadline closed it
    } finally {
      if (!handedOn) {
        clearTimeout(timer);
        this.#handshaking.delete(conn);
        closeQuietly(conn);
        admission.release();
      }
    }
  }

  /** Runs a TLS handshake over `conn` within the deadline; closes it on any failure. */
  #handshake(
    conn: Deno.TcpConn,
    remote: Deno.NetAddr,
    admission: Admission,
    onSecure: (socket: tls.TLSSocket, remote: Deno.NetAddr, admission: Admission) => void,
    alpn: string[] | undefined,
    first?: Uint8Array,
  ): void {
    try {
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
    } catch {
      // gone already: the handshake will notice
    }
    const stream = connDuplex(conn, first);
    const socket = new tls.TLSSocket(stream, {
      isServer: true,
      secureContext: this.#tlsContext!,
      ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
    });
    this.#handshaking.add(conn);
    let secure = false;
    let ended = false;
    const end = (why: string | undefined) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      this.#handshaking.delete(conn);
      if (why !== undefined && !secure) {
        log.debug("TLS handshake with {remote} failed: {why}", {
          remote: `${remote.hostname}:${remote.port}`,
          why,
        });
      }
      if (why !== undefined) {
        socket.destroy();
        closeQuietly(conn);
      }
      admission.release();
    };
    const timer = setTimeout(() => end("no handshake in time"), this.config.handshakeTimeoutMs);
    socket.once("secure", () => {
      secure = true;
      clearTimeout(timer);
      this.#handshaking.delete(conn);
      onSecure(socket, remote, admission);
    });
    socket.on("error", (error: Error) => end(error.message));
    // A peer that leaves mid-handshake ends the stream under the TLS socket, not always the
    // TLS socket itself; once the socket closes, for whatever reason, so does the connection.
    stream.once("end", () => {
      if (!secure) end("the peer left during the handshake");
    });
    socket.once("close", () => {
      closeQuietly(conn);
      end(secure ? undefined : "closed");
    });
  }

  /**
   * Re-reads the TLS certificate and key and uses them for new connections; established
   * connections are untouched. On any error the old certificate stays.
   *
   * @returns whether the new certificate is in use
   */
  reloadTls(): boolean {
    if (this.#tlsContext === undefined) return false;
    try {
      this.#tlsContext = tls.createSecureContext(this.#secureContext());
    } catch (error) {
      log.error("Cannot reload the TLS certificate, keeping the old one: {error}", { error });
      return false;
    }
    log.info("Reloaded the TLS certificate");
    return true;
  }

  #closeListeners(): void {
    const listeners = [this.#listener, this.#webListener, this.#tls, this.#webTls];
    for (const listener of [...listeners, this.#irc, this.#ircTls]) {
      try {
        listener?.close();
      } catch {
        // already closed
      }
    }
    for (const conn of this.#handshaking) closeQuietly(conn);
  }

  #checkTimers(): void {
    const now = performance.now();
    for (const session of this.#sessions) session.checkTimers(now);
  }

  /** Where the server listens. */
  get addresses(): ListenAddress[] {
    const out: ListenAddress[] = [];
    if (this.#listener !== undefined) {
      const addr = this.#listener.addr as Deno.NetAddr;
      out.push({ scheme: "tcp", hostname: addr.hostname, port: addr.port });
    }
    if (this.#tls !== undefined) {
      const { hostname, port } = this.#tls.addr as Deno.NetAddr;
      out.push({ scheme: "tls", hostname, port });
    }
    for (const [scheme, listener] of [["irc", this.#irc], ["ircs", this.#ircTls]] as const) {
      if (listener === undefined) continue;
      const { hostname, port } = listener.addr as Deno.NetAddr;
      out.push({ scheme, hostname, port });
    }
    const web = this.#webAddress();
    if (web !== undefined) {
      const scheme = this.config.tlsCert === undefined ? "http" : "https";
      out.push({ scheme, ...web });
    }
    return out;
  }

  #webAddress(): { hostname: string; port: number } | undefined {
    const listener = this.#webListener ?? this.#webTls;
    if (listener === undefined) return undefined;
    const { hostname, port } = listener.addr as Deno.NetAddr;
    return { hostname, port };
  }

  /**
   * Serves a connection that did not come through a listener (an in-process
   * `memoryConnection` (src/transport/memory.ts)), under the same caps; resolves when it ends.
   */
  serve(conn: Connection): Promise<void> {
    return this.#serve(conn, this.#limits.admit(conn.remoteIp));
  }

  /** How many chat sessions (TCP, TLS, WebSocket) are open. */
  get connections(): number {
    return this.#tasks.size;
  }

  /** What `/metrics` reads when scraped, besides the counters. */
  #snapshot(): ServerSnapshot {
    let online = 0;
    let accounts = 0;
    for (const session of this.#sessions) {
      if (!session.online) continue;
      online++;
      if (session.user !== undefined) accounts++;
    }
    const store = (this.store as { stats?: ServerSnapshot["store"] }).stats;
    return {
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      startTimeSeconds: Math.floor(this.#startedAt / 1000),
      ...memory(),
      sessionsOnline: online,
      sessionsAccounts: accounts,
      sessionsPending: this.#sessions.size - online,
      rooms: this.hub.rooms().length,
      accounts: this.#ctx.accounts.stats,
      lag: this.#lag.stats,
      store,
    };
  }

  /** Stops the server (see the class description). Safe to call more than once. */
  shutdown(reason = "the server is shutting down"): Promise<void> {
    return this.#stopping ??= this.#shutdown(reason);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #shutdown(reason: string): Promise<void> {
    log.info("Shutting down: {connections} connections", { connections: this.connections });
    clearInterval(this.#sweep);
    clearInterval(this.#fileSweep);
    clearInterval(this.#adminFeed);
    this.#closeListeners();
    this.#webStop.abort(); // idle HTTP connections close at once, busy ones after their request
    await Promise.all(this.#accepting);
    const grace = this.config.shutdownGraceMs;
    // Everyone hears of the shutdown before anyone's going offline is announced to them.
    const notice = new Outgoing({ type: "shutdown", reason, permanent: false });
    for (const session of this.#sessions) session.deliver(notice);
    await Promise.all([...this.#sessions].map((s) => s.shutdown(reason, grace, true)));
    await Promise.all(this.#tasks);
    // Downloads and uploads still running get what is left of the grace period.
    await settlesWithin(Promise.all(this.#webTasks), grace);
    for (const conn of this.#webConns) closeQuietly(conn);
    await Promise.all(this.#webTasks);
    this.#ctx.accounts.close();
    this.#ctx.calls?.close();
    await this.#ctx.voice?.close();
    this.#lag[Symbol.dispose]();
    await this.store[Symbol.asyncDispose]();
    this.#folder?.release();
    log.info("Shut down");
  }

  /**
   * Tells the chat sessions logged in with the token an upload is made with how much of it has
   * arrived (`upload_progress`): the page that uploads shows the server's count, not the bytes
   * its browser has queued. Other sessions of the account, with other tokens, are not told.
   */
  #uploadProgress(p: UploadProgress): void {
    const sessions = (this.hub.user(p.user.name)?.sessions ?? []).filter((s): s is Session =>
      s instanceof Session && s.user?.id === p.user.id && sameBytes(s.tokenHash, p.tokenHash)
    );
    if (sessions.length === 0) return;
    const frame = new Outgoing({
      type: "upload_progress",
      upload: p.upload,
      received: p.received,
      ...(p.size === undefined ? {} : { size: p.size }),
    });
    for (const session of sessions) session.deliver(frame);
  }

  /**
   * Indexes messages for search after they are stored, a chunk at a time. Once the index is up
   * to date, it is looked at again only after messages were sent, or every INDEX_IDLE_TICKS
   * (for messages stored some other way): an idle server sends the store no indexing batches
   * (a search indexes what is missing first anyway).
   */
  #indexSome(): void {
    const sent = this.#counters.roomMessages + this.#counters.directMessages;
    if (this.#indexCaughtUp && sent === this.#indexSent && ++this.#indexIdle < INDEX_IDLE_TICKS) {
      return;
    }
    this.#indexSent = sent;
    this.#indexIdle = 0;
    this.#indexCaughtUp = false;
    this.store.messages.index(INDEX_CHUNK).then((n) => {
      this.#indexCaughtUp = n === 0;
    }, (error) => {
      if (this.#stopping === undefined) log.error("Cannot index for search: {error}", { error });
    });
  }

  /**
   * Whether the database may have changed since the last poll of the administrators' feed: its
   * files' sizes and modification times (a stat each, where a poll is a store batch), with a
   * poll every ADMIN_IDLE_TICKS regardless (a change in the same clock tick as the last stat
   * does not move the time). In memory, with a store it did not open, or when the files cannot
   * be looked at: always.
   */
  #adminMaybeChanged(): boolean {
    const db = this.#folder?.db;
    if (db === undefined || ++this.#adminIdle >= ADMIN_IDLE_TICKS) {
      this.#adminIdle = 0;
      return true;
    }
    let stamp = "";
    try {
      for (const suffix of ["", "-wal"]) {
        const info = Deno.statSync(`${db}${suffix}`);
        stamp += `${info.size}:${info.mtime?.getTime()};`;
      }
    } catch {
      return true;
    }
    if (stamp === this.#adminStamp) return false;
    this.#adminStamp = stamp;
    this.#adminIdle = 0;
    return true;
  }

  /**
   * Applies what administrators changed with `parley user` (the feed in the database, which
   * every server sharing it follows): a changed password, a disabled or deleted account ends its
   * live sessions; a granted or removed administrator role takes effect in them at once.
   */
  async #followAdmin(): Promise<void> {
    if (this.#following || this.#stopping !== undefined || !this.#adminMaybeChanged()) return;
    this.#following = true;
    try {
      const events = await this.store.moderation.adminEventsAfter(this.#adminSeen);
      for (const event of events) {
        this.#adminSeen = event.id;
        const sessions = (this.hub.user(event.name)?.sessions ?? []).filter((s): s is Session =>
          s instanceof Session && s.user?.id === event.userId
        );
        if (sessions.length === 0) continue;
        if (event.kind === "revoke") {
          for (const session of sessions) {
            session.revoke("An administrator changed your account: log in again");
          }
          log.info("Ended {n} sessions of {name}: an administrator changed the account", {
            n: sessions.length,
            name: event.name,
          });
          continue;
        }
        const user = await this.store.accounts.getUserById(event.userId);
        if (user === undefined) continue;
        const text = user.admin
          ? "You are now a server administrator"
          : "You are no longer a server administrator";
        for (const session of sessions) {
          session.user = heldUser(user);
          session.deliver(new Outgoing({ type: "notice", text }));
        }
      }
    } catch (error) {
      if (this.#stopping === undefined) {
        log.error("Cannot read the administrators' changes: {error}", { error });
      }
    } finally {
      this.#following = false;
    }
  }

  /** Logs a refused connection: a full server is the operator's business, the rest debug. */
  #refused(remote: string, refusal: Refusal): void {
    this.#counters.refused(refusal.kind);
    if (refusal.kind === "full") {
      log.warn("Refused {remote}: {reason}", { remote, reason: refusal.reason });
    } else log.debug("Refused {remote}: {reason}", { remote, reason: refusal.reason });
  }

  #track(task: Promise<void>): Promise<void> {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
    return task;
  }

  /**
   * Serves one connection under its place in the caps (or tells it why it has none), and
   * releases the place when it ends, whatever happens.
   */
  #serve(conn: Connection, admission: Admission | Refusal, irc = false): Promise<void> {
    if ("reason" in admission) return this.#track(this.#turnAway(conn, admission));
    const session = new Session(conn, this.#ctx, { irc });
    this.#sessions.add(session);
    this.#counters.connection(conn.kind, 1);
    const served = this.#stopping !== undefined
      ? session.shutdown("the server is shutting down", this.config.shutdownGraceMs)
      : session.run();
    // Not an async function: one suspended for the life of a session holds its whole frame.
    // Tracked here, not by #track: its ending takes it off the books, no `finally` held.
    const task: Promise<void> = served.then(() => this.#served(session, conn, admission, task), (
      error,
    ) => {
      log.error("Connection {remote} failed: {error}", { remote: conn.remote, error });
      this.#served(session, conn, admission, task);
    });
    this.#tasks.add(task);
    return task;
  }

  /** A session ended: it leaves the books and its place under the caps is released. */
  #served(session: Session, conn: Connection, admission: Admission, task: Promise<void>): void {
    this.#tasks.delete(task);
    this.#sessions.delete(session);
    this.#counters.connection(conn.kind, -1);
    session.close();
    admission.release();
  }

  /** Tells a connection over the caps why, and closes it. */
  async #turnAway(conn: Connection, refusal: Refusal): Promise<void> {
    this.#refused(conn.remote, refusal);
    try {
      await conn.write(encodeLine(`! ${refusal.reason}`));
    } catch {
      // the peer is gone already
    }
    conn.close();
  }
}

/** The place under the caps of a WebSocket session: its HTTP connection holds (and releases) it. */
const HELD_BY_HTTP: Admission = { release() {} };

/** What {@linkcode ChatServer.start} can be given instead of making it. */
export interface ServerDeps {
  /** The store; by default SQLite in the data folder. The server closes it at shutdown. */
  store?: Store;
  /** How the hub reaches sessions; by default in this process. */
  broker?: Broker;
  /** Where the time comes from (message stamps, token and file expiry). */
  clock?: Clock;
  /** Whether to open the configured ports. @default true */
  listen?: boolean;
}

/**
 * How often the administrators' feed is read (changes take effect within this, plus a commit),
 * and new messages are indexed for search (up to INDEX_CHUNK each time: 4,000 a second).
 */
const ADMIN_POLL_MS = 500;
/** An unchanged database is still polled for administrators' changes every 10 s. */
const ADMIN_IDLE_TICKS = 20;
const INDEX_CHUNK = 2000;
/** How many polls an up-to-date search index waits with nothing sent (10 s). */
const INDEX_IDLE_TICKS = 20;

/** Refused HTTP connections answered at once; past this many, one is closed unanswered. */
const MAX_REFUSING = 64;
/** How long a refused HTTP connection has to send its request head. */
const REFUSAL_HEAD_MS = 2_000;

/** The longest plain HTTP request head read on the HTTPS port before it is answered. */
const PLAIN_HEAD_MAX = 8 * 1024;
const HOST_RE = /^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(?::(\d{1,5}))?$/;

/**
 * The answer to a plain HTTP request that reached the HTTPS port: 301 to the same host, port
 * and path over https:// (a 400 saying so when the request has no usable `Host`), then close.
 *
 * @param head the request head as read (perhaps cut short)
 * @param port the HTTPS port, when the `Host` header names none
 */
export function plainHttpAnswer(head: string, port: number): string {
  const [requestLine = "", ...headers] = head.split(/\r?\n/);
  const [method = "", target = "/"] = requestLine.split(" ");
  const hostHeader = headers.find((h) => /^host:/i.test(h))?.slice(5).trim();
  const m = hostHeader === undefined ? null : HOST_RE.exec(hostHeader);
  const path = /^\/[\x21-\x7e]{0,2047}$/.test(target) ? target : "/";
  const url = m === null ? undefined : `https://${m[1]}:${m[2] ?? port}${path}`;
  const body = url === undefined
    ? `This port speaks HTTPS: use https:// (port ${port}).\n`
    : `This port speaks HTTPS: ${url}\n`;
  const lines = [
    url === undefined ? "HTTP/1.1 400 Bad Request" : "HTTP/1.1 301 Moved Permanently",
    ...url === undefined ? [] : [`location: ${url}`],
    "content-type: text/plain; charset=utf-8",
    `content-length: ${new TextEncoder().encode(body).length}`,
    "connection: close",
    "",
    "",
  ].join("\r\n");
  return method === "HEAD" ? lines : lines + body;
}

/** The process's memory: resident set and V8 heap in use, in bytes. */
function memory(): { rss: number; heap: number } {
  const { rss, heapUsed } = Deno.memoryUsage();
  return { rss, heap: heapUsed };
}

/** The flag that sets each listener's port, for the messages about it. */
const PORT_FLAGS: Record<ListenAddress["scheme"], string> = {
  tcp: "--port",
  tls: "--tls-port",
  irc: "--irc-port",
  ircs: "--irc-tls-port",
  http: "--http-port",
  https: "--http-port",
};

/** What binding `port` (set by `flag`) on `host` failed with, worded for the operator. */
function listenError(error: unknown, port: number, flag: string, host: string): Error {
  if (error instanceof Deno.errors.AddrInUse) {
    return new StartError(`port ${port} (${flag}) is in use: stop what holds it or pick another`);
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new StartError(
      `port ${port} (${flag}) needs privileges to bind: pick one above 1023, or allow it ` +
        "(e.g. setcap cap_net_bind_service)",
    );
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return new StartError(`cannot listen on ${host} (--host): no such local address`);
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Makes, checks and locks the data folder (see src/server/data_folder.ts) and opens the
 * database in it.
 */
async function openStore(
  config: ServerConfig,
): Promise<{ store: Store; folder: DataFolder | undefined }> {
  if (config.data === ":memory:") {
    return { store: await openSqliteStore(":memory:", { sync: config.sync }), folder: undefined };
  }
  const folder = await claimDataFolder(config.data);
  try {
    return { store: await openSqliteStore(folder.db, { sync: config.sync }), folder };
  } catch (error) {
    folder.release();
    throw databaseError(folder.db, error);
  }
}

/**
 * The composition root: starts a server from its settings and its parts (store, broker, clock;
 * each made by default). The same as {@linkcode ChatServer.start}.
 */
export function startServer(
  config: Partial<ServerConfig> = {},
  deps: ServerDeps = {},
): Promise<ChatServer> {
  return ChatServer.start(config, deps);
}

/** Whether two byte strings (token hashes) are equal. */
function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * The voice service, told by the hub when a session leaves a room; none (with a warning) without
 * `--allow-sys=networkInterfaces`, which werift needs to find the host's addresses.
 */
function startVoice(hub: Hub, config: ServerConfig): Voice | undefined {
  if (!mediaLoaded()) return undefined;
  if (Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state !== "granted") {
    log.warn("Voice is off: it needs --allow-sys=networkInterfaces (deno task server grants it)");
    return undefined;
  }
  containMediaFaults();
  const loopback = config.host === "127.0.0.1" || config.host === "localhost";
  const hosts = new Set(config.voiceHosts);
  if (loopback) hosts.add("127.0.0.1");
  const voice = new Voice(hub, {
    ports: config.voicePorts,
    hostAddresses: [...hosts],
    publicIp: config.voicePublicIp,
    maxPerRoom: config.voiceMaxPerRoom,
    maxStreams: config.voiceMaxStreams,
    maxSdp: 32 * 1024,
  });
  hub.onLeave = (member, room) => voice.left(member, room);
  return voice;
}
