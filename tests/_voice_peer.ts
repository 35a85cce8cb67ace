// A voice participant without a browser, for the tests that need more people in one room's voice
// than a two-core machine can run Chromium pages for: a guest session over the server's WebSocket
// (the web app's frames: hello, nick, join, voice_join, then an answer to each voice_offer) and a
// werift peer connection that sends real Opus (a sine of its own frequency, encoded with
// npm:opusscript, so a browser that hears it finds that frequency) and counts the RTP it receives
// from each other participant, by name, to measure loss as a browser's getStats() does.
import { Buffer } from "node:buffer";
import OpusScript from "opusscript";
import type { MediaStreamTrack, RTCPeerConnection } from "werift";
import { answerOffer, participantConnection, weriftConnected } from "../bench/voice.ts";
import { loadWerift } from "../src/voice/peer.ts";
import type { Werift } from "../bench/voice.ts";

interface Frame {
  type: string;
  [key: string]: unknown;
}

/** 20 ms at 48 kHz. */
const FRAME = 960;

/**
 * One second of Opus frames (50 of 20 ms) of a `hz` sine at half scale. A whole number of
 * cycles fits in a second, so the frames loop without a click; they are the second second the
 * encoder made, so its state at the loop's start is a running one.
 */
export function opusSine(hz: number): Uint8Array[] {
  const encoder = new OpusScript(48000, 1, OpusScript.Application.AUDIO);
  try {
    const frames: Uint8Array[] = [];
    for (let f = 0; f < 100; f++) {
      const pcm = new Int16Array(FRAME);
      for (let i = 0; i < FRAME; i++) {
        pcm[i] = Math.round(0.5 * 32767 * Math.sin((2 * Math.PI * hz * (f * FRAME + i)) / 48000));
      }
      const packet = encoder.encode(Buffer.from(pcm.buffer), FRAME);
      if (f >= 50) frames.push(new Uint8Array(packet));
    }
    return frames;
  } finally {
    encoder.delete();
  }
}

/** What one participant received from another while counting. */
export interface StreamCount {
  received: number;
  /** Sequence numbers missing between the first and the last received. */
  lost: number;
}

/** A scripted participant in one room's voice. */
export class ScriptedParticipant implements AsyncDisposable {
  readonly name: string;
  readonly hz: number;
  readonly #w: Werift;
  readonly #ws: WebSocket;
  readonly #pc: RTCPeerConnection;
  readonly #mic: MediaStreamTrack;
  readonly #frames: Uint8Array[];
  readonly #waiting = new Map<string, (frame: Frame) => void>();
  readonly #rtpStart = Math.floor(Math.random() * 30_000);
  #ref = 0;
  #sent = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #offers: Promise<void> = Promise.resolve();
  /** Each receiving m-line's participant, from the last offer. */
  #streams: Record<string, string> = {};
  /** Per participant heard: the sequence numbers received since counting began. */
  #heard = new Map<string, Set<number>>();
  /** Why an offer could not be answered, if one could not. */
  error: string | undefined;

  private constructor(w: Werift, url: string, name: string, hz: number) {
    this.#w = w;
    this.name = name;
    this.hz = hz;
    this.#frames = opusSine(hz);
    this.#pc = participantConnection(w);
    this.#mic = new w.MediaStreamTrack({ kind: "audio" });
    this.#pc.onTransceiverAdded.subscribe((transceiver) => {
      transceiver.onTrack.subscribe((track) =>
        track.onReceiveRtp.subscribe((rtp) => {
          const from = transceiver.mid === undefined ? undefined : this.#streams[transceiver.mid];
          if (from === undefined) return;
          let seen = this.#heard.get(from);
          if (seen === undefined) this.#heard.set(from, seen = new Set());
          seen.add(rtp.header.sequenceNumber);
        })
      );
    });
    this.#ws = new WebSocket(url);
    this.#ws.onmessage = (event) => this.#frame(JSON.parse(String(event.data)));
  }

  /**
   * Comes online as guest `name` on the server's WebSocket `url`, joins `room` and its voice,
   * and speaks from then on.
   */
  static async join(
    url: string,
    name: string,
    room: string,
    hz: number,
  ): Promise<ScriptedParticipant> {
    const w = await loadWerift(); // with the forwarding unit's DTLS fixes, as a client
    const p = new ScriptedParticipant(w, url, name, hz);
    await new Promise<void>((resolve, reject) => {
      p.#ws.onopen = () => resolve();
      p.#ws.onerror = () => reject(new Error(`Cannot connect to ${url}`));
    });
    for (
      const frame of [{ type: "hello", proto: 1 }, { type: "nick", name }, { type: "join", room }]
    ) {
      const reply = await p.#request(frame);
      if (reply.type === "error") throw new Error(`${frame.type}: ${String(reply.message)}`);
    }
    p.#timer = setInterval(() => p.#speak(), 20);
    const joined = await p.#request({ type: "voice_join", room });
    if (joined.type === "error") throw new Error(`voice_join: ${String(joined.message)}`);
    return p;
  }

  /** Whether its ICE and DTLS are up. */
  get connected(): boolean {
    return weriftConnected(this.#pc);
  }

  /** Starts counting what it receives, from nothing. */
  startCounting(): void {
    this.#heard = new Map();
  }

  /** What it received from each participant since {@linkcode startCounting}. */
  counts(): Record<string, StreamCount> {
    const out: Record<string, StreamCount> = {};
    for (const [from, seen] of this.#heard) {
      // Unwrapped around the first number received (a run of seconds is far from 32,768).
      const first = seen.values().next().value!;
      let low = 0;
      let high = 0;
      for (const seq of seen) {
        const d = ((seq - first + 0x8000 + 0x10000) % 0x10000) - 0x8000;
        low = Math.min(low, d);
        high = Math.max(high, d);
      }
      out[from] = { received: seen.size, lost: high - low + 1 - seen.size };
    }
    return out;
  }

  #request(frame: Frame): Promise<Frame> {
    const ref = `s${++this.#ref}`;
    this.#ws.send(JSON.stringify({ ...frame, ref }));
    return new Promise((resolve) => this.#waiting.set(ref, resolve));
  }

  #frame(frame: Frame): void {
    const ref = frame.ref as string | undefined;
    if (ref !== undefined && this.#waiting.has(ref)) {
      this.#waiting.get(ref)!(frame);
      this.#waiting.delete(ref);
      return;
    }
    if (frame.type === "ping") this.#ws.send('{"type":"pong"}');
    if (frame.type === "voice_offer") {
      this.#offers = this.#offers.then(() => this.#answer(frame)).catch((error) => {
        this.error = String(error);
      });
    }
  }

  async #answer(offer: Frame): Promise<void> {
    this.#streams = (offer.streams ?? {}) as Record<string, string>;
    const sdp = await answerOffer(this.#pc, this.#mic, String(offer.sdp));
    const reply = await this.#request({ type: "voice_answer", room: String(offer.room), sdp });
    if (reply.type === "error") throw new Error(`voice_answer: ${String(reply.message)}`);
  }

  /** Sends the next 20 ms of its sine (werift drops it until the connection is up). */
  #speak(): void {
    const n = this.#rtpStart + this.#sent;
    const payload = this.#frames[this.#sent % this.#frames.length]!;
    this.#sent++;
    const header = new this.#w.RtpHeader({
      payloadType: 111,
      sequenceNumber: n & 0xffff,
      timestamp: (n * FRAME) >>> 0,
      ssrc: 0x5000 + this.hz,
      marker: this.#sent === 1,
    });
    this.#mic.writeRtp(new this.#w.RtpPacket(header, Buffer.from(payload)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    clearInterval(this.#timer);
    this.#ws.close();
    await this.#pc.close().catch(() => {});
  }
}
