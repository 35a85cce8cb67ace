/**
 * The guards of the command table, checked in one place before any handler runs.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import type { Request, RequestType } from "../protocol/requests.ts";
import { TokenBucket } from "../session/token_bucket.ts";
import type { Caller, Guard, Services } from "./command.ts";

/**
 * Throws the error a request meets at its command's guards, if any: not online, not logged in,
 * not in the room, over the command's rate (`rates` keeps the caller's buckets), or without the
 * role it needs: the role is looked up in the store, so that check may be a promise.
 *
 * @throws {ChatError} `login_required`, `not_in_room`, `rate_limited`, `forbidden`
 */
export function checkGuard(
  guard: Guard<RequestType>,
  request: Request,
  caller: Caller,
  { hub, moderation }: Pick<Services, "hub" | "moderation">,
  rates: Map<string, TokenBucket>,
): void | Promise<void> {
  if (guard.needs !== "nothing" && !caller.online) {
    throw new ChatError(
      "login_required",
      "Log in first: /login NAME PASSWORD or /register NAME PASSWORD",
    );
  }
  if (guard.needs === "account" && caller.user === undefined) {
    throw new ChatError(
      "login_required",
      "Only logged-in accounts can do that: /login or /register first",
    );
  }
  const room = guard.inRoom?.room(request);
  if (room !== undefined && !hub.isIn(caller, room)) {
    throw new ChatError("not_in_room", `Cannot ${guard.inRoom!.verb}: you are not in ${room}`);
  }
  if (guard.rate !== undefined) {
    let bucket = rates.get(request.type);
    if (bucket === undefined) {
      bucket = new TokenBucket(guard.rate.burst, guard.rate.perSecond);
      rates.set(request.type, bucket);
    }
    const wait = bucket.tryTake();
    if (wait > 0) {
      const seconds = Math.max(1, Math.ceil(wait / 1000));
      throw new ChatError(
        "rate_limited",
        `Too many ${request.type} commands: wait ${seconds} s`,
        seconds,
      );
    }
  }
  const role = guard.role?.(request);
  if (role !== undefined) return moderation.require(caller, role.room, role.least, role.what);
}
