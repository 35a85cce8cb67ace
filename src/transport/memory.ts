/**
 * An in-process connection pair: the server side is a {@linkcode Connection} like any transport's,
 * the client side sends and reads lines. Session logic can be tested without sockets, fast and
 * deterministic ({@linkcode ChatServer.serve} takes the server side).
 *
 * @module
 */

import type { Connection, InboundEvent } from "./connection.ts";

const decoder = new TextDecoder();

/** The client's end of a {@linkcode memoryConnection}. */
export interface MemoryPeer {
  /** Sends one line (a string as is, an object as JSON). */
  send(line: string | Record<string, unknown>): void;
  /** The next line the server wrote that matches `match` (earlier ones are dropped). */
  line(match?: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** The next JSON frame that matches `match`. */
  frame(
    match?: (frame: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Every line written and not consumed yet. */
  pending(): string[];
  /** Whether the server closed the connection. */
  readonly closed: boolean;
  /** Closes the connection from the client's side. */
  close(): void;
}

/**
 * A connected pair: `[server, client]`. The server side is a plain (unframed) connection from
 * `remoteIp`, so it gets the banner and picks its mode from the first line.
 *
 * @param remoteIp the address the server sees
 * @returns the two ends
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryConnection } from "./memory.ts";
 * const [server, client] = memoryConnection();
 * client.send("hi");
 * const events = server.messages()[Symbol.asyncIterator]();
 * assert.deepEqual((await events.next()).value, { line: "hi" });
 * await server.write(new TextEncoder().encode("* hello\n"));
 * assert.equal(await client.line(), "* hello");
 * client.close();
 * ```
 */
export function memoryConnection(remoteIp = "127.0.0.1"): [Connection, MemoryPeer] {
  const inbound: InboundEvent[] = [];
  const outbound: string[] = [];
  let partial = "";
  let closed = false;
  let wakeServer: (() => void) | undefined;
  let wakeClient: (() => void) | undefined;
  const close = () => {
    closed = true;
    wakeServer?.();
    wakeClient?.();
  };
  const server: Connection = {
    kind: "tcp",
    remoteIp,
    remote: `${remoteIp}:1`,
    framed: false,
    async *messages() {
      for (;;) {
        const event = inbound.shift();
        if (event !== undefined) {
          yield event;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => wakeServer = resolve);
        wakeServer = undefined;
      }
    },
    write(data) {
      if (closed) return Promise.reject(new Error("Cannot write: connection closed"));
      const lines = (partial + decoder.decode(data)).split("\n");
      partial = lines.pop()!;
      outbound.push(...lines);
      wakeClient?.();
      return Promise.resolve();
    },
    close,
  };
  const line = async (match: (line: string) => boolean = () => true, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (outbound.length > 0) {
        const next = outbound.shift()!;
        if (match(next)) return next;
      }
      if (closed) throw new Error("Connection closed before the expected line");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("Timed out waiting for a line");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wakeClient = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      wakeClient = undefined;
    }
  };
  const client: MemoryPeer = {
    send(text) {
      inbound.push({ line: typeof text === "string" ? text : JSON.stringify(text) });
      wakeServer?.();
    },
    line,
    async frame(match = () => true, timeoutMs = 5000) {
      return JSON.parse(
        await line((l) => l.startsWith("{") && match(JSON.parse(l)), timeoutMs),
      );
    },
    pending: () => [...outbound],
    get closed() {
      return closed;
    },
    close,
  };
  return [server, client];
}
