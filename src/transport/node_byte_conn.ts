/**
 * A `node:net`/`node:tls` socket as a {@linkcode ByteConn}, so `serveHttp` can run on the TLS
 * web port the way the chat TLS listener does (node:tls enforces its handshake deadline).
 *
 * @module
 */

import type { Socket } from "node:net";
import type { ByteConn } from "./byte_conn.ts";
import { endSocket } from "./node_socket.ts";

/** Past this many unread bytes, the socket is paused (TCP backpressure). */
const HIGH_WATER = 64 * 1024;

/**
 * Adapts a connected node socket (for TLS, after its handshake). Reads copy from what the
 * socket delivered, pausing it while 64 KiB wait unread; a write resolves once node handed the
 * bytes to the socket, so one write at a time gives real backpressure.
 *
 * Create the server with `allowHalfOpen: true`: otherwise node ends our side as soon as the
 * peer sends FIN, and a client that half-closes after its request never gets the response.
 */
export class NodeByteConn implements ByteConn {
  /** The peer, as Deno names it. */
  readonly remoteAddr: Deno.NetAddr;
  readonly #socket: Socket;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #writes = new Set<(error: Error) => void>();

  /**
   * @param socket the connected socket
   * @param remote the peer, when the socket does not know it (TLS over a wrapped stream)
   */
  constructor(socket: Socket, remote?: Deno.NetAddr) {
    this.#socket = socket;
    this.remoteAddr = remote ?? {
      transport: "tcp",
      hostname: (socket.remoteAddress ?? "unknown").replace(/^::ffff:/, ""),
      port: socket.remotePort ?? 0,
    };
    if (remote === undefined) socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued >= HIGH_WATER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
      const gone = new Error("Cannot write: the socket closed");
      for (const fail of this.#writes) fail(gone);
      this.#writes.clear();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * Reads into `p`.
   *
   * @param p where to copy the bytes
   * @returns the byte count, or null once the peer ended the stream
   * @throws when the socket failed
   */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error !== undefined) throw new Error(`Cannot read: ${this.#error.message}`);
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, p.length - n);
      p.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#queued -= n;
    if (this.#queued < HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  /**
   * Writes all of `p`.
   *
   * @param p the bytes (node may hold them until the promise resolves)
   * @returns `p.length`, once the socket took the bytes
   * @throws when the socket is closed or fails
   */
  write(p: Uint8Array): Promise<number> {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) {
      return Promise.reject(new Error("Cannot write: the socket is closed"));
    }
    return new Promise<number>((resolve, reject) => {
      const fail = (error: Error) => reject(error);
      this.#writes.add(fail);
      socket.write(p, (error) => {
        this.#writes.delete(fail);
        if (error) reject(new Error(`Cannot write: ${error.message}`));
        else resolve(p.length);
      });
    });
  }

  /** Ends the writing side (FIN after what is queued). */
  closeWrite(): Promise<void> {
    this.#socket.end();
    return Promise.resolve();
  }

  /** Ends the socket (a TLS close_notify first), destroyed once that is written. */
  close(): void {
    endSocket(this.#socket);
  }
}
