/**
 * A WebSocket (from `Deno.upgradeWebSocket`) as a {@linkcode Connection}: one text frame per
 * JSON-mode message each way.
 *
 * @module
 */

import type { LineEvent } from "../protocol/line_splitter.ts";
import type { Connection } from "./connection.ts";

const NL = 0x0a;
/** Past this many bytes buffered in the socket, writes wait for it to drain. */
const HIGH_WATER = 64 * 1024;

/** Options for {@linkcode WebSocketConnection}. */
export interface WebSocketOptions {
  /** The peer's IP address. */
  remoteIp: string;
  /** The peer's port. */
  remotePort: number;
  /** The largest frame accepted, in bytes (the line limit of the other transports). */
  maxLine: number;
  /** The most inbound bytes that may wait to be read before the connection is closed. */
  maxInbound: number;
}

/**
 * Wraps a server-side WebSocket. Inbound frames queue until the session reads them (a
 * WebSocket cannot be paused, so the queue is bounded: a client that floods past `maxInbound`
 * is closed with 1008). Outbound, the outbox's coalesced bytes are split back into one frame per
 * line, and writes wait while `bufferedAmount` is high, so a slow browser fills the outbox and is
 * cut off by the same send-queue limit as TCP.
 */
export class WebSocketConnection implements Connection {
  readonly kind = "ws" as const;
  readonly framed = true;
  readonly remoteIp: string;
  readonly remote: string;
  readonly #socket: WebSocket;
  readonly #options: WebSocketOptions;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });
  #queue: LineEvent[] = [];
  #queued = 0;
  #wake: (() => void) | undefined;
  #ended = false;

  /**
   * @param socket the upgraded socket
   * @param options the peer and the limits
   */
  constructor(socket: WebSocket, options: WebSocketOptions) {
    this.#socket = socket;
    this.#options = options;
    this.remoteIp = options.remoteIp;
    this.remote = `${options.remoteIp}:${options.remotePort}`;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = () => this.#end();
    socket.onerror = () => this.#end();
  }

  #receive(data: unknown): void {
    if (this.#ended) return;
    let event: LineEvent;
    if (typeof data === "string") {
      event = data.length > this.#options.maxLine ? { error: "line_too_long" } : { line: data };
    } else {
      const bytes = new Uint8Array(data as ArrayBuffer);
      if (bytes.length > this.#options.maxLine) event = { error: "line_too_long" };
      else {
        try {
          event = { line: this.#decoder.decode(bytes) };
        } catch {
          event = { error: "bad_utf8" };
        }
      }
    }
    const size = "line" in event ? event.line.length : 0;
    if (this.#queued + size > this.#options.maxInbound) {
      this.#socket.close(1008, "flooding");
      this.#end();
      return;
    }
    this.#queued += size;
    this.#queue.push(event);
    this.#wake?.();
  }

  #end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *messages(): AsyncGenerator<LineEvent> {
    for (;;) {
      const event = this.#queue.shift();
      if (event !== undefined) {
        if ("line" in event) this.#queued -= event.line.length;
        yield event;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }

  async write(data: Uint8Array): Promise<void> {
    const socket = this.#socket;
    let start = 0;
    while (start < data.length) {
      if (socket.readyState !== WebSocket.OPEN) throw new Error("Cannot write: socket closed");
      let end = data.indexOf(NL, start);
      if (end === -1) end = data.length;
      socket.send(this.#decoder.decode(data.subarray(start, end)));
      start = end + 1;
    }
    while (socket.bufferedAmount > HIGH_WATER) {
      if (socket.readyState !== WebSocket.OPEN) throw new Error("Cannot write: socket closed");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close(): void {
    if (this.#socket.readyState <= WebSocket.OPEN) {
      try {
        this.#socket.close(1000);
      } catch {
        // not open yet or already closing
      }
    }
    this.#end();
  }
}
