/**
 * A small, strict HTTP/1.1 server for one accepted byte connection, with WebSocket upgrades.
 * Every limit is enforced while the bytes arrive: a deadline for the request head and one for
 * idle keep-alive, bounded heads, bodies streamed (never buffered) with a stall limit, and a
 * polite close (FIN, then a short bounded linger) so responses are not lost to a reset.
 *
 * @module
 */

import {
  ByteReader,
  ByteWriter,
  closeQuietly,
  ConnectionGone,
  Deadline,
  lingerClose,
} from "../transport/byte_conn.ts";
import type { ByteConn } from "../transport/byte_conn.ts";
import { WebSocketConnection } from "../transport/websocket.ts";
import type { WebSocketLimits } from "../transport/websocket.ts";
import { BodyReader } from "./http_body.ts";
import { findHeadEnd, hasRequestLine, HttpError, interpretHead, parseHead } from "./http_head.ts";
import type { RequestHead, RequestMeta } from "./http_head.ts";
import { reasonPhrase, simpleResponse, writeResponse } from "./http_response.ts";
import { checkUpgrade, switchingProtocols } from "./websocket_upgrade.ts";

export type { ByteConn } from "../transport/byte_conn.ts";
export type { WebSocketLimits } from "../transport/websocket.ts";
export { WebSocketConnection } from "../transport/websocket.ts";

/** Options for {@linkcode serveHttp}. */
export interface HttpServeOptions {
  /** The peer, passed to the handler. */
  remoteAddr: Deno.NetAddr;
  /** Whether this is HTTPS (the scheme of `req.url`). */
  secure: boolean;
  /** Answers a request. */
  handler(req: Request, info: HttpRequestInfo): Response | Promise<Response>;
  /** The whole request head (request line + headers) must arrive within this (10_000). */
  headerTimeoutMs?: number;
  /** Idle time allowed between requests on a kept-alive connection (5_000). */
  keepAliveTimeoutMs?: number;
  /** Largest request head in bytes (16 KiB; larger → 431, or 414 for the request line). */
  maxHeadBytes?: number;
  /** Most header lines (100; more → 431). */
  maxHeaders?: number;
  /** Longest wait for the next request body bytes, or for the peer to take response bytes. */
  stallTimeoutMs?: number;
  /** The host of `req.url` for an HTTP/1.0 request without a Host header ("localhost"). */
  defaultHost?: string;
  /**
   * Stops keep-alive: once aborted, an idle connection closes at once and a request in flight
   * is answered with `connection: close`. Upgraded WebSockets are left to their sessions.
   */
  signal?: AbortSignal;
  /** Called for protocol errors the client caused (debug-level logging by the caller). */
  onClientError?(reason: string): void;
  /** Called when the handler throws or its response body fails: a server bug. */
  onServerError?(error: unknown): void;
}

/** What the handler gets besides the request. */
export interface HttpRequestInfo {
  /** The peer. */
  remoteAddr: Deno.NetAddr;
  /**
   * Like `Deno.upgradeWebSocket`: validates the upgrade headers, returns the connection the
   * session will use and the response the handler must return (written as 101 Switching
   * Protocols, with any headers the handler adds to it). Once the handler returned it, the
   * connection speaks WebSocket until it closes; any other response abandons the connection.
   *
   * @param options the WebSocket's limits
   * @throws {TypeError} when the request is not a valid WebSocket upgrade
   */
  upgradeWebSocket(
    options: WebSocketLimits,
  ): { connection: WebSocketConnection; response: Response };
}

/** Bytes of an unread request body the server reads past to keep the connection. */
const DRAIN_BYTES = 64 * 1024;
const DRAIN_MS = 1000;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

type Settings = Required<Omit<HttpServeOptions, "signal" | "onClientError" | "onServerError">>;
type HeadResult =
  | { readonly head: Uint8Array }
  | { readonly end: true }
  | { readonly timeout: true }
  | { readonly error: HttpError };

/**
 * Serves requests until the peer leaves, a deadline passes, or after an upgrade the WebSocket
 * ends. Pipelined requests are answered in order.
 *
 * @param conn the accepted connection (plain, or TLS after its handshake)
 * @param options the handler, the peer, the limits and the log callbacks
 * @returns resolves once `conn` is closed; never rejects
 */
export async function serveHttp(conn: ByteConn, options: HttpServeOptions): Promise<void> {
  const reader = new ByteReader(conn);
  const served = new HttpConnection(conn, reader, options);
  let polite = true;
  try {
    await served.serve();
  } catch (error) {
    polite = false;
    if (!(error instanceof ConnectionGone)) report(options.onServerError, error);
  } finally {
    served.dispose();
    if (polite) await lingerClose(conn, reader, served.writer);
    else closeQuietly(conn);
  }
}

/** Calls a log callback; a callback that throws must not end the connection's task. */
function report<T>(callback: ((value: T) => void) | undefined, value: T): void {
  try {
    callback?.(value);
  } catch {
    // the caller's logging failed: nothing better to do here
  }
}

/** One connection's request loop. */
class HttpConnection {
  readonly writer: ByteWriter;
  readonly #conn: ByteConn;
  readonly #reader: ByteReader;
  readonly #options: HttpServeOptions;
  readonly #settings: Settings;
  readonly #stop: Promise<void>;
  #unlisten = () => {};

  constructor(conn: ByteConn, reader: ByteReader, options: HttpServeOptions) {
    this.#conn = conn;
    this.#reader = reader;
    this.#options = options;
    this.#settings = {
      remoteAddr: options.remoteAddr,
      secure: options.secure,
      handler: options.handler,
      headerTimeoutMs: options.headerTimeoutMs ?? 10_000,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5_000,
      maxHeadBytes: options.maxHeadBytes ?? 16 * 1024,
      maxHeaders: options.maxHeaders ?? 100,
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
      defaultHost: options.defaultHost ?? "localhost",
    };
    this.writer = new ByteWriter(conn, this.#settings.stallTimeoutMs);
    const { signal } = options;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#stop = promise;
    if (signal?.aborted) resolve();
    else if (signal !== undefined) {
      const onAbort = () => resolve();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#unlisten = () => signal.removeEventListener("abort", onAbort);
    }
  }

  dispose(): void {
    this.#unlisten();
  }

  get #stopping(): boolean {
    return this.#options.signal?.aborted ?? false;
  }

  #clientError(reason: string): void {
    report(this.#options.onClientError, reason);
  }

  /** Serves requests until one ends the connection. */
  async serve(): Promise<void> {
    for (let first = true;; first = false) {
      const got = await this.#readHead(first);
      if ("end" in got) return;
      if ("timeout" in got) {
        this.#clientError(`request head not complete in ${this.#settings.headerTimeoutMs} ms`);
        return await this.#refuse(408);
      }
      if ("error" in got) {
        this.#clientError(got.error.message);
        return await this.#refuse(got.error.status);
      }
      if (!(await this.#serveRequest(got.head))) return;
    }
  }

  async #refuse(status: number): Promise<void> {
    await this.writer.write(simpleResponse(status, reasonPhrase(status)));
  }

  /**
   * Reads one request head. Before its first byte, the connection may wait for the keep-alive
   * deadline (or the head deadline, for the first request); from its first byte the whole head
   * must arrive by the head deadline.
   */
  async #readHead(first: boolean): Promise<HeadResult> {
    const { headerTimeoutMs, keepAliveTimeoutMs, maxHeadBytes } = this.#settings;
    let head = first ? new Deadline(headerTimeoutMs) : undefined;
    const idle = first ? undefined : new Deadline(keepAliveTimeoutMs);
    let buf = new Uint8Array(0);
    let length = 0;
    try {
      for (;;) {
        const wait = length > 0
          ? head!.promise
          : Promise.race([(head ?? idle)!.promise, this.#stop]);
        const bytes = await this.#reader.read(wait);
        if (bytes === undefined) return length > 0 ? { timeout: true } : { end: true };
        if (bytes === null) return { end: true };
        if (length === 0) idle?.cancel();
        if (length + bytes.length > buf.length) {
          const grown = new Uint8Array(Math.max(buf.length * 2, length + bytes.length, 1024));
          grown.set(buf.subarray(0, length));
          buf = grown;
        }
        buf.set(bytes, length);
        const from = length;
        length += bytes.length;
        const end = findHeadEnd(buf.subarray(0, length), from);
        if (end !== -1 && end <= maxHeadBytes) {
          this.#reader.unread(buf.subarray(end, length));
          return { head: buf.subarray(0, end) };
        }
        if (end !== -1 || length > maxHeadBytes) {
          const status = hasRequestLine(buf.subarray(0, maxHeadBytes)) ? 431 : 414;
          return { error: new HttpError(status, `request head larger than ${maxHeadBytes} bytes`) };
        }
        // Most heads arrive in one read: the deadline starts only for those that do not.
        head ??= new Deadline(headerTimeoutMs);
      }
    } finally {
      head?.cancel();
      idle?.cancel();
    }
  }

  /** Answers one request; returns whether the connection can serve another. */
  async #serveRequest(bytes: Uint8Array): Promise<boolean> {
    let head: RequestHead;
    let meta: RequestMeta;
    try {
      head = parseHead(bytes, this.#settings.maxHeaders);
      meta = interpretHead(
        head,
        this.#settings.secure ? "https" : "http",
        this.#settings.defaultHost,
      );
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      this.#clientError(error.message);
      await this.#refuse(error.status);
      return false;
    }
    let continuing: "no" | "expected" | "sent" | "skipped" = meta.expectContinue
      ? "expected"
      : "no";
    const body = meta.body.kind === "none" ? undefined : new BodyReader(this.#reader, meta.body, {
      stallMs: this.#settings.stallTimeoutMs,
      onFirstRead: async () => {
        if (continuing !== "expected") return;
        continuing = "sent";
        await this.writer.write(CONTINUE);
      },
      onClientError: (reason) => this.#clientError(reason),
    });
    const bodiless = head.method.toUpperCase() === "GET" || head.method.toUpperCase() === "HEAD";
    let req: Request;
    try {
      req = new Request(meta.url, {
        method: head.method,
        headers: head.fields,
        body: body === undefined || bodiless ? null : body.stream(),
        duplex: "half",
      } as RequestInit);
    } catch (error) {
      this.#clientError(`cannot make a Request: ${(error as Error).message}`);
      await this.#refuse(400);
      return false;
    }

    const { response, upgrade } = await this.#handle(req, head.minor, body !== undefined);
    if (upgrade !== undefined && response === upgrade.response) {
      try {
        await this.writer.write(
          await switchingProtocols(upgrade.key, response.headers, upgrade.connection.protocol),
        );
      } catch (error) {
        upgrade.connection.abandon();
        throw error;
      }
      await upgrade.connection.run(this.#conn, this.#reader);
      return false;
    }
    upgrade?.connection.abandon();

    let keepAlive = meta.keepAlive && !this.#stopping;
    if (body !== undefined && !body.done) {
      if (continuing === "expected") {
        continuing = "skipped"; // the client may never send the body
        keepAlive = false;
      } else if (body.remaining === undefined || body.remaining > DRAIN_BYTES) {
        // Too much (or an unknown amount: chunked) left to read after the response: say the
        // connection closes, so the client does not send its next request into a closing socket.
        keepAlive = false;
      }
    }
    let reuse = await writeResponse(this.writer, response, {
      head: req.method === "HEAD",
      minor: head.minor,
      keepAlive,
      onServerError: (error) => report(this.#options.onServerError, error),
    });
    if (body !== undefined) {
      body.detach();
      if (reuse && !body.done) reuse = await body.drain(DRAIN_BYTES, DRAIN_MS);
      if (body.failed) reuse = false;
    }
    return reuse;
  }

  /** Calls the handler; a throw becomes a 500. */
  async #handle(req: Request, minor: 0 | 1, hasBody: boolean): Promise<{
    response: Response;
    upgrade: { connection: WebSocketConnection; response: Response; key: string } | undefined;
  }> {
    const remoteAddr = this.#settings.remoteAddr;
    let upgrade: { connection: WebSocketConnection; response: Response; key: string } | undefined;
    const info: HttpRequestInfo = {
      remoteAddr,
      upgradeWebSocket: (limits) => {
        if (upgrade !== undefined) {
          throw new TypeError("Cannot upgrade to a WebSocket: the request was upgraded already");
        }
        const key = checkUpgrade(req, minor, hasBody);
        const connection = new WebSocketConnection(remoteAddr, limits);
        // A Response cannot be made with status 101; this one reads 101 like Deno's.
        const response = new Response(null, { status: 200 });
        Object.defineProperty(response, "status", { value: 101 });
        upgrade = { connection, response, key };
        return { connection, response };
      },
    };
    try {
      const response = await this.#settings.handler(req, info);
      if (!(response instanceof Response) || response.type === "error") {
        throw new TypeError("Cannot respond: the handler returned no Response");
      }
      return { response, upgrade };
    } catch (error) {
      report(this.#options.onServerError, error);
      upgrade?.connection.abandon();
      const response = new Response("Internal server error\n", {
        status: 500,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
      return { response, upgrade: undefined };
    }
  }
}
