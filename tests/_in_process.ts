// The in-process server for tests of session logic: the real ChatServer with no ports, JSON
// connections from memoryConnection() (each from the address given), and a real SQLite store on
// its worker; with the request helpers those tests share.
import assert from "node:assert/strict";
import { ChatServer } from "../src/server/server.ts";
import type { ServerConfig } from "../src/server/config.ts";
import type { Store } from "../src/store/store.ts";
import { openSqliteStore } from "../src/store/worker_store.ts";
import { memoryConnection } from "../src/transport/memory.ts";
import type { MemoryPeer } from "../src/transport/memory.ts";

export const PASSWORD = "correct horse battery";

/** A frame as a test reads it. */
export type Frame = Record<string, unknown>;

/** A server in this process. */
export interface App extends AsyncDisposable {
  server: ChatServer;
  store: Store;
  /** A JSON connection from `ip`, past `hello`. */
  connect(ip?: string): Promise<MemoryPeer>;
}

/**
 * Starts a server with no ports on a store at `path` (a fresh one in memory by default), with
 * `config` over the test defaults.
 */
export async function app(path = ":memory:", config: Partial<ServerConfig> = {}): Promise<App> {
  const store = await openSqliteStore(path, { sync: "normal" });
  const server = await ChatServer.start(
    { data: ":memory:", lowPriorityHashing: false, hashConcurrency: 1, ...config },
    { store, listen: false },
  );
  return {
    server,
    store,
    async connect(ip = "127.0.0.1") {
      const [conn, peer] = memoryConnection(ip);
      void server.serve(conn);
      peer.send({ type: "hello", proto: 1, ref: "hello" });
      await peer.frame((f) => f.ref === "hello");
      return peer;
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

let refs = 0;

/** Sends a request and waits for its reply. */
export async function ask(peer: MemoryPeer, frame: Frame): Promise<Frame> {
  const ref = `r${++refs}`;
  peer.send({ ...frame, ref });
  return await peer.frame((f) => f.ref === ref);
}

/** Sends a request whose reply must not be an error. */
export async function ok(peer: MemoryPeer, frame: Frame): Promise<Frame> {
  const reply = await ask(peer, frame);
  assert.notEqual(reply.type, "error", JSON.stringify(reply));
  return reply;
}

/** Sends a request that must be refused with `code` (and a message matching `message`). */
export async function refused(peer: MemoryPeer, frame: Frame, code: string, message?: RegExp) {
  const reply = await ask(peer, frame);
  assert.equal(reply.type, "error", JSON.stringify(reply));
  assert.equal(reply.code, code, JSON.stringify(reply));
  if (message) assert.match(String(reply.message), message);
}

/** Waits until `peer` got an event (a frame answering no request) matching `match`. */
export function seen(peer: MemoryPeer, match: (f: Frame) => boolean): Promise<Frame> {
  return peer.frame((f) => f.ref === undefined && match(f));
}

/** A connection logged in as a new account `name`. */
export async function register(a: App, name: string, ip?: string): Promise<MemoryPeer> {
  const peer = await a.connect(ip);
  await ok(peer, { type: "register", name, password: PASSWORD });
  return peer;
}
