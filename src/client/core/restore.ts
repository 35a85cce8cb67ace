/**
 * {@linkcode restore}: the one step that sets a session up again on a new connection, for both
 * clients. In one pipelined burst (the server answers in order) it says `hello`, takes back the
 * identity (a `login` with the session token when there is one, else the chosen guest name
 * with `nick`; or, for a first login, the name and password), re-joins the rooms, and leaves
 * `#general` when it was not among them. Refusals are reported, not thrown: a name someone
 * took meanwhile, a token that expired, a room that cannot be joined.
 *
 * @module
 */

import type { ErrorCode } from "../../protocol/errors.ts";
import { DEFAULT_ROOM, nameKey } from "../../protocol/names.ts";
import { ServerError } from "./errors.ts";
import type { AckOf, RequestFrame, WelcomeFrame } from "./frames.ts";
import type { Peer } from "./peer.ts";

/** What to set up. */
export interface RestorePlan {
  /** The `hello` to send. */
  hello: Extract<RequestFrame, { type: "hello" }>;
  /** The reply to a `hello` already sent on this connection (then `hello` is not sent again). */
  greeted?: Promise<WelcomeFrame>;
  /** Log in with this session token. */
  token?: string;
  /**
   * Send `token` in the `hello` itself, so the session comes online as the account and never
   * as a guest first (no `guest-1234 joined` then a rename). A server that logs in on `hello`
   * answers with `welcome.login`; one that does not (it ignores the field) is sent a `login`
   * after its welcome. A refused token then fails the `hello` (its `ServerError`). With
   * `greeted`, the `hello` already sent carried the token.
   */
  tokenInHello?: boolean;
  /** Without a token: log in (or `register`) with a name and password. */
  credentials?: { name: string; password: string; register?: boolean };
  /** Without a token or credentials: take this name (a guest's chosen name). */
  name?: string;
  /**
   * The rooms to be in: joined again (all but `#general`, which the server puts a guest in),
   * and `#general` left when it is not among them. Undefined: keep the rooms the server gives
   * (an account's rooms, or `#general`).
   */
  rooms?: readonly string[];
  /**
   * Called with the `login` (or `register`) ack as soon as it arrives, before later replies
   * are awaited (e.g. to count the offline messages that follow it).
   */
  onLogin?: (ack: AckOf<"login">) => void;
}

/** What the session is now. */
export interface Restored {
  /** The server's `welcome` on this connection. */
  welcome: WelcomeFrame;
  /** The name now in use. */
  name: string;
  /** The rooms now joined (canonical case). */
  rooms: string[];
  /** The `login`/`register` ack, when logged in. */
  login?: AckOf<"login">;
  /** The acks of the rooms joined (with their members). */
  joined: AckOf<"join">[];
  /** The name asked for, when it could not be had. */
  lostName?: string;
  /** The token was refused with this code: the session is a guest one now. */
  lostSession?: ErrorCode;
  /** Why the identity (token, credentials or name) was refused. */
  identityError?: ServerError;
  /** Rooms that could not be joined, and why. */
  lostRooms: { room: string; error: ServerError }[];
}

/**
 * Sets the session up on `peer` as `plan` says.
 *
 * @throws {ConnectionClosedError} when the connection ends (or a reply times out) meanwhile
 * @throws {ServerError} when the server refuses `hello`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { channelPair } from "./channel.ts";
 * import { Peer } from "./peer.ts";
 * import { restore } from "./restore.ts";
 * const [client, server] = channelPair();
 * const seen: string[] = [];
 * server.receive((f) => {
 *   const frame = f as { type: string; ref: string; name?: string; room?: string };
 *   seen.push(frame.type);
 *   const reply = frame.type === "hello"
 *     ? { type: "welcome", server: "x", version: "1", proto: 1, name: "guest-1" }
 *     : frame.type === "nick"
 *     ? { type: "ack", name: frame.name }
 *     : { type: "ack", room: frame.room, members: [] };
 *   server.send({ ...reply, ref: frame.ref });
 * });
 * const peer = new Peer(client);
 * const done = await restore(peer, {
 *   hello: { type: "hello" },
 *   name: "al",
 *   rooms: ["#general", "#ops"],
 * });
 * assert.deepEqual(seen, ["hello", "nick", "join"]);
 * assert.equal(done.name, "al");
 * assert.deepEqual(done.rooms, ["#general", "#ops"]);
 * peer.close();
 * ```
 */
export async function restore(peer: Peer, plan: RestorePlan): Promise<Restored> {
  const general = nameKey(DEFAULT_ROOM);
  const { token, credentials } = plan;
  const early = plan.tokenInHello === true && token !== undefined;
  const hello = plan.greeted ?? peer.request(early ? { ...plan.hello, token } : plan.hello);
  const login = early
    ? hello.then((w): Promise<AckOf<"login">> | AckOf<"login"> =>
      w.login === undefined ? peer.request({ type: "login", token }) : { type: "ack", ...w.login }
    )
    : token !== undefined
    ? peer.request({ type: "login", token })
    : credentials !== undefined
    ? peer.request(
      credentials.register
        ? { type: "register", name: credentials.name, password: credentials.password }
        : { type: "login", name: credentials.name, password: credentials.password },
    )
    : undefined;
  const nick = login === undefined && plan.name !== undefined
    ? peer.request({ type: "nick", name: plan.name })
    : undefined;
  const wanted = plan.rooms;
  const joins = (wanted ?? []).filter((r) => nameKey(r) !== general).map((room) => ({
    room,
    reply: peer.request({ type: "join", room }),
  }));
  const part = wanted === undefined || wanted.some((r) => nameKey(r) === general)
    ? undefined
    : peer.request({ type: "part", room: DEFAULT_ROOM });
  for (const p of [login, nick, part, ...joins.map((j) => j.reply)]) p?.catch(() => {});

  const welcome = await hello;
  let name = welcome.name;
  let rooms = name === "" ? [] : [DEFAULT_ROOM];
  const result: Restored = { welcome, name, rooms, joined: [], lostRooms: [] };
  try {
    if (login !== undefined) {
      const ack = await login;
      plan.onLogin?.(ack);
      result.login = ack;
      name = ack.name;
      rooms = [...ack.rooms];
    } else if (nick !== undefined) {
      name = (await nick).name;
    }
  } catch (error) {
    if (!(error instanceof ServerError)) throw error;
    result.identityError = error;
    const asked = credentials?.name ?? plan.name;
    if (asked !== undefined) result.lostName = asked;
    if (token !== undefined) result.lostSession = error.code;
  }
  const has = (room: string) => rooms.some((r) => nameKey(r) === nameKey(room));
  for (const { room, reply } of joins) {
    try {
      const ack = await reply;
      result.joined.push(ack);
      if (!has(ack.room)) rooms.push(ack.room);
    } catch (error) {
      if (!(error instanceof ServerError)) throw error;
      result.lostRooms.push({ room, error });
    }
  }
  if (part !== undefined) {
    try {
      await part;
      rooms = rooms.filter((r) => nameKey(r) !== general);
    } catch (error) {
      if (!(error instanceof ServerError)) throw error; // not in it: fine
    }
  }
  result.name = name;
  result.rooms = rooms;
  return result;
}
