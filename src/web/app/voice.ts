/// <reference lib="dom" />
/**
 * Voice in the browser: the microphone, one `RTCPeerConnection` to the server's forwarding unit,
 * an `<audio>` per person heard (with its own volume), and who speaks (an analyser per stream).
 * The server offers and this answers (docs/protocol.md, "Voice"); a new offer comes whenever
 * someone joins or leaves the room's voice. One room's voice at a time.
 *
 * @module
 */

import type { VoiceEvent } from "../../client/core/frames.ts";
import type { VoiceClientFrame, VoiceParticipant } from "../../protocol/frames.ts";

/** What voice needs of the chat: its requests and its voice events. */
export interface VoicePort {
  /** Sends a voice request; rejects with the server's error. */
  request(frame: VoiceClientFrame): Promise<unknown>;
  /** Calls `listener` with every voice event; returns what stops it. */
  listen(listener: (event: VoiceEvent) => void): () => void;
}

/** What the voice bar shows. */
export interface VoiceView {
  /** The room whose voice this page is in (or joining). */
  room: string | undefined;
  /** Connecting: the microphone is asked for, or the first offer has not been answered. */
  joining: boolean;
  muted: boolean;
  deafened: boolean;
  /** Push-to-talk: muted except while `pttKey` is held. */
  pushToTalk: boolean;
  /** The key (a `KeyboardEvent.code`) held to talk. */
  pttKey: string;
  /** Who is in each room's voice, by lower-cased room name. */
  participants: Record<string, VoiceParticipant[]>;
  /** Who speaks now (you included, by your name), by name. */
  speaking: string[];
  /** The volume of each person heard, 0 to 1, by name. */
  volumes: Record<string, number>;
  /** The last problem, to show. */
  error: string | undefined;
  /** The direct call of this page: ringing here, being placed, or under way. */
  call: { id: string; with: string; state: "incoming" | "outgoing" | "active" } | undefined;
  /** How the last call ended, to show. */
  callNote: string | undefined;
}

interface Heard {
  track: MediaStreamTrack;
  audio: HTMLAudioElement;
  analyser: AnalyserNode | undefined;
}

const SPEAKING_RMS = 0.01;

/** Inputs nobody types text into: the push-to-talk key works while one has the focus. */
const NOT_TYPED = new Set(["checkbox", "radio", "button", "range", "submit", "reset"]);

/** The voice controller of one page. */
export class VoiceClient {
  readonly #port: VoicePort;
  readonly #me: () => string;
  #view: VoiceView = {
    room: undefined,
    joining: false,
    muted: false,
    deafened: false,
    pushToTalk: false,
    pttKey: "Backquote",
    participants: {},
    speaking: [],
    volumes: {},
    error: undefined,
    call: undefined,
    callNote: undefined,
  };
  readonly #listeners = new Set<() => void>();
  #pc: RTCPeerConnection | undefined;
  #mic: MediaStream | undefined;
  #micAnalyser: AnalyserNode | undefined;
  #ctx: AudioContext | undefined;
  readonly #heard = new Map<string, Heard>();
  #offers: Promise<void> = Promise.resolve();
  #meter: ReturnType<typeof setInterval> | undefined;
  #holding = false;

  /**
   * @param port the chat's voice requests and events
   * @param me your name now
   */
  constructor(port: VoicePort, me: () => string) {
    this.#port = port;
    this.#me = me;
    port.listen((event) => this.#onEvent(event));
    addEventListener("keydown", (ev) => this.#key(ev, true));
    addEventListener("keyup", (ev) => this.#key(ev, false));
    addEventListener("blur", () => this.#talk(false));
  }

  /** What to show. */
  get view(): VoiceView {
    return this.#view;
  }

  /** Calls `listener` on every change; returns what stops it. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Asks who is in a room's voice (when its bar first shows). */
  async refresh(room: string): Promise<void> {
    try {
      const ack = await this.#port.request({ type: "voice_who", room }) as {
        room: string;
        participants: VoiceParticipant[];
      };
      this.#setParticipants(ack.room, ack.participants);
    } catch {
      // not in the room (yet): nothing to show
    }
  }

  /**
   * Joins a room's voice (leaving another's first): asks for the microphone, then the server
   * (`start`: the request that brings the offer; `voice_join` unless a call's).
   */
  async join(room: string, start?: () => Promise<unknown>): Promise<void> {
    if (this.#view.room !== undefined) await this.leave();
    this.#update({ room, joining: true, error: undefined, muted: false, speaking: [] });
    try {
      this.#mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
    } catch (error) {
      this.#cleanUp();
      this.#update({ error: `Cannot use the microphone: ${describe(error)}` });
      return;
    }
    this.#ctx = new AudioContext();
    void this.#ctx.resume().catch(() => {});
    this.#micAnalyser = this.#analyse(this.#mic);
    // TURN credentials, when the server has a relay for browsers behind strict NAT.
    const servers = await this.#port.request({ type: "voice_servers" }).catch(() => undefined) as
      | { iceServers?: RTCIceServer[] }
      | undefined;
    if (this.#view.room !== room) return;
    const pc = new RTCPeerConnection({ iceServers: servers?.iceServers ?? [] });
    this.#pc = pc;
    pc.onicecandidate = (ev) => {
      if (this.#pc !== pc) return;
      const frame: VoiceClientFrame = {
        type: "voice_ice",
        room,
        candidate: ev.candidate?.candidate ?? "",
      };
      if (ev.candidate?.sdpMid) frame.mid = ev.candidate.sdpMid;
      this.#port.request(frame).catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (this.#pc === pc && pc.connectionState === "failed") {
        this.#cleanUp();
        this.#update({ error: "The voice connection failed" });
      }
    };
    this.#applyMic();
    this.#startMeter();
    try {
      const ack = await (start ?? (() => this.#port.request({ type: "voice_join", room })))() as {
        room?: string;
        participants?: VoiceParticipant[];
      };
      if (ack?.room !== undefined && ack.participants !== undefined) {
        this.#setParticipants(ack.room, ack.participants);
      }
    } catch (error) {
      this.#cleanUp();
      this.#update({ error: describe(error) });
    }
  }

  /** Leaves the room's voice. */
  async leave(): Promise<void> {
    const room = this.#view.room;
    if (room === undefined) return;
    this.#cleanUp();
    this.#update({});
    await this.#port.request({ type: "voice_leave", room }).catch(() => {});
  }

  /** Calls `name`: their devices ring; the microphone is ready when they accept. */
  async call(name: string): Promise<void> {
    try {
      const ack = await this.#port.request({ type: "call", to: name }) as {
        call: string;
        to: string;
      };
      this.#update({
        call: { id: ack.call, with: ack.to, state: "outgoing" },
        callNote: undefined,
      });
      await this.join(`call:${ack.call}`, () => Promise.resolve());
    } catch (error) {
      this.#update({ callNote: `Cannot call ${name}: ${describe(error)}` });
    }
  }

  /** Accepts the call ringing here. */
  async acceptCall(): Promise<void> {
    const call = this.#view.call;
    if (call?.state !== "incoming") return;
    this.#update({ call: { ...call, state: "active" } });
    await this.join(
      `call:${call.id}`,
      () => this.#port.request({ type: "call_accept", call: call.id }),
    );
    if (this.#view.room === undefined) this.#update({ call: undefined });
  }

  /** Declines the call ringing here (on every device). */
  declineCall(): void {
    const call = this.#view.call;
    if (call?.state !== "incoming") return;
    this.#update({ call: undefined });
    this.#port.request({ type: "call_decline", call: call.id }).catch(() => {});
  }

  /** Hangs up (or cancels the call being placed). */
  hangUp(): void {
    const call = this.#view.call;
    if (call === undefined || call.state === "incoming") return;
    if (this.#view.room === `call:${call.id}`) this.#cleanUp();
    this.#update({ call: undefined, callNote: "Call ended" });
    this.#port.request({ type: "call_hangup", call: call.id }).catch(() => {});
  }

  /**
   * The chat connection dropped: the server has ended this session's voice and call, so the
   * media ends here too (join again once reconnected).
   */
  disconnected(): void {
    if (this.#view.room === undefined && this.#view.call === undefined) return;
    const wasIn = this.#view.room !== undefined;
    this.#cleanUp();
    this.#update({
      call: undefined,
      error: wasIn ? "Voice ended: the connection to the server dropped" : this.#view.error,
    });
  }

  /** Mutes or unmutes your microphone (for everyone: the server drops a muted one's audio). */
  setMuted(muted: boolean): void {
    this.#update({ muted });
    this.#applyMic();
    this.#tell({ muted: !this.#sending() });
  }

  /** Deafens (hear nobody, and send nothing) or undeafens (back to muted or not, as before). */
  setDeafened(deafened: boolean): void {
    this.#update({ deafened });
    for (const heard of this.#heard.values()) heard.audio.muted = deafened;
    this.#applyMic();
    this.#tell({ deafened, muted: !this.#sending() });
  }

  /** Turns push-to-talk on or off, and picks its key. */
  setPushToTalk(on: boolean, key = this.#view.pttKey): void {
    this.#update({ pushToTalk: on, pttKey: key });
    this.#holding = false;
    this.#applyMic();
    this.#tell({ muted: !this.#sending() });
  }

  /** Sets how loud one person is heard, 0 to 1. */
  setVolume(name: string, volume: number): void {
    const v = Math.min(1, Math.max(0, volume));
    this.#update({ volumes: { ...this.#view.volumes, [name]: v } });
    const heard = this.#heard.get(name);
    if (heard !== undefined) heard.audio.volume = v;
  }

  // ---- internals ----

  #update(change: Partial<VoiceView>): void {
    this.#view = { ...this.#view, ...change };
    for (const listener of this.#listeners) listener();
  }

  #setParticipants(room: string, participants: VoiceParticipant[]): void {
    this.#update({
      participants: { ...this.#view.participants, [room.toLowerCase()]: participants },
    });
  }

  /** Whether the microphone goes out now. */
  #sending(): boolean {
    const v = this.#view;
    if (v.muted || v.deafened) return false;
    return !v.pushToTalk || this.#holding;
  }

  #applyMic(): void {
    for (const track of this.#mic?.getAudioTracks() ?? []) track.enabled = this.#sending();
  }

  #tell(state: { muted?: boolean; deafened?: boolean }): void {
    const room = this.#view.room;
    if (room === undefined || this.#pc === undefined || this.#view.joining) return;
    this.#port.request({ type: "voice_mute", room, ...state }).catch((error) =>
      this.#update({ error: describe(error) })
    );
  }

  #key(ev: KeyboardEvent, down: boolean): void {
    if (!this.#view.pushToTalk || this.#view.room === undefined || ev.code !== this.#view.pttKey) {
      return;
    }
    const target = ev.target as HTMLElement | null;
    const typing = target instanceof HTMLTextAreaElement || target?.isContentEditable === true ||
      target instanceof HTMLInputElement && !NOT_TYPED.has(target.type);
    if (typing && ev.key.length === 1) return; // a printable key typed into a field
    if (down && ev.repeat) return;
    ev.preventDefault();
    this.#talk(down);
  }

  #talk(holding: boolean): void {
    if (!this.#view.pushToTalk || this.#holding === holding) return;
    this.#holding = holding;
    this.#applyMic();
    this.#tell({ muted: !this.#sending() });
  }

  #onEvent(event: VoiceEvent): void {
    switch (event.type) {
      case "voice_state":
        return this.#setParticipants(event.room, event.participants);
      case "voice_offer":
        if (event.room !== this.#view.room || this.#pc === undefined) return;
        this.#offers = this.#offers.then(() => this.#answer(event.sdp, event.streams)).catch(
          (error) => this.#update({ error: `Voice: ${describe(error)}` }),
        );
        return;
      case "call_state":
        return this.#onCall(event);
      case "voice_ended":
        if (event.room !== this.#view.room) return;
        this.#cleanUp();
        this.#update({ error: `You left voice in ${event.room}: ${event.reason}` });
        return;
    }
  }

  #onCall(event: Extract<VoiceEvent, { type: "call_state" }>): void {
    const me = this.#me().toLowerCase();
    const mine = this.#view.call?.id === event.call;
    const inIt = this.#view.room === `call:${event.call}`;
    if (event.state === "ringing") {
      if (event.to.toLowerCase() === me && this.#view.call === undefined) {
        this.#update({
          call: { id: event.call, with: event.from, state: "incoming" },
          callNote: undefined,
        });
      }
      return;
    }
    if (event.state === "active") {
      if (!mine) return;
      // Accepted on another device of yours: stop ringing here.
      if (!inIt && this.#view.call?.state === "incoming") this.#update({ call: undefined });
      else this.#update({ call: { ...this.#view.call!, state: "active" } });
      return;
    }
    if (!mine) return;
    if (inIt) this.#cleanUp();
    this.#update({ call: undefined, callNote: `Call ended: ${event.reason ?? "over"}` });
  }

  async #answer(sdp: string, streams: Record<string, string>): Promise<void> {
    const pc = this.#pc;
    const room = this.#view.room;
    if (pc === undefined || room === undefined) return;
    await pc.setRemoteDescription({ type: "offer", sdp });
    const mic = pc.getTransceivers().find((t) => t.mid === "0");
    const track = this.#mic?.getAudioTracks()[0];
    if (mic !== undefined && track !== undefined) {
      mic.direction = "sendonly";
      await mic.sender.replaceTrack(track);
    }
    await pc.setLocalDescription(await pc.createAnswer());
    if (this.#pc !== pc) return;
    this.#bind(pc, streams);
    await this.#port.request({ type: "voice_answer", room, sdp: pc.localDescription!.sdp });
    if (this.#view.joining) {
      this.#update({ joining: false });
      if (!this.#sending()) this.#tell({ muted: true });
    }
  }

  /** Plays each named stream in its own `<audio>`; stops those no longer offered. */
  #bind(pc: RTCPeerConnection, streams: Record<string, string>): void {
    const now = new Map<string, MediaStreamTrack>();
    for (const t of pc.getTransceivers()) {
      const name = t.mid === null ? undefined : streams[t.mid];
      if (name !== undefined) now.set(name, t.receiver.track);
    }
    for (const [name, heard] of this.#heard) {
      if (now.get(name) !== heard.track) this.#stopHearing(name);
    }
    for (const [name, track] of now) {
      if (this.#heard.has(name)) continue;
      const stream = new MediaStream([track]);
      const audio = document.createElement("audio");
      audio.autoplay = true;
      audio.srcObject = stream;
      audio.dataset.voiceName = name;
      audio.volume = this.#view.volumes[name] ?? 1;
      audio.muted = this.#view.deafened;
      audioBox().append(audio);
      void audio.play().catch(() => {});
      this.#heard.set(name, { track, audio, analyser: this.#analyse(stream) });
    }
  }

  #stopHearing(name: string): void {
    const heard = this.#heard.get(name);
    if (heard === undefined) return;
    heard.audio.srcObject = null;
    heard.audio.remove();
    heard.analyser?.disconnect();
    this.#heard.delete(name);
  }

  #analyse(stream: MediaStream): AnalyserNode | undefined {
    if (this.#ctx === undefined) return undefined;
    const analyser = this.#ctx.createAnalyser();
    analyser.fftSize = 512;
    this.#ctx.createMediaStreamSource(stream).connect(analyser);
    return analyser;
  }

  #startMeter(): void {
    const samples = new Float32Array(512);
    const loud = (analyser: AnalyserNode | undefined) => {
      if (analyser === undefined) return false;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      return Math.sqrt(sum / samples.length) > SPEAKING_RMS;
    };
    this.#meter = setInterval(() => {
      const speaking: string[] = [];
      if (this.#sending() && loud(this.#micAnalyser)) speaking.push(this.#me());
      for (const [name, heard] of this.#heard) if (loud(heard.analyser)) speaking.push(name);
      speaking.sort();
      if (speaking.join("\n") !== this.#view.speaking.join("\n")) this.#update({ speaking });
    }, 150);
  }

  #cleanUp(): void {
    clearInterval(this.#meter);
    this.#meter = undefined;
    for (const name of [...this.#heard.keys()]) this.#stopHearing(name);
    this.#pc?.close();
    this.#pc = undefined;
    for (const track of this.#mic?.getTracks() ?? []) track.stop();
    this.#mic = undefined;
    this.#micAnalyser = undefined;
    void this.#ctx?.close().catch(() => {});
    this.#ctx = undefined;
    this.#holding = false;
    this.#offers = Promise.resolve();
    this.#view = { ...this.#view, room: undefined, joining: false, speaking: [] };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The hidden element that holds the `<audio>` of each person heard. */
function audioBox(): HTMLElement {
  let box = document.getElementById("voice-audio");
  if (box === null) {
    box = document.createElement("div");
    box.id = "voice-audio";
    box.hidden = true;
    document.body.append(box);
  }
  return box;
}
