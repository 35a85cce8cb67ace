/**
 * Who a session is: `nick` (guests), `register`, `login`, `logout`, `passwd`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { AccountLogin } from "../auth/accounts.ts";
import { hashToken } from "../auth/tokens.ts";
import { ChatError } from "../protocol/errors.ts";
import { checkName, DEFAULT_ROOM } from "../protocol/names.ts";
import type { Outcome } from "../protocol/requests.ts";
import type { Caller, CommandGroup, Services } from "./command.ts";

const log = getLogger(["parley", "session"]);

/** The identity commands. */
export const identityCommands: CommandGroup<"nick" | "register" | "login" | "logout" | "passwd"> = {
  nick: {
    // Every rename is announced in every room the user is in.
    guard: { needs: "online", rate: { burst: 10, perSecond: 1 } },
    async run(request, caller, { hub, store }) {
      checkName(request.name);
      const account = await store.accounts.getUser(request.name);
      if (account !== undefined && account.id !== caller.user?.id) {
        throw new ChatError(
          "name_taken",
          `Cannot rename: ${account.name} is a registered name; /login to use it`,
        );
      }
      hub.rename(caller, request.name);
      return { result: { command: "nick", reply: { type: "ack", name: caller.name } } };
    },
  },
  register: {
    guard: { needs: "nothing" },
    async run(request, caller, services) {
      const login = await services.accounts.register(
        request.name,
        request.password,
        caller.remoteIp,
      );
      return await logIn("register", login, caller, services);
    },
  },
  login: {
    guard: { needs: "nothing" },
    async run(request, caller, services) {
      const { accounts } = services;
      let login: AccountLogin;
      if (request.token !== undefined) {
        login = await resume(request.token, caller, services);
      } else if (request.name === undefined || request.password === undefined) {
        throw new ChatError("bad_frame", "Frame 'login' needs 'name' and 'password', or 'token'");
      } else {
        login = await accounts.login(request.name, request.password, caller.remoteIp);
      }
      return await logIn("login", login, caller, services);
    },
  },
  logout: {
    guard: { needs: "account" },
    async run(_request, caller, { accounts }) {
      await accounts.logout(caller.tokenHash!);
      log.info("{name} logged out", { name: caller.name });
      return {
        result: { command: "logout", reply: { type: "ack" }, name: caller.name },
        close: true,
      };
    },
  },
  passwd: {
    guard: { needs: "account" },
    async run(request, caller, { accounts, hub }) {
      await accounts.changePassword(
        caller.user!,
        request.old,
        request.new,
        caller.remoteIp,
        caller.tokenHash,
      );
      let others = 0;
      for (const member of hub.sessionsOf(caller.name)) {
        if (member === caller || member.revoke === undefined) continue;
        member.revoke("Your password was changed in another session: log in again");
        others++;
      }
      log.info("{name} changed the password; {others} other sessions ended", {
        name: caller.name,
        others,
      });
      return { result: { command: "passwd", reply: { type: "ack" } } };
    },
  },
};

/**
 * A token login, with the account's rooms read in the same round trip to the store as the token
 * (the token is checked first; its rooms are used only when it was good).
 */
export async function resume(
  token: string,
  caller: Caller,
  { accounts, store }: Services,
): Promise<AccountLogin & { rooms: string[] }> {
  const rooms = store.memberships.ofSession(hashToken(token));
  rooms.catch(() => {}); // a failed login leaves it unread
  const login = await accounts.resume(token, caller.remoteIp);
  return { ...login, rooms: await rooms };
}

/**
 * After a successful login or registration: join the account's rooms (read here unless the
 * login brought them), replay, deliver.
 */
export async function logIn(
  command: "login" | "register",
  login: AccountLogin & { rooms?: string[] },
  caller: Caller,
  { hub, store, messages, dms, moderation, config }: Services,
): Promise<Outcome> {
  const { user } = login;
  if (caller.user !== undefined && caller.user.id !== user.id) {
    throw new ChatError("forbidden", `Cannot log in: you are logged in as ${caller.user.name}`);
  }
  const stored = login.rooms ?? await store.memberships.of(user.id);
  if (caller.closed) throw new ChatError("timeout", "The session ended while logging in");
  // An account that left #general is not put back by the guest's automatic join.
  const drop = caller.autoGeneral && stored.length > 0 ? [DEFAULT_ROOM] : [];
  caller.autoGeneral = false;
  const rooms = stored.length > 0 || caller.online ? stored : [DEFAULT_ROOM];
  const { joined } = hub.login(caller, user, rooms, drop);
  caller.loggedIn(login, joined);
  const known = new Set(stored);
  // A guest's rooms go with it into the account, except those the account is banned from.
  const carried = hub.roomsOf(caller).filter((room) => !known.has(room));
  for (const room of await moderation.bannedFrom(caller, carried)) hub.evict(caller.name, room);
  const mine = hub.roomsOf(caller);
  // Claimed as they are read, so that a commit completing before the replay starts does not
  // deliver them live as well; forgotten only once written to this connection.
  const [waiting, history, added] = await Promise.allSettled([
    dms.waiting(user.id),
    messages.latest(joined, config.historyOnJoin),
    Promise.all(
      mine.filter((room) => !known.has(room)).map((room) => store.memberships.add(user.id, room)),
    ),
  ]);
  if (waiting.status === "rejected") throw waiting.reason;
  if (history.status === "rejected" || added.status === "rejected") {
    dms.release(user.id, waiting.value.map((m) => m.id));
    throw history.status === "rejected" ? history.reason : (added as PromiseRejectedResult).reason;
  }
  const counts = new Map<string, number>();
  for (const m of waiting.value) counts.set(m.from, (counts.get(m.from) ?? 0) + 1);
  const unread = [...counts].map(([from, count]) => ({ from, count }));
  log.info("{remote} logged in as {name}", { remote: caller.remote, name: user.name });
  return {
    result: {
      command,
      reply: { type: "ack", name: user.name, token: login.token, rooms: mine, unread },
    },
    replay: [...history.value, ...waiting.value],
  };
}
