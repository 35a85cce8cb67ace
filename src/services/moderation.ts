/**
 * Keeping order in rooms: roles (administrators, a room's owner and operators), topics, modes
 * (`+i` invite only, `+m` moderated), kicks, bans, mutes and invitations, each stored, announced
 * in the room and written to the audit log (docs/protocol.md, "Rooms, roles and moderation").
 *
 * A room's policy (its record, operators, bans and mutes) is read from the store once and kept
 * while the server runs; every change goes to the store first, then to the kept copy.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Hub, Member, OnlineUser } from "../hub/hub.ts";
import { ChatError } from "../protocol/errors.ts";
import type { ModerationAction, ModerationFrame, Role, RoomState } from "../protocol/frames.ts";
import { checkName, checkRoom, nameKey } from "../protocol/names.ts";
import { textProblem, utf8Length } from "../protocol/unicode.ts";
import type { Restriction, RoomRecord, Store, Target, UserRecord } from "../store/store.ts";

/** The longest topic or reason, in UTF-8 bytes. */
export const MAX_TOPIC = 300;

/**
 * How many rooms' policies are kept in memory; past that the least recently used is read again
 * when next needed (anyone can make rooms, so the copy must not grow without end).
 */
const KEPT_POLICIES = 4096;

/** Ranks, lowest first: nobody acts on someone of their own rank or above. */
const RANKS = { member: 0, op: 1, owner: 2, admin: 3 } as const;
/** A rank: a role, or none. */
export type Rank = keyof typeof RANKS;

interface Policy {
  record: RoomRecord;
  operators: Set<number>;
  restrictions: Restriction[];
}

/** Who is acting: a session (its name, account and address). */
export interface Actor extends Member {
  readonly user: UserRecord | undefined;
  readonly remoteIp: string;
}

/** Someone an action is aimed at. */
interface Aim {
  name: string;
  /** The account, when the target is one. */
  user: { id: number; admin: boolean } | undefined;
  /** Online: the user the hub knows. */
  online: OnlineUser | undefined;
  /** How bans and mutes name it. */
  target: Target;
}

/** The moderation service. */
export class Moderation {
  readonly #hub: Hub;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #policies = new Map<string, Promise<Policy>>();

  /**
   * @param hub who is online and where
   * @param store rooms' settings, roles, bans, mutes, invitations and the audit log
   * @param clock stamps bans and audit entries
   */
  constructor(hub: Hub, store: Store, clock: Clock) {
    this.#hub = hub;
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * Checks that `actor` may join `room` (creating its record, owned by the actor's account,
   * when nobody had used the room): not banned, and invited (or an operator or above) when it
   * is invite only. An invitation is used up by the join it admits.
   *
   * @throws {ChatError} `forbidden`
   */
  async admit(actor: Actor, room: string): Promise<void> {
    const policy = await this.#policy(room, actor.user?.id);
    if (this.#rank(actor.user, policy) !== "member") return;
    const name = policy.record.name;
    if (this.#restricted(policy, "ban", actor)) {
      throw new ChatError("forbidden", `Cannot join ${name}: you are banned from it`);
    }
    if (
      policy.record.inviteOnly && !(await this.#store.moderation.takeInvite(name, aimOf(actor)))
    ) {
      throw new ChatError("forbidden", `Cannot join ${name}: it is invite only`);
    }
  }

  /**
   * Checks that `actor` may send in `room`: not muted, and an operator or above when the room is
   * moderated.
   *
   * @throws {ChatError} `forbidden`
   */
  async checkSend(actor: Actor, room: string): Promise<void> {
    const policy = await this.#policy(room);
    if (this.#rank(actor.user, policy) !== "member") return;
    if (this.#restricted(policy, "mute", actor) || this.#restricted(policy, "ban", actor)) {
      throw new ChatError("forbidden", `Cannot send in ${policy.record.name}: you are muted in it`);
    }
    if (policy.record.moderated) {
      throw new ChatError(
        "forbidden",
        `Cannot send in ${policy.record.name}: it is moderated (+m)`,
      );
    }
  }

  /** Which of `rooms` bar `actor` (its account or, for a guest, its name or address). */
  async bannedFrom(actor: Actor, rooms: readonly string[]): Promise<string[]> {
    const barred: string[] = [];
    for (const room of rooms) {
      const policy = await this.#policy(room);
      if (this.#rank(actor.user, policy) === "member" && this.#restricted(policy, "ban", actor)) {
        barred.push(room);
      }
    }
    return barred;
  }

  /** What `join` and `who` report of a room besides its members: topic, modes, roles. */
  async state(room: string): Promise<RoomState> {
    const policy = await this.#policy(room);
    const roles: Record<string, Role> = {};
    this.#hub.forEachAccount(room, (name, id, admin) => {
      const rank = rankOf(id, admin, policy);
      if (rank !== "member") roles[name] = rank;
    });
    const state: RoomState = { modes: modes(policy.record), roles };
    if (policy.record.topic !== undefined) state.topic = policy.record.topic;
    return state;
  }

  /**
   * Shows or sets a room's topic (`""` clears it): setting needs an operator or above.
   *
   * @returns the topic after the change
   * @throws {ChatError} `forbidden`, `bad_frame`, `text_too_long`, `no_such_room`
   */
  async topic(actor: Actor, room: string, text: string | undefined): Promise<string | undefined> {
    const policy = await this.#live(room);
    if (text === undefined) return policy.record.topic;
    checkText(text, "topic");
    const topic = text === "" ? undefined : text;
    const name = policy.record.name;
    await Promise.all([
      this.#store.moderation.setTopic(name, topic, actor.name),
      this.#audit(actor, "topic", name, undefined, topic ?? ""),
    ]);
    policy.record.topic = topic;
    policy.record.topicBy = actor.name;
    this.#hub.announce(name, {
      type: "topic",
      room: name,
      ...topic === undefined ? {} : { topic },
      by: actor.name,
    });
    return topic;
  }

  /**
   * Shows or changes a room's modes (`+i`, `-m`, `+i-m`…): changing needs an operator or above.
   *
   * @returns the modes after the change
   * @throws {ChatError} `forbidden`, `bad_frame`, `no_such_room`
   */
  async mode(actor: Actor, room: string, change: string | undefined): Promise<string> {
    const policy = await this.#live(room);
    if (change === undefined) return modes(policy.record);
    const next = applyModes(policy.record, change);
    const name = policy.record.name;
    await Promise.all([
      this.#store.moderation.setModes(name, next),
      this.#audit(actor, "mode", name, undefined, change),
    ]);
    Object.assign(policy.record, next);
    const after = modes(policy.record);
    this.#hub.announce(name, {
      type: "moderation",
      room: name,
      action: "mode",
      by: actor.name,
      modes: after,
    });
    return after;
  }

  /**
   * Acts on someone in a room: `kick`, `ban`, `unban`, `mute`, `unmute`, `invite` (operators and
   * above), `op`, `deop` (the owner and administrators), only on someone of a lower rank.
   *
   * @throws {ChatError} `forbidden`, `no_such_user`, `not_in_room`, `no_such_room`, `bad_frame`
   */
  async act(
    actor: Actor,
    action: ModerationAction,
    room: string,
    name: string,
    reason: string | undefined,
  ): Promise<void> {
    checkName(name);
    if (reason !== undefined) checkText(reason, "reason");
    const policy = await this.#live(room);
    const where = policy.record.name;
    const aim = await this.#aim(name);
    const theirs = this.#rank(aim.user, policy);
    const mine = this.#rank(actor.user, policy);
    if (RANKS[theirs] >= RANKS[mine]) {
      throw new ChatError("forbidden", `Cannot ${action} ${aim.name}: ${rankWords(theirs, where)}`);
    }
    const moderation = this.#store.moderation;
    const stamp = { by: actor.name, reason, ts: this.#clock.now() };
    switch (action) {
      case "kick":
        if (!this.#hub.userIsIn(aim.name, where)) {
          throw new ChatError("not_in_room", `Cannot kick ${aim.name}: they are not in ${where}`);
        }
        break;
      case "ban":
      case "mute": {
        const restriction: Restriction = { kind: action, target: aim.target, ...stamp };
        await moderation.restrict(where, restriction);
        policy.restrictions = policy.restrictions.filter((r) =>
          !(r.kind === action && sameTarget(r.target, aim.target))
        );
        policy.restrictions.push(restriction);
        break;
      }
      case "unban":
      case "unmute": {
        const kind = action === "unban" ? "ban" : "mute";
        const lifted = await moderation.unrestrict(where, kind, aim.target);
        policy.restrictions = policy.restrictions.filter((r) =>
          !(r.kind === kind && sameTarget(r.target, aim.target))
        );
        if (!lifted) {
          throw new ChatError(
            "no_such_user",
            `Cannot ${action} ${aim.name}: they were not ${kind}ned`,
          );
        }
        break;
      }
      case "op":
      case "deop":
        if (aim.user === undefined) {
          throw new ChatError(
            "no_such_user",
            `Cannot ${action} ${aim.name}: only accounts are operators`,
          );
        }
        await moderation.setOperator(where, aim.user.id, action === "op");
        if (action === "op") policy.operators.add(aim.user.id);
        else policy.operators.delete(aim.user.id);
        break;
      case "invite":
        await moderation.invite(where, aim.target);
        break;
    }
    await this.#audit(actor, action, where, aim.name, reason);
    const frame: ModerationFrame = {
      type: "moderation",
      room: where,
      action,
      by: actor.name,
      name: aim.name,
    };
    if (reason !== undefined) frame.reason = reason;
    this.#hub.announce(where, frame, aim.name);
    if (action === "kick" || action === "ban") {
      this.#hub.evict(aim.name, where);
      if (aim.user !== undefined) await this.#store.memberships.remove(aim.user.id, where);
    }
  }

  /**
   * An administrator's message to every session.
   *
   * @throws {ChatError} `forbidden`, `bad_frame`, `text_too_long`
   */
  async wall(actor: Actor, text: string): Promise<void> {
    checkText(text, "message", 4096);
    await this.#audit(actor, "wall", undefined, undefined, text);
    this.#hub.broadcast({ type: "wall", from: actor.name, text });
  }

  /**
   * The command table's role guard: `actor` must be at least `least` in `room` (an
   * administrator anywhere, for `admin` or no room).
   *
   * @throws {ChatError} `forbidden`, `no_such_room`, `invalid_room`
   */
  async require(actor: Actor, room: string | undefined, least: Rank, what: string): Promise<void> {
    if (room === undefined || least === "admin") {
      if (actor.user?.admin === true) return;
      throw new ChatError("forbidden", `Cannot ${what}: you are not a server administrator`);
    }
    const policy = await this.#live(room);
    if (RANKS[this.#rank(actor.user, policy)] >= RANKS[least]) return;
    const role = least === "owner" ? "the owner" : "an operator";
    throw new ChatError(
      "forbidden",
      `Cannot ${what}: you are not ${role} of ${policy.record.name}`,
    );
  }

  /** Forgets a room's kept policy (its settings changed elsewhere). */
  forget(room: string): void {
    this.#policies.delete(nameKey(room));
  }

  /** The policy of a room that exists. */
  #live(room: string): Promise<Policy> {
    checkRoom(room);
    if (!this.#hub.hasRoom(room)) {
      return Promise.reject(new ChatError("no_such_room", `No room named ${room}`));
    }
    return this.#policy(room);
  }

  #policy(room: string, creator?: number): Promise<Policy> {
    const key = nameKey(room);
    let policy = this.#policies.get(key);
    if (policy !== undefined) {
      // Most recently used last: a Map keeps insertion order.
      this.#policies.delete(key);
      this.#policies.set(key, policy);
    } else {
      if (this.#policies.size >= KEPT_POLICIES) {
        this.#policies.delete(this.#policies.keys().next().value!);
      }
      const m = this.#store.moderation;
      policy = Promise.all([m.claimRoom(room, creator), m.operators(room), m.restrictions(room)])
        .then(([{ room: record }, operators, restrictions]) => ({
          record,
          operators: new Set(operators),
          restrictions,
        }));
      // A failed read is not kept: the next request reads again.
      policy.catch(() => this.#policies.get(key) === policy && this.#policies.delete(key));
      this.#policies.set(key, policy);
    }
    return policy;
  }

  #rank(user: { id: number; admin: boolean } | undefined, policy: Policy): Rank {
    return user === undefined ? "member" : rankOf(user.id, user.admin, policy);
  }

  #restricted(policy: Policy, kind: Restriction["kind"], actor: Actor): boolean {
    const id = actor.user?.id;
    const name = nameKey(actor.name);
    return policy.restrictions.some((r) => {
      if (r.kind !== kind) return false;
      if ("userId" in r.target) return r.target.userId === id;
      // A guest's ban follows its address too; an account is banned as an account.
      return id === undefined && (r.target.name === name || r.target.ip === actor.remoteIp);
    });
  }

  async #aim(name: string): Promise<Aim> {
    const online = this.#hub.user(name);
    if (online !== undefined) {
      const account = accountOf(online);
      if (online.accountId !== undefined) {
        return {
          name: online.name,
          user: account ?? { id: online.accountId, admin: false },
          online,
          target: { userId: online.accountId },
        };
      }
      const ip = online.sessions.find((s) => s.remoteIp !== undefined)?.remoteIp;
      const target: Target = ip === undefined
        ? { name: nameKey(online.name) }
        : { name: nameKey(online.name), ip };
      return { name: online.name, user: undefined, online, target };
    }
    const account = await this.#store.accounts.getUser(name);
    if (account === undefined) {
      // A guest who left can still be unbanned or unmuted by name.
      return { name, user: undefined, online: undefined, target: { name: nameKey(name) } };
    }
    return {
      name: account.name,
      user: { id: account.id, admin: account.admin },
      online: undefined,
      target: { userId: account.id },
    };
  }

  #audit(
    actor: Actor,
    action: string,
    room: string | undefined,
    target: string | undefined,
    detail: string | undefined,
  ): Promise<void> {
    return this.#store.moderation.audit({
      ts: this.#clock.now(),
      actor: actor.name,
      action,
      room,
      target,
      detail,
    });
  }
}

/** The account behind an online user, with its admin flag (from any of its sessions). */
/** An account's rank in a room: an administrator's everywhere, else the room's owner, else an operator. */
function rankOf(id: number, admin: boolean, policy: Policy): Rank {
  if (admin) return "admin";
  if (policy.record.ownerId === id) return "owner";
  return policy.operators.has(id) ? "op" : "member";
}

function accountOf(user: OnlineUser): { id: number; admin: boolean } | undefined {
  if (user.accountId === undefined) return undefined;
  const record = user.sessions.find((s) => s.user !== undefined)?.user;
  return { id: user.accountId, admin: record?.admin === true };
}

/** How bans and mutes name a session. */
function aimOf(actor: Actor): Target {
  return actor.user !== undefined
    ? { userId: actor.user.id }
    : { name: nameKey(actor.name), ip: actor.remoteIp };
}

function sameTarget(a: Target, b: Target): boolean {
  if ("userId" in a || "userId" in b) {
    return "userId" in a && "userId" in b && a.userId === b.userId;
  }
  return a.name === b.name;
}

function rankWords(rank: Rank, room: string): string {
  switch (rank) {
    case "admin":
      return "they are a server administrator";
    case "owner":
      return `they are the owner of ${room}`;
    case "op":
      return `they are an operator of ${room}`;
    default:
      return "you may not";
  }
}

/** A room's modes as `+im`, or `""`. */
export function modes(record: Pick<RoomRecord, "inviteOnly" | "moderated">): string {
  const set = (record.inviteOnly ? "i" : "") + (record.moderated ? "m" : "");
  return set === "" ? "" : `+${set}`;
}

/**
 * Applies a mode change (`+i`, `-m`, `+i-m`, `+im`) to a room's modes.
 *
 * @throws {ChatError} `bad_frame` for anything else
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyModes } from "./moderation.ts";
 * assert.deepEqual(applyModes({ inviteOnly: false, moderated: true }, "+i-m"), {
 *   inviteOnly: true,
 *   moderated: false,
 * });
 * ```
 */
export function applyModes(
  current: Pick<RoomRecord, "inviteOnly" | "moderated">,
  change: string,
): { inviteOnly: boolean; moderated: boolean } {
  if (!/^([+-][im]+)+$/.test(change)) {
    throw new ChatError("bad_frame", "Modes are +i or -i (invite only) and +m or -m (moderated)");
  }
  const next = { inviteOnly: current.inviteOnly, moderated: current.moderated };
  let on = true;
  for (const c of change) {
    if (c === "+" || c === "-") on = c === "+";
    else if (c === "i") next.inviteOnly = on;
    else next.moderated = on;
  }
  return next;
}

function checkText(text: string, what: string, max = MAX_TOPIC): void {
  const problem = text.includes("\n") && max === MAX_TOPIC
    ? "it has a line break"
    : textProblem(text);
  if (problem !== undefined) throw new ChatError("bad_frame", `Invalid ${what}: ${problem}`);
  if (utf8Length(text) > max) {
    throw new ChatError("text_too_long", `The ${what} is too long: the limit is ${max} bytes`);
  }
}
