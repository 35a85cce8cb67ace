/**
 * The voice scenario: werift peers in this process join one room's voice on a running parley
 * server (over its WebSocket, as the web app does), some of them speaking: each speaker sends an
 * Opus-sized RTP packet every 20 ms whose payload starts with the time it was sent, and every
 * listener reads that time back from each forwarded packet. So it measures what the forwarding
 * unit adds: latency (receive time minus send time, one clock), loss (sequence gaps per stream)
 * and how many streams it forwards, as participants grow.
 *
 * ```
 * deno run -A bench/voice.ts ws://127.0.0.1:8080/ws 1 50 10   # 1 speaker, 50 listeners, 10 s
 * ```
 *
 * @module
 */

import type { MediaStreamTrack, RTCPeerConnection } from "werift";
import { Histogram } from "./histogram.ts";

/** What one run measured. */
export interface VoiceResult {
  speakers: number;
  listeners: number;
  /** Forwarded streams, speaker to listener. */
  streams: number;
  /** Packets every listener received, in all. */
  received: number;
  /** Packets missing from the sequences received. */
  lost: number;
  /** Added latency, ms: median and 99th percentile. */
  p50Ms: number;
  p99Ms: number;
}

type Werift = typeof import("werift");

interface Frame {
  type: string;
  [key: string]: unknown;
}

/** One participant: a WebSocket session and a werift peer connection that answers offers. */
class BenchPeer {
  readonly #ws: WebSocket;
  readonly #w: Werift;
  readonly pc: RTCPeerConnection;
  readonly mic: MediaStreamTrack;
  #offers: Promise<void> = Promise.resolve();
  readonly opened: Promise<void>;
  readonly #waiting = new Map<string, (f: Frame) => void>();
  #ref = 0;

  constructor(w: Werift, url: string, onPacket: (rtp: Uint8Array) => void) {
    this.#w = w;
    this.#ws = new WebSocket(url);
    this.pc = new w.RTCPeerConnection({
      codecs: {
        audio: [
          new w.RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 }),
        ],
      },
      iceAdditionalHostAddresses: ["127.0.0.1"],
      iceUseIpv6: false,
      iceServers: [],
    });
    this.mic = new w.MediaStreamTrack({ kind: "audio" });
    this.pc.onTransceiverAdded.subscribe((t) => {
      t.onTrack.subscribe((track) =>
        track.onReceiveRtp.subscribe((rtp) => onPacket(rtp.serialize()))
      );
    });
    this.opened = new Promise((resolve, reject) => {
      this.#ws.onopen = () => resolve();
      this.#ws.onerror = () => reject(new Error(`Cannot connect to ${url}`));
    });
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
      this.#offers = this.#offers.then(() => this.#answer(frame)).catch(() => {});
    }
  }

  async #answer(offer: Frame): Promise<void> {
    await this.pc.setRemoteDescription({ type: "offer", sdp: String(offer.sdp) });
    const mic = this.pc.getTransceivers().find((t) => t.mid === "0");
    if (mic !== undefined && mic.sender.track === undefined) {
      mic.setDirection("sendonly");
      await mic.sender.replaceTrack(this.mic);
    }
    for (const t of this.pc.iceTransports) {
      const c = (t as unknown as { connection?: { stunServer?: unknown } }).connection;
      if (c !== undefined) c.stunServer = undefined; // no public STUN server to wait for
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    const sdp = this.pc.localDescription!.sdp;
    await this.request({ type: "voice_answer", room: String(offer.room), sdp });
  }

  /** Sends one packet from the microphone: the send time, then padding to an Opus frame's size. */
  speak(seq: number): void {
    const payload = new Uint8Array(80);
    new DataView(payload.buffer).setFloat64(0, performance.now());
    const header = new this.#w.RtpHeader({
      payloadType: 96,
      sequenceNumber: seq & 0xffff,
      timestamp: (seq * 960) >>> 0,
      ssrc: 1234,
    });
    this.mic.writeRtp(new this.#w.RtpPacket(header, payload as never));
  }

  async close(): Promise<void> {
    this.#ws.close();
    await this.pc.close();
  }
}

/**
 * Runs the scenario against the server at `url` (its `/ws`).
 *
 * @param url the WebSocket URL, `ws://HOST:PORT/ws`
 * @param options speakers, listeners, and how long to measure, in ms
 */
export async function runVoice(
  url: string,
  options: { speakers: number; listeners: number; ms: number; room?: string },
): Promise<VoiceResult> {
  const w = await import("werift");
  const room = options.room ?? "#bench-voice";
  const latency = new Histogram();
  let received = 0;
  let measuring = false;
  const peers: BenchPeer[] = [];
  const seqs: Map<string, number>[] = [];
  const lost = { n: 0 };
  const total = options.speakers + options.listeners;
  try {
    for (let i = 0; i < total; i++) {
      const last = new Map<string, number>();
      seqs.push(last);
      const peer = new BenchPeer(w, url, (rtp) => {
        if (!measuring || rtp.length < 20) return;
        const view = new DataView(rtp.buffer, rtp.byteOffset, rtp.byteLength);
        const ssrc = String(view.getUint32(8));
        const seq = view.getUint16(2);
        const before = last.get(ssrc);
        if (before !== undefined) lost.n += Math.max(0, ((seq - before + 0x10000) & 0xffff) - 1);
        last.set(ssrc, seq);
        received++;
        const sent = view.getFloat64(12); // after the 12-byte RTP header
        latency.record(Math.max(0, Math.round((performance.now() - sent) * 1000)));
      });
      peers.push(peer);
      await peer.opened;
      await peer.request({ type: "hello", proto: 1 });
      await peer.request({ type: "nick", name: `v${i}-${crypto.randomUUID().slice(0, 6)}` });
      await peer.request({ type: "join", room });
      const ack = await peer.request({ type: "voice_join", room });
      if (ack.type === "error") throw new Error(`Cannot join voice: ${ack.message}`);
    }
    // Wait until every listener's connection is up.
    const deadline = Date.now() + 30_000;
    while (peers.some((p) => p.pc.connectionState !== "connected") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    let seq = 0;
    const speak = setInterval(() => {
      seq++;
      for (let i = 0; i < options.speakers; i++) peers[i]!.speak(seq);
    }, 20);
    await new Promise((r) => setTimeout(r, 1000)); // every stream's first packets
    measuring = true;
    await new Promise((r) => setTimeout(r, options.ms));
    measuring = false;
    clearInterval(speak);
  } finally {
    await Promise.all(peers.map((p) => p.close().catch(() => {})));
  }
  return {
    speakers: options.speakers,
    listeners: options.listeners,
    streams: options.speakers * (total - 1),
    received,
    lost: lost.n,
    p50Ms: latency.percentile(50) / 1000,
    p99Ms: latency.percentile(99) / 1000,
  };
}

if (import.meta.main) {
  const [url = "ws://127.0.0.1:8080/ws", speakers = "1", listeners = "10", seconds = "10"] =
    Deno.args;
  const result = await runVoice(url, {
    speakers: Number(speakers),
    listeners: Number(listeners),
    ms: Number(seconds) * 1000,
  });
  console.log(JSON.stringify(result));
}
