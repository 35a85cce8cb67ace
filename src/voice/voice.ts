/**
 * The voice service: each room's voice (who is in it, muted, deafened) and the selective
 * forwarding unit that carries it. Every participant is one session with one
 * {@linkcode VoicePeer}; each admitted participant's Opus packets are written to every other
 * participant's peer, unless the speaker is muted or the listener deafened. Media from anyone not
 * admitted is never forwarded: only participants have a peer. See docs/voice.md.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { Hub, Member } from "../hub/hub.ts";
import { ChatError } from "../protocol/errors.ts";
import type { VoiceChange, VoiceParticipant, VoiceStateFrame } from "../protocol/frames.ts";
import { nameKey } from "../protocol/names.ts";
import { Outgoing } from "../protocol/outgoing.ts";
import { getLogger } from "@logtape/logtape";
import { NoVoicePort, type PeerOptions, VoicePeer } from "./peer.ts";

/** The voice settings (`--voice-*` flags; docs/voice.md). */
export interface VoiceOptions extends PeerOptions {
  /** Participants per room. */
  maxPerRoom: number;
  /** Forwarded streams (speaker to listener) the whole server carries. */
  maxStreams: number;
  /** The longest SDP answer accepted, in bytes. */
  maxSdp: number;
}

interface Participant {
  id: string;
  member: Member;
  peer: VoicePeer;
  muted: boolean;
  deafened: boolean;
  silenced: boolean;
}

interface VoiceRoom {
  name: string;
  participants: Map<Member, Participant>;
}

const log = getLogger(["parley", "voice"]);
let nextId = 0;

/**
 * The rooms' voice.
 *
 * @example
 * ```ts ignore
 * const voice = new Voice(hub, options);
 * voice.join(session, "#ops"); // the session then gets a voice_offer to answer
 * ```
 */
export class Voice {
  readonly #hub: Hub;
  readonly #options: VoiceOptions;
  readonly #rooms = new Map<string, VoiceRoom>();
  #streams = 0;

  /**
   * @param hub where room members are told who is in voice
   * @param options ports, addresses and limits
   */
  constructor(hub: Hub, options: VoiceOptions) {
    this.#hub = hub;
    this.#options = options;
  }

  /** The forwarded streams (speaker to listener) now. */
  get streams(): number {
    return this.#streams;
  }

  /** Who is in the room's voice. */
  participants(room: string): VoiceParticipant[] {
    const vr = this.#rooms.get(nameKey(room));
    return vr === undefined ? [] : [...vr.participants.values()].map(describe);
  }

  /**
   * Puts the session into the room's voice (the caller checked it is in the room) and sends it
   * an offer. Joining again from the same session restarts its media.
   *
   * @throws {ChatError} `voice_full` when the room or the server is at its limit
   */
  join(member: Member, room: string): VoiceParticipant[] {
    const key = nameKey(room);
    let vr = this.#rooms.get(key);
    if (vr?.participants.has(member)) this.#drop(vr, member, undefined);
    vr = this.#rooms.get(key);
    const n = vr?.participants.size ?? 0;
    if (n >= this.#options.maxPerRoom) {
      throw new ChatError(
        "voice_full",
        `Cannot join voice: ${room} has ${this.#options.maxPerRoom} people in voice`,
      );
    }
    if (this.#streams + 2 * n > this.#options.maxStreams) {
      throw new ChatError("voice_full", "Cannot join voice: the server carries all it can");
    }
    if (vr === undefined) this.#rooms.set(key, vr = { name: room, participants: new Map() });
    const id = `p${++nextId}`;
    const target = vr;
    const peer = new VoicePeer(
      this.#options,
      (sdp, streams) => {
        const named: Record<string, string> = {};
        for (const [mid, source] of Object.entries(streams)) {
          const p = [...target.participants.values()].find((q) => q.id === source);
          if (p !== undefined) named[mid] = p.member.name;
        }
        member.deliver(
          new Outgoing({ type: "voice_offer", room: target.name, sdp, streams: named }),
        );
      },
      (rtp) => this.#received(target, member, rtp),
    );
    const me: Participant = { id, member, peer, muted: false, deafened: false, silenced: false };
    for (const other of vr.participants.values()) {
      peer.addSource(other.id);
      other.peer.addSource(id);
      this.#streams += 2;
      this.#negotiate(vr, other);
    }
    vr.participants.set(member, me);
    this.#negotiate(vr, me);
    this.#announce(vr, member.name, "joined");
    return this.participants(room);
  }

  /**
   * Takes the session out of the room's voice.
   *
   * @throws {ChatError} `bad_frame` when it is not in it
   */
  leave(member: Member, room: string): void {
    const vr = this.#rooms.get(nameKey(room));
    if (vr === undefined || !vr.participants.has(member)) {
      throw new ChatError("bad_frame", `Cannot leave voice: you are not in ${room}'s voice`);
    }
    this.#drop(vr, member, "left");
  }

  /** Takes the session out of every room's voice (it went offline). */
  leaveAll(member: Member): void {
    for (const vr of [...this.#rooms.values()]) {
      if (vr.participants.has(member)) this.#drop(vr, member, "left");
    }
  }

  /** Takes the session out of the room's voice if it is there (it left the room). */
  left(member: Member, room: string): void {
    const vr = this.#rooms.get(nameKey(room));
    if (vr?.participants.has(member)) this.#drop(vr, member, "left");
  }

  /**
   * Applies the session's SDP answer.
   *
   * @throws {ChatError} `bad_frame` when it is too long, unexpected or unusable
   */
  async answer(member: Member, room: string, sdp: string): Promise<void> {
    if (sdp.length > this.#options.maxSdp) {
      throw new ChatError(
        "bad_frame",
        `Cannot use the voice answer: longer than ${this.#options.maxSdp} bytes`,
      );
    }
    await this.#participant(member, room, "answer").peer.answer(sdp);
  }

  /**
   * Adds an ICE candidate the session trickled.
   *
   * @throws {ChatError} `bad_frame` when it is too long or one too many
   */
  async candidate(member: Member, room: string, candidate: string, mid?: string): Promise<void> {
    if (candidate.length > 512) throw new ChatError("bad_frame", "Voice candidate too long");
    await this.#participant(member, room, "send a candidate").peer.candidate(candidate, mid);
  }

  /**
   * Mutes or deafens the session in the room's voice (each left as it was when not given).
   *
   * @throws {ChatError} `forbidden` when an operator muted it
   */
  mute(
    member: Member,
    room: string,
    muted: boolean | undefined,
    deafened: boolean | undefined,
  ): { muted: boolean; deafened: boolean } {
    const p = this.#participant(member, room, "mute");
    const vr = this.#rooms.get(nameKey(room))!;
    if (muted === false && p.silenced) {
      throw new ChatError("forbidden", "Cannot unmute: an operator muted you in voice");
    }
    const before = p.muted;
    if (muted !== undefined) p.muted = muted;
    if (deafened !== undefined) p.deafened = deafened;
    const change = p.muted === before ? undefined : p.muted ? "muted" : "unmuted";
    this.#announce(vr, member.name, change);
    return { muted: p.muted, deafened: p.deafened };
  }

  /**
   * An operator's action on `name` in the room's voice: `silence` (muted until they leave),
   * `unsilence`, or `remove`.
   *
   * @returns whether `name` was in the room's voice
   */
  moderate(room: string, name: string, action: "silence" | "unsilence" | "remove", by: string) {
    const vr = this.#rooms.get(nameKey(room));
    const targets = [...vr?.participants.values() ?? []].filter((p) =>
      nameKey(p.member.name) === nameKey(name)
    );
    for (const p of targets) {
      if (action === "remove") {
        p.member.deliver(
          new Outgoing({ type: "voice_ended", room: vr!.name, reason: `removed by ${by}` }),
        );
        this.#drop(vr!, p.member, "removed", by);
        continue;
      }
      p.silenced = action === "silence";
      p.muted = p.silenced || p.muted;
    }
    if (action !== "remove" && targets.length > 0) {
      this.#announce(vr!, targets[0]!.member.name, action === "silence" ? "muted" : "unmuted", by);
    }
    return targets.length > 0;
  }

  /** Inbound RTP counts of every participant's peer in the room, by name (tests, logs). */
  async stats(room: string): Promise<Record<string, { packetsReceived: number }>> {
    const out: Record<string, { packetsReceived: number }> = {};
    for (const p of this.#rooms.get(nameKey(room))?.participants.values() ?? []) {
      out[p.member.name] = await p.peer.stats();
    }
    return out;
  }

  /** Closes every peer. */
  async close(): Promise<void> {
    const peers = [...this.#rooms.values()].flatMap((vr) =>
      [...vr.participants.values()].map((p) => p.peer)
    );
    this.#rooms.clear();
    this.#streams = 0;
    await Promise.all(peers.map((peer) => peer.close()));
  }

  #participant(member: Member, room: string, verb: string): Participant {
    const p = this.#rooms.get(nameKey(room))?.participants.get(member);
    if (p === undefined) {
      throw new ChatError("bad_frame", `Cannot ${verb}: you are not in ${room}'s voice`);
    }
    return p;
  }

  #received(vr: VoiceRoom, from: Member, rtp: Buffer): void {
    const speaker = vr.participants.get(from);
    if (speaker === undefined) return;
    for (const listener of vr.participants.values()) {
      if (listener === speaker) continue;
      if (speaker.muted || listener.deafened) listener.peer.skip(speaker.id);
      else listener.peer.forward(speaker.id, rtp);
    }
  }

  #drop(vr: VoiceRoom, member: Member, change: VoiceChange | undefined, by?: string): void {
    const me = vr.participants.get(member);
    if (me === undefined) return;
    vr.participants.delete(member);
    void me.peer.close();
    for (const other of vr.participants.values()) {
      other.peer.removeSource(me.id);
      this.#streams -= 2;
      this.#negotiate(vr, other);
    }
    if (vr.participants.size === 0) this.#rooms.delete(nameKey(vr.name));
    if (change !== undefined) this.#announce(vr, member.name, change, by);
  }

  #negotiate(vr: VoiceRoom, p: Participant): void {
    p.peer.negotiate().catch((error) => {
      log.warn("Cannot offer voice to {name}: {error}", { name: p.member.name, error });
      if (!(error instanceof NoVoicePort) || vr.participants.get(p.member) !== p) return;
      // Without a port its media has nowhere to go: it is told, and taken out of the voice.
      p.member.deliver(new Outgoing({ type: "voice_ended", room: vr.name, reason: error.message }));
      this.#drop(vr, p.member, "left");
    });
  }

  #announce(vr: VoiceRoom, name: string, change: VoiceChange | undefined, by?: string): void {
    const frame: VoiceStateFrame = {
      type: "voice_state",
      room: vr.name,
      participants: [...vr.participants.values()].map(describe),
      name,
    };
    if (change !== undefined) frame.change = change;
    if (by !== undefined) frame.by = by;
    this.#hub.announce(vr.name, frame);
  }
}

function describe(p: Participant): VoiceParticipant {
  const out: VoiceParticipant = { name: p.member.name, muted: p.muted, deafened: p.deafened };
  if (p.silenced) out.silenced = true;
  return out;
}
