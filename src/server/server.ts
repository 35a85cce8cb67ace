/**
 * The chat server: listeners, the accept loop, per-connection tasks, connection limits and
 * graceful shutdown.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import tls from "node:tls";
import { Accounts } from "../auth/accounts.ts";
import { KeyedThrottle } from "../auth/limiter.ts";
import { Hub } from "../hub/hub.ts";
import { encodeLine } from "../protocol/outgoing.ts";
import { Session } from "../session/session.ts";
import type { SessionContext } from "../session/session.ts";
import { FlushScheduler } from "../session/outbox.ts";
import { CommitQueue } from "../store/commit_queue.ts";
import { SqliteStore } from "../store/sqlite_store.ts";
import type { Store } from "../store/store.ts";
import { FileService } from "../files/files.ts";
import { NodeSocketConnection } from "../transport/node_socket.ts";
import { httpHandler } from "./http.ts";
import { StreamConnection } from "../transport/tcp.ts";
import type { Connection } from "../transport/connection.ts";
import { VERSION } from "../version.ts";
import { DEFAULT_CONFIG } from "./config.ts";
import type { ServerConfig } from "./config.ts";

const log = getLogger(["parley", "server"]);

/** A listener's bound address as a URL-ish string: `tcp://127.0.0.1:5000`. */
export interface ListenAddress {
  scheme: "tcp" | "tls" | "http" | "https";
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
 * await using server = await ChatServer.start({ host: "127.0.0.1", port: 0, data: ":memory:" });
 * console.log(server.addresses);
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
  #tls: tls.Server | undefined;
  #http: Deno.HttpServer<Deno.NetAddr> | undefined;
  readonly #startedAt = Date.now();
  readonly #files: FileService | undefined;
  #fileSweep: ReturnType<typeof setInterval> | undefined;
  readonly #connRate: KeyedThrottle;
  #sweep: ReturnType<typeof setInterval> | undefined;
  readonly #tasks = new Set<Promise<void>>();
  readonly #sessions = new Set<Session>();
  readonly #perIp = new Map<string, number>();
  readonly #accepting: Promise<void>[] = [];
  #stopping: Promise<void> | undefined;

  private constructor(config: ServerConfig, store: Store) {
    this.config = config;
    this.store = store;
    this.hub = new Hub({ firstId: store.lastMessageId() + 1, presenceLimit: config.presenceLimit });
    const accounts = new Accounts(store, { ...config, exemptLoopback: !config.limitLoopback });
    this.#connRate = new KeyedThrottle(config.connRate, config.connWindowMs / config.connRate);
    if (config.data !== ":memory:") {
      this.#files = new FileService(store, accounts, {
        dir: `${config.data}/files`,
        maxFileSize: config.maxFileSize,
        quota: config.fileQuota,
        uploadBurst: config.uploadBurst,
        uploadIntervalMs: config.uploadIntervalMs,
        retentionMs: config.fileRetentionMs,
      });
    }
    this.#ctx = {
      hub: this.hub,
      store,
      commits: new CommitQueue(store),
      flusher: new FlushScheduler(),
      accounts,
      files: this.#files,
      config,
      version: VERSION,
    };
  }

  /**
   * Opens the store in the data folder and starts listening with `config` (missing fields take
   * {@linkcode DEFAULT_CONFIG}).
   *
   * @throws when the data folder or database cannot be opened, or the port cannot be bound
   */
  static async start(config: Partial<ServerConfig> = {}): Promise<ChatServer> {
    const full = { ...DEFAULT_CONFIG, ...config };
    if ((full.tlsCert === undefined) !== (full.tlsKey === undefined)) {
      throw new TypeError("Cannot start: give both --tls-cert and --tls-key, or neither");
    }
    if (!full.plain && full.tlsCert === undefined) {
      throw new TypeError("Cannot start: --no-plain needs --tls-cert and --tls-key");
    }
    const store = openStore(full);
    const server = new ChatServer(full, store);
    try {
      if (full.plain) {
        server.#listener = Deno.listen({ hostname: full.host, port: full.port });
        server.#accepting.push(server.#acceptLoop(server.#listener));
      }
      if (full.tlsCert !== undefined) await server.#listenTls();
      if (full.http) server.#listenHttp();
      const tick = Math.min(full.firstLineTimeoutMs, full.pingAfterMs, full.loginTimeoutMs) / 4;
      server.#sweep = setInterval(() => server.#checkTimers(), Math.max(100, Math.min(5000, tick)));
      const sweepFiles = () =>
        void server.#files?.sweep().catch((error) =>
          log.error("File sweep failed: {error}", { error })
        );
      sweepFiles();
      server.#fileSweep = setInterval(sweepFiles, 3600_000);
      void server.#ctx.accounts.lowPriorityHashing().then((niced) => {
        if (!niced) {
          log.warn("Password hashing runs at normal priority: allow --allow-sys=setPriority");
        }
      });
    } catch (error) {
      server.#closeListeners();
      server.#ctx.accounts.close();
      store[Symbol.dispose]();
      throw error;
    }
    return server;
  }

  #listenHttp(): void {
    const { config } = this;
    const tlsFiles = config.tlsCert === undefined ? {} : {
      cert: Deno.readTextFileSync(config.tlsCert),
      key: Deno.readTextFileSync(config.tlsKey!),
    };
    this.#http = Deno.serve(
      {
        hostname: config.host,
        port: config.httpPort,
        ...tlsFiles,
        onListen: () => {},
        onError: (error) => {
          log.error("HTTP request failed: {error}", { error });
          return new Response("Internal error\n", { status: 500 });
        },
      },
      httpHandler({
        allowOrigins: config.allowOrigins,
        maxLine: config.maxLine,
        admit: (ip) => this.#admit(ip),
        serve: (conn) => this.#track(this.#serve(conn, true)),
        health: () => ({
          status: this.#stopping === undefined ? "ok" : "stopping",
          version: VERSION,
          uptime: Math.round((Date.now() - this.#startedAt) / 1000),
          connections: this.connections,
          ...memory(),
        }),
        files: this.#files,
      }),
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

  async #listenTls(): Promise<void> {
    const server = tls.createServer({
      ...this.#secureContext(),
      handshakeTimeout: this.config.handshakeTimeoutMs,
    });
    server.on("secureConnection", (socket) => {
      const conn = new NodeSocketConnection(socket, { kind: "tls", maxLine: this.config.maxLine });
      this.#track(this.#serve(conn));
    });
    server.on("tlsClientError", (error, socket) => {
      log.debug("TLS handshake with {remote} failed: {error}", {
        remote: socket.remoteAddress,
        error: error.message,
      });
      socket.destroy();
    });
    server.on("error", (error) => log.error("TLS listener failed: {error}", { error }));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.config.tlsPort, this.config.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#tls = server;
    // No accept loop to await: close() stops accepting at once (node's "close" event waits for
    // every connection to end, so shutdown must not wait for it).
  }

  /**
   * Re-reads the TLS certificate and key and uses them for new connections; established
   * connections are untouched. On any error the old certificate stays.
   *
   * @returns whether the new certificate is in use
   */
  reloadTls(): boolean {
    if (this.#tls === undefined) return false;
    try {
      this.#tls.setSecureContext(this.#secureContext());
    } catch (error) {
      log.error("Cannot reload the TLS certificate, keeping the old one: {error}", { error });
      return false;
    }
    log.info("Reloaded the TLS certificate");
    return true;
  }

  #closeListeners(): void {
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    this.#tls?.close();
    void this.#http?.shutdown();
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
    const tlsAddr = this.#tls?.address();
    if (tlsAddr !== undefined && tlsAddr !== null && typeof tlsAddr === "object") {
      out.push({ scheme: "tls", hostname: tlsAddr.address, port: tlsAddr.port });
    }
    if (this.#http !== undefined) {
      const scheme = this.config.tlsCert === undefined ? "http" : "https";
      out.push({ scheme, hostname: this.#http.addr.hostname, port: this.#http.addr.port });
    }
    return out;
  }

  /** How many connections are open. */
  get connections(): number {
    return this.#tasks.size;
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
    this.#closeListeners();
    await Promise.all(this.#accepting);
    const grace = this.config.shutdownGraceMs;
    await Promise.all([...this.#sessions].map((s) => s.shutdown(reason, grace)));
    await Promise.all(this.#tasks);
    await this.#http?.finished;
    this.#ctx.accounts.close();
    this.#ctx.commits.flush();
    this.store[Symbol.dispose]();
    log.info("Shut down");
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    while (this.#stopping === undefined) {
      try {
        for await (const conn of listener) {
          const maxLine = this.config.maxLine;
          this.#track(this.#serve(new StreamConnection(conn, { kind: "tcp", maxLine })));
        }
        return;
      } catch (error) {
        if (this.#stopping !== undefined) return;
        // Out of file descriptors and the like: back off a little, keep serving.
        log.error("Accept failed: {error}", { error });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  /** Serves one connection; `admitted` when the caller already checked the limits. */
  async #serve(conn: Connection, admitted = false): Promise<void> {
    const refusal = admitted ? undefined : this.#admit(conn.remoteIp);
    if (refusal !== undefined) {
      log.warn("Refused {remote}: {reason}", { remote: conn.remote, reason: refusal });
      try {
        await conn.write(encodeLine(`! ${refusal}`));
      } catch {
        // the peer is gone already
      }
      conn.close();
      return;
    }
    const ip = conn.remoteIp;
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    const session = new Session(conn, this.#ctx);
    this.#sessions.add(session);
    try {
      if (this.#stopping !== undefined) {
        await session.shutdown("the server is shutting down", this.config.shutdownGraceMs);
      } else {
        await session.run();
      }
    } catch (error) {
      log.error("Connection {remote} failed: {error}", { remote: conn.remote, error });
    } finally {
      this.#sessions.delete(session);
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left === 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, left);
      session.close();
    }
  }

  /** Returns why a new connection from `ip` is refused, or undefined to admit (and count) it. */
  #admit(ip: string): string | undefined {
    if (this.#sessions.size >= this.config.maxConns) {
      return "Too many connections: the server is full, try again later";
    }
    const exempt = isLoopback(ip) && !this.config.limitLoopback;
    if (exempt) return undefined;
    if ((this.#perIp.get(ip) ?? 0) >= this.config.maxConnsPerIp) {
      return "Too many connections from your address";
    }
    const wait = this.#connRate.retryAfter(ip);
    if (wait > 0) return `Too many new connections from your address: try again in ${wait} s`;
    this.#connRate.hit(ip);
    return undefined;
  }
}

/** The process's memory: resident set and V8 heap in use, in bytes. */
function memory(): { rss: number; heap: number } {
  const { rss, heapUsed } = Deno.memoryUsage();
  return { rss, heap: heapUsed };
}

/** Creates the data folder (mode 0700) if needed and opens the database in it. */
function openStore(config: ServerConfig): Store {
  if (config.data === ":memory:") return SqliteStore.open(":memory:", { sync: config.sync });
  Deno.mkdirSync(config.data, { recursive: true, mode: 0o700 });
  return SqliteStore.open(`${config.data}/parley.db`, { sync: config.sync });
}

/** Whether `ip` is a loopback address. */
export function isLoopback(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.") || ip.startsWith("::ffff:127.");
}
