/**
 * The voice scenario's driver: peers in this process join one room's voice on a running parley
 * server (over its WebSocket, as the web app does), some of them speaking: each speaker sends an
 * Opus-sized RTP packet every 20 ms whose payload carries the time it was sent and its own
 * sequence number, and every listener reads both back from each forwarded packet. So it measures
 * what the forwarding unit adds: latency (receive time minus send time, one clock), loss (packets
 * sent while measuring that a listener never got) and how many streams it forwards, as
 * participants grow.
 *
 * Speakers are werift peers. Listeners are libdatachannel peers (`npm:node-datachannel`) by
 * default: its ICE, DTLS and SRTP run natively on their own threads, where 50 werift listeners in
 * one process saturate a core during the joins (every join re-offers every peer, each answer one
 * m-line longer) and their ICE consent checks then time out. `listener: "werift"` keeps the old
 * all-werift driver, to compare.
 *
 * The peers join one at a time: each waits until its own media connection is up and every peer
 * has answered the offer that the join caused, so 50 peers never handshake at once.
 *
 * ```
 * deno run -A bench/voice.ts ws://127.0.0.1:8080/ws 1 50 10   # 1 speaker, 50 listeners, 10 s
 * ```
 *
 * @module
 */

import type { MediaStreamTrack, RTCPeerConnection } from "werift";
import type { PeerConnection, Track } from "node-datachannel";
import { Histogram } from "./histogram.ts";
import { cpuSeconds } from "./proc.ts";
import { loadWerift, skipPublicStun } from "../src/voice/peer.ts";

/** Which library the listeners use. */
export type ListenerKind = "libdatachannel" | "werift";

/** What one run measured. */
export interface VoiceResult {
  speakers: number;
  listeners: number;
  /** The listeners' library. */
  listener: ListenerKind;
  /** Forwarded streams, speaker to listener (every participant but the speaker itself). */
  streams: number;
  /** Participants whose media connection came up within the join timeout. */
  connected: number;
  /** Streams that delivered nothing at all while measuring. */
  silent: number;
  /** Packets each speaker sent while measuring. */
  sent: number;
  /** Packets the listeners should have received: sent × streams. */
  expected: number;
  /** Distinct packets received (of those sent while measuring). */
  received: number;
  /** expected − received. */
  lost: number;
  /** lost ÷ expected, percent. */
  lossPercent: number;
  /** Added latency, ms: median, 99th percentile and the largest. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** How long the joins took, all of them, ms. */
  joinMs: number;
  /** Answers the server refused as too many voice_answer commands, and that were sent again. */
  rateLimited: number;
  /** The longest SDP answer a participant sent, bytes (the server takes 32 KiB at most). */
  longestAnswer: number;
  /** The server's CPU time while measuring, s (0 without `serverPid`), and how long that was. */
  serverCpuS: number;
  measuredS: number;
}

/** Options of {@linkcode runVoice}. */
export interface VoiceOptions {
  speakers: number;
  listeners: number;
  /** How long to measure, ms. */
  ms: number;
  room?: string;
  /** The listeners' library (default libdatachannel). */
  listener?: ListenerKind;
  /**
   * The UDP ports libdatachannel listeners bind (default 20000–39999). libdatachannel picks
   * ports at random in its range (all of 1024–65535 unless told), so left alone it takes ports
   * of the server's voice range: keep the two apart.
   */
  listenerPorts?: [number, number];
  /** How long one join may take to settle, ms (default 10,000). */
  joinTimeoutMs?: number;
  /** The server's process, for its CPU time while measuring. */
  serverPid?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export type Werift = typeof import("werift");
type Ndc = typeof import("node-datachannel");

interface Frame {
  type: string;
  [key: string]: unknown;
}

/** The payload's first bytes: a marker, the speaker, its sequence number, the send time. */
const MAGIC = 0x70617231; // "par1"
const PAYLOAD = 80; // about an Opus frame of 20 ms at 32 kbit/s

/** The RTP payload's offset, or -1 when `rtp` is not RTP (RTCP, too short). */
function payloadOffset(rtp: Uint8Array): number {
  if (rtp.length < 12 || rtp[0]! >> 6 !== 2) return -1;
  const pt = rtp[1]! & 0x7f;
  if (pt >= 64 && pt <= 95) return -1; // RTCP (200–204 with the marker bit)
  let offset = 12 + 4 * (rtp[0]! & 0x0f);
  if (rtp[0]! & 0x10) {
    if (rtp.length < offset + 4) return -1;
    offset += 4 + 4 * ((rtp[offset + 2]! << 8) | rtp[offset + 3]!);
  }
  return rtp.length >= offset + 20 ? offset : -1;
}

/** Receives what one participant hears: counts each speaker's packets and their latency. */
class Ear {
  /** Per speaker: the sequence numbers received while measuring. */
  readonly heard = new Map<number, Set<number>>();
  constructor(
    readonly window: { from: number; to: number },
    readonly latency: Histogram,
  ) {}

  packet(rtp: Uint8Array): void {
    const at = performance.now();
    const offset = payloadOffset(rtp);
    if (offset < 0) return;
    const view = new DataView(rtp.buffer, rtp.byteOffset + offset, 20);
    if (view.getUint32(0) !== MAGIC) return;
    const speaker = view.getUint32(4);
    const seq = view.getUint32(8);
    if (seq < this.window.from || seq > this.window.to) return;
    let seen = this.heard.get(speaker);
    if (seen === undefined) this.heard.set(speaker, seen = new Set());
    if (seen.has(seq)) return;
    seen.add(seq);
    this.latency.record(Math.max(0, Math.round((at - view.getFloat64(12)) * 1000)));
  }
}

/** A participant's media side: answers the server's offers. */
interface Media {
  /** The answer SDP to an offer. */
  answer(offer: string): Promise<string>;
  /** Whether its ICE and DTLS are up. */
  readonly connected: boolean;
  close(): Promise<void>;
}

/**
 * A participant's werift peer connection on loopback, as parley's offers expect: Opus only, no
 * STUN server, `127.0.0.1` among its candidates. (The benchmark's speakers and the tests' scripted
 * participants.)
 */
export function participantConnection(w: Werift): RTCPeerConnection {
  return new w.RTCPeerConnection({
    codecs: {
      audio: [
        new w.RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 }),
      ],
    },
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceUseIpv6: false,
    iceServers: [],
  });
}

/**
 * Whether `pc`'s ICE and DTLS are up. (werift's `connectionState` alone says `connected` after a
 * renegotiation once ICE is, even when its DTLS transport failed and no media flows.)
 */
export function weriftConnected(pc: RTCPeerConnection): boolean {
  return pc.connectionState === "connected" &&
    pc.dtlsTransports.every((t) => t.state === "connected");
}

/**
 * Applies the server's offer to `pc`, sends `mic` on its first m-line (the server's `recvonly`
 * microphone line) the first time, and returns the answer SDP.
 */
export async function answerOffer(
  pc: RTCPeerConnection,
  mic: MediaStreamTrack,
  offer: string,
): Promise<string> {
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  const line = pc.getTransceivers().find((t) => t.mid === "0");
  if (line !== undefined && line.sender.track === undefined) {
    line.setDirection("sendonly");
    await line.sender.replaceTrack(mic);
  }
  skipPublicStun(pc);
  await pc.setLocalDescription(await pc.createAnswer());
  return pc.localDescription!.sdp;
}

class WeriftMedia implements Media {
  readonly pc: RTCPeerConnection;
  readonly mic: MediaStreamTrack;
  readonly #w: Werift;
  readonly #rtpStart = 1000 + Math.floor(Math.random() * 30_000);

  constructor(w: Werift, ear: Ear) {
    this.#w = w;
    this.pc = participantConnection(w);
    this.mic = new w.MediaStreamTrack({ kind: "audio" });
    this.pc.onTransceiverAdded.subscribe((t) => {
      t.onTrack.subscribe((track) =>
        track.onReceiveRtp.subscribe((rtp) => ear.packet(rtp.serialize()))
      );
    });
  }

  get connected(): boolean {
    return weriftConnected(this.pc);
  }

  answer(offer: string): Promise<string> {
    return answerOffer(this.pc, this.mic, offer);
  }

  /** Sends one packet from the microphone. */
  speak(speaker: number, seq: number): void {
    const payload = new Uint8Array(PAYLOAD);
    const view = new DataView(payload.buffer);
    view.setUint32(0, MAGIC);
    view.setUint32(4, speaker);
    view.setUint32(8, seq);
    view.setFloat64(12, performance.now());
    const header = new this.#w.RtpHeader({
      payloadType: 96,
      // RTP's own numbers start at a random point (RFC 3550), as a browser's do: started at 0, the
      // packet numbered 88 never reached any listener (every run, every listener).
      sequenceNumber: (this.#rtpStart + seq) & 0xffff,
      timestamp: ((this.#rtpStart + seq) * 960) >>> 0,
      ssrc: 1000 + speaker,
    });
    this.mic.writeRtp(new this.#w.RtpPacket(header, payload as never));
  }

  async close(): Promise<void> {
    await this.pc.close();
  }
}

class DatachannelMedia implements Media {
  readonly pc: PeerConnection;
  #state = "new";
  #gathered: Promise<void>;
  #answered: ((sdp: string) => void) | undefined;
  readonly #tracks: Track[] = [];

  constructor(ndc: Ndc, name: string, ear: Ear, ports: [number, number]) {
    this.pc = new ndc.PeerConnection(name, {
      iceServers: [],
      bindAddress: "127.0.0.1",
      portRangeBegin: ports[0],
      portRangeEnd: ports[1],
    });
    this.pc.onStateChange((state) => this.#state = state);
    this.#gathered = new Promise((resolve) => {
      this.pc.onGatheringStateChange((state) => {
        if (state === "complete") resolve();
      });
    });
    this.pc.onLocalDescription((sdp, type) => {
      if (type === "answer") this.#answered?.(sdp);
    });
    this.pc.onTrack((track) => {
      // Held here: a Track nothing in JavaScript refers to is collected, and its callback with it
      // (the earlier listeners of a run went silent once the later ones had joined).
      this.#tracks.push(track);
      track.onMessage((msg) => ear.packet(msg));
    });
  }

  get connected(): boolean {
    return this.#state === "connected";
  }

  async answer(offer: string): Promise<string> {
    const answered = new Promise<string>((resolve) => this.#answered = resolve);
    this.pc.setRemoteDescription(offer, "offer"); // answered automatically
    await answered;
    this.#answered = undefined;
    await this.#gathered; // the first answer carries every candidate
    return this.pc.localDescription()!.sdp;
  }

  close(): Promise<void> {
    this.pc.close();
    return Promise.resolve();
  }
}

/** One participant: a WebSocket session and its media, answering every offer in turn. */
class BenchPeer {
  readonly #ws: WebSocket;
  readonly media: Media;
  readonly opened: Promise<void>;
  readonly #waiting = new Map<string, (f: Frame) => void>();
  #ref = 0;
  #offers: Promise<void> = Promise.resolve();
  /** m-lines of the last offer answered (one per participant in the room's voice). */
  answeredLines = 0;
  /** Offers received and not yet answered. */
  pending = 0;
  closed = false;
  /** The longest answer SDP sent, bytes. */
  longestAnswer = 0;
  /** Answers the server refused as too many (and that were sent again). */
  rateLimited = 0;
  /** Why the last offer was not answered, if it was not. */
  error: string | undefined;

  constructor(url: string, media: Media) {
    this.media = media;
    this.#ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.#ws.onopen = () => resolve();
      this.#ws.onerror = () => reject(new Error(`Cannot connect to ${url}`));
    });
    this.#ws.onclose = () => this.closed = true;
    this.#ws.onmessage = (ev) => this.#frame(JSON.parse(String(ev.data)));
  }

  /** Sends a request and waits for its reply. */
  request(frame: Frame): Promise<Frame> {
    const ref = `b${++this.#ref}`;
    this.#ws.send(JSON.stringify({ ...frame, ref }));
    return new Promise((resolve) => this.#waiting.set(ref, resolve));
  }

  #frame(frame: Frame): void {
    const ref = frame.ref as string | undefined;
    if (ref !== undefined) {
      this.#waiting.get(ref)?.(frame);
      this.#waiting.delete(ref);
      return;
    }
    if (frame.type === "ping") this.#ws.send('{"type":"pong"}');
    if (frame.type === "voice_offer") {
      this.pending++;
      this.#offers = this.#offers.then(() => this.#answer(frame)).catch((error) => {
        this.error = String(error);
      }).finally(() => this.pending--);
    }
  }

  async #answer(offer: Frame): Promise<void> {
    const sdp = String(offer.sdp);
    const answer = await this.media.answer(sdp);
    const frame = { type: "voice_answer", room: String(offer.room), sdp: answer };
    let ack = await this.request(frame);
    // voice_answer is rate-limited per session (a burst of 10, then 5 a second): when others join
    // faster than that, answer again after the wait, as the offer still waits for its answer.
    for (let tries = 0; ack.type === "error" && ack.code === "rate_limited" && tries < 5; tries++) {
      this.rateLimited++;
      await sleep(1000 * Number(ack.retryAfter ?? 1));
      ack = await this.request(frame);
    }
    if (ack.type === "error") throw new Error(`voice_answer refused: ${ack.message}`);
    this.answeredLines = (sdp.match(/^m=/gm) ?? []).length;
    this.longestAnswer = Math.max(this.longestAnswer, answer.length);
  }

  async close(): Promise<void> {
    this.#ws.close();
    await this.media.close();
  }
}

/**
 * A join that never settled: the server sent no offer (or took no answer) within the timeout. A
 * measurement after it would measure the driver's wait, not the forwarding unit.
 */
export class VoiceStall extends Error {
  override name = "VoiceStall";
}

/** The least time between two joins, ms. */
const JOIN_GAP_MS = 250;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the scenario against the server at `url` (its `/ws`).
 *
 * @param url the WebSocket URL, `ws://HOST:PORT/ws`
 * @param options speakers, listeners, how long to measure, the listeners' library
 */
export async function runVoice(url: string, options: VoiceOptions): Promise<VoiceResult> {
  const w = await loadWerift();
  const kind = options.listener ?? "libdatachannel";
  const ndc = kind === "libdatachannel" ? (await import("node-datachannel")).default : undefined;
  const room = options.room ?? "#bench-voice";
  const joinTimeout = options.joinTimeoutMs ?? 10_000;
  const log = options.log ?? (() => {});
  const latency = new Histogram();
  const window = { from: Infinity, to: Infinity };
  const peers: BenchPeer[] = [];
  const ears: Ear[] = [];
  const speakers: WeriftMedia[] = [];
  const total = options.speakers + options.listeners;
  let sent = 0;
  let joinMs = 0;
  let speak: ReturnType<typeof setInterval> | undefined;
  let connected = 0;
  const serverCpu = () =>
    options.serverPid === undefined ? Promise.resolve(0) : cpuSeconds(options.serverPid);
  let serverCpuS = 0;
  let measuredS = 0;
  try {
    const joinStart = performance.now();
    let lastJoin = -Infinity;
    for (let i = 0; i < total; i++) {
      const ear = new Ear(window, latency);
      const name = `v${i}-${crypto.randomUUID().slice(0, 6)}`;
      const media = i < options.speakers || ndc === undefined
        ? new WeriftMedia(w, ear)
        : new DatachannelMedia(ndc, name, ear, options.listenerPorts ?? [20000, 39999]);
      if (i < options.speakers) speakers.push(media as WeriftMedia);
      const peer = new BenchPeer(url, media);
      peers.push(peer);
      ears.push(ear);
      await peer.opened;
      await peer.request({ type: "hello", proto: 1 });
      await peer.request({ type: "nick", name });
      await peer.request({ type: "join", room });
      // At most 4 joins a second: each join makes every participant answer a new offer, and
      // voice_answer allows a session 5 a second.
      await sleep(Math.max(0, lastJoin + JOIN_GAP_MS - performance.now()));
      lastJoin = performance.now();
      const ack = await peer.request({ type: "voice_join", room });
      if (ack.type === "error") throw new Error(`Cannot join voice: ${ack.message}`);
      // Settled: every peer answered an offer of i + 1 m-lines (one per participant). Its ICE and
      // DTLS go on while the next one joins: only the signalling is one at a time.
      const deadline = performance.now() + joinTimeout;
      const settled = () => peers.every((p) => p.pending === 0 && p.answeredLines === i + 1);
      while (!settled() && performance.now() < deadline) await sleep(10);
      if (!settled()) {
        const behind = peers.filter((p) => p.answeredLines !== i + 1);
        const why = behind.find((p) => p.error !== undefined)?.error;
        throw new VoiceStall(
          `participant ${i + 1} of ${total}: ${behind.length} peers had no answered offer with ` +
            `all ${i + 1} participants after ${joinTimeout} ms${why ? ` (${why})` : ""}`,
        );
      }
    }
    // Every media connection up.
    const deadline = performance.now() + joinTimeout;
    while (peers.some((p) => !p.media.connected) && performance.now() < deadline) await sleep(20);
    const down = peers.filter((p) => !p.media.connected).length;
    if (down > 0) {
      log(`  voice: ${down} of ${total} media connections not up after ${joinTimeout} ms`);
    }
    joinMs = performance.now() - joinStart;
    let seq = 0;
    speak = setInterval(() => {
      seq++;
      for (const [i, s] of speakers.entries()) s.speak(i, seq);
    }, 20);
    await sleep(1000); // every stream's first packets
    window.from = seq + 1;
    const cpu0 = await serverCpu();
    const t0 = performance.now();
    await sleep(options.ms);
    window.to = seq;
    serverCpuS = (await serverCpu()) - cpu0;
    measuredS = (performance.now() - t0) / 1000;
    sent = window.to - window.from + 1;
    await sleep(500); // the last packets' way
    connected = peers.filter((p) => p.media.connected).length;
  } finally {
    clearInterval(speak);
    await Promise.all(peers.map((p) => p.close().catch(() => {})));
  }
  let received = 0;
  let silent = 0;
  for (const [j, ear] of ears.entries()) {
    for (let s = 0; s < options.speakers; s++) {
      if (s === j) continue;
      const n = ear.heard.get(s)?.size ?? 0;
      received += n;
      if (n === 0) silent++;
    }
  }
  const streams = options.speakers * (total - 1);
  const expected = sent * streams;
  return {
    speakers: options.speakers,
    listeners: options.listeners,
    listener: kind,
    streams,
    connected,
    silent,
    sent,
    expected,
    received,
    lost: expected - received,
    lossPercent: expected === 0 ? 0 : 100 * (expected - received) / expected,
    p50Ms: latency.percentile(50) / 1000,
    p99Ms: latency.percentile(99) / 1000,
    maxMs: latency.max / 1000,
    joinMs: Math.round(joinMs),
    rateLimited: peers.reduce((n, p) => n + p.rateLimited, 0),
    longestAnswer: Math.max(0, ...peers.map((p) => p.longestAnswer)),
    serverCpuS,
    measuredS,
  };
}

if (import.meta.main) {
  const [
    url = "ws://127.0.0.1:8080/ws",
    speakers = "1",
    listeners = "10",
    seconds = "10",
    listener = "libdatachannel",
  ] = Deno.args;
  const result = await runVoice(url, {
    speakers: Number(speakers),
    listeners: Number(listeners),
    ms: Number(seconds) * 1000,
    listener: listener as ListenerKind,
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(result));
  // libdatachannel's threads would keep the process alive (and its cleanup() crashed it here).
  Deno.exit(0);
}
