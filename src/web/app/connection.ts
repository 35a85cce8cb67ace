/// <reference lib="dom" />
/**
 * The browser's link to the server: one WebSocket at a time on the page's own origin (`/ws`),
 * one JSON frame per WebSocket message. Requests are matched to replies by `ref`; everything
 * else is an event. While it is wanted, a lost link is reopened with exponential backoff and
 * full jitter, and each new link is handed to `onOpen` to set the session up again.
 *
 * @module
 */

import type { ClientFrame, ServerFrame } from "../../protocol/frames.ts";
import { ChatError } from "../../protocol/errors.ts";
import type { ErrorCode } from "../../protocol/errors.ts";
import { reconnectDelay } from "./model.ts";

/** A reply to a request (`welcome`, `ack`, `pong` or `history`) with its fields. */
export interface Reply {
  type: string;
  ref?: string;
  [field: string]: unknown;
}

/** The server answered a request with an `error` frame. */
export class RequestError extends ChatError {
  constructor(code: ErrorCode, message: string, retryAfter?: number) {
    super(code, message, retryAfter);
    this.name = "RequestError";
  }
}

/** The link ended (or was never open) before a request's reply. */
export class LinkLostError extends Error {
  constructor(
    message = "Cannot complete the request: the connection was lost",
  ) {
    super(message);
    this.name = "LinkLostError";
  }
}

/** What the link is doing. */
export type LinkState =
  | { kind: "idle" }
  | { kind: "connecting"; attempt: number }
  | { kind: "open" }
  | { kind: "waiting"; attempt: number; retryAt: number; reason: string };

/** Options for {@linkcode Link}. */
export interface LinkOptions {
  /** The WebSocket URL. @default same origin, `/ws` */
  url?: string;
  /** Every frame that is not a reply, in order (`ping` is answered before it gets here). */
  onEvent: (frame: ServerFrame) => void;
  /** Called on each new open link; it should send `hello` and log in. A throw closes the link. */
  onOpen: () => Promise<void>;
  /** Called on every state change. */
  onState: (state: LinkState) => void;
  /** The ceiling of the first reconnect delay, in ms. @default 500 */
  baseMs?: number;
  /** The largest ceiling, in ms. @default 15000 */
  capMs?: number;
  /** How long a request may wait for its reply, in ms. @default 20000 */
  requestTimeoutMs?: number;
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The page's own origin, `ws:` or `wss:` to match. */
export function defaultUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/** A self-healing WebSocket speaking parley's JSON mode. */
export class Link {
  readonly #options: LinkOptions;
  readonly #pending = new Map<string, Pending>();
  #ws: WebSocket | undefined;
  #wanted = false;
  #attempt = 0;
  #nextRef = 1;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #heardAt = 0;
  #state: LinkState = { kind: "idle" };

  constructor(options: LinkOptions) {
    this.#options = options;
  }

  /** The current state. */
  get state(): LinkState {
    return this.#state;
  }

  /** Opens the link (if it is not open or opening) and keeps it open until {@linkcode stop}. */
  start(): void {
    this.#wanted = true;
    if (this.#ws === undefined) this.#open();
  }

  /** Closes the link and stops reconnecting. */
  stop(): void {
    this.#wanted = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#drop("closed by the page");
    this.#setState({ kind: "idle" });
  }

  /** Skips the wait before the next reconnect attempt. */
  retryNow(): void {
    if (this.#wanted && this.#ws === undefined) {
      clearTimeout(this.#retryTimer);
      this.#open();
    }
  }

  /** Says the session is healthy again: the next loss starts the backoff from scratch. */
  settled(): void {
    this.#attempt = 0;
  }

  /**
   * Sends `frame` with a fresh `ref` and resolves with its reply.
   *
   * @throws {RequestError} when the server answers with an error
   * @throws {LinkLostError} when the link ends first, or no reply comes in time
   */
  request(frame: ClientFrame): Promise<Reply> {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new LinkLostError("Cannot send: not connected"));
    }
    const ref = `w${this.#nextRef++}`;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new LinkLostError("No reply from the server"));
        // A link that does not answer is as good as lost: reconnect.
        if (this.#ws === ws) this.#drop("no reply from the server");
      }, this.#options.requestTimeoutMs ?? 20_000);
      this.#pending.set(ref, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  /** Sends a frame that has no reply (`pong`). */
  send(frame: ClientFrame): void {
    if (this.#ws?.readyState === WebSocket.OPEN) {
      this.#ws.send(JSON.stringify(frame));
    }
  }

  #setState(state: LinkState): void {
    this.#state = state;
    this.#options.onState(state);
  }

  #open(): void {
    this.#retryTimer = undefined;
    if (!this.#wanted) return;
    this.#setState({ kind: "connecting", attempt: this.#attempt });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.#options.url ?? defaultUrl());
    } catch (error) {
      this.#lost(error instanceof Error ? error.message : String(error));
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#heardAt = Date.now();
      this.#idleTimer = setInterval(() => this.#checkIdle(ws), 15_000);
      this.#options.onOpen().then(
        () => {
          if (this.#ws === ws) this.#setState({ kind: "open" });
        },
        (error) => {
          if (this.#ws === ws) {
            this.#drop(error instanceof Error ? error.message : String(error));
          }
        },
      );
    };
    ws.onmessage = (ev) => {
      if (this.#ws !== ws || typeof ev.data !== "string") return;
      this.#heardAt = Date.now();
      let frame: ServerFrame;
      try {
        frame = JSON.parse(ev.data) as ServerFrame;
      } catch {
        return; // not JSON: nothing we can act on
      }
      this.#dispatch(frame);
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#lost(
        ev.reason ||
          (ev.wasClean ? "the server closed the connection" : "connection lost"),
      );
    };
  }

  #dispatch(frame: ServerFrame): void {
    const ref = "ref" in frame ? frame.ref : undefined;
    const pending = ref === undefined ? undefined : this.#pending.get(ref);
    if (pending !== undefined) {
      this.#pending.delete(ref!);
      clearTimeout(pending.timer);
      if (frame.type === "error") {
        pending.reject(
          new RequestError(frame.code, frame.message, frame.retryAfter),
        );
      } else {
        pending.resolve(frame as Reply);
      }
      return;
    }
    if (frame.type === "ping") {
      this.send({ type: "pong" });
      return;
    }
    this.#options.onEvent(frame);
  }

  /** Probes a link silent for 45 s; the probe's timeout drops it if it is dead. */
  #checkIdle(ws: WebSocket): void {
    if (this.#ws !== ws || Date.now() - this.#heardAt < 45_000) return;
    this.request({ type: "ping" }).catch(() => {});
  }

  /** Closes the current WebSocket (if any) and fails what waits on it. */
  #drop(reason: string): void {
    const ws = this.#ws;
    if (ws === undefined) return;
    this.#ws = undefined;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
    this.#lost(reason);
  }

  #lost(reason: string): void {
    clearInterval(this.#idleTimer);
    for (const [ref, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(ref);
      p.reject(new LinkLostError());
    }
    if (!this.#wanted) return;
    const attempt = this.#attempt++;
    const delay = reconnectDelay(
      attempt,
      this.#options.baseMs ?? 500,
      this.#options.capMs ?? 15_000,
    );
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#open(), delay);
    // Last: the listener may stop the link, which cancels the attempt just planned.
    this.#setState({ kind: "waiting", attempt: attempt + 1, retryAt: Date.now() + delay, reason });
  }
}
