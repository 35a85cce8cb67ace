/**
 * Fixtures for the HTTP server and WebSocket tests: `serveHttp` on a real listener (port 0),
 * and raw TCP clients that read responses and frames with their own, independent parsing.
 * All are async-disposable so nothing leaks when a test fails.
 *
 * @module
 */

import assert from "node:assert/strict";
import { concatBytes } from "../src/bytes.ts";
import { serveHttp } from "../src/server/http_server.ts";
import type { ByteConn, HttpServeOptions } from "../src/server/http_server.ts";
import { encodeFrame, FrameDecoder, Opcode } from "../src/protocol/websocket_frames.ts";
import type { FrameEvent } from "../src/protocol/websocket_frames.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A running `serveHttp` listener. */
export interface TestServer extends AsyncDisposable {
  /** The bound port on 127.0.0.1. */
  port: number;
  /** Every `onClientError` reason so far. */
  clientErrors: string[];
  /** Every `onServerError` error so far. */
  serverErrors: unknown[];
  /** Resolves once every connection accepted so far was served and closed. */
  settled(): Promise<void>;
}

/**
 * Listens on 127.0.0.1:0 and serves every connection with `serveHttp(conn, options)`.
 *
 * @param handler the request handler
 * @param options more serveHttp options, and `wrap` to instrument each accepted connection
 * @returns the server; dispose it to stop listening and wait for its connections
 */
export function startHttp(
  handler: HttpServeOptions["handler"],
  options: Partial<HttpServeOptions> & { wrap?: (conn: Deno.Conn) => ByteConn } = {},
): TestServer {
  const { wrap = (conn: Deno.Conn) => conn, ...serveOptions } = options;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const tasks = new Set<Promise<void>>();
  const clientErrors: string[] = [];
  const serverErrors: unknown[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const task = serveHttp(wrap(conn), {
          remoteAddr: conn.remoteAddr as Deno.NetAddr,
          secure: false,
          handler,
          signal: stop.signal,
          onClientError: (reason) => clientErrors.push(reason),
          onServerError: (error) => serverErrors.push(error),
          ...serveOptions,
        });
        tasks.add(task);
        task.finally(() => tasks.delete(task));
      }
    } catch {
      // the listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    clientErrors,
    serverErrors,
    settled: () => Promise.all([...tasks]).then(() => {}),
    async [Symbol.asyncDispose]() {
      stop.abort();
      listener.close();
      await accepting;
      await Promise.all([...tasks]);
    },
  };
}

/** A parsed HTTP response. */
export interface ParsedResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** The body as text. */
  text: string;
}

/**
 * A raw TCP client. A background pump reads everything the server sends into a buffer that
 * the parse methods consume.
 */
export class RawConn implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #ended = false;
  #waiters: (() => void)[] = [];
  readonly #pump: Promise<void>;
  /** Bytes received so far, in total. */
  received = 0;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#pump = this.#run();
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RawConn> {
    return new RawConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #run(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.received += n;
        const joined = new Uint8Array(this.#buf.length + n);
        joined.set(this.#buf);
        joined.set(buf.subarray(0, n), this.#buf.length);
        this.#buf = joined;
        this.#notify();
      }
    } catch {
      // reset or closed by us
    }
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Whether the server ended the stream (FIN or reset). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes received and not consumed yet. */
  get buffered(): Uint8Array {
    return this.#buf;
  }

  /** Sends text (as UTF-8) or bytes; resolves once the socket took them all. */
  async send(data: string | Uint8Array): Promise<void> {
    let bytes = typeof data === "string" ? encoder.encode(data) : data;
    while (bytes.length > 0) bytes = bytes.subarray(await this.conn.write(bytes));
  }

  /**
   * Waits until `ready()` holds or the stream ends.
   *
   * @returns whether it holds
   */
  async until(ready: () => boolean, timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.#ended || Date.now() > deadline) return ready();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** Consumes and returns the first `n` buffered bytes. */
  take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Waits for the server to end the stream; returns whether it did in time. */
  closed(timeoutMs = 3000): Promise<boolean> {
    return this.until(() => this.#ended, timeoutMs);
  }

  /** Reads one response (bodies framed by Content-Length, chunked, or the close). */
  async response(options: { head?: boolean; timeoutMs?: number } = {}): Promise<ParsedResponse> {
    const timeoutMs = options.timeoutMs ?? 3000;
    const headEnd = () => indexOf(this.#buf, encoder.encode("\r\n\r\n"));
    assert.ok(await this.until(() => headEnd() !== -1, timeoutMs), "no response head");
    const head = decoder.decode(this.take(headEnd() + 4)).split("\r\n");
    const [, code] = head[0]!.split(" ");
    const headers = new Headers();
    for (const line of head.slice(1, -2)) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    const status = Number(code);
    let body: Uint8Array = new Uint8Array(0);
    if (options.head || status === 204 || status === 304 || status < 200) {
      // no body
    } else if (headers.has("content-length")) {
      const n = Number(headers.get("content-length"));
      assert.ok(await this.until(() => this.#buf.length >= n, timeoutMs), "body cut short");
      body = this.take(n);
    } else if (headers.get("transfer-encoding") === "chunked") {
      body = await this.#chunked(timeoutMs);
    } else {
      await this.closed(timeoutMs);
      body = this.take(this.#buf.length);
    }
    return { status, headers, body, text: decoder.decode(body) };
  }

  async #chunked(timeoutMs: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (;;) {
      const crlf = () => indexOf(this.#buf, encoder.encode("\r\n"));
      assert.ok(await this.until(() => crlf() !== -1, timeoutMs), "chunk size missing");
      const size = parseInt(decoder.decode(this.take(crlf() + 2)), 16);
      assert.ok(await this.until(() => this.#buf.length >= size + 2, timeoutMs), "chunk cut");
      parts.push(this.take(size));
      assert.equal(decoder.decode(this.take(2)), "\r\n");
      if (size === 0) return concatBytes(parts);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#pump;
  }
}

/** A WebSocket client over a raw connection: masked frames out, frames decoded in. */
export class RawWs implements AsyncDisposable {
  readonly raw: RawConn;
  readonly #decoder = new FrameDecoder({ maxMessage: 1 << 30, masked: false });
  #events: FrameEvent[] = [];

  private constructor(raw: RawConn) {
    this.raw = raw;
  }

  /**
   * Opens a WebSocket on 127.0.0.1:`port` and checks the 101.
   *
   * @param port the server's port
   * @param path the request path
   */
  static async open(port: number, path = "/ws"): Promise<RawWs> {
    const raw = await RawConn.connect(port);
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await raw.send(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const res = await raw.response({ head: true });
    assert.equal(res.status, 101);
    const digest = await crypto.subtle.digest(
      "SHA-1",
      encoder.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    assert.equal(
      res.headers.get("sec-websocket-accept"),
      btoa(String.fromCharCode(...new Uint8Array(digest))),
    );
    return new RawWs(raw);
  }

  /** Sends one masked frame. */
  send(opcode: number, payload: Uint8Array | string, fin = true): Promise<void> {
    const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
    const mask = crypto.getRandomValues(new Uint8Array(4));
    return this.raw.send(encodeFrame(opcode, bytes, { fin, mask }));
  }

  /** Sends a text message in one frame. */
  text(line: string): Promise<void> {
    return this.send(Opcode.text, line);
  }

  /** The next frame event from the server (undefined if none in time). */
  async next(timeoutMs = 3000): Promise<FrameEvent | undefined> {
    const ready = () => {
      if (this.#events.length === 0 && this.raw.buffered.length > 0) {
        const bytes = this.raw.take(this.raw.buffered.length);
        this.#events.push(...this.#decoder.push(bytes));
      }
      return this.#events.length > 0;
    };
    await this.raw.until(ready, timeoutMs);
    return this.#events.shift();
  }

  /** Waits for the server's close frame; returns it (skipping other frames). */
  async closeFrame(timeoutMs = 3000): Promise<Extract<FrameEvent, { type: "close" }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = await this.next(Math.max(1, deadline - Date.now()));
      assert.ok(event !== undefined, "no close frame");
      if (event.type === "close") return event;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.raw[Symbol.asyncDispose]();
  }
}

/** The index of `needle` in `haystack`, or -1. */
export function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `promise` settles within `ms` (the timer is cleared either way). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
