/**
 * One participant's media connection to the forwarding unit: a werift `RTCPeerConnection` that
 * receives the participant's microphone (one `recvonly` m-line) and sends every other
 * participant's audio to it (one `sendonly` m-line per remote speaker, silent after they leave
 * until the next one to join takes it).
 * The server always makes the offer, so there is no glare: a change while an offer waits for its
 * answer is offered again once the answer came.
 *
 * @module
 */

import type { MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver } from "werift";
import type { Buffer } from "node:buffer";
import process from "node:process";
import { ChatError } from "../protocol/errors.ts";
import { installPortSearch } from "./udp_ports.ts";
import { installRetransmitGuards } from "./dtls_retransmit.ts";
import { getLogger } from "@logtape/logtape";

const log = getLogger(["parley", "voice"]);

/** How the forwarding unit's peers gather candidates (docs/voice.md, "Ports"). */
export interface PeerOptions {
  /** The UDP ports the peers bind, `[first, last]`. */
  ports: [number, number];
  /** Extra local addresses to offer candidates on (127.0.0.1 for a loopback-only host). */
  hostAddresses: readonly string[];
  /** The address announced in place of each host candidate's (a 1:1 NAT's public address). */
  publicIp: string | undefined;
}

/** A sending slot: an m-line that carries one remote participant's audio, or nobody's. */
interface Slot {
  transceiver: RTCRtpTransceiver;
  track: MediaStreamTrack;
  source: string | undefined;
  /** The next packet starts again after a gap the server made (muted, deafened, a new source). */
  resync: boolean;
}

/** werift, once {@linkcode loadMedia} loaded it. */
let werift: typeof import("werift") | undefined;

/**
 * Loads werift. It is not imported with the rest of the server, so the other subcommands
 * (`user`, `cert`, `backup`) never load it. Its `debug` dependency lists every environment
 * variable as it loads (to read `DEBUG_*` options), which would need the whole of `--allow-env`:
 * while it loads, `process.env` is a plain object holding only `DEBUG` (when the permissions allow
 * reading it), so the server needs no more than `--allow-env=NO_COLOR,DEBUG`.
 *
 * @returns whether it loaded
 */
export async function loadMedia(): Promise<boolean> {
  try {
    if (werift === undefined) {
      const loaded = await withNarrowEnv(() => import("werift"));
      installPortSearch(loaded.UdpTransport);
      installRetransmitGuards(loaded);
      werift = loaded;
    }
    return true;
  } catch (error) {
    log.warn("Cannot load npm:werift: {error}", { error: String(error).slice(0, 200) });
    return false;
  }
}

/**
 * werift as the forwarding unit uses it (with the fixes of `udp_ports.ts` and
 * `dtls_retransmit.ts`), for peers of its own: the tests' and the benchmark's participants.
 *
 * @throws {Error} when it cannot be loaded
 */
export async function loadWerift(): Promise<typeof import("werift")> {
  if (!(await loadMedia())) throw new Error("Cannot load npm:werift");
  return werift!;
}

/** Runs `load` while `process.env` shows only `DEBUG`, then puts the real one back. */
async function withNarrowEnv<T>(load: () => Promise<T>): Promise<T> {
  const real = Object.getOwnPropertyDescriptor(process, "env");
  let debug: string | undefined;
  try {
    debug = Deno.env.get("DEBUG");
  } catch {
    debug = undefined; // not permitted: werift logs nothing of its own, as without DEBUG
  }
  const env: Record<string, string> = debug === undefined ? {} : { DEBUG: debug };
  Object.defineProperty(process, "env", { value: env, configurable: true, writable: true });
  try {
    return await load();
  } finally {
    if (real !== undefined) Object.defineProperty(process, "env", real);
  }
}

/** Whether {@linkcode loadMedia} loaded werift. */
export function mediaLoaded(): boolean {
  return werift !== undefined;
}

/**
 * Stops a werift peer connection asking a STUN server: werift falls back to Google's without one,
 * and gathering then waits 5 s for an answer on a host without internet. The forwarding unit needs
 * no reflexive address (it has its host candidates and `--voice-public-ip`); nor do the test and
 * benchmark peers on loopback. Call it after `createOffer()`/`createAnswer()`, before
 * `setLocalDescription()`.
 */
export function skipPublicStun(pc: { readonly iceTransports: readonly unknown[] }): void {
  for (const transport of pc.iceTransports) {
    const connection = (transport as { connection?: { stunServer?: unknown } }).connection;
    if (connection !== undefined) connection.stunServer = undefined;
  }
}

/** One Opus frame of 20 ms at 48 kHz, in RTP timestamp units. */
const OPUS_FRAME = 960;

/** No UDP port of `--voice-ports` was free for a peer: it has no address to receive media on. */
export class NoVoicePort extends Error {
  constructor() {
    super("Cannot carry voice: no UDP port of the server's voice range is free");
  }
}

/** The most ICE candidates a client may trickle per offer. */
export const MAX_CANDIDATES = 32;

/**
 * A participant's peer connection on the forwarding unit.
 *
 * @example
 * ```ts ignore
 * const peer = new VoicePeer(options, (sdp, streams) => send(sdp, streams), (rtp) => forward(rtp));
 * peer.addSource("bob");
 * await peer.negotiate();
 * ```
 */
export class VoicePeer {
  readonly #pc: RTCPeerConnection;
  readonly #slots: Slot[] = [];
  readonly #offer: (sdp: string, streams: Record<string, string>) => void;
  readonly #publicIp: string | undefined;
  #offering = false;
  #dirty = false;
  #candidates = 0;
  #closed = false;
  /** Whether its first offer gathered a candidate (a UDP port is bound). */
  #bound = false;

  /**
   * @param options ports and addresses
   * @param offer called with each offer to send to the participant
   * @param received called with each RTP packet of the participant's microphone, serialized
   */
  constructor(
    options: PeerOptions,
    offer: (sdp: string, streams: Record<string, string>) => void,
    received: (rtp: Buffer) => void,
  ) {
    this.#offer = offer;
    this.#publicIp = options.publicIp;
    if (werift === undefined) throw new Error("Cannot start voice: call loadMedia() first");
    const { RTCPeerConnection, RTCRtpCodecParameters } = werift;
    this.#pc = new RTCPeerConnection({
      codecs: {
        audio: [
          new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 }),
        ],
      },
      icePortRange: options.ports,
      iceAdditionalHostAddresses: [...options.hostAddresses],
      iceUseIpv6: false,
      iceServers: [], // werift would ask a public STUN server by default
      bundlePolicy: "max-bundle",
    });
    const mic = this.#pc.addTransceiver("audio", { direction: "recvonly" });
    mic.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        if (!this.#closed) received(rtp.serialize());
      });
    });
    // An offer held back while the first connection was being made goes out once it is made.
    this.#pc.connectionStateChange.subscribe((state) => {
      if (state !== "connected" || !this.#dirty || this.#offering || this.#closed) return;
      this.negotiate().catch((error) => log.warn("Cannot offer voice again: {error}", { error }));
    });
  }

  /** The state of its ICE and DTLS connection (`connected` once media flows). */
  get connectionState(): string {
    return this.#pc.connectionState;
  }

  /** Gives `source` (a participant's id) an m-line: a free one, or a new one. */
  addSource(source: string): void {
    if (this.#slots.some((s) => s.source === source)) return;
    const free = this.#slots.find((s) => s.source === undefined);
    if (free !== undefined) {
      free.source = source;
      free.resync = true;
      return;
    }
    const track = new werift!.MediaStreamTrack({ kind: "audio" });
    const transceiver = this.#pc.addTransceiver(track, { direction: "sendonly" });
    this.#slots.push({ transceiver, track, source, resync: false });
  }

  /**
   * Frees the m-line of `source`: it stays `sendonly` and silent until someone else takes it.
   * (Not `inactive`: werift takes an inactive m-line out of the BUNDLE group, and Chromium does
   * not always take it back when it is active again.)
   */
  removeSource(source: string): void {
    const slot = this.#slots.find((s) => s.source === source);
    if (slot !== undefined) slot.source = undefined;
  }

  /** Sends one of `source`'s packets (serialized RTP) to this participant. */
  forward(source: string, rtp: Buffer): void {
    if (this.#closed) return;
    const slot = this.#slots.find((s) => s.source === source);
    if (slot === undefined || rtp.length < 12) return;
    if (slot.resync) {
      // Go on from the last packet sent, so the browser sees neither a jump nor a loss: werift
      // maps the packet before this one onto the last sequence number and timestamp it sent.
      slot.resync = false;
      slot.transceiver.sender.replaceRTP({
        sequenceNumber: (rtp.readUInt16BE(2) + 0xffff) & 0xffff,
        timestamp: (rtp.readUInt32BE(4) - OPUS_FRAME + 0x100000000) % 0x100000000,
      });
    }
    // A Buffer: each sender parses its own copy (werift rewrites the header in place).
    slot.track.writeRtp(rtp);
  }

  /** Notes that one of `source`'s packets was not sent here (muted or deafened). */
  skip(source: string): void {
    const slot = this.#slots.find((s) => s.source === source);
    if (slot !== undefined) slot.resync = true;
  }

  /**
   * Makes an offer and sends it, or, while one waits for its answer, offers again after. Once
   * the first offer is answered, the next waits until the connection is made: werift starts ICE
   * and DTLS again for an answer that comes while they are still connecting, and that connection
   * then never completes.
   */
  async negotiate(): Promise<void> {
    if (this.#closed) return;
    if (this.#offering || (this.#bound && this.#pc.connectionState !== "connected")) {
      this.#dirty = true;
      return;
    }
    this.#offering = true;
    this.#dirty = false;
    this.#candidates = 0;
    const offer = await this.#pc.createOffer();
    skipPublicStun(this.#pc);
    await this.#pc.setLocalDescription(offer);
    await this.#gathered();
    if (this.#closed) return;
    // werift logs a failed bind and gathers nothing for that address: with none bound, no media.
    // (Only the first offer gathers; later ones reuse its candidates.)
    if (!this.#bound && !/^a=candidate:/m.test(this.#pc.localDescription!.sdp)) {
      this.#offering = false;
      throw new NoVoicePort();
    }
    this.#bound = true;
    const streams: Record<string, string> = {};
    for (const slot of this.#slots) {
      const mid = slot.transceiver.mid;
      if (mid !== undefined && slot.source !== undefined) streams[mid] = slot.source;
    }
    this.#offer(this.#announced(this.#pc.localDescription!.sdp), streams);
  }

  /**
   * Applies the participant's answer to the waiting offer.
   *
   * @throws {ChatError} `bad_frame` when no offer waits or the answer does not fit it
   */
  async answer(sdp: string): Promise<void> {
    if (!this.#offering) throw new ChatError("bad_frame", "Cannot answer: no voice offer waits");
    const lines = (sdp.match(/^m=/gm) ?? []).length;
    const offered = (this.#pc.localDescription?.sdp.match(/^m=/gm) ?? []).length;
    if (lines !== offered || !/^a=fingerprint:/m.test(sdp) || !/^a=ice-ufrag:/m.test(sdp)) {
      throw new ChatError(
        "bad_frame",
        `Cannot use the voice answer: it must answer each of the ${offered} m-lines offered`,
      );
    }
    try {
      await this.#pc.setRemoteDescription({ type: "answer", sdp });
    } catch (error) {
      throw new ChatError(
        "bad_frame",
        `Cannot use the voice answer: ${String(error).slice(0, 80)}`,
      );
    }
    this.#offering = false;
    if (this.#dirty) await this.negotiate();
  }

  /**
   * Adds a candidate the participant trickled.
   *
   * @throws {ChatError} `bad_frame` past {@linkcode MAX_CANDIDATES} for this offer
   */
  async candidate(candidate: string, mid: string | undefined): Promise<void> {
    if (++this.#candidates > MAX_CANDIDATES) {
      throw new ChatError("bad_frame", `Cannot add more than ${MAX_CANDIDATES} voice candidates`);
    }
    if (candidate === "") return; // the end of the candidates
    try {
      await this.#pc.addIceCandidate({ candidate, sdpMid: mid ?? "0", sdpMLineIndex: 0 });
    } catch {
      throw new ChatError("bad_frame", "Cannot use that voice candidate");
    }
  }

  /** The loss and packet counts werift saw on the microphone it received, for tests and logs. */
  async stats(): Promise<{ packetsReceived: number; packetsLost: number }> {
    const report = await this.#pc.getStats();
    let packetsReceived = 0;
    let packetsLost = 0;
    for (const value of report.values()) {
      const stat = value as { type: string; packetsReceived?: number; packetsLost?: number };
      if (stat.type === "inbound-rtp") {
        packetsReceived += Number(stat.packetsReceived ?? 0);
        packetsLost += Number(stat.packetsLost ?? 0);
      }
    }
    return { packetsReceived, packetsLost };
  }

  /** Closes the connection; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) slot.track.stop();
    await this.#pc.close().catch(() => {});
  }

  /** Waits (up to 5 s) until its candidates are gathered: offers carry them all. */
  async #gathered(): Promise<void> {
    if (this.#pc.iceGatheringState === "complete") return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 5000);
      const { unSubscribe } = this.#pc.iceGatheringStateChange.subscribe((state) => {
        if (state === "complete") done();
      });
      function done() {
        clearTimeout(timer);
        unSubscribe();
        resolve();
      }
    });
  }

  /** The SDP with each host candidate's address replaced by the public one, if any. */
  #announced(sdp: string): string {
    const ip = this.#publicIp;
    if (ip === undefined) return sdp;
    return sdp.replace(
      /^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)/gm,
      (_all, head: string, _addr: string, tail: string) => head + ip + tail,
    );
  }
}
