/**
 * Direct messages, delivered exactly once per account: live when the recipient is online,
 * otherwise kept as waiting (pending) and replayed at its next login. All of the logic that
 * makes "exactly once" hold while logins, logouts and commits interleave lives here.
 *
 * The rule: a waiting row is the right to deliver. Whoever deletes it delivers: the sender's
 * commit (when the recipient is online and no login is replaying it), or the login that read it
 * (a claim, held while its page is written, and forgotten only once written).
 *
 * The store resolves calls in the order they were made, and claims are taken in the callback of
 * the read itself, so a login's read and a sender's take are ordered the same way here as in the
 * store.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Hub, Member } from "../hub/hub.ts";
import type { MessageFrame } from "../protocol/frames.ts";
import type { ReplayClaims } from "../session/replay.ts";
import type { AccountStore, MessageStore, UserRecord } from "../store/store.ts";
import { type Draft, messageFrame, newMessage } from "./messages.ts";

/** How often a message is handed between waiting and live before it is left waiting. */
const MAX_ROUNDS = 8;

/** The direct-message service. */
export class DirectMessages {
  readonly #hub: Hub;
  readonly #accounts: AccountStore;
  readonly #messages: MessageStore;
  readonly #claims: ReplayClaims;
  readonly #clock: Clock;

  /**
   * @param hub who is online
   * @param store accounts (to hold messages for) and messages
   * @param claims the waiting messages being replayed right now
   * @param clock stamps messages
   */
  constructor(
    hub: Hub,
    store: { accounts: AccountStore; messages: MessageStore },
    claims: ReplayClaims,
    clock: Clock,
  ) {
    this.#hub = hub;
    this.#accounts = store.accounts;
    this.#messages = store.messages;
    this.#claims = claims;
    this.#clock = clock;
  }

  /**
   * Stores a direct message and delivers it: to the recipient's sessions if it is online (or
   * keeps it waiting for its next login: `waiting`), and to the sender's other sessions.
   *
   * @throws {ChatError} `invalid_name`, `no_such_user` (nobody online and no such account)
   */
  async send(
    sender: Member,
    to: string,
    draft: Draft,
  ): Promise<{ message: MessageFrame; waiting: boolean }> {
    let offline: UserRecord | undefined;
    if (!this.#hub.isOnline(to)) {
      const account = await this.#accounts.getUser(to);
      if (account !== undefined && !account.disabled) offline = account;
    }
    const { from, to: target } = this.#hub.directSender(sender, to, offline?.name);
    const author = { name: from, accountId: sender.user?.id };
    const stored = newMessage({ to: target }, author, draft, this.#clock.now());
    if (offline !== undefined) stored.pendingFor = [offline.id];
    const { id } = await this.#messages.append(stored);
    const frame = messageFrame(id, stored);
    const live = await this.#live(frame, offline);
    this.#hub.publish(sender, frame, live);
    // Not delivered live: it waits for the recipient's next login (a guest's could not).
    return {
      message: frame,
      waiting: !live && (offline !== undefined || !this.#hub.isOnline(target)),
    };
  }

  /**
   * The direct messages waiting for an account, claimed for the caller's replay: a commit that
   * completes meanwhile does not deliver them live too. Call {@linkcode delivered} for those
   * written, and {@linkcode release} for all of them at the end.
   */
  waiting(userId: number): Promise<MessageFrame[]> {
    return this.#messages.pendingFor(userId).then((rows) => {
      this.#claims.claim(userId, rows.map((m) => m.id));
      return rows.map((m) => ({ ...m, offline: true }));
    });
  }

  /** Forgets waiting messages once they were written to the recipient. */
  delivered(userId: number, ids: readonly number[]): Promise<void> {
    return this.#messages.removePending(userId, ids);
  }

  /** Ends the claims {@linkcode waiting} took. */
  release(userId: number, ids: readonly number[]): void {
    this.#claims.release(userId, ids);
  }

  /**
   * Whether a message, now stored, goes to its recipient live. The recipient may log in or out
   * while it is being stored: a message stored as waiting goes live only if the recipient is
   * online and this call deleted its waiting row; one stored for an online recipient who has
   * left since is made waiting (and taken back if the recipient returned meanwhile).
   */
  async #live(frame: MessageFrame, offline: UserRecord | undefined): Promise<boolean> {
    const to = frame.to!;
    let userId = offline?.id;
    if (userId === undefined) {
      if (this.#hub.isOnline(to)) return true;
      const account = await this.#accounts.getUser(to);
      if (account === undefined || account.disabled) return false;
      userId = account.id;
      await this.#messages.addPending(userId, frame.id);
    }
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // Offline, or a login is replaying it: it waits, and the login delivers it.
      if (!this.#hub.isOnline(to) || this.#claims.has(userId, frame.id)) return false;
      const taken = await this.#messages.takePending(userId, frame.id);
      // Not taken: a login's replay wrote it already. Taken but claimed: the replay read it
      // before the take and writes it.
      if (!taken || this.#claims.has(userId, frame.id)) return false;
      if (this.#hub.isOnline(to)) return true;
      await this.#messages.addPending(userId, frame.id); // gone while it was taken: wait again
    }
    return false;
  }
}
