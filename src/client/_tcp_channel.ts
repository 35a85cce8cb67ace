/**
 * {@linkcode TcpChannel}: a {@linkcode FrameChannel} over a TCP or TLS connection in JSON mode,
 * one frame per line. The server's first line (the banner) is kept apart; plain-text lines are
 * ignored, and a line that is not JSON drops the connection ({@linkcode ProtocolError}).
 * {@linkcode openPeer} dials, says `hello` at once and checks the banner.
 *
 * @module
 */

import { LineSplitter } from "../protocol/line_splitter.ts";
import type { FrameChannel } from "./core/channel.ts";
import { Inbox } from "./core/channel.ts";
import {
  ConnectionClosedError,
  describe,
  ProtocolError,
  SessionRefusedError,
} from "./core/errors.ts";
import type { RequestFrame, WelcomeFrame } from "./core/frames.ts";
import { Peer } from "./core/peer.ts";
import type { PeerOptions } from "./core/peer.ts";
import { dial } from "./_dial.ts";
import type { ByteStream, Endpoint } from "./_dial.ts";

const encoder = new TextEncoder();

/** One TCP or TLS connection carrying JSON lines. */
export class TcpChannel implements FrameChannel {
  readonly #conn: ByteStream;
  readonly #maxLine: number;
  readonly #inbox = new Inbox();
  readonly #banner = Promise.withResolvers<string>();
  readonly #closed = Promise.withResolvers<string>();
  #gotBanner = false;
  #writing: Promise<void> = Promise.resolve();
  #ended = false;
  #reason: string | undefined;

  /** Takes over `conn` and starts reading it. */
  constructor(conn: ByteStream, maxLine: number) {
    this.#conn = conn;
    this.#maxLine = maxLine;
    this.#banner.promise.catch(() => {});
    this.#read().then(async () => {
      await this.#writing; // the latest write, which sees the channel ended and stops
      this.#closed.resolve(this.#reason ?? "the server closed the connection");
    });
  }

  /** The server's first line; rejects if the connection ends before it. */
  get banner(): Promise<string> {
    return this.#banner.promise;
  }

  get closed(): Promise<string> {
    return this.#closed.promise;
  }

  get ended(): boolean {
    return this.#ended;
  }

  send(frame: object): void {
    if (this.#ended) return;
    const bytes = encoder.encode(JSON.stringify(frame) + "\n");
    this.#writing = this.#writing.then(async () => {
      if (this.#ended) return;
      let offset = 0;
      while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
    }).catch((error) => this.close(`cannot write: ${describe(error)}`));
  }

  receive(handler: (frame: unknown) => void): void {
    this.#inbox.receive(handler);
  }

  close(reason = "the connection was closed"): void {
    if (this.#ended) return;
    this.#reason ??= reason;
    this.#end();
  }

  #end(): void {
    this.#ended = true;
    try {
      this.#conn.close();
    } catch {
      // closed already
    }
    this.#banner.reject(
      new ConnectionClosedError(
        `Cannot connect: ${this.#reason ?? "the server closed the connection"}`,
      ),
    );
  }

  async #read(): Promise<void> {
    const splitter = new LineSplitter(this.#maxLine);
    const buf = new Uint8Array(64 * 1024);
    try {
      while (!this.#ended) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        for (const event of splitter.push(buf.subarray(0, n))) {
          if ("error" in event) {
            throw new ProtocolError(`the server sent an unreadable line (${event.error})`);
          }
          this.#line(event.line);
          if (this.#ended) break;
        }
      }
    } catch (error) {
      if (!this.#ended) this.#reason ??= describe(error);
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
    let frame: unknown;
    try {
      frame = JSON.parse(line);
    } catch {
      throw new ProtocolError("the server sent a line that is not JSON");
    }
    this.#inbox.push(frame);
  }
}

/** How to open a connection with {@linkcode openPeer}. */
export interface OpenOptions extends PeerOptions {
  /** The longest line accepted from the server, in bytes. */
  maxLine: number;
  /** How long connecting and receiving the banner may take, in ms. */
  timeoutMs: number;
  /** Aborting cancels opening, and closes the connection. */
  signal: AbortSignal;
  /** Sent as soon as the connection is up, before the banner (the server greets at once). */
  hello: Extract<RequestFrame, { type: "hello" }>;
}

/**
 * Connects, says `hello` and reads the banner.
 *
 * @returns the peer and the reply to `hello` (still to be awaited)
 * @throws {SessionRefusedError} when the server refused the connection
 * @throws {TlsVerificationError} when the server's TLS certificate does not verify
 * @throws {Deno.errors.TimedOut} when connecting or the banner took longer than `timeoutMs`
 */
export async function openPeer(
  endpoint: Endpoint,
  options: OpenOptions,
): Promise<{ peer: Peer; greeted: Promise<WelcomeFrame> }> {
  const { hostname, port } = endpoint;
  const conn = await dial(endpoint, options.timeoutMs, options.signal);
  const channel = new TcpChannel(conn, options.maxLine);
  const peer = new Peer(channel, options);
  const onAbort = () => peer.close("aborted");
  options.signal.addEventListener("abort", onAbort, { once: true });
  peer.closed.then(() => options.signal.removeEventListener("abort", onAbort));
  const greeted = peer.request(options.hello);
  greeted.catch(() => {}); // a refusal is reported by the banner below
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const banner = await Promise.race([
      channel.banner,
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
    peer.close(describe(error));
    await peer.closed;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { peer, greeted };
}
