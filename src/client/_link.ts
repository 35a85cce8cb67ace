/**
 * One connection (TCP or TLS) speaking JSON mode: the banner, requests matched to replies by `ref`, and
 * events handed to a callback. {@linkcode ChatClient} owns one at a time and replaces it when
 * reconnecting.
 *
 * @module
 */

import type { ClientFrame } from "../protocol/frames.ts";
import { LineSplitter } from "../protocol/line_splitter.ts";
import {
  ConnectionClosedError,
  ProtocolError,
  ServerError,
  SessionRefusedError,
} from "./errors.ts";
import type { ServerEvent, ShutdownEvent } from "./events.ts";
import { dial } from "./_dial.ts";
import type { ByteStream, Endpoint } from "./_dial.ts";

/** A reply to a request: `welcome`, `ack`, `pong` or `history`, with the fields the server sent. */
export interface ReplyFrame {
  /** Which reply. */
  type: "welcome" | "ack" | "pong" | "history";
  /** The request's `ref`. */
  ref?: string;
  /** The reply's fields (docs/protocol.md, "Client frames"). */
  [field: string]: unknown;
}

/** How to open a {@linkcode Link}. */
export interface LinkOptions {
  /** The longest line accepted from the server, in bytes. */
  maxLine: number;
  /** How long connecting and receiving the banner may take, in ms. */
  timeoutMs: number;
  /** Probe an idle connection this often, in ms; 0 never. */
  pingIntervalMs: number;
  /** Aborting closes the link (or cancels opening it). */
  signal: AbortSignal;
  /** Receives every event (non-reply frame), in order. */
  onEvent: (event: ServerEvent) => void;
  /**
   * A request sent as soon as the connection is up, before the banner arrives (a server greets
   * a client that speaks first without waiting for it); its reply is {@linkcode Link.greeted}.
   */
  hello?: ClientFrame;
}

interface Pending {
  type: string;
  resolve: (frame: ReplyFrame) => void;
  reject: (error: Error) => void;
}

const encoder = new TextEncoder();
const EVENT_TYPES = new Set(["message", "history", "presence", "notice", "shutdown", "error"]);
/** Requests after whose ack the server closes the connection. */
const FAREWELLS = new Set(["quit", "logout"]);

/** One connection in JSON mode. */
export class Link {
  readonly #conn: ByteStream;
  readonly #options: LinkOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #banner = Promise.withResolvers<string>();
  readonly #closed = Promise.withResolvers<string>();
  #gotBanner = false;
  #nextRef = 1;
  #writing: Promise<void> = Promise.resolve();
  #ended = false;
  #closeReason: string | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #heard = false;
  #probing = false;
  readonly #onAbort = () => this.close("aborted");
  /** The `shutdown` frame, if the server sent one. */
  shutdown: ShutdownEvent | undefined;
  /** Whether the server acknowledged a `quit` or `logout`: the end is wanted. */
  farewell = false;
  /** The reply to the `hello` option's request, when there was one. */
  greeted: Promise<ReplyFrame> | undefined;

  private constructor(conn: ByteStream, options: LinkOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#banner.promise.catch(() => {});
    options.signal.addEventListener("abort", this.#onAbort, { once: true });
    this.#read().then(async () => {
      await this.#writing; // the latest write, which sees the link ended and stops
      this.#closed.resolve(this.#reason());
    });
  }

  /**
   * Connects, reads the banner, and returns the link (not yet in JSON mode: send `hello`).
   *
   * @throws {SessionRefusedError} when the server refused the connection
   * @throws {TlsVerificationError} when the server's TLS certificate does not verify
   * @throws {Deno.errors.TimedOut} when connecting or the banner took longer than `timeoutMs`
   */
  static async open(endpoint: Endpoint, options: LinkOptions): Promise<Link> {
    const { hostname, port } = endpoint;
    const conn = await dial(endpoint, options.timeoutMs, options.signal);
    const link = new Link(conn, options);
    if (options.hello !== undefined) {
      link.greeted = link.request(options.hello);
      link.greeted.catch(() => {}); // a refusal is reported by the banner below
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const banner = await Promise.race([
        link.#banner.promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Deno.errors.TimedOut(
                  `Cannot connect to ${hostname}:${port}: no banner within ${options.timeoutMs} ms`,
                ),
              ),
            options.timeoutMs,
          );
        }),
      ]);
      if (banner.startsWith("!")) throw new SessionRefusedError(banner.slice(1).trim());
    } catch (error) {
      link.close(error instanceof Error ? error.message : String(error));
      await link.closed;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (options.pingIntervalMs > 0 && !link.#ended) {
      link.#timer = setInterval(() => link.#tick(), options.pingIntervalMs);
    }
    return link;
  }

  /** Resolves with the reason once the connection is closed and all I/O has stopped. */
  get closed(): Promise<string> {
    return this.#closed.promise;
  }

  /** Whether the connection is over (or closing). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Sends `frame` with a fresh `ref` and resolves with the reply.
   *
   * @throws {ServerError} when the server answers with an error
   * @throws {ConnectionClosedError} when the connection ends before the reply
   */
  request(frame: ClientFrame): Promise<ReplyFrame> {
    if (this.#ended) {
      return Promise.reject(new ConnectionClosedError(`Cannot send: ${this.#reason()}`));
    }
    const ref = String(this.#nextRef++);
    const { promise, resolve, reject } = Promise.withResolvers<ReplyFrame>();
    this.#pending.set(ref, { type: frame.type, resolve, reject });
    this.#write(JSON.stringify({ ...frame, ref }) + "\n");
    return promise;
  }

  /** Closes the connection; pending requests reject with {@linkcode ConnectionClosedError}. */
  close(reason = "the connection was closed"): void {
    if (this.#ended) return;
    this.#closeReason ??= reason;
    this.#end();
  }

  #reason(): string {
    return this.#closeReason ?? "the server closed the connection";
  }

  #end(): void {
    this.#ended = true;
    clearInterval(this.#timer);
    this.#options.signal.removeEventListener("abort", this.#onAbort);
    try {
      this.#conn.close();
    } catch {
      // closed already
    }
    const error = new ConnectionClosedError(`Cannot complete the request: ${this.#reason()}`);
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#banner.reject(new ConnectionClosedError(`Cannot connect: ${this.#reason()}`));
  }

  #write(line: string): void {
    const bytes = encoder.encode(line);
    this.#writing = this.#writing.then(async () => {
      if (this.#ended) return;
      let offset = 0;
      while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
    }).catch((error) => this.close(`cannot write: ${describe(error)}`));
  }

  async #read(): Promise<void> {
    const splitter = new LineSplitter(this.#options.maxLine);
    const buf = new Uint8Array(64 * 1024);
    try {
      while (!this.#ended) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#heard = true;
        for (const event of splitter.push(buf.subarray(0, n))) {
          if ("error" in event) {
            throw new ProtocolError(`the server sent an unreadable line (${event.error})`);
          }
          this.#line(event.line);
          if (this.#ended) break;
        }
      }
    } catch (error) {
      if (!this.#ended) this.#closeReason ??= describe(error);
    } finally {
      if (!this.#ended) this.#end();
    }
  }

  #line(line: string): void {
    if (!this.#gotBanner) {
      this.#gotBanner = true;
      this.#banner.resolve(line);
      return;
    }
    if (!line.startsWith("{")) return; // plain text is for humans; JSON mode ignores it
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(line);
    } catch {
      throw new ProtocolError("the server sent a line that is not JSON");
    }
    if (typeof frame !== "object" || frame === null || typeof frame.type !== "string") {
      throw new ProtocolError("the server sent a frame without a type");
    }
    const ref = frame.ref;
    const pending = typeof ref === "string" ? this.#pending.get(ref) : undefined;
    if (pending !== undefined) {
      // The server answers every request exactly once, with its ref: this is the reply.
      this.#pending.delete(ref as string);
      if (frame.type === "error") {
        pending.reject(
          new ServerError(
            frame.code as ServerError["code"],
            String(frame.message),
            typeof frame.retryAfter === "number" ? frame.retryAfter : undefined,
          ),
        );
      } else {
        if (FAREWELLS.has(pending.type)) this.farewell = true;
        pending.resolve(frame as ReplyFrame);
      }
      return;
    }
    if (frame.type === "ping") {
      this.#write('{"type":"pong"}\n'); // the server checks we are alive; it does not answer
      return;
    }
    if (!EVENT_TYPES.has(frame.type)) return; // a reply nobody waits for, or a newer event
    if (frame.type === "shutdown") this.shutdown = frame as ShutdownEvent;
    this.#options.onEvent(frame as unknown as ServerEvent);
  }

  /** Keepalive: an idle connection is probed with `ping`; no answer by the next tick drops it. */
  #tick(): void {
    if (this.#heard) {
      this.#heard = false;
      this.#probing = false;
      return;
    }
    if (this.#probing) {
      this.close("the server stopped answering");
      return;
    }
    this.#probing = true;
    this.request({ type: "ping" }).catch(() => {});
  }
}

/** A short description of an I/O error. */
function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
