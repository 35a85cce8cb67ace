/**
 * This process's model of who is online and in which rooms, and the presence and routing rules.
 * It reaches sessions only through a {@linkcode Broker}: each session subscribes to its user's
 * topic and its rooms' topics, and messages and presence are published to topics. It does no
 * I/O: recipients get an {@linkcode Outgoing} through `deliver`, which only queues bytes.
 *
 * A user (a guest, or an account) has one or more sessions (connections); rooms hold users, so
 * every session of an account is in the same rooms and sees what the others send.
 *
 * @module
 */

import type { Broker, Topic } from "../broker/broker.ts";
import { roomTopic, userTopic } from "../broker/broker.ts";
import { InProcessBroker } from "../broker/in_process.ts";
import { ChatError } from "../protocol/errors.ts";
import type { MessageFrame, PresenceFrame, RoomInfo, ServerFrame } from "../protocol/frames.ts";
import {
  checkName,
  checkRoom,
  DEFAULT_ROOM,
  isValidName,
  isValidRoom,
  nameKey,
} from "../protocol/names.ts";
import { Outgoing } from "../protocol/outgoing.ts";
import type { UserRecord } from "../store/store.ts";

/** Someone the hub can route to: a session. */
export interface Member {
  /** The member's current name; the hub keeps it up to date. */
  name: string;
  /** Queues an event for this member. Must not throw and must not wait on I/O. */
  deliver(event: Outgoing): void;
  /** The account it is logged in as (moderation reads its roles). */
  readonly user?: UserRecord | undefined;
  /** Its address (a guest is banned by name and address). */
  readonly remoteIp?: string;
  /** Told that its user was put out of a room (kicked or banned). */
  removed?(room: string): void;
  /** Ends it because its login is no longer valid (the password changed elsewhere). */
  revoke?(why: string): void;
}

/** What the hub knows of an online user. */
export interface OnlineUser {
  name: string;
  /** The account, for a logged-in user. */
  accountId: number | undefined;
  sessions: readonly Member[];
}

interface User {
  name: string;
  /** The account id, for a logged-in user. */
  accountId: number | undefined;
  readonly sessions: Set<Member>;
  readonly rooms: Set<Room>;
}

interface Room {
  readonly name: string;
  readonly members: Set<User>;
}

/** An account, as the hub needs to know it. */
export interface Account {
  id: number;
  name: string;
}

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  /** Rooms that exist even when empty. @default ["#general"] */
  permanentRooms?: readonly string[];
  /** How sessions are reached. @default a new {@linkcode InProcessBroker} */
  broker?: Broker;
  /**
   * Rooms with more members than this do not announce joins, leaves, quits and renames (their
   * member counts and `who` stay exact). Keeps presence traffic from growing with the square of a
   * room's size. @default 250
   */
  presenceLimit?: number;
}

/**
 * Rooms, users and routing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hub } from "./hub.ts";
 * const hub = new Hub();
 * const seen: string[] = [];
 * const alice = { name: "", deliver: () => {} };
 * const bob = { name: "", deliver: (e: { frame: { type: string } }) => seen.push(e.frame.type) };
 * hub.connect(alice);
 * hub.connect(bob);
 * const { room, from } = hub.roomSender(alice, "#general"); // store the message, then:
 * hub.publish(alice, { type: "message", id: 1, room, from, text: "hi", ts: 0 });
 * assert.deepEqual(seen, ["message"]);
 * ```
 */
export class Hub {
  readonly #users = new Map<string, User>();
  readonly #rooms = new Map<string, Room>();
  readonly #bySession = new Map<Member, User>();
  readonly #permanent: Set<string>;
  readonly #presenceLimit: number;
  readonly #broker: Broker;
  readonly #watchers: ((name: string, online: boolean) => void)[] = [];

  /** @param options permanent rooms, presence limit, broker */
  constructor(options: HubOptions = {}) {
    this.#permanent = new Set((options.permanentRooms ?? [DEFAULT_ROOM]).map(nameKey));
    for (const room of options.permanentRooms ?? [DEFAULT_ROOM]) this.#room(room, true);
    this.#presenceLimit = options.presenceLimit ?? 250;
    this.#broker = options.broker ?? new InProcessBroker();
  }

  /** How many sessions are connected. */
  get size(): number {
    return this.#bySession.size;
  }

  /**
   * Calls `watcher` whenever a name comes online or goes offline in this process (a user
   * connects or logs in, quits, or is renamed: the old name goes, the new one comes). IRC's
   * MONITOR is built on it (src/irc/world.ts).
   */
  watch(watcher: (name: string, online: boolean) => void): void {
    this.#watchers.push(watcher);
  }

  #watched(name: string, online: boolean): void {
    for (const watcher of this.#watchers) watcher(name, online);
  }

  /** Whether a user of that name is online. */
  isOnline(name: string): boolean {
    return this.#broker.holder(name) !== undefined;
  }

  /** The sessions of the user of that name (several when an account is on several devices). */
  sessionsOf(name: string): Member[] {
    return [...this.#users.get(nameKey(name))?.sessions ?? []];
  }

  /**
   * Brings a session online as a new guest, in `#general`: under the name the member has when
   * it is a valid name nobody online holds (an IRC client registers with its nick; the dialect
   * has checked it is no account's), else under a new guest name.
   *
   * @returns the guest name given
   */
  connect(member: Member): string {
    const wanted = member.name;
    const free = isValidName(wanted) && !this.#users.has(nameKey(wanted));
    const user: User = {
      name: free ? wanted : this.#guestName(),
      accountId: undefined,
      sessions: new Set([member]),
      rooms: new Set(),
    };
    member.name = user.name;
    this.#users.set(nameKey(user.name), user);
    this.#broker.claim(user.name, user);
    this.#watched(user.name, true);
    this.#bySession.set(member, user);
    this.#broker.subscribe(userTopic(user.name), member);
    this.#joinUser(user, this.#room(DEFAULT_ROOM, true)!, member);
    return user.name;
  }

  /**
   * Logs a session in as `account`: if the account is online already, the session joins it
   * (and a guest it was leaves); otherwise the session's guest becomes the account. The
   * account is then in every room of `rooms` and of the guest, except the guest's rooms named in
   * `drop` (unless `rooms` has them too). A guest holding the account's name is renamed to a fresh
   * guest name. A session not yet online comes online here.
   *
   * @returns the account name and the rooms new to this session
   * @throws {ChatError} `forbidden` when the session is logged in as another account
   */
  login(member: Member, account: Account, rooms: readonly string[], drop: readonly string[] = []): {
    name: string;
    joined: string[];
  } {
    const current = this.#bySession.get(member);
    if (current?.accountId === account.id) return { name: current.name, joined: [] };
    if (current?.accountId !== undefined) {
      throw new ChatError("forbidden", `Cannot log in: you are logged in as ${current.name}`);
    }
    const key = nameKey(account.name);
    let target = this.#users.get(key);
    if (target !== undefined && target !== current && target.accountId !== account.id) {
      this.#renameUser(target, this.#guestName()); // a guest squatting the account's name
      target = undefined;
    }
    const before = new Set(current?.rooms ?? []);
    if (target === undefined && current !== undefined) {
      this.#renameUser(current, account.name);
      current.accountId = account.id;
      target = current;
    } else {
      if (target === undefined) {
        target = {
          name: account.name,
          accountId: account.id,
          sessions: new Set(),
          rooms: new Set(),
        };
        this.#users.set(key, target);
        this.#broker.claim(target.name, target);
        this.#watched(target.name, true);
      }
      if (current !== undefined) this.#removeSession(member, current);
      target.sessions.add(member);
      this.#bySession.set(member, target);
      member.name = target.name;
      this.#broker.subscribe(userTopic(target.name), member);
      for (const room of target.rooms) this.#broker.subscribe(roomTopic(room.name), member);
    }
    const keep = new Set(rooms.map(nameKey));
    const dropped = new Set(drop.map(nameKey).filter((key) => !keep.has(key)));
    for (const room of before) {
      if (dropped.has(nameKey(room.name)) && target.rooms.has(room)) {
        this.#leaveRoom(target, room, member);
        before.delete(room);
      }
    }
    for (const name of [...before].map((r) => r.name).concat(rooms)) {
      if (isValidRoom(name) && !dropped.has(nameKey(name))) {
        this.#joinUser(target, this.#room(name, true)!, member);
      }
    }
    const joined = [...target.rooms].filter((r) => !before.has(r)).map((r) => r.name);
    return { name: target.name, joined };
  }

  /** Takes a session offline; its user quits when it was the last session. Idempotent. */
  disconnect(member: Member): void {
    this.onGone?.(member);
    const user = this.#bySession.get(member);
    if (user !== undefined) this.#removeSession(member, user);
  }

  /**
   * Renames the session's user.
   *
   * @throws {ChatError} `invalid_name`, `name_taken`, `forbidden` (accounts keep their name)
   */
  rename(member: Member, newName: string): void {
    checkName(newName);
    const user = this.#userOf(member);
    if (user.accountId !== undefined) {
      throw new ChatError("forbidden", `Cannot rename: you are logged in as ${user.name}`);
    }
    const holder = this.#users.get(nameKey(newName));
    if (holder !== undefined && holder !== user) {
      throw new ChatError("name_taken", `Cannot rename: the name ${newName} is taken`);
    }
    this.#renameUser(user, newName);
  }

  /**
   * Joins a room (creating it if needed) and tells its other members.
   *
   * @returns the room's canonical name, its members, and whether this was a new membership
   * @throws {ChatError} `invalid_room`
   */
  join(member: Member, roomName: string): { room: string; members: string[]; joined: boolean } {
    checkRoom(roomName);
    const user = this.#userOf(member);
    const room = this.#room(roomName, true)!;
    const joined = this.#joinUser(user, room, member);
    return { room: room.name, members: this.#names(room), joined };
  }

  /**
   * Leaves a room and tells its remaining members (and the user's other sessions).
   *
   * @returns the room's canonical name
   * @throws {ChatError} `invalid_room`, `no_such_room`, `not_in_room`
   */
  part(member: Member, roomName: string): string {
    const user = this.#userOf(member);
    const room = this.#memberRoom(user, roomName, "leave");
    this.#leaveRoom(user, room, member);
    return room.name;
  }

  /**
   * Who may send to a room: the session's name and the room's canonical name, when the session
   * is in it. Store the message, then {@linkcode Hub.publish} it.
   *
   * @throws {ChatError} `invalid_room`, `no_such_room`, `not_in_room`
   */
  roomSender(member: Member, roomName: string): { from: string; room: string } {
    const user = this.#userOf(member);
    const room = this.#memberRoom(user, roomName, "send");
    return { from: user.name, room: room.name };
  }

  /**
   * Where a direct message goes: the online user `to` (by their name's case), or, when nobody
   * of that name is online, the account `offline` names. Store it, then publish it.
   *
   * @throws {ChatError} `invalid_name`, `no_such_user`
   */
  directSender(member: Member, to: string, offline?: string): { from: string; to: string } {
    checkName(to);
    const user = this.#userOf(member);
    const target = this.#users.get(nameKey(to))?.name ?? offline;
    if (target === undefined) {
      throw new ChatError("no_such_user", `Cannot send: no user named ${to} is online`);
    }
    return { from: user.name, to: target };
  }

  /**
   * Delivers a stored message: to every session in the room, or to the recipient's sessions
   * (unless `toRecipient` is false), and to the sender's other sessions; never back to the
   * sending session itself.
   */
  publish(sender: Member, frame: MessageFrame, toRecipient = true): void {
    const out = new Outgoing(frame);
    if (frame.room !== undefined) {
      this.#broker.publish([roomTopic(frame.room)], out, sender);
      return;
    }
    const topics: Topic[] = toRecipient ? [userTopic(frame.to!)] : [];
    const from = this.#bySession.get(sender);
    if (from !== undefined && nameKey(from.name) !== nameKey(frame.to!)) {
      topics.push(userTopic(from.name));
    }
    this.#broker.publish(topics, out, sender);
  }

  /** The online user of that name, if any. */
  user(name: string): OnlineUser | undefined {
    const user = this.#users.get(nameKey(name));
    return user && { name: user.name, accountId: user.accountId, sessions: [...user.sessions] };
  }

  /** A room's members (none when the room does not exist). */
  members(roomName: string): OnlineUser[] {
    const room = this.#room(roomName, false);
    return [...room?.members ?? []].map((user) => ({
      name: user.name,
      accountId: user.accountId,
      sessions: [...user.sessions],
    }));
  }

  /**
   * Calls `fn` for each logged-in member of the room: its name, account id and whether the
   * account is an administrator. Copies nothing (a room's roles are read at every join).
   */
  forEachAccount(roomName: string, fn: (name: string, id: number, admin: boolean) => void): void {
    const room = this.#room(roomName, false);
    if (room === undefined) return;
    for (const user of room.members) {
      if (user.accountId === undefined) continue;
      let admin = false;
      for (const session of user.sessions) {
        if (session.user === undefined) continue;
        admin = session.user.admin === true;
        break;
      }
      fn(user.name, user.accountId, admin);
    }
  }

  /** Whether the user of that name is in the room. */
  userIsIn(name: string, roomName: string): boolean {
    const room = this.#room(roomName, false);
    const user = this.#users.get(nameKey(name));
    return room !== undefined && user !== undefined && room.members.has(user);
  }

  /** Whether the room exists (someone is in it, or it is permanent). */
  hasRoom(roomName: string): boolean {
    return this.#room(roomName, false) !== undefined;
  }

  /**
   * Sends a room's event to its members and to the sessions of the user `also` (who may be about
   * to leave it, or not be in it).
   */
  announce(roomName: string, frame: ServerFrame, also?: string, except?: Member): void {
    const topics: Topic[] = [roomTopic(roomName)];
    if (also !== undefined) topics.push(userTopic(also));
    this.#broker.publish(topics, new Outgoing(frame), except);
  }

  /** Sends an event to every session of the users `a` and `b` (a direct conversation), but `except`. */
  announceDirect(a: string, b: string, frame: ServerFrame, except?: Member): void {
    const topics: Topic[] = [userTopic(a)];
    if (nameKey(a) !== nameKey(b)) topics.push(userTopic(b));
    this.#broker.publish(topics, new Outgoing(frame), except);
  }

  /** Sends an event to every session in this process. */
  broadcast(frame: ServerFrame): void {
    const out = new Outgoing(frame);
    for (const session of this.#bySession.keys()) session.deliver(out);
  }

  /**
   * Puts the user of that name out of a room without a `left` presence (a moderation event
   * said why); its sessions are told through `removed`. Whether it was in the room.
   */
  evict(name: string, roomName: string): boolean {
    const user = this.#users.get(nameKey(name));
    const room = this.#room(roomName, false);
    if (user === undefined || room === undefined || !room.members.has(user)) return false;
    user.rooms.delete(room);
    room.members.delete(user);
    const topic = roomTopic(room.name);
    for (const session of user.sessions) {
      this.#broker.unsubscribe(topic, session);
      session.removed?.(room.name);
      this.onLeave?.(session, room.name);
    }
    this.#dropIfEmpty(room);
    return true;
  }

  /** Every room with its member count, sorted by name. */
  rooms(): RoomInfo[] {
    return [...this.#rooms.values()]
      .map((room) => ({ name: room.name, members: room.members.size }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The rooms a session's user is in. */
  roomsOf(member: Member): string[] {
    return [...this.#bySession.get(member)?.rooms ?? []].map((room) => room.name);
  }

  /** Whether the session's user is in the room. */
  isIn(member: Member, roomName: string): boolean {
    const room = this.#room(roomName, false);
    const user = this.#bySession.get(member);
    return room !== undefined && user !== undefined && room.members.has(user);
  }

  /**
   * A room's members, sorted.
   *
   * @throws {ChatError} `invalid_room`, `no_such_room`
   */
  who(roomName: string): { room: string; members: string[] } {
    checkRoom(roomName);
    const room = this.#room(roomName, false);
    if (room === undefined) throw new ChatError("no_such_room", `No room named ${roomName}`);
    return { room: room.name, members: this.#names(room) };
  }

  #userOf(member: Member): User {
    const user = this.#bySession.get(member);
    if (user === undefined) throw new ChatError("login_required", "You are not online yet");
    return user;
  }

  /** Told when a session leaves a room (parted, put out, or offline): voice listens. */
  onLeave: ((member: Member, room: string) => void) | undefined;

  /** Told when a session goes offline, before it leaves its rooms: calls listen. */
  onGone: ((member: Member) => void) | undefined;

  /** Takes `user` out of `room`, telling its members and the user's sessions other than `by`. */
  #leaveRoom(user: User, room: Room, by: Member): void {
    for (const session of user.sessions) this.onLeave?.(session, room.name);
    user.rooms.delete(room);
    room.members.delete(user);
    const topic = roomTopic(room.name);
    for (const session of user.sessions) this.#broker.unsubscribe(topic, session);
    const left = new Outgoing({
      type: "presence",
      room: room.name,
      name: user.name,
      event: "left",
    });
    const mine = userTopic(user.name);
    this.#broker.publish(this.#announces(room) ? [topic, mine] : [mine], left, by);
    this.#dropIfEmpty(room);
  }

  /** Adds `user` to `room`, telling its members and the user's sessions other than `by`. */
  #joinUser(user: User, room: Room, by: Member): boolean {
    if (room.members.has(user)) return false;
    const frame: PresenceFrame = {
      type: "presence",
      room: room.name,
      name: user.name,
      event: "joined",
    };
    const joined = new Outgoing(frame);
    const topic = roomTopic(room.name);
    const mine = userTopic(user.name);
    this.#broker.publish(this.#announces(room) ? [topic, mine] : [mine], joined, by);
    room.members.add(user);
    user.rooms.add(room);
    for (const session of user.sessions) this.#broker.subscribe(topic, session);
    return true;
  }

  #removeSession(member: Member, user: User): void {
    for (const room of user.rooms) this.onLeave?.(member, room.name);
    this.#bySession.delete(member);
    user.sessions.delete(member);
    this.#broker.unsubscribe(userTopic(user.name), member);
    for (const room of user.rooms) this.#broker.unsubscribe(roomTopic(room.name), member);
    if (user.sessions.size > 0) return;
    this.#users.delete(nameKey(user.name));
    this.#broker.release(user.name, user);
    this.#watched(user.name, false);
    for (const room of user.rooms) {
      room.members.delete(user);
      this.#dropIfEmpty(room);
    }
    this.#fanOut(user, { type: "presence", name: user.name, event: "quit" });
    user.rooms.clear();
  }

  #renameUser(user: User, newName: string): void {
    const oldName = user.name;
    if (oldName === newName) return;
    this.#users.delete(nameKey(oldName));
    this.#users.set(nameKey(newName), user);
    this.#broker.release(oldName, user);
    this.#broker.claim(newName, user);
    this.#watched(oldName, false);
    this.#watched(newName, true);
    user.name = newName;
    for (const session of user.sessions) {
      session.name = newName;
      this.#broker.unsubscribe(userTopic(oldName), session);
      this.#broker.subscribe(userTopic(newName), session);
    }
    this.#fanOut(user, { type: "presence", name: oldName, event: "renamed", newName });
  }

  #room(name: string, create: boolean): Room | undefined {
    const key = nameKey(name);
    let room = this.#rooms.get(key);
    if (room === undefined && create) {
      room = { name, members: new Set() };
      this.#rooms.set(key, room);
    }
    return room;
  }

  #memberRoom(user: User, roomName: string, verb: string): Room {
    checkRoom(roomName);
    const room = this.#room(roomName, false);
    if (room === undefined) {
      throw new ChatError("no_such_room", `Cannot ${verb}: no room named ${roomName}`);
    }
    if (!room.members.has(user)) {
      throw new ChatError("not_in_room", `Cannot ${verb}: you are not in ${room.name}`);
    }
    return room;
  }

  #dropIfEmpty(room: Room): void {
    const key = nameKey(room.name);
    if (room.members.size === 0 && !this.#permanent.has(key)) this.#rooms.delete(key);
  }

  /** Sends one event once to every other user sharing any room with `user`. */
  #fanOut(user: User, frame: PresenceFrame): void {
    const topics = [...user.rooms].filter((r) => this.#announces(r)).map((r) => roomTopic(r.name));
    if (topics.length > 0) this.#broker.publish(topics, new Outgoing(frame), user.sessions);
  }

  /** Whether presence in `room` is announced to its members (see `presenceLimit`). */
  #announces(room: Room): boolean {
    return room.members.size <= this.#presenceLimit;
  }

  #names(room: Room): string[] {
    return [...room.members].map((u) => u.name).sort((a, b) => a.localeCompare(b));
  }

  #guestName(): string {
    for (let digits = 4;; digits++) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const low = 10 ** (digits - 1);
        const name = `guest-${low + Math.floor(Math.random() * (9 * low))}`;
        if (!this.#users.has(name)) return name;
      }
    }
  }
}
