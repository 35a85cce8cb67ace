/// <reference lib="dom" />
/**
 * The browser's link to the server, on the shared client core (`src/client/core/`): one
 * {@linkcode WebSocketChannel} at a time on the page's own origin (`/ws`) with a
 * {@linkcode Peer} on it (requests matched to typed replies by `ref`, timeouts, keepalive).
 * While it is wanted, a lost link is reopened by the core's {@linkcode Reconnector} (full
 * jitter, base 500 ms, cap 10 s, the terminal client's policy too), and each new link is handed
 * to `onOpen` to set the session up again (with the core's `restore`).
 *
 * @module
 */

import type { ServerEvent } from "../../client/core/frames.ts";
import type { ReplyTo, RequestFrame } from "../../client/core/frames.ts";
import { ConnectionClosedError, describe } from "../../client/core/errors.ts";
import { Peer } from "../../client/core/peer.ts";
import { Reconnector } from "../../client/core/reconnect.ts";
import type { ReconnectPolicy, ReconnectState } from "../../client/core/reconnect.ts";
import { WebSocketChannel } from "../../client/core/websocket_channel.ts";

/** What the link is doing (`attempt` is 0 only for the very first connection). */
export type LinkState =
  | { kind: "idle" }
  | { kind: "connecting"; attempt: number }
  | { kind: "open" }
  | { kind: "waiting"; attempt: number; retryAt: number; reason: string };

/** Options for {@linkcode Link}. */
export interface LinkOptions {
  /** The WebSocket URL. @default same origin, `/ws` */
  url?: string;
  /** Every event (a frame that answers no request), in order. */
  onEvent: (frame: ServerEvent) => void;
  /** Called on each new open link; it should set the session up. A throw closes the link. */
  onOpen: (peer: Peer) => Promise<void>;
  /** Called on every state change. */
  onState: (state: LinkState) => void;
  /** The reconnect policy. @default the core's (base 500 ms, cap 10 s, no attempt limit) */
  policy?: ReconnectPolicy;
}

/** How long opening a WebSocket may take, in ms. */
const OPEN_TIMEOUT_MS = 10_000;

/** The page's own origin, `ws:` or `wss:` to match. */
export function defaultUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/** A self-healing WebSocket speaking parley's JSON mode. */
export class Link {
  readonly #options: LinkOptions;
  readonly #reconnector: Reconnector;
  #run: AbortController | undefined;
  #peer: Peer | undefined;
  #opened = false;
  #state: LinkState = { kind: "idle" };

  constructor(options: LinkOptions) {
    this.#options = options;
    this.#reconnector = new Reconnector(options.policy);
  }

  /** The current state. */
  get state(): LinkState {
    return this.#state;
  }

  /** Opens the link (if it is not open or opening) and keeps it open until {@linkcode stop}. */
  start(): void {
    if (this.#run !== undefined) return;
    const run = new AbortController();
    this.#run = run;
    this.#keep(run.signal, true, "");
  }

  /** Closes the link and stops reconnecting. */
  stop(): void {
    this.#run?.abort();
    this.#run = undefined;
    this.#peer?.close("closed by the page");
    this.#peer = undefined;
    this.#setState({ kind: "idle" });
  }

  /** Skips the wait before the next reconnect attempt. */
  retryNow(): void {
    this.#reconnector.retryNow();
  }

  /**
   * Sends `frame` on the open link and resolves with its typed reply.
   *
   * @throws {ServerError} when the server answers with an error
   * @throws {ConnectionClosedError} when not connected or the link ends first
   * @throws {RequestTimeoutError} when no reply comes in time (the link is dropped)
   */
  request<F extends RequestFrame>(frame: F): Promise<ReplyTo<F["type"]>> {
    const peer = this.#peer; // open, and perhaps still being set up
    if (peer === undefined || peer.ended) {
      return Promise.reject(new ConnectionClosedError("Cannot send: not connected"));
    }
    return peer.request(frame);
  }

  #setState(state: LinkState): void {
    this.#state = state;
    this.#options.onState(state);
  }

  /** Connects (at once, or after a backoff), sets up, waits for the loss, and starts over. */
  async #keep(signal: AbortSignal, immediate: boolean, reason: string): Promise<void> {
    const result = await this.#reconnector.run(async () => {
      const channel = await WebSocketChannel.open(this.#options.url ?? defaultUrl(), {
        timeoutMs: OPEN_TIMEOUT_MS,
        signal,
      });
      const peer = new Peer(channel, { onEvent: (frame) => this.#options.onEvent(frame) });
      this.#peer = peer;
      try {
        await this.#options.onOpen(peer);
        if (signal.aborted) throw new ConnectionClosedError("closed by the page");
      } catch (error) {
        peer.close(describe(error));
        if (this.#peer === peer) this.#peer = undefined;
        throw error;
      }
      return peer;
    }, {
      signal,
      immediate,
      reason,
      onState: (state) => this.#setState(this.#linkState(state, immediate)),
    });
    if (!result.ok || signal.aborted) return;
    const peer = result.value;
    this.#opened = true;
    this.#setState({ kind: "open" });
    const why = await peer.closed;
    if (signal.aborted || this.#peer !== peer) return;
    this.#peer = undefined;
    this.#keep(signal, false, why);
  }

  #linkState(state: ReconnectState, immediate: boolean): LinkState {
    // Attempts after a loss count the loss: only the page's very first one is attempt 0.
    const attempt = immediate && !this.#opened ? state.attempt - 1 : state.attempt;
    if (state.kind === "connecting") return { kind: "connecting", attempt };
    return { kind: "waiting", attempt, retryAt: state.retryAt, reason: state.reason };
  }
}
