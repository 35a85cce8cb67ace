/**
 * {@linkcode WebSocketChannel}: a {@linkcode FrameChannel} over a WebSocket, one JSON frame per
 * text message (the server's `/ws`). Uses the global `WebSocket`, so it runs in browsers and in
 * Deno alike. Messages that are not JSON are ignored.
 *
 * @module
 */

import { Inbox } from "./channel.ts";
import type { FrameChannel } from "./channel.ts";
import { ConnectionClosedError } from "./errors.ts";

/** A WebSocket carrying JSON frames. */
export class WebSocketChannel implements FrameChannel {
  readonly #ws: WebSocket;
  readonly #inbox = new Inbox();
  readonly #closed = Promise.withResolvers<string>();
  #ended = false;
  #reason: string | undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (ev) => {
      if (this.#ended || typeof ev.data !== "string") return;
      let frame: unknown;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return; // not JSON: nothing to act on
      }
      this.#inbox.push(frame);
    };
    ws.onclose = (ev) => {
      this.#finish(
        ev.reason || (ev.wasClean ? "the server closed the connection" : "connection lost"),
      );
    };
  }

  /**
   * Opens a WebSocket to `url` and resolves once it is open.
   *
   * @param options `timeoutMs` for the opening handshake (0: none), `signal` to abort it
   * @throws {ConnectionClosedError} when it cannot be opened (in time)
   */
  static open(
    url: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<WebSocketChannel> {
    return new Promise((resolve, reject) => {
      options.signal?.throwIfAborted();
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch (error) {
        reject(new ConnectionClosedError(`Cannot connect to ${url}`, { cause: error }));
        return;
      }
      const fail = (why: string) => {
        cleanup();
        ws.onopen = ws.onclose = ws.onerror = null;
        try {
          ws.close();
        } catch {
          // not open
        }
        reject(new ConnectionClosedError(`Cannot connect: ${why}`));
      };
      const onAbort = () => fail("aborted");
      const timer = (options.timeoutMs ?? 0) > 0
        ? setTimeout(() => fail(`no answer within ${options.timeoutMs} ms`), options.timeoutMs)
        : undefined;
      const cleanup = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      ws.onerror = () => {}; // the close event that follows says it
      ws.onclose = (ev) => fail(ev.reason || "connection lost");
      ws.onopen = () => {
        cleanup();
        ws.onopen = ws.onerror = null;
        resolve(new WebSocketChannel(ws));
      };
    });
  }

  send(frame: object): void {
    if (!this.#ended && this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.send(JSON.stringify(frame));
    }
  }

  receive(handler: (frame: unknown) => void): void {
    this.#inbox.receive(handler);
  }

  close(reason = "the connection was closed"): void {
    if (this.#ended) return;
    this.#reason = reason;
    try {
      this.#ws.close(1000);
    } catch {
      // already closing
    }
    this.#finish(reason);
  }

  get closed(): Promise<string> {
    return this.#closed.promise;
  }

  get ended(): boolean {
    return this.#ended;
  }

  #finish(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#ws.onmessage = this.#ws.onclose = null;
    this.#closed.resolve(this.#reason ?? reason);
  }
}
