/**
 * The chat server: listeners, the accept loop, per-connection tasks, connection limits and
 * graceful shutdown.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Accounts } from "../auth/accounts.ts";
import { Hub } from "../hub/hub.ts";
import { encodeLine } from "../protocol/outgoing.ts";
import { Session } from "../session/session.ts";
import type { SessionContext } from "../session/session.ts";
import { CommitQueue } from "../store/commit_queue.ts";
import { SqliteStore } from "../store/sqlite_store.ts";
import type { Store } from "../store/store.ts";
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
 * await using server = ChatServer.start({ host: "127.0.0.1", port: 0 });
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
  readonly #listeners: Deno.Listener[] = [];
  readonly #tasks = new Set<Promise<void>>();
  readonly #sessions = new Set<Session>();
  readonly #perIp = new Map<string, number>();
  readonly #accepting: Promise<void>[] = [];
  #stopping: Promise<void> | undefined;

  private constructor(config: ServerConfig, store: Store) {
    this.config = config;
    this.store = store;
    this.hub = new Hub({ firstId: store.lastMessageId() + 1 });
    const accounts = new Accounts(store, {
      registration: config.registration,
      loginBurst: config.loginBurst,
      loginIntervalMs: config.loginIntervalMs,
      registerBurst: config.registerBurst,
      registerIntervalMs: config.registerIntervalMs,
      sessionTtlMs: config.sessionTtlMs,
      hashConcurrency: config.hashConcurrency,
      exemptLoopback: !config.limitLoopback,
    });
    this.#ctx = {
      hub: this.hub,
      store,
      commits: new CommitQueue(store),
      accounts,
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
  static start(config: Partial<ServerConfig> = {}): ChatServer {
    const full = { ...DEFAULT_CONFIG, ...config };
    const store = openStore(full);
    let server: ChatServer;
    try {
      server = new ChatServer(full, store);
      const listener = Deno.listen({ hostname: full.host, port: full.port });
      server.#listeners.push(listener);
      server.#accepting.push(server.#acceptLoop(listener, "tcp"));
    } catch (error) {
      store[Symbol.dispose]();
      throw error;
    }
    return server;
  }

  /** Where the server listens. */
  get addresses(): ListenAddress[] {
    return this.#listeners.map((l) => {
      const addr = l.addr as Deno.NetAddr;
      return { scheme: "tcp", hostname: addr.hostname, port: addr.port };
    });
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
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch {
        // already closed
      }
    }
    await Promise.all(this.#accepting);
    const grace = this.config.shutdownGraceMs;
    await Promise.all([...this.#sessions].map((s) => s.shutdown(reason, grace)));
    await Promise.all(this.#tasks);
    this.#ctx.commits.flush();
    this.store[Symbol.dispose]();
    log.info("Shut down");
  }

  async #acceptLoop(listener: Deno.Listener, kind: "tcp" | "tls"): Promise<void> {
    while (this.#stopping === undefined) {
      try {
        for await (const conn of listener) {
          this.#track(
            this.#serve(new StreamConnection(conn, { kind, maxLine: this.config.maxLine })),
          );
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

  async #serve(conn: Connection): Promise<void> {
    const refusal = this.#admit(conn);
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

  /** Returns why a new connection is refused, or undefined to admit it. */
  #admit(conn: Connection): string | undefined {
    if (this.#sessions.size >= this.config.maxConns) {
      return "Too many connections: the server is full, try again later";
    }
    const exempt = isLoopback(conn.remoteIp) && !this.config.limitLoopback;
    if (!exempt && (this.#perIp.get(conn.remoteIp) ?? 0) >= this.config.maxConnsPerIp) {
      return "Too many connections from your address";
    }
    return undefined;
  }
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
