/**
 * Replies in request order. A session reads on while a `send` waits for its commit (or a login
 * for its password hash); a reply that is ready while earlier ones still wait queues behind
 * them, so a client always gets its answers in the order it asked.
 *
 * @module
 */

import type { ChatError } from "../protocol/errors.ts";
import type { Outcome } from "../protocol/requests.ts";

/** Writes one answer; false (or a promise of false) when the session should end. */
export type WriteReply = (
  ref: string | undefined,
  answer: Outcome | ChatError,
) => boolean | Promise<boolean>;

/**
 * The queue of replies still waiting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReplyQueue } from "./replies.ts";
 * import { ChatError } from "../protocol/errors.ts";
 * const order: (string | undefined)[] = [];
 * const queue = new ReplyQueue((ref) => (order.push(ref), true), (e) => e as ChatError);
 * const slow = new Promise<never>((_, reject) => setTimeout(() => reject(new ChatError("busy", "x")), 5));
 * queue.respond("1", slow);
 * queue.respond("2", new ChatError("busy", "y")); // ready first, written second
 * await queue.idle();
 * assert.deepEqual(order, ["1", "2"]);
 * ```
 */
export class ReplyQueue {
  readonly #write: WriteReply;
  readonly #asError: (error: unknown) => ChatError;
  #tail: Promise<void> | undefined;
  #pending = 0;

  /**
   * @param write writes an answer in the connection's dialect
   * @param asError turns a handler's failure into the error to answer
   */
  constructor(write: WriteReply, asError: (error: unknown) => ChatError) {
    this.#write = write;
    this.#asError = asError;
  }

  /** How many replies wait. */
  get pending(): number {
    return this.#pending;
  }

  /** Whether any reply waits. */
  get busy(): boolean {
    return this.#tail !== undefined;
  }

  /** Resolves once every reply queued so far is written. */
  async idle(): Promise<void> {
    await this.#tail;
  }

  /**
   * Answers a request: at once when nothing waits and the answer is ready, else behind the
   * replies before it. Returns (or resolves to) false when the session should end.
   */
  respond(
    ref: string | undefined,
    answer: Outcome | ChatError | Promise<Outcome>,
  ): boolean | Promise<boolean> {
    if (!(answer instanceof Promise) && this.#tail === undefined) return this.#write(ref, answer);
    this.#pending++;
    const settled = Promise.resolve(answer).catch((error) => this.#asError(error));
    const done = (this.#tail ?? Promise.resolve()).then(() => settled).then((reply) =>
      this.#write(ref, reply)
    );
    const tail = done.then(() => {
      if (--this.#pending === 0 && this.#tail === tail) this.#tail = undefined;
    });
    this.#tail = tail;
    return done;
  }
}
