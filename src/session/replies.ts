/**
 * Replies in request order. A session reads on while a `send` waits for its commit (or a login
 * for its password hash); a reply that is ready while earlier ones still wait queues behind
 * them, so a client always gets its answers in the order it asked.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ChatError } from "../protocol/errors.ts";
import type { Outcome } from "../protocol/requests.ts";

const log = getLogger(["parley", "session"]);

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
 * const queue = new ReplyQueue((ref) => (order.push(ref), true), "127.0.0.1:5555");
 * const slow = new Promise<never>((_, reject) => setTimeout(() => reject(new ChatError("busy", "x")), 5));
 * queue.respond("1", slow);
 * queue.respond("2", new ChatError("busy", "y")); // ready first, written second
 * await queue.idle();
 * assert.deepEqual(order, ["1", "2"]);
 * ```
 */
export class ReplyQueue {
  readonly #write: WriteReply;
  readonly #remote: string;
  #tail: Promise<void> | undefined;
  #pending = 0;

  /**
   * @param write writes an answer in the connection's dialect
   * @param remote the peer, for the log of a handler that failed (not the client's doing)
   */
  constructor(write: WriteReply, remote: string) {
    this.#write = write;
    this.#remote = remote;
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
   * replies before it. Returns (or resolves to) false when the session should end. `command`
   * (the request's type) names it in the log when its handler fails.
   */
  respond(
    ref: string | undefined,
    answer: Outcome | ChatError | Promise<Outcome>,
    command?: string,
  ): boolean | Promise<boolean> {
    if (!(answer instanceof Promise) && this.#tail === undefined) return this.#write(ref, answer);
    this.#pending++;
    const settled = Promise.resolve(answer).catch((error) => this.#asError(error, command));
    const done = (this.#tail ?? Promise.resolve()).then(() => settled).then((reply) =>
      this.#write(ref, reply)
    );
    const tail = done.then(() => {
      if (--this.#pending === 0 && this.#tail === tail) this.#tail = undefined;
    });
    this.#tail = tail;
    return done;
  }

  /** A handler's failure as the error to answer: its own, or `internal` (logged). */
  #asError(error: unknown, command = "unknown"): ChatError {
    if (error instanceof ChatError) return error;
    log.error("The {command} command from {remote} failed: {error}", {
      command,
      remote: this.#remote,
      error,
    });
    return new ChatError("internal", "Internal error: the command failed");
  }
}
