/**
 * The in-memory model of who is online and in which rooms, and the routing of messages and
 * presence. It does no I/O: recipients get an {@linkcode Outgoing} through `deliver`, which
 * only queues bytes.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import type { MessageFrame, PresenceFrame, RoomInfo } from "../protocol/frames.ts";
import { checkName, checkRoom, DEFAULT_ROOM, nameKey } from "../protocol/names.ts";
import { Outgoing } from "../protocol/outgoing.ts";

/** Someone the hub can route to: a session. */
export interface Member {
  /** The member's current name; the hub keeps it up to date. */
  name: string;
  /** Queues an event for this member. Must not throw and must not wait on I/O. */
  deliver(event: Outgoing): void;
}

interface Room {
  readonly name: string;
  readonly members: Set<Member>;
}

/** What a successful send returns to the sender. */
export interface Sent {
  id: number;
  ts: number;
}

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  /** Rooms that exist even when empty. @default ["#general"] */
  permanentRooms?: readonly string[];
  /** The first message id. @default 1 */
  firstId?: number;
}

/**
 * Rooms, members and routing.
 *
 * @example
 * ```ts
 * import { Hub } from "./hub.ts";
 * const hub = new Hub();
 * const seen: string[] = [];
 * const alice = { name: "", deliver: () => {} };
 * const bob = { name: "", deliver: (e: { frame: { type: string } }) => seen.push(e.frame.type) };
 * hub.connect(alice);
 * hub.connect(bob);
 * hub.sendToRoom(alice, "#general", "hi");
 * console.assert(seen.includes("message"));
 * ```
 */
export class Hub {
  readonly #users = new Map<string, Member>();
  readonly #rooms = new Map<string, Room>();
  readonly #memberships = new Map<Member, Set<Room>>();
  readonly #permanent: Set<string>;
  #nextId: number;

  /** @param options permanent rooms and the first message id */
  constructor(options: HubOptions = {}) {
    this.#permanent = new Set((options.permanentRooms ?? [DEFAULT_ROOM]).map(nameKey));
    for (const room of options.permanentRooms ?? [DEFAULT_ROOM]) this.#room(room, true);
    this.#nextId = options.firstId ?? 1;
  }

  /** How many members are connected. */
  get size(): number {
    return this.#memberships.size;
  }

  /** Whether a user of that name is online. */
  isOnline(name: string): boolean {
    return this.#users.has(nameKey(name));
  }

  /**
   * Brings a member online under a fresh guest name and into `#general`.
   *
   * @returns the guest name given
   */
  connect(member: Member): string {
    member.name = this.#guestName();
    this.#users.set(nameKey(member.name), member);
    this.#memberships.set(member, new Set());
    this.join(member, DEFAULT_ROOM);
    return member.name;
  }

  /** Takes a member offline, telling everyone who shared a room with it. Idempotent. */
  disconnect(member: Member): void {
    const rooms = this.#memberships.get(member);
    if (rooms === undefined) return;
    this.#memberships.delete(member);
    this.#users.delete(nameKey(member.name));
    for (const room of rooms) this.#leave(member, room);
    this.#fanOut(rooms, member, { type: "presence", name: member.name, event: "quit" });
  }

  /**
   * Renames a member.
   *
   * @throws {ChatError} `invalid_name`, `name_taken`
   */
  rename(member: Member, newName: string): void {
    checkName(newName);
    const oldName = member.name;
    const key = nameKey(newName);
    const holder = this.#users.get(key);
    if (holder !== undefined && holder !== member) {
      throw new ChatError("name_taken", `Cannot rename: the name ${newName} is taken`);
    }
    if (oldName === newName) return;
    this.#users.delete(nameKey(oldName));
    this.#users.set(key, member);
    member.name = newName;
    this.#fanOut(this.#memberships.get(member) ?? new Set(), member, {
      type: "presence",
      name: oldName,
      event: "renamed",
      newName,
    });
  }

  /**
   * Joins a room (creating it if needed) and tells its other members.
   *
   * @returns the room's canonical name and its members
   * @throws {ChatError} `invalid_room`
   */
  join(member: Member, roomName: string): { room: string; members: string[] } {
    checkRoom(roomName);
    const room = this.#room(roomName, true)!;
    const mine = this.#memberships.get(member);
    if (mine !== undefined && !room.members.has(member)) {
      const joined = new Outgoing(
        {
          type: "presence",
          room: room.name,
          name: member.name,
          event: "joined",
        } satisfies PresenceFrame,
      );
      for (const other of room.members) other.deliver(joined);
      room.members.add(member);
      mine.add(room);
    }
    return { room: room.name, members: this.#names(room) };
  }

  /**
   * Leaves a room and tells its remaining members.
   *
   * @returns the room's canonical name
   * @throws {ChatError} `invalid_room`, `not_in_room`
   */
  part(member: Member, roomName: string): string {
    const room = this.#memberRoom(member, roomName, "leave");
    this.#memberships.get(member)?.delete(room);
    this.#leave(member, room);
    const left = new Outgoing({
      type: "presence",
      room: room.name,
      name: member.name,
      event: "left",
    });
    for (const other of room.members) other.deliver(left);
    return room.name;
  }

  /**
   * Sends a message to a room the member is in; every other member receives it.
   *
   * @throws {ChatError} `invalid_room`, `no_such_room`, `not_in_room`
   */
  sendToRoom(member: Member, roomName: string, text: string, action = false): Sent {
    const room = this.#memberRoom(member, roomName, "send");
    const frame: MessageFrame = {
      type: "message",
      id: this.#nextId++,
      room: room.name,
      from: member.name,
      text,
      ts: Date.now(),
    };
    if (action) frame.action = true;
    const out = new Outgoing(frame);
    for (const other of room.members) if (other !== member) other.deliver(out);
    return { id: frame.id, ts: frame.ts };
  }

  /**
   * Sends a direct message to an online user.
   *
   * @throws {ChatError} `invalid_name`, `no_such_user`
   */
  sendDirect(member: Member, to: string, text: string, action = false): Sent & { to: string } {
    checkName(to);
    const target = this.#users.get(nameKey(to));
    if (target === undefined) {
      throw new ChatError("no_such_user", `Cannot send: no user named ${to} is online`);
    }
    const frame: MessageFrame = {
      type: "message",
      id: this.#nextId++,
      to: target.name,
      from: member.name,
      text,
      ts: Date.now(),
    };
    if (action) frame.action = true;
    if (target !== member) target.deliver(new Outgoing(frame));
    return { id: frame.id, ts: frame.ts, to: target.name };
  }

  /** Every room with its member count, sorted by name. */
  rooms(): RoomInfo[] {
    return [...this.#rooms.values()]
      .map((room) => ({ name: room.name, members: room.members.size }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The rooms a member is in. */
  roomsOf(member: Member): string[] {
    return [...this.#memberships.get(member) ?? []].map((room) => room.name);
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

  /** Delivers one event to every connected member. */
  broadcast(event: Outgoing): void {
    for (const member of this.#memberships.keys()) member.deliver(event);
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

  #memberRoom(member: Member, roomName: string, verb: string): Room {
    checkRoom(roomName);
    const room = this.#room(roomName, false);
    if (room === undefined) {
      throw new ChatError("no_such_room", `Cannot ${verb}: no room named ${roomName}`);
    }
    if (!room.members.has(member)) {
      throw new ChatError("not_in_room", `Cannot ${verb}: you are not in ${room.name}`);
    }
    return room;
  }

  #leave(member: Member, room: Room): void {
    room.members.delete(member);
    const key = nameKey(room.name);
    if (room.members.size === 0 && !this.#permanent.has(key)) this.#rooms.delete(key);
  }

  /** Sends one event once to everyone sharing any of `rooms` with `member`. */
  #fanOut(rooms: Set<Room>, member: Member, frame: PresenceFrame): void {
    const out = new Outgoing(frame);
    const seen = new Set<Member>([member]);
    for (const room of rooms) {
      for (const other of room.members) {
        if (seen.has(other)) continue;
        seen.add(other);
        other.deliver(out);
      }
    }
  }

  #names(room: Room): string[] {
    return [...room.members].map((m) => m.name).sort((a, b) => a.localeCompare(b));
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
