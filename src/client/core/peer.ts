/**
 * {@linkcode Peer}: requests and their replies over one {@linkcode FrameChannel}. Each request
 * gets a fresh `ref`; the reply carrying it settles the request (an `error` frame rejects it
 * with {@linkcode ServerError}); a request without a reply in time rejects with
 * {@linkcode RequestTimeoutError} and drops the connection. The server's `ping` is answered
 * with `pong`; an idle connection is probed with `ping`. Everything else that is an event goes
 * to `onEvent`, in order.
 *
 * @module
 */

import type { FrameChannel } from "./channel.ts";
import { ConnectionClosedError, RequestTimeoutError, ServerError } from "./errors.ts";
import type { ErrorFrame, ReplyTo, RequestFrame, ServerEvent, ShutdownEvent } from "./frames.ts";
import { isEventType } from "./frames.ts";

/** The defaults of {@linkcode PeerOptions}. */
export const PEER_DEFAULTS = {
  /** How long a request may wait for its reply, in ms. */
  requestTimeoutMs: 20_000,
  /** How often an idle connection is probed, in ms. */
  pingIntervalMs: 30_000,
} as const;

/** Options for a {@linkcode Peer}. */
export interface PeerOptions {
  /** Receives every event (a frame that answers no request), in order. */
  onEvent?: (event: ServerEvent) => void;
  /**
   * How long a request may wait for its reply, in ms, unless the request says otherwise; 0
   * waits for ever. A request that times out drops the connection. @default 20000
   */
  requestTimeoutMs?: number;
  /**
   * Probe the connection with `ping` when nothing was heard for this long (ms); nothing heard
   * for another interval drops it. 0 turns it off. @default 30000
   */
  pingIntervalMs?: number;
}

interface Pending {
  type: string;
  resolve: (frame: never) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Requests after whose ack the server closes the connection. */
const FAREWELLS = new Set(["quit", "logout"]);

/**
 * Request/reply matching over a channel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { channelPair } from "./channel.ts";
 * import { Peer } from "./peer.ts";
 * const [client, server] = channelPair();
 * server.receive((f) => {
 *   const frame = f as { type: string; ref: string; room: string };
 *   server.send({ type: "ack", ref: frame.ref, room: frame.room, members: ["al"] });
 * });
 * const peer = new Peer(client);
 * const ack = await peer.request({ type: "join", room: "#ops" });
 * assert.deepEqual(ack.members, ["al"]); // typed: the join ack's fields
 * peer.close("done");
 * assert.equal(await peer.closed, "done");
 * ```
 */
export class Peer {
  readonly #channel: FrameChannel;
  readonly #options: PeerOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #closed: Promise<string>;
  #nextRef = 1;
  #ended = false;
  #reason: string | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #heard = false;
  #probing = false;
  /** The `shutdown` frame, if the server sent one. */
  shutdown: ShutdownEvent | undefined;
  /** Whether the server acknowledged a `quit` or `logout`: the end is wanted. */
  farewell = false;

  /** Takes over `channel`: it must not be read by anyone else. */
  constructor(channel: FrameChannel, options: PeerOptions = {}) {
    this.#channel = channel;
    this.#options = options;
    this.#closed = channel.closed.then((reason) => {
      this.#end(this.#reason ?? reason);
      return this.#reason ?? reason;
    });
    channel.receive((frame) => this.#frame(frame));
    const interval = options.pingIntervalMs ?? PEER_DEFAULTS.pingIntervalMs;
    if (interval > 0 && !channel.ended) this.#timer = setInterval(() => this.#tick(), interval);
  }

  /** Resolves with the reason once the connection is closed (pending requests have failed). */
  get closed(): Promise<string> {
    return this.#closed;
  }

  /** Whether the connection is over (or closing). */
  get ended(): boolean {
    return this.#ended || this.#channel.ended;
  }

  /**
   * Sends `frame` with a fresh `ref` and resolves with its reply, typed by the request:
   * `hello` → `welcome`, `ping` → `pong`, `history` → `history`, the rest → their `ack`.
   *
   * @param options `timeoutMs` for this request (0: no timeout)
   * @throws {ServerError} when the server answers with an error
   * @throws {RequestTimeoutError} when no reply came in time (the connection is dropped)
   * @throws {ConnectionClosedError} when the connection ends before the reply
   */
  request<F extends RequestFrame>(
    frame: F,
    options: { timeoutMs?: number } = {},
  ): Promise<ReplyTo<F["type"]>> {
    if (this.ended) {
      return Promise.reject(
        new ConnectionClosedError(`Cannot send: ${this.#reason ?? "the connection is closed"}`),
      );
    }
    const ref = String(this.#nextRef++);
    const { promise, resolve, reject } = Promise.withResolvers<ReplyTo<F["type"]>>();
    const ms = options.timeoutMs ?? this.#options.requestTimeoutMs ??
      PEER_DEFAULTS.requestTimeoutMs;
    const timer = ms > 0
      ? setTimeout(() => {
        if (!this.#pending.delete(ref)) return;
        const error = new RequestTimeoutError(ms);
        reject(error);
        this.close(error.message); // the server answers every request: this one is dead
      }, ms)
      : undefined;
    this.#pending.set(ref, {
      type: frame.type,
      resolve: resolve as (f: never) => void,
      reject,
      timer,
    });
    this.#channel.send({ ...frame, ref });
    return promise;
  }

  /** Sends a frame that gets no reply (`pong`); dropped when the connection is over. */
  send(frame: object): void {
    if (!this.ended) this.#channel.send(frame);
  }

  /** Closes the connection; pending requests reject with {@linkcode ConnectionClosedError}. */
  close(reason = "the connection was closed"): void {
    this.#reason ??= reason;
    this.#end(this.#reason);
    this.#channel.close(reason);
  }

  #end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#timer);
    const error = new ConnectionClosedError(`Cannot complete the request: ${reason}`);
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
  }

  #frame(value: unknown): void {
    if (this.#ended) return;
    this.#heard = true;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.close("the server sent a frame that is not an object");
      return;
    }
    const frame = value as { type?: unknown; ref?: unknown };
    if (typeof frame.type !== "string") {
      this.close("the server sent a frame without a type");
      return;
    }
    const ref = frame.ref;
    const pending = typeof ref === "string" ? this.#pending.get(ref) : undefined;
    if (pending !== undefined) {
      // The server answers every request exactly once, with its ref: this is the reply.
      this.#pending.delete(ref as string);
      clearTimeout(pending.timer);
      if (frame.type === "error") {
        const e = frame as ErrorFrame;
        pending.reject(
          new ServerError(
            e.code,
            String(e.message),
            typeof e.retryAfter === "number" ? e.retryAfter : undefined,
            e.need === "serverPassword" ? e.need : undefined,
          ),
        );
      } else {
        if (FAREWELLS.has(pending.type)) this.farewell = true;
        pending.resolve(frame as never);
      }
      return;
    }
    if (frame.type === "ping") {
      this.send({ type: "pong" }); // the server checks we are alive; it does not answer
      return;
    }
    if (!isEventType(frame.type)) return; // a reply nobody waits for, or a newer event
    if (frame.type === "shutdown") this.shutdown = frame as ShutdownEvent;
    this.#options.onEvent?.(frame as ServerEvent);
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
    this.request({ type: "ping" }, { timeoutMs: 0 }).catch(() => {});
  }
}
