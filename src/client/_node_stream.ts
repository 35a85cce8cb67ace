/**
 * A connected `node:net`/`node:tls` socket seen as a pull-based byte stream (`read`, `write`,
 * `close`), like `Deno.Conn`, so a {@linkcode Link} can run over it.
 *
 * @module
 */

import type { Socket } from "node:net";

/** Pause the socket once this much received data waits to be read. */
const HIGH_WATER = 1024 * 1024;

/** Adapts a node socket: incoming chunks are buffered until read; a full buffer pauses it. */
export class NodeSocketStream {
  readonly #socket: Socket;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  /** @param socket a connected socket (for TLS, after `secureConnect`) */
  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= HIGH_WATER) socket.pause();
      this.#signal();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#signal();
    });
    const end = () => {
      this.#ended = true;
      this.#signal();
    };
    socket.on("end", end);
    socket.on("close", end);
  }

  /** Reads into `p`: resolves with the byte count, or null once the peer closed. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#buffered -= n;
    if (this.#buffered < HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  /** Writes all of `p`; resolves with its length once the socket took it. */
  write(p: Uint8Array): Promise<number> {
    if (this.#socket.destroyed) return Promise.reject(new Error("Cannot write: connection closed"));
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (error) => error ? reject(error) : resolve(p.length));
    });
  }

  /** Closes the socket at once. */
  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
