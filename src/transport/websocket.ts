/**
 * A WebSocket (RFC 6455) over a raw byte connection, after `serveHttp` answered the upgrade
 * with 101, as a {@linkcode Connection}: one text frame per JSON-mode message each way.
 *
 * @module
 */

import type { LineEvent } from "../protocol/line_splitter.ts";
import {
  CloseCode,
  encodeClose,
  encodeFrame,
  FrameDecoder,
  frameHeaderLength,
  Opcode,
  writeFrameHeader,
} from "../protocol/websocket_frames.ts";
import type { FrameEvent } from "../protocol/websocket_frames.ts";
import { ByteWriter, settlesWithin } from "./byte_conn.ts";
import type { ByteConn, ByteReader } from "./byte_conn.ts";
import type { Connection } from "./connection.ts";

const NL = 0x0a;
const CR = 0x0d;
/** How long a close we started waits for the peer's close frame. */
const CLOSE_WAIT_MS = 1000;
const DEFAULT_PING_AFTER_MS = 60_000;
/** Each queued message counts this much beyond its text, so empty messages cannot pile up. */
const EVENT_OVERHEAD = 16;

/** The limits of one WebSocket. */
export interface WebSocketLimits {
  /** The largest message accepted, in bytes; a larger one closes the connection with 1009. */
  maxMessage: number;
  /**
   * The most message text that may wait for the session (each message counts its length plus
   * 16); more closes the connection with 1008.
   */
  maxInbound: number;
  /** Silence after which the peer is pinged, and closed if silent as long again (60 s). */
  pingAfterMs?: number;
  /**
   * The subprotocol the server chose (`Sec-WebSocket-Protocol` in the 101), e.g.
   * `text.ircv3.net`. @default none
   */
  protocol?: string;
  /** Send binary frames instead of text frames (IRCv3's `binary.ircv3.net`). @default false */
  binary?: boolean;
  /**
   * IRC lines: a CR before each outbound line's LF is dropped (a frame holds one line without
   * its CRLF), and a CRLF (or LF) ending an inbound message is ignored. @default false
   */
  crlf?: boolean;
}

type State = "pending" | "open" | "done";

/**
 * A server-side WebSocket. Inbound messages queue until the session reads them; the queue is
 * bounded (`maxInbound`: past it the peer is closed with 1008 "flooding"), and a message larger
 * than `maxMessage` is refused with 1009 as soon as a frame header announces it. Text messages
 * must be UTF-8 (else 1007); binary messages are read as UTF-8 text too, and yield a `bad_utf8`
 * event when they are not. Outbound, the outbox's coalesced bytes are split back into one text
 * frame per line, and `write` resolves when the socket took them, so a slow browser fills the
 * outbox and is cut off by the same send-queue limit as TCP. No extensions are negotiated.
 *
 * Created by `upgradeWebSocket`; `serveHttp` runs it once the 101 is sent.
 */
export class WebSocketConnection implements Connection {
  readonly kind = "ws" as const;
  readonly framed = true;
  readonly remoteIp: string;
  readonly remote: string;
  /** The subprotocol answered in the 101, if any. */
  readonly protocol: string | undefined;
  readonly #limits: Required<Omit<WebSocketLimits, "protocol">>;
  #state: State = "pending";
  readonly #ready = Promise.withResolvers<void>();
  #writer: ByteWriter | undefined;
  #queue: LineEvent[] = [];
  #queued = 0;
  #wake: (() => void) | undefined;
  #inboundEnded = false;
  #closeRequested = false;
  #closeSent = false;
  #pongPending = false;
  readonly #stop = Promise.withResolvers<void>();
  #stopped = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastInput = 0;
  #pingSentAt: number | undefined;

  /**
   * @param remoteAddr the peer
   * @param limits the message and queue limits
   */
  constructor(remoteAddr: Deno.NetAddr, limits: WebSocketLimits) {
    if (!(limits.maxMessage >= 0) || !(limits.maxInbound >= 0)) {
      throw new RangeError("Cannot open a WebSocket: limits must be >= 0");
    }
    const { protocol, ...rest } = limits;
    this.#limits = { pingAfterMs: DEFAULT_PING_AFTER_MS, binary: false, crlf: false, ...rest };
    this.protocol = protocol;
    this.remoteIp = remoteAddr.hostname;
    this.remote = `${remoteAddr.hostname}:${remoteAddr.port}`;
    this.#ready.promise.catch(() => {}); // writers waiting for it see the rejection
  }

  /**
   * Inbound messages, in order: one `{line}` per message, `{error: "bad_utf8"}` for a binary
   * message that is not UTF-8. Ends when the connection closes; never throws.
   */
  async *messages(): AsyncGenerator<LineEvent> {
    for (;;) {
      const event = this.#queue.shift();
      if (event !== undefined) {
        this.#queued -= eventSize(event);
        yield event;
        continue;
      }
      if (this.#inboundEnded) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }

  /**
   * Sends each line of `data` (split on "\n") as one text frame.
   *
   * @param data UTF-8 lines, each ending in "\n"
   * @returns resolves once the socket accepted the frames
   * @throws when the WebSocket is closing or closed
   */
  async write(data: Uint8Array): Promise<void> {
    if (this.#state === "pending") await this.#ready.promise;
    if (this.#closeSent || this.#state === "done") {
      throw new Error("Cannot write: the WebSocket is closed");
    }
    try {
      const { binary, crlf } = this.#limits;
      await this.#writer!.write(lineFrames(data, binary ? Opcode.binary : Opcode.text, crlf));
    } catch (error) {
      this.#halt();
      throw error;
    }
  }

  /** Starts the closing handshake (1000); idempotent. Inbound messages end at once. */
  close(): void {
    if (this.#state === "pending") {
      this.#closeRequested = true;
      this.#endInbound();
    } else if (this.#state === "open") this.#sendClose(CloseCode.normal, "", true);
  }

  /** Ends a WebSocket whose 101 was never sent (the handler returned another response). */
  abandon(): void {
    if (this.#state !== "pending") return;
    this.#state = "done";
    this.#endInbound();
    this.#ready.reject(new Error("Cannot write: the WebSocket upgrade did not happen"));
  }

  /**
   * Speaks WebSocket over `conn` until the connection ends: the caller (`serveHttp`) sent the
   * 101 and closes `conn` afterwards.
   *
   * @param conn the connection, for writing
   * @param reader its reader, holding any bytes that followed the upgrade request
   * @returns resolves when the WebSocket is over; never rejects
   */
  async run(conn: ByteConn, reader: ByteReader): Promise<void> {
    if (this.#state !== "pending") return;
    const writer = new ByteWriter(conn);
    this.#writer = writer;
    this.#state = "open";
    this.#ready.resolve();
    this.#lastInput = performance.now();
    this.#armIdle(this.#limits.pingAfterMs);
    if (this.#closeRequested) this.#sendClose(CloseCode.normal, "", true);
    const decoder = new FrameDecoder({ maxMessage: this.#limits.maxMessage, masked: true });
    try {
      while (!this.#stopped) {
        const chunk = await reader.read(this.#stop.promise);
        if (chunk === undefined) break;
        if (chunk === null) break;
        this.#lastInput = performance.now();
        this.#pingSentAt = undefined;
        for (const event of decoder.push(chunk)) {
          this.#handle(event);
          if (this.#stopped) break;
        }
      }
    } finally {
      this.#state = "done";
      this.#halt();
      clearTimeout(this.#idleTimer);
      clearTimeout(this.#closeTimer);
      if (!(await settlesWithin(writer.idle(), CLOSE_WAIT_MS))) {
        try {
          conn.close(); // the peer does not read: the caller's polite close would only wait
        } catch {
          // already closed
        }
      }
    }
  }

  #handle(event: FrameEvent): void {
    switch (event.type) {
      case "message": {
        let text = event.text;
        if (text !== undefined && this.#limits.crlf) text = text.replace(/\r?\n$/, "");
        return this.#enqueue(text === undefined ? { error: "bad_utf8" } : { line: text });
      }
      case "ping":
        return this.#pong(event.payload);
      case "pong":
        return;
      case "close":
        if (!this.#closeSent) this.#sendClose(event.code, "", false);
        return this.#halt();
      case "error":
        return this.#sendClose(event.code, event.reason, false);
    }
  }

  #enqueue(event: LineEvent): void {
    if (this.#inboundEnded) return;
    const size = eventSize(event);
    if (this.#queued + size > this.#limits.maxInbound) {
      this.#sendClose(CloseCode.policy, "flooding", false);
      return;
    }
    this.#queued += size;
    this.#queue.push(event);
    this.#wake?.();
  }

  /** Answers a ping; while a pong is still queued, further pings are not answered. */
  #pong(payload: Uint8Array): void {
    if (this.#closeSent || this.#pongPending) return;
    this.#pongPending = true;
    this.#writer!.write(encodeFrame(Opcode.pong, payload)).then(
      () => this.#pongPending = false,
      () => this.#halt(),
    );
  }

  /**
   * Sends a close frame (after what is queued) and ends the inbound side; with `wait`, reads on
   * for up to {@linkcode CLOSE_WAIT_MS} for the peer's answer, else stops now.
   */
  #sendClose(code: number | undefined, reason: string, wait: boolean): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#endInbound();
    this.#writer!.write(encodeClose(code, reason)).catch(() => this.#halt());
    if (wait) this.#closeTimer = setTimeout(() => this.#halt(), CLOSE_WAIT_MS);
    else this.#halt();
  }

  /** Stops reading: `run` returns. */
  #halt(): void {
    this.#endInbound();
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.resolve();
  }

  #endInbound(): void {
    this.#inboundEnded = true;
    this.#wake?.();
  }

  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(() => this.#checkIdle(), Math.max(10, ms));
  }

  /** Pings a peer silent for `pingAfterMs`; closes it if still silent as long after the ping. */
  #checkIdle(): void {
    if (this.#stopped) return;
    const after = this.#limits.pingAfterMs;
    const now = performance.now();
    if (this.#pingSentAt !== undefined) {
      const waited = now - this.#pingSentAt;
      if (waited >= after) return this.#sendClose(CloseCode.goingAway, "idle timeout", false);
      return this.#armIdle(after - waited);
    }
    const idle = now - this.#lastInput;
    if (idle < after) return this.#armIdle(after - idle);
    this.#pingSentAt = now;
    this.#writer!.write(encodeFrame(Opcode.ping, new Uint8Array(0))).catch(() => this.#halt());
    this.#armIdle(after);
  }
}

/** What a queued event counts against `maxInbound`: its length, plus a little for itself. */
function eventSize(event: LineEvent): number {
  return ("line" in event ? event.line.length : 0) + EVENT_OVERHEAD;
}

/**
 * One unmasked frame per "\n"-terminated line of `data` (a last unterminated line too); with
 * `crlf`, a "\r" ending a line is left out too.
 */
function lineFrames(data: Uint8Array, opcode: number, crlf: boolean): Uint8Array {
  const lineEnd = (start: number, end: number) =>
    crlf && end > start && data[end - 1] === CR ? end - 1 : end;
  let size = 0;
  for (let start = 0; start < data.length;) {
    let end = data.indexOf(NL, start);
    if (end === -1) end = data.length;
    const stop = lineEnd(start, end);
    size += frameHeaderLength(stop - start) + stop - start;
    start = end + 1;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (let start = 0; start < data.length;) {
    let end = data.indexOf(NL, start);
    if (end === -1) end = data.length;
    const stop = lineEnd(start, end);
    at = writeFrameHeader(out, at, opcode, stop - start);
    out.set(data.subarray(start, stop), at);
    at += stop - start;
    start = end + 1;
  }
  return out;
}
