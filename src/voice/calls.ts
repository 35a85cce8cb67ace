/**
 * Direct calls: one person calls another, every session of the one called rings, one of them
 * accepts (the others stop ringing) or declines, and either side hangs up. An accepted call is a
 * voice of two on the forwarding unit, under the room name `call:ID` (docs/voice.md, "Direct
 * calls"). A call nobody answered is a missed call: the caller's direct message to the one called
 * says so, so it stays in their conversation.
 *
 * @module
 */

import type { Hub, Member } from "../hub/hub.ts";
import { ChatError } from "../protocol/errors.ts";
import type { CallStateFrame } from "../protocol/frames.ts";
import { Outgoing } from "../protocol/outgoing.ts";
import { nameKey } from "../protocol/names.ts";
import type { DirectMessages } from "../services/direct_messages.ts";
import type { Voice } from "./voice.ts";

interface Call {
  id: string;
  caller: Member;
  from: string;
  to: string;
  state: "ringing" | "active";
  callee: Member | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Options of {@linkcode Calls}. */
export interface CallOptions {
  /** How long a call rings before it is missed, in ms. */
  ringMs: number;
}

let nextCall = 0;

/** The calls of this server. */
export class Calls {
  readonly #hub: Hub;
  readonly #voice: Voice;
  readonly #dms: DirectMessages;
  readonly #options: CallOptions;
  readonly #calls = new Map<string, Call>();

  /**
   * @param hub who is online, and where call events go
   * @param voice the forwarding unit an accepted call uses
   * @param dms where a missed call is written
   * @param options how long a call rings
   */
  constructor(hub: Hub, voice: Voice, dms: DirectMessages, options: CallOptions) {
    this.#hub = hub;
    this.#voice = voice;
    this.#dms = dms;
    this.#options = options;
  }

  /** The voice room name of a call. */
  static room(id: string): string {
    return `call:${id}`;
  }

  /**
   * Calls `to` from the session: every session of `to` rings.
   *
   * @throws {ChatError} `no_such_user` when `to` is not online, `bad_frame` for yourself,
   * `busy` while the session has a call already
   */
  start(caller: Member, to: string): { call: string; to: string } {
    const target = this.#hub.user(to);
    if (target === undefined) throw new ChatError("no_such_user", `Cannot call ${to}: not online`);
    if (nameKey(target.name) === nameKey(caller.name)) {
      throw new ChatError("bad_frame", "Cannot call yourself");
    }
    for (const c of this.#calls.values()) {
      if (c.caller === caller || c.callee === caller) {
        throw new ChatError("busy", "Cannot call: hang up your other call first");
      }
    }
    const id = `c${++nextCall}`;
    const call: Call = {
      id,
      caller,
      from: caller.name,
      to: target.name,
      state: "ringing",
      callee: undefined,
      timer: undefined,
    };
    call.timer = setTimeout(() => this.#end(call, "no answer", true), this.#options.ringMs);
    this.#calls.set(id, call);
    this.#tell(call, "ringing");
    return { call: id, to: target.name };
  }

  /**
   * Accepts a ringing call on this session of the one called: both sides get a voice offer.
   *
   * @throws {ChatError} `bad_frame` when there is no such call for you, or it is not ringing
   */
  accept(member: Member, id: string): void {
    const call = this.#mine(member, id, "accept", "callee");
    if (call.state !== "ringing") throw new ChatError("bad_frame", "Cannot accept: not ringing");
    clearTimeout(call.timer);
    call.state = "active";
    call.callee = member;
    const room = Calls.room(id);
    this.#voice.join(call.caller, room);
    this.#voice.join(member, room);
    this.#tell(call, "active");
  }

  /**
   * Declines a ringing call (from any session of the one called); without `id`, the latest call
   * ringing for it (text mode's `/decline`).
   *
   * @throws {ChatError} `bad_frame` when there is no such call for you
   */
  decline(member: Member, id: string | undefined): void {
    const call = id === undefined
      ? this.#ringing(member)
      : this.#mine(member, id, "decline", "callee");
    if (call.state !== "ringing") throw new ChatError("bad_frame", "Cannot decline: not ringing");
    this.#end(call, "declined", false);
  }

  /**
   * Hangs up (the caller, or the session that accepted; a caller hanging up while it rings
   * leaves a missed call).
   *
   * @throws {ChatError} `bad_frame` when there is no such call of yours
   */
  hangUp(member: Member, id: string): void {
    const call = this.#calls.get(id);
    if (call === undefined || (call.caller !== member && call.callee !== member)) {
      throw new ChatError("bad_frame", `Cannot hang up: no call ${id.slice(0, 32)} of yours`);
    }
    this.#end(call, "hung up", call.state === "ringing");
  }

  /** The latest call ringing for `member`'s user. */
  #ringing(member: Member): Call {
    let latest: Call | undefined;
    for (const call of this.#calls.values()) {
      if (call.state === "ringing" && nameKey(call.to) === nameKey(member.name)) latest = call;
    }
    if (latest === undefined) {
      throw new ChatError("bad_frame", "Cannot decline: no call rings for you");
    }
    return latest;
  }

  /** Ends the calls of a session that went away. */
  gone(member: Member): void {
    for (const call of [...this.#calls.values()]) {
      if (call.caller === member || call.callee === member) this.#end(call, "hung up", false);
    }
  }

  /** Ends every call (shutdown). */
  close(): void {
    for (const call of this.#calls.values()) clearTimeout(call.timer);
    this.#calls.clear();
  }

  #mine(member: Member, id: string, verb: string, side: "callee"): Call {
    const call = this.#calls.get(id);
    if (call === undefined || side === "callee" && nameKey(member.name) !== nameKey(call.to)) {
      throw new ChatError("bad_frame", `Cannot ${verb}: no call ${id.slice(0, 32)} for you`);
    }
    return call;
  }

  #end(call: Call, reason: string, missed: boolean): void {
    if (!this.#calls.delete(call.id)) return;
    clearTimeout(call.timer);
    const room = Calls.room(call.id);
    this.#voice.left(call.caller, room);
    if (call.callee !== undefined) this.#voice.left(call.callee, room);
    this.#tell(call, "ended", reason);
    if (missed && this.#hub.isOnline(call.from)) {
      // The DM goes to the one called and to the caller's other sessions; the calling session
      // sent no frame to be answered, so it is given its copy here.
      this.#dms.send(call.caller, call.to, { text: "called you: missed call", action: true })
        .then(({ message }) => call.caller.deliver(new Outgoing(message)))
        .catch(() => {}); // the one called went offline meanwhile, as a guest
    }
  }

  #tell(call: Call, state: CallStateFrame["state"], reason?: string): void {
    const frame: CallStateFrame = {
      type: "call_state",
      call: call.id,
      from: call.from,
      to: call.to,
      state,
    };
    if (reason !== undefined) frame.reason = reason;
    this.#hub.announceDirect(call.from, call.to, frame);
  }
}
