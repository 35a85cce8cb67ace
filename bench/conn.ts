/**
 * One driver connection: owns the socket, reads into one growable buffer that the protocol
 * parses in place, writes through a queue that coalesces everything pending into one write, and
 * turns the server's replies into settled requests for the setup code.
 *
 * @module
 */

import type { ByteSink } from "./byte_sink.ts";
import type { DeliveryCounter } from "./deliveries.ts";
import { SequenceTracker } from "./deliveries.ts";
import { nowMicros, parseStamp } from "./payload.ts";
import type { Stamp } from "./payload.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How a connection comes online. */
export type LoginSpec =
  | { kind: "guest"; nick?: string }
  | { kind: "token"; token: string }
  | { kind: "password"; name: string; password: string }
  | { kind: "register"; name: string; password: string };

/** Where a message goes: a room (an MQTT topic) or a user. */
export type SendTarget = { room: string } | { to: string };

/** What a login resolves to. */
export interface BenchLogin {
  /** The name the server gave the connection. */
  name: string;
  /** A session token (parley accounts). */
  token?: string;
}

/** A wire protocol, as the driver needs it. */
export interface Protocol {
  /** The protocol's name: `parley`, `irc` or `mqtt`. */
  readonly name: string;
  /**
   * Parses the whole frames in `buf[0, len)`, calling back into `conn`.
   *
   * @returns the bytes consumed
   */
  consume(conn: BenchConn, buf: Uint8Array, len: number): number;
  /** Brings a fresh connection online (waiting for a banner first if the protocol has one). */
  login(conn: BenchConn, spec: LoginSpec, timeoutMs: number): Promise<BenchLogin>;
  /** Joins a room (subscribes to a topic) and resolves once the server confirmed it. */
  join(conn: BenchConn, room: string, timeoutMs: number): Promise<void>;
  /** Appends one message frame to `out`. */
  encodeSend(out: ByteSink, target: SendTarget, text: string): void;
}

/** A refused request or a connection that ended during one. */
export class RequestError extends Error {
  /** @param message what went wrong */
  constructor(message: string) {
    super(message);
    this.name = "RequestError";
  }
}

interface Waiter {
  resolve(line: string): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Counters a worker shares between its connections. */
export interface SharedCounters {
  /** Deliveries of the current step. */
  deliveries: DeliveryCounter;
  /** Error replies nobody waited for (refused sends). */
  errors: number;
  /** The first few of those, for the report. */
  errorSamples: string[];
  /** Bytes read from all connections. */
  bytesIn: number;
}

/** Options for {@linkcode BenchConn.connect}. */
export interface ConnOptions {
  /** Server host. */
  host: string;
  /** Server port. */
  port: number;
  /** Initial read buffer size (it grows for longer frames). @default 16384 */
  readSize?: number;
}

/**
 * A client connection of the driver.
 */
export class BenchConn {
  /** The driver-wide id of this client (also its sender id). */
  readonly id: number;
  /** The name the server gave it. */
  name = "";
  /** Sequence tracking of what it received. */
  readonly tracker: SequenceTracker = new SequenceTracker();
  /** Arrival time (µs) of the bytes being parsed. */
  now = 0;
  /** When its last bytes arrived, µs (0: never). */
  lastByteAt = 0;
  /** When the connection ended, µs (0: still open). */
  endedAt = 0;
  /** Keep replies nobody waits for yet (during setup) instead of dropping them. */
  queueReplies = true;
  readonly #conn: Deno.TcpConn;
  readonly #protocol: Protocol;
  readonly #shared: SharedCounters;
  readonly #stamp: Stamp = { t: 0, sender: 0, seq: 0, step: 0 };
  #buf: Uint8Array;
  #waiter: Waiter | undefined;
  #settled: { ok: boolean; line: string }[] = [];
  #writeQueue: Uint8Array[] = [];
  #writing = false;
  #paused: Promise<void> | undefined;
  #resume: (() => void) | undefined;
  readonly #reading: Promise<void>;

  private constructor(
    id: number,
    conn: Deno.TcpConn,
    protocol: Protocol,
    shared: SharedCounters,
    readSize: number,
  ) {
    this.id = id;
    this.#conn = conn;
    this.#protocol = protocol;
    this.#shared = shared;
    this.#buf = new Uint8Array(readSize);
    this.#reading = this.#read();
  }

  /**
   * Opens a connection.
   *
   * @param id the client's id
   * @param protocol how to speak
   * @param shared the worker's counters
   * @param options where to connect
   */
  static async connect(
    id: number,
    protocol: Protocol,
    shared: SharedCounters,
    options: ConnOptions,
  ): Promise<BenchConn> {
    const conn = await Deno.connect({ hostname: options.host, port: options.port });
    conn.setNoDelay(true);
    return new BenchConn(id, conn, protocol, shared, options.readSize ?? 16384);
  }

  /** Whether the connection has ended. */
  get ended(): boolean {
    return this.endedAt !== 0;
  }

  /** The protocol spoken. */
  get protocol(): Protocol {
    return this.#protocol;
  }

  /** Whether a reply would be looked at (someone waits, or replies are queued). */
  get wantsReplies(): boolean {
    return this.#waiter !== undefined || this.queueReplies;
  }

  async #read(): Promise<void> {
    let len = 0;
    try {
      for (;;) {
        if (this.#paused !== undefined) await this.#paused;
        if (len === this.#buf.length) {
          const bigger = new Uint8Array(this.#buf.length * 2);
          bigger.set(this.#buf);
          this.#buf = bigger;
        }
        const n = await this.#conn.read(this.#buf.subarray(len));
        if (n === null) break;
        len += n;
        this.#shared.bytesIn += n;
        this.now = this.lastByteAt = nowMicros();
        const used = this.#protocol.consume(this, this.#buf, len);
        if (used > 0) {
          if (used < len) this.#buf.copyWithin(0, used, len);
          len -= used;
        }
      }
    } catch {
      // reset, or closed by us
    } finally {
      this.endedAt = nowMicros();
      this.#fail(new RequestError("Connection ended"));
    }
  }

  /**
   * The protocol calls this for a message frame: parses the stamp in `buf[start, end)` and
   * counts the delivery.
   */
  message(buf: Uint8Array, start: number, end: number): void {
    if (parseStamp(buf, start, end, this.#stamp)) {
      this.tracker.receive(this.#stamp, this.now, this.#shared.deliveries);
    }
  }

  /**
   * The protocol calls this for a reply: resolves (or rejects) the request waiting for it.
   *
   * @param ok whether the reply is a success
   * @param line the reply's text, when {@linkcode BenchConn.wantsReplies}
   */
  settle(ok: boolean, line: string): void {
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      clearTimeout(waiter.timer);
      if (ok) waiter.resolve(line);
      else waiter.reject(new RequestError(line));
    } else if (this.queueReplies) {
      this.#settled.push({ ok, line });
    } else if (!ok) {
      this.#shared.errors++;
      if (this.#shared.errorSamples.length < 5) this.#shared.errorSamples.push(line);
    }
  }

  /** Decodes `buf[start, end)` for a reply (only when someone may read it). */
  text(buf: Uint8Array, start: number, end: number): string {
    return this.wantsReplies ? decoder.decode(buf.subarray(start, end)) : "";
  }

  /**
   * Waits for the next reply (one that arrived already counts).
   *
   * @returns the reply's text
   * @throws {RequestError} on an error reply, a timeout, or when the connection ends
   */
  expect(timeoutMs: number): Promise<string> {
    const early = this.#settled.shift();
    if (early !== undefined) {
      return early.ok ? Promise.resolve(early.line) : Promise.reject(new RequestError(early.line));
    }
    if (this.ended) return Promise.reject(new RequestError("Connection ended"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new RequestError(`No reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = { resolve, reject, timer };
    });
  }

  /**
   * Sends `data` and waits for the reply to it.
   *
   * @throws {RequestError} as {@linkcode BenchConn.expect}
   */
  request(data: string | Uint8Array, timeoutMs: number): Promise<string> {
    const reply = this.expect(timeoutMs);
    this.write(typeof data === "string" ? encoder.encode(data) : data);
    return reply;
  }

  #fail(error: Error): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.reject(error);
  }

  /** Queues bytes; everything queued while a write is in flight goes out in the next one. */
  write(data: Uint8Array): void {
    if (this.ended) return;
    this.#writeQueue.push(data);
    if (!this.#writing) void this.#drain();
  }

  /** Queues a string as UTF-8. */
  writeString(s: string): void {
    this.write(encoder.encode(s));
  }

  /** Bytes waiting to be written. */
  get queued(): number {
    let n = 0;
    for (const part of this.#writeQueue) n += part.length;
    return n;
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#writeQueue.length > 0) {
        const parts = this.#writeQueue;
        this.#writeQueue = [];
        let data: Uint8Array;
        if (parts.length === 1) {
          data = parts[0]!;
        } else {
          let total = 0;
          for (const p of parts) total += p.length;
          data = new Uint8Array(total);
          let at = 0;
          for (const p of parts) {
            data.set(p, at);
            at += p.length;
          }
        }
        let off = 0;
        while (off < data.length) off += await this.#conn.write(data.subarray(off));
      }
    } catch {
      this.#writeQueue = [];
      void this.close();
    } finally {
      this.#writing = false;
    }
  }

  /** Stops reading (the server's output then backs up, as for a slow reader). */
  pause(): void {
    this.#paused ??= new Promise((resolve) => this.#resume = resolve);
  }

  /** Reads again after {@linkcode BenchConn.pause}. */
  resume(): void {
    this.#resume?.();
    this.#paused = this.#resume = undefined;
  }

  /** Closes the socket; resolves once the read loop has ended. */
  async close(): Promise<void> {
    this.resume();
    try {
      this.#conn.close();
    } catch {
      // closed already
    }
    await this.#reading;
  }
}
