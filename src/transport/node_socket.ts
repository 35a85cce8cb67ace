/**
 * A `node:net`/`node:tls` socket as a {@linkcode Connection}. The TLS listener uses
 * `node:tls` because it enforces a handshake deadline that really closes the socket (a
 * `Deno.TlsConn` closed before its handshake finishes keeps the socket open until the peer
 * acts), and can swap certificates in place.
 *
 * @module
 */

import type { Socket } from "node:net";
import { LineSplitter } from "../protocol/line_splitter.ts";
import type { LineEvent } from "../protocol/line_splitter.ts";
import type { Connection, TransportKind } from "./connection.ts";

/** Wraps a connected node socket. */
export class NodeSocketConnection implements Connection {
  readonly kind: TransportKind;
  readonly remoteIp: string;
  readonly remote: string;
  readonly framed = false;
  readonly #socket: Socket;
  readonly #maxLine: number;

  /**
   * @param socket the connected socket (for TLS, after the handshake)
   * @param options `kind` of transport, `maxLine`, the longest line accepted in bytes, and the
   * peer's address when the socket does not know it (TLS over a wrapped stream)
   */
  constructor(
    socket: Socket,
    options: { kind: TransportKind; maxLine: number; remote?: Deno.NetAddr },
  ) {
    this.#socket = socket;
    this.kind = options.kind;
    this.#maxLine = options.maxLine;
    const ip = options.remote?.hostname ?? socket.remoteAddress ?? "unknown";
    this.remoteIp = ip.replace(/^::ffff:/, "");
    this.remote = `${this.remoteIp}:${options.remote?.port ?? socket.remotePort}`;
    if (options.remote === undefined) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
    }
    socket.on("error", () => {}); // surfaced through reads and writes
  }

  async *messages(): AsyncGenerator<LineEvent> {
    const splitter = new LineSplitter(this.#maxLine);
    try {
      for await (const chunk of this.#socket) yield* splitter.push(chunk as Uint8Array);
    } catch {
      // reset or destroyed: the peer is gone either way
    }
  }

  write(data: Uint8Array): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed) return Promise.reject(new Error("Cannot write: connection closed"));
    if (socket.write(data)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (error?: unknown) => {
        socket.off("drain", done).off("close", done);
        if (error !== undefined || socket.destroyed) {
          reject(new Error("Cannot write: connection closed"));
        } else resolve();
      };
      socket.on("drain", done).on("close", done);
    });
  }

  close(): void {
    endSocket(this.#socket);
  }
}

/** How long {@linkcode endSocket} waits for the end to be written before destroying. */
const END_GRACE_MS = 1_000;

/**
 * Closes a socket the polite way: `end()` (for TLS a close_notify alert, then FIN), destroyed
 * once that is written, or after a second at most (a peer that does not read).
 */
export function endSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), END_GRACE_MS);
  socket.once("close", () => clearTimeout(timer));
  socket.end(() => socket.destroy());
}
