/**
 * Where a session's requests go: what a dialect read (one request, several, an error, or an
 * answer of the dialect's own) is run through the command table, its guards first, and each
 * outcome handed to the reply queue, which writes the replies in request order.
 *
 * @module
 */

import type { Caller, Command, Services } from "../commands/command.ts";
import { checkGuard } from "../commands/guards.ts";
import { logsIn } from "../commands/connection.ts";
import { COMMANDS } from "../commands/table.ts";
import type { Parsed } from "../dialects/dialect.ts";
import type { Outcome, Request, RequestType } from "../protocol/requests.ts";
import type { ReplyQueue } from "./replies.ts";
import type { TokenBucket } from "./token_bucket.ts";

/** The most replies that may wait for a commit before the session stops reading. */
const MAX_PIPELINE = 64;

/** What a guard without a rate is given for buckets: never written, shared. */
const NO_RATES: Map<string, TokenBucket> = new Map();

/** A caller that arrives (comes online as a guest) when a request opens its session. */
export interface Arriving extends Caller {
  /** Arrives, once. */
  arrive(): void;
}

/** One session's way into the command table. */
export class Dispatcher {
  readonly #caller: Arriving;
  readonly #services: Services;
  readonly #replies: ReplyQueue;
  /** Per-command rate limits (the `rate` guards), made at the first such command. */
  #rates: Map<string, TokenBucket> | undefined;

  /**
   * @param caller the session the requests are its (it arrives when a request opens it)
   * @param services what the commands work with
   * @param replies the session's reply queue
   */
  constructor(caller: Arriving, services: Services, replies: ReplyQueue) {
    this.#caller = caller;
    this.#services = services;
    this.#replies = replies;
  }

  /**
   * Runs what a dialect read. Returns (or resolves to) false when the session should end; a
   * promise means the session must wait before reading on.
   */
  run(parsed: Parsed): boolean | Promise<boolean> {
    if (parsed === undefined) return true;
    if ("error" in parsed) return this.#replies.respond(parsed.ref, parsed.error);
    if ("local" in parsed) {
      const close = parsed.close === true;
      const { local } = parsed;
      return this.#replies.respond(
        undefined,
        local instanceof Promise ? local.then((raw) => ({ raw, close })) : { raw: local, close },
      );
    }
    if ("requests" in parsed) {
      let going = true as boolean | Promise<boolean>;
      for (const { request, ref } of parsed.requests) {
        going = going instanceof Promise
          ? going.then((ok) => ok && this.#one(request, ref))
          : going && this.#one(request, ref);
      }
      return going;
    }
    if (parsed.opens === true && !logsIn(parsed.request)) this.#caller.arrive();
    return this.#one(parsed.request, parsed.ref);
  }

  /** Runs one request, pipelined or after the replies before it. */
  #one(request: Request, ref: string | undefined): boolean | Promise<boolean> {
    // Sends are pipelined: their acks wait for a commit while later lines are read. Every other
    // command runs once the replies before it are out, so it sees what they did.
    const pipelined = COMMANDS[request.type].pipelined === true;
    if (!pipelined && this.#replies.busy) {
      return this.#replies.idle().then(() => this.#execute(request, ref));
    }
    const done = this.#execute(request, ref);
    return pipelined && this.#replies.pending <= MAX_PIPELINE ? true : done;
  }

  #execute(request: Request, ref: string | undefined): boolean | Promise<boolean> {
    let outcome: Outcome | Promise<Outcome>;
    try {
      // The table is indexed by the request's own type, so the request fits its entry.
      const command = COMMANDS[request.type] as unknown as Command<RequestType>;
      const caller = this.#caller;
      const rates = command.guard.rate === undefined ? NO_RATES : this.#rates ??= new Map();
      const guarded = checkGuard(command.guard, request, caller, this.#services, rates);
      outcome = guarded === undefined
        ? command.run(request, caller, this.#services)
        : guarded.then(() => command.run(request, caller, this.#services));
    } catch (error) {
      outcome = Promise.reject(error);
    }
    return this.#replies.respond(ref, outcome, request.type);
  }
}
