/**
 * A `Deno.Conn` (plain TCP) as a {@linkcode Connection}.
 *
 * @module
 */

import { type LineEvent, LineSplitter } from "../protocol/line_splitter.ts";
import type { Connection, InboundEvent, TransportKind } from "./connection.ts";

const MIN_READ = 512;
const MAX_READ = 64 * 1024;
/** The first byte of a TLS record carrying a handshake (a ClientHello, on a plain port). */
const TLS_HANDSHAKE = 0x16;

/** What a finished iterator answers. */
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };
/** The queue of a connection with no complete line waiting (shared: most are idle). */
const NO_EVENTS: readonly InboundEvent[] = [];

/**
 * Wraps a stream connection. The read buffer starts small (idle connections stay cheap) and
 * doubles while reads fill it, up to 64 KiB, so busy connections read in large chunks; it
 * shrinks again when reads get small.
 *
 * The connection is its own message iterator, with no generator behind it: an idle connection
 * holds its pending read and nothing else (no suspended generators, no promise chains).
 */
export class StreamConnection implements Connection, AsyncIterableIterator<InboundEvent> {
  readonly kind: TransportKind;
  readonly remoteIp: string;
  readonly localIp?: string;
  readonly remote: string;
  readonly framed = false;
  readonly #conn: Deno.Conn;
  readonly #splitter: LineSplitter;
  #buf: Uint8Array | undefined;
  /** Lines read but not yet taken, from `#at` on. */
  #events: InboundEvent[] = NO_EVENTS as InboundEvent[];
  #at = 0;
  /** What a read's promise calls, either way: one bound method, not two closures a read. */
  #settled:
    | ((n: unknown) => IteratorResult<InboundEvent> | Promise<IteratorResult<InboundEvent>>)
    | undefined;
  /** The read in flight, resolving to the next event. */
  #reading: Promise<IteratorResult<InboundEvent>> | undefined;
  #first = true;
  #ended = false;
  #closed = false;

  /**
   * @param conn the accepted connection
   * @param options `kind` of transport and `maxLine`, the longest line accepted in bytes
   */
  constructor(conn: Deno.Conn, options: { kind: TransportKind; maxLine: number }) {
    this.#conn = conn;
    this.kind = options.kind;
    this.#splitter = new LineSplitter(options.maxLine);
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
   * instead and stops reading (no line of it could be chat). Call it once: the connection is
   * the iterator.
   */
  messages(): AsyncIterableIterator<InboundEvent> {
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<InboundEvent> {
    return this;
  }

  /** The next event; calls made while one waits are answered in turn, after it. */
  next(): Promise<IteratorResult<InboundEvent>> {
    const reading = this.#reading;
    if (reading !== undefined) return reading.then(() => this.next());
    const queued = this.#take();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#ended || this.#closed) return Promise.resolve(DONE);
    const settled = this.#settled ??= this.#read.bind(this);
    return this.#reading = this.#conn.read(this.#buf ??= new Uint8Array(MIN_READ)).then(
      settled,
      settled,
    );
  }

  /** Stops reading: later calls of `next` are done. */
  return(): Promise<IteratorResult<InboundEvent>> {
    this.#ended = true;
    this.#events = NO_EVENTS as InboundEvent[];
    this.#at = 0;
    return Promise.resolve(DONE);
  }

  #take(): IteratorResult<InboundEvent> | undefined {
    const events = this.#events;
    if (this.#at >= events.length) return undefined;
    const value = events[this.#at++]!;
    if (this.#at === events.length) {
      this.#events = NO_EVENTS as InboundEvent[];
      this.#at = 0;
    }
    return { done: false, value };
  }

  /**
   * A read settled: `n` bytes in `#buf`, or null at the end, or why it failed (reset, closed
   * under us: the peer is gone either way).
   */
  #read(
    n: number | null | unknown,
  ): IteratorResult<InboundEvent> | Promise<IteratorResult<InboundEvent>> {
    this.#reading = undefined;
    const buf = this.#buf!;
    if (typeof n !== "number" || this.#ended) {
      this.#ended = true;
      return DONE;
    }
    if (this.#first && n > 0) {
      this.#first = false;
      if (buf[0] === TLS_HANDSHAKE) {
        this.#ended = true;
        return { done: false, value: { error: "tls_hello" } };
      }
    }
    const events: InboundEvent[] = [];
    this.#splitter.split(buf.subarray(0, n), events as LineEvent[]);
    if (events.length > 0) {
      this.#events = events;
      this.#at = 0;
    }
    if (n === buf.length && buf.length < MAX_READ) this.#buf = new Uint8Array(buf.length * 2);
    else if (n < buf.length / 8 && buf.length > MIN_READ) {
      this.#buf = new Uint8Array(buf.length / 2);
    }
    return this.#take() ?? this.next(); // no whole line yet: read on
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
