/**
 * {@linkcode FrameChannel}: one connection that carries JSON frames, whatever is underneath (a
 * TCP or TLS stream of lines in the terminal client, a WebSocket in the browser, or
 * {@linkcode channelPair} in memory). The rest of the client core ({@linkcode Peer}) speaks
 * only to this.
 *
 * @module
 */

/** One connection carrying JSON frames. */
export interface FrameChannel {
  /**
   * Sends one frame (serialized by the channel). After the channel closed it is dropped
   * silently: the caller learns of the end from {@linkcode FrameChannel.closed}.
   */
  send(frame: object): void;
  /**
   * Sets the one receiver of the frames that arrive, parsed from JSON, in order. Frames that
   * arrived before are held and handed to it at once.
   */
  receive(handler: (frame: unknown) => void): void;
  /** Closes the connection (idempotent); the first reason given is the one reported. */
  close(reason?: string): void;
  /** Resolves with the reason once the connection is closed and its I/O has stopped. */
  readonly closed: Promise<string>;
  /** Whether the connection is over (or closing). */
  readonly ended: boolean;
}

/**
 * Holds received frames until a receiver is set; the building block of channel
 * implementations.
 */
export class Inbox {
  #handler: ((frame: unknown) => void) | undefined;
  #held: unknown[] = [];

  /** Hands `frame` to the receiver, or holds it until there is one. */
  push(frame: unknown): void {
    if (this.#handler === undefined) this.#held.push(frame);
    else this.#handler(frame);
  }

  /** Sets the receiver and gives it what was held. */
  receive(handler: (frame: unknown) => void): void {
    this.#handler = handler;
    const held = this.#held;
    this.#held = [];
    for (const frame of held) handler(frame);
  }
}

/** One end of a {@linkcode channelPair}. */
class MemoryChannel implements FrameChannel {
  readonly #inbox = new Inbox();
  readonly #closed = Promise.withResolvers<string>();
  #ended = false;
  other: MemoryChannel | undefined;

  send(frame: object): void {
    if (this.#ended) return;
    // Through JSON, as on a real connection: what arrives is a copy, in a later task.
    const copy = JSON.parse(JSON.stringify(frame));
    const other = this.other!;
    setTimeout(() => {
      if (!other.#ended) other.#inbox.push(copy);
    }, 0);
  }

  receive(handler: (frame: unknown) => void): void {
    this.#inbox.receive(handler);
  }

  close(reason = "the connection was closed"): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closed.resolve(reason);
    this.other!.close("the other end closed the connection");
  }

  get closed(): Promise<string> {
    return this.#closed.promise;
  }

  get ended(): boolean {
    return this.#ended;
  }
}

/**
 * Two connected in-memory channels: what one end sends, the other receives (as a JSON copy, in
 * a later task); closing either closes both. For tests and for wiring a client to an
 * in-process peer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { channelPair } from "./channel.ts";
 * const [a, b] = channelPair();
 * const got = new Promise((resolve) => b.receive(resolve));
 * a.send({ type: "ping" });
 * assert.deepEqual(await got, { type: "ping" });
 * a.close("done");
 * assert.equal(await a.closed, "done");
 * assert.equal(await b.closed, "the other end closed the connection");
 * ```
 */
export function channelPair(): [FrameChannel, FrameChannel] {
  const a = new MemoryChannel();
  const b = new MemoryChannel();
  a.other = b;
  b.other = a;
  return [a, b];
}
