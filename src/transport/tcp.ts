/**
 * A `Deno.Conn` (plain TCP) as a {@linkcode Connection}.
 *
 * @module
 */

import { LineSplitter } from "../protocol/line_splitter.ts";
import type { Connection, InboundEvent, TransportKind } from "./connection.ts";

const MIN_READ = 512;
const MAX_READ = 64 * 1024;
/** The first byte of a TLS record carrying a handshake (a ClientHello, on a plain port). */
const TLS_HANDSHAKE = 0x16;

/**
 * Wraps a stream connection. The read buffer starts small (idle connections stay cheap) and
 * doubles while reads fill it, up to 64 KiB, so busy connections read in large chunks; it
 * shrinks again when reads get small.
 */
export class StreamConnection implements Connection {
  readonly kind: TransportKind;
  readonly remoteIp: string;
  readonly localIp?: string;
  readonly remote: string;
  readonly framed = false;
  readonly #conn: Deno.Conn;
  readonly #maxLine: number;
  #closed = false;

  /**
   * @param conn the accepted connection
   * @param options `kind` of transport and `maxLine`, the longest line accepted in bytes
   */
  constructor(conn: Deno.Conn, options: { kind: TransportKind; maxLine: number }) {
    this.#conn = conn;
    this.kind = options.kind;
    this.#maxLine = options.maxLine;
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remoteIp = addr.hostname ?? "unknown";
    this.remote = addr.port === undefined ? this.remoteIp : `${this.remoteIp}:${addr.port}`;
    const local = conn.localAddr as Deno.NetAddr;
    if (local.hostname !== undefined) this.localIp = local.hostname;
    if ("setNoDelay" in conn) {
      const tcp = conn as Deno.TcpConn;
      try {
        tcp.setNoDelay(true);
        tcp.setKeepAlive(true);
      } catch {
        // The peer may already be gone; reading will notice.
      }
    }
  }

  /**
   * Yields lines; if the peer's very first byte starts a TLS handshake, yields `tls_hello`
   * instead and stops reading (no line of it could be chat).
   */
  async *messages(): AsyncGenerator<InboundEvent> {
    const splitter = new LineSplitter(this.#maxLine);
    let buf = new Uint8Array(MIN_READ);
    let first = true;
    while (!this.#closed) {
      let n: number | null;
      try {
        n = await this.#conn.read(buf);
      } catch {
        return; // reset, closed under us: the peer is gone either way
      }
      if (n === null) return;
      if (first && n > 0) {
        first = false;
        if (buf[0] === TLS_HANDSHAKE) {
          yield { error: "tls_hello" };
          return;
        }
      }
      yield* splitter.push(buf.subarray(0, n));
      if (n === buf.length && buf.length < MAX_READ) buf = new Uint8Array(buf.length * 2);
      else if (n < buf.length / 8 && buf.length > MIN_READ) buf = new Uint8Array(buf.length / 2);
    }
  }

  write(data: Uint8Array): Promise<void> {
    // Not an async function: a socket with room takes all of `data` in one write, and this
    // runs once per connection per pass, so the common case costs one promise, not three.
    return this.#conn.write(data).then((n) => n < data.length ? this.#rest(data, n) : undefined);
  }

  async #rest(data: Uint8Array, offset: number): Promise<void> {
    while (offset < data.length) offset += await this.#conn.write(data.subarray(offset));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
