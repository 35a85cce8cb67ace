/**
 * Fixtures for the hostile-input robustness suite (`robustness_test.ts`): a seeded PRNG, a
 * byte-level TCP client, a hand-rolled WebSocket client (masked or not, fragmented, oversized),
 * a browser-style WebSocket client, a canary that keeps measuring round trips while an attack
 * runs, the server's descriptor and memory counts from /proc, and checks of its log. Every wait
 * is bounded in time.
 *
 * @module
 */

import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { concatBytes } from "../src/bytes.ts";
import { RawClient } from "./_helpers.ts";
import type { ServerProcess } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JSON frame as the tests see it. */
export type Frame = Record<string, unknown>;

// ---- sizes and randomness ----

/** The suite's size multiplier: `PARLEY_ROBUSTNESS_SCALE` (1 when unset). */
export const SCALE: number = (() => {
  const raw = Number(Deno.env.get("PARLEY_ROBUSTNESS_SCALE") ?? "1");
  return Number.isFinite(raw) && raw > 0 ? raw : 1;
})();

/**
 * Scales a count by {@linkcode SCALE}.
 *
 * @param n The default-size count.
 * @returns At least 1.
 */
export function scaled(n: number): number {
  return Math.max(1, Math.round(n * SCALE));
}

/** Waits `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves with `p`'s value, or `undefined` after `ms`.
 *
 * @param p What to wait for.
 * @param ms How long.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The fuzzing seed: `PARLEY_FUZZ_SEED` when set, else a fresh random one.
 *
 * @returns A 32-bit unsigned seed.
 */
export function fuzzSeed(): number {
  const env = Deno.env.get("PARLEY_FUZZ_SEED");
  if (env !== undefined && env !== "") return Number(env) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** A small seeded PRNG (sfc32 seeded through splitmix32): the same seed, the same run. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** @param seed any 32-bit number */
  constructor(seed: number) {
    let s = seed >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = mix();
    this.#b = mix();
    this.#c = mix();
    this.#d = mix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A number in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

// ---- the server process ----

/**
 * The number of open descriptors of process `pid` (entries of `/proc/PID/fd`).
 *
 * @param pid The process.
 */
export async function fdCount(pid: number): Promise<number> {
  // Deno reads /proc only with --allow-all: ask ls, which --allow-run covers.
  const { code, stdout } = await new Deno.Command("ls", {
    args: ["-1", `/proc/${pid}/fd`],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 0, `cannot list /proc/${pid}/fd`);
  return decoder.decode(stdout).split("\n").filter((l) => l !== "").length;
}

/**
 * The resident set size of process `pid`, in bytes (`VmRSS` of `/proc/PID/status`).
 *
 * @param pid The process.
 */
export async function rssBytes(pid: number): Promise<number> {
  const { code, stdout } = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 0, `cannot read /proc/${pid}/status`);
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(decoder.decode(stdout));
  assert.ok(m, "VmRSS in /proc/PID/status");
  return Number(m[1]) * 1024;
}

/**
 * Whether the child process is still running (its status has not resolved within 50 ms).
 *
 * @param child The process.
 */
export async function alive(child: Deno.ChildProcess): Promise<boolean> {
  const exited = await within(child.status.then(() => true), 50);
  return exited === undefined;
}

/**
 * Waits until `fdCount(pid)` is within `slack` of `target`, up to `ms`.
 *
 * @returns The last count seen.
 */
export async function settleFds(pid: number, target: number, slack: number, ms: number) {
  const deadline = Date.now() + ms;
  let n = await fdCount(pid);
  while (Math.abs(n - target) > slack && Date.now() < deadline) {
    await delay(100);
    n = await fdCount(pid);
  }
  return n;
}

/**
 * The lines of a server log that show something went wrong inside it: error or fatal level
 * lines (text or JSON format), stack-trace frames, uncaught exceptions.
 *
 * @param stderr Everything the server logged.
 */
export function logProblems(stderr: string): string[] {
  return stderr.split("\n").filter((l) =>
    /\[(ERR|FTL)\]|"level":"(ERROR|FATAL)"|\b(ERROR|FATAL)\b/.test(l) ||
    /^\s+at\s.*(:\d+:\d+\)?|<anonymous>|\(native\))\s*$/.test(l) ||
    /Uncaught|panicked at/.test(l)
  );
}

// ---- raw bytes over TCP ----

/** Those waiting for news from a connection that is read in the background. */
class Waiters {
  #waiting: (() => void)[] = [];

  /** Wakes everyone waiting. */
  wake(): void {
    for (const w of this.#waiting.splice(0)) w();
  }

  /** Waits for the next {@linkcode Waiters.wake}, or `ms` (250 at the most: callers poll). */
  async sleep(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      timer = setTimeout(resolve, Math.min(ms, 250));
    });
    clearTimeout(timer);
  }
}

/** Closes `conn`, ignoring "closed already". */
function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}

/** A TCP connection read in the background into one growing buffer, for byte-level checks. */
export class ByteConn implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  #chunks: Uint8Array[] = [];
  #total = 0;
  #ended = false;
  #endedAt = 0;
  #reset = false;
  readonly #waiters = new Waiters();
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#reading = this.#read();
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<ByteConn> {
    return new ByteConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.#chunks.push(buf.slice(0, n));
        this.#total += n;
        this.#waiters.wake();
      }
    } catch (error) {
      this.#reset = error instanceof Deno.errors.ConnectionReset;
    } finally {
      this.#ended = true;
      this.#endedAt = Date.now();
      this.#waiters.wake();
    }
  }

  /** Whether the peer closed (or reset) the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  /** When it ended (`Date.now()`), 0 while open. */
  get endedAt(): number {
    return this.#endedAt;
  }

  /** Whether it ended with a reset. */
  get wasReset(): boolean {
    return this.#reset;
  }

  /** How many bytes arrived. */
  get received(): number {
    return this.#total;
  }

  /** Everything received so far. */
  bytes(): Uint8Array {
    return concatBytes(this.#chunks, this.#total);
  }

  /** Everything received so far, decoded leniently. */
  text(): string {
    return decoder.decode(this.bytes());
  }

  /**
   * Writes all of `data`.
   *
   * @returns false when the write failed (the peer is gone).
   */
  async write(data: Uint8Array | string): Promise<boolean> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      return true;
    } catch {
      return false;
    }
  }

  /** Waits until `pred` holds of the text received, the connection ends, or `ms` pass. */
  async waitFor(pred: (text: string) => boolean, ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (pred(this.text())) return true;
      if (this.#ended) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.#waiters.sleep(left);
    }
  }

  /** Waits until the peer closes, up to `ms`; returns whether it did. */
  async waitEnd(ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.#waiters.sleep(left);
    }
    return true;
  }

  /** Closes our side. */
  close(): void {
    closeConn(this.conn);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#reading;
  }
}

/** An HTTP response read off a raw socket. */
export interface RawResponse {
  /** The status code (0 when none arrived). */
  status: number;
  /** Everything received, head and body. */
  text: string;
  /** The header fields, names lower-cased. */
  headers: Map<string, string>;
  /** The body as received (not de-chunked). */
  body: string;
  /** Whether the server closed the connection (within the wait). */
  closed: boolean;
}

/** Parses the head of an HTTP response. */
export function parseResponse(text: string, closed: boolean): RawResponse {
  const end = text.indexOf("\r\n\r\n");
  const head = end === -1 ? text : text.slice(0, end);
  const lines = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return {
    status: m ? Number(m[1]) : 0,
    text,
    headers,
    body: end === -1 ? "" : text.slice(end + 4),
    closed,
  };
}

/**
 * Sends `request` (raw bytes) at once on a fresh connection and reads the response: until the
 * server closes, or, when `keepOpen`, until a complete response (by Content-Length) arrived.
 *
 * @param port Where.
 * @param request The raw request.
 * @param ms How long to wait.
 */
export async function rawHttp(
  port: number,
  request: string,
  ms = 3000,
): Promise<RawResponse> {
  await using c = await ByteConn.connect(port);
  await c.write(request);
  const closed = await c.waitEnd(ms);
  return parseResponse(c.text(), closed);
}

/** Whether `text` holds one complete HTTP response (head and a Content-Length body). */
export function completeResponse(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end === -1) return false;
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end + 2));
  if (m === null) {
    return /\r\ntransfer-encoding:\s*chunked/i.test(text) ? /\r\n0\r\n\r\n$/.test(text) : true;
  }
  return encoder.encode(text.slice(end + 4)).length >= Number(m[1]);
}

// ---- TLS ----

let helloCache: Uint8Array | undefined;

/**
 * A real TLS ClientHello, as `node:tls.connect` sends it (captured on a local listener).
 *
 * @returns The first TLS record the client wrote.
 */
export async function clientHello(): Promise<Uint8Array> {
  if (helloCache !== undefined) return helloCache;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const socket = tls.connect({
    port,
    host: "127.0.0.1",
    servername: "localhost",
    rejectUnauthorized: false,
  });
  socket.on("error", () => {});
  try {
    const conn = await listener.accept();
    const buf = new Uint8Array(64 * 1024);
    let n = 0;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const k = await within(conn.read(buf.subarray(n)), deadline - Date.now());
      if (k === undefined || k === null) break;
      n += k;
      if (n >= 5 && n >= 5 + ((buf[3]! << 8) | buf[4]!)) break;
    }
    conn.close();
    assert.ok(n > 5 && buf[0] === 0x16, "captured a TLS handshake record");
    helloCache = buf.slice(0, n);
    return helloCache;
  } finally {
    socket.destroy();
    listener.close();
  }
}

/** A node:net socket connected to 127.0.0.1:`port` (errors swallowed), once it connects. */
export function netConnect(port: number, ms = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("connect timed out"));
    }, ms);
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      resolve(socket);
    });
  });
}

/** A TLS connection over a node:net socket, so the socket can be reset under it. */
export interface TlsPair {
  /** The TCP socket (`resetAndDestroy()` sends an RST). */
  raw: net.Socket;
  /** The TLS socket on it. */
  tls: tls.TLSSocket;
}

/**
 * Connects with TLS to 127.0.0.1:`port` (any certificate) and waits for the handshake.
 *
 * @param port Where.
 * @param ms How long the handshake may take.
 */
export async function tlsOpen(port: number, ms = 5000): Promise<TlsPair> {
  const raw = await netConnect(port, ms);
  return await new Promise((resolve, reject) => {
    const t = tls.connect({ socket: raw, servername: "localhost", rejectUnauthorized: false });
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new Error("TLS handshake timed out"));
    }, ms);
    t.on("error", (error) => {
      clearTimeout(timer);
      raw.destroy();
      reject(error);
    });
    t.once("secureConnect", () => {
      clearTimeout(timer);
      t.removeAllListeners("error");
      t.on("error", () => {});
      resolve({ raw, tls: t });
    });
  });
}

/**
 * Sends a raw HTTP request over TLS and reads the answer until the server closes (or `ms`).
 *
 * @param port Where.
 * @param request The raw request.
 * @param ms How long to wait.
 */
export async function tlsHttp(port: number, request: string, ms = 3000): Promise<RawResponse> {
  const { raw, tls: t } = await tlsOpen(port, ms);
  let text = "";
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    t.on("data", (d) => text += String(d));
    t.on("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
    t.write(request);
  });
  raw.destroy();
  return parseResponse(text, closed);
}

/** Waits for the first data on a node socket (or its end), up to `ms`; true if data came. */
export function firstData(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), ms);
    const done = (got: boolean) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(got);
    };
    const onData = () => done(true);
    const onClose = () => done(false);
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

// ---- WebSocket, by hand ----

/** What a {@linkcode RawWs.open} handshake got. */
export interface WsHandshake {
  /** The HTTP status of the answer (101 when upgraded, 0 when none). */
  status: number;
  /** The response head (and body, when refused). */
  head: string;
  /** The upgraded connection, when the status was 101. */
  ws: RawWs | undefined;
}

/** Options for {@linkcode RawWs.open}. */
export interface WsOpenOptions {
  /** The `Host` header (default `127.0.0.1:PORT`). */
  host?: string;
  /** The `Origin` header (default: none). */
  origin?: string;
  /** The path (default `/ws`). */
  path?: string;
  /** How long to wait for the answer, in ms (default 5000). */
  timeoutMs?: number;
}

/**
 * A WebSocket client written over a raw socket, so tests can send what browsers never do:
 * unmasked frames, invalid UTF-8, fragments of any size, messages larger than any limit.
 */
export class RawWs implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  /** Text (and binary, decoded) messages received, in order, not yet consumed. */
  readonly messages: string[] = [];
  /** The close code the server sent (undefined until a close frame came). */
  closeCode: number | undefined;
  /** Whether the TCP connection ended. */
  ended = false;
  #buf: Uint8Array = new Uint8Array(0);
  #fragments: Uint8Array[] = [];
  readonly #waiters = new Waiters();
  readonly #reading: Promise<void>;
  #chain: Promise<void> = Promise.resolve();

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array) {
    this.conn = conn;
    this.#buf = leftover;
    this.#parse();
    this.#reading = this.#read();
  }

  /** Opens a WebSocket to `127.0.0.1:PORT/ws` with the given headers. */
  static async open(port: number, options: WsOpenOptions = {}): Promise<WsHandshake> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const lines = [
      `GET ${options.path ?? "/ws"} HTTP/1.1`,
      `Host: ${options.host ?? `127.0.0.1:${port}`}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...(options.origin === undefined ? [] : [`Origin: ${options.origin}`]),
    ];
    await conn.write(encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    let got: Uint8Array = new Uint8Array(0);
    const buf = new Uint8Array(16 * 1024);
    let end = -1;
    while (end === -1 && Date.now() < deadline) {
      const n = await within(conn.read(buf).catch(() => null), deadline - Date.now());
      if (n === undefined || n === null) break;
      got = concatBytes([got, buf.subarray(0, n)]);
      end = indexOfCrlfCrlf(got);
    }
    const headText = decoder.decode(end === -1 ? got : got.subarray(0, end));
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(headText);
    const status = m ? Number(m[1]) : 0;
    if (status !== 101) {
      // Read the refusal's body too, briefly.
      const more = await within(conn.read(buf).catch(() => null), 300);
      const tail = typeof more === "number" ? decoder.decode(buf.subarray(0, more)) : "";
      closeConn(conn);
      return { status, head: decoder.decode(got) + tail, ws: undefined };
    }
    return { status, head: headText, ws: new RawWs(conn, got.slice(end + 4)) };
  }

  /** Opens and asserts the upgrade succeeded. */
  static async connect(port: number, options: WsOpenOptions = {}): Promise<RawWs> {
    const { status, head, ws } = await RawWs.open(port, options);
    assert.equal(status, 101, `WebSocket upgrade refused: ${head}`);
    return ws!;
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.#buf = this.#buf.length === 0
          ? buf.slice(0, n)
          : concatBytes([this.#buf, buf.subarray(0, n)]);
        this.#parse();
        this.#waiters.wake();
      }
    } catch {
      // reset, or closed by us
    } finally {
      this.ended = true;
      this.#waiters.wake();
    }
  }

  #parse(): void {
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) return;
      const fin = (b[0]! & 0x80) !== 0;
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = (b[2]! << 8) | b[3]!;
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
        off = 10;
      }
      const maskKey = masked ? b.subarray(off, off + 4) : undefined;
      if (masked) off += 4;
      if (b.length < off + len) return;
      let payload = b.slice(off, off + len);
      if (maskKey !== undefined) payload = payload.map((x, i) => x ^ maskKey[i % 4]!);
      this.#buf = b.subarray(off + len);
      this.#onFrame(fin, opcode, payload);
    }
  }

  #onFrame(fin: boolean, opcode: number, payload: Uint8Array): void {
    if (opcode === 0x8) {
      this.closeCode = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1005;
      void this.sendFrame(true, 0x8, payload.subarray(0, 2)).then(() => this.close());
      return;
    }
    if (opcode === 0x9) {
      void this.sendFrame(true, 0xa, payload);
      return;
    }
    if (opcode === 0xa) return;
    this.#fragments.push(payload);
    if (fin) {
      const whole = this.#fragments.length === 1
        ? this.#fragments[0]!
        : concatBytes(this.#fragments);
      this.#fragments = [];
      this.messages.push(decoder.decode(whole));
    }
  }

  /**
   * Sends one frame (queued behind the ones before it).
   *
   * @param fin The FIN bit.
   * @param opcode 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong.
   * @param payload The payload.
   * @param masked Whether to mask it (clients must).
   * @returns false when the write failed.
   */
  sendFrame(fin: boolean, opcode: number, payload: Uint8Array, masked = true): Promise<boolean> {
    const frame = encodeFrame(fin, opcode, payload, masked);
    const p = this.#chain.then(async () => {
      let off = 0;
      while (off < frame.length) off += await this.conn.write(frame.subarray(off));
      return true;
    }).catch(() => false);
    this.#chain = p.then(() => {});
    return p;
  }

  /**
   * Sends a text message, split into `parts` fragments (1: one frame).
   *
   * @returns false when a write failed.
   */
  async sendText(text: string | Uint8Array, parts = 1, opcode = 0x1): Promise<boolean> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    if (parts <= 1) return await this.sendFrame(true, opcode, bytes);
    const size = Math.ceil(bytes.length / parts) || 1;
    let ok = true;
    for (let i = 0, start = 0; i < parts; i++, start += size) {
      const last = i === parts - 1;
      const chunk = bytes.subarray(
        start,
        last ? bytes.length : Math.min(bytes.length, start + size),
      );
      ok = await this.sendFrame(last, i === 0 ? opcode : 0x0, chunk) && ok;
    }
    return ok;
  }

  /** Sends a JSON frame as one text message. */
  send(frame: Frame): Promise<boolean> {
    return this.sendText(JSON.stringify(frame));
  }

  /** Returns the next JSON message matching `match` (dropping those before it). */
  async frame(match: (f: Frame) => boolean = () => true, ms = 5000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.messages.length > 0) {
        const m = this.messages.shift()!;
        let f: Frame;
        try {
          f = JSON.parse(m);
        } catch {
          continue;
        }
        if (match(f)) return f;
      }
      if (this.ended || this.closeCode !== undefined) {
        throw new Error(`WebSocket closed (${this.closeCode}) before the expected frame`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("Timed out waiting for a WebSocket frame");
      await this.#waiters.sleep(left);
    }
  }

  /** Waits for the server's close frame or the end of the connection; returns the code. */
  async closed(ms = 5000): Promise<number | undefined> {
    const deadline = Date.now() + ms;
    while (this.closeCode === undefined && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await this.#waiters.sleep(left);
    }
    if (this.closeCode === undefined) await within(this.#reading, 200);
    return this.closeCode ?? (this.ended ? 1006 : undefined);
  }

  /** Closes the TCP connection. */
  close(): void {
    closeConn(this.conn);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await within(this.#reading, 2000);
  }
}

/** Encodes one client WebSocket frame. */
export function encodeFrame(
  fin: boolean,
  opcode: number,
  payload: Uint8Array,
  masked = true,
  mask: Uint8Array = crypto.getRandomValues(new Uint8Array(4)),
): Uint8Array {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + (masked ? 4 : 0) + len);
  out[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
  out[1] = (masked ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (ext === 2) view.setUint16(2, len);
  if (ext === 8) view.setBigUint64(2, BigInt(len));
  let off = 2 + ext;
  if (masked) {
    out.set(mask, off);
    off += 4;
    for (let i = 0; i < len; i++) out[off + i] = payload[i]! ^ mask[i & 3]!;
  } else {
    out.set(payload, off);
  }
  return out;
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

// ---- WebSocket, as a browser would ----

/** A WebSocket client on the runtime's own implementation, collecting JSON frames. */
export class WsJson implements AsyncDisposable {
  readonly socket: WebSocket;
  /** Frames received and not yet consumed. */
  readonly frames: Frame[] = [];
  /** Every frame received, consumed or not (for counting). */
  readonly all: Frame[] = [];
  readonly #waiters = new Waiters();
  readonly #closed = Promise.withResolvers<CloseEvent>();
  /** The close event, once closed. */
  closeEvent: CloseEvent | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.onmessage = (e) => {
      const f = JSON.parse(String(e.data));
      this.frames.push(f);
      this.all.push(f);
      this.#waiters.wake();
    };
    socket.onclose = (e) => {
      this.closeEvent = e;
      this.#closed.resolve(e);
      this.#waiters.wake();
    };
  }

  /** Opens `ws://127.0.0.1:PORT/ws`. */
  static async open(port: number, headers?: Record<string, string>): Promise<WsJson> {
    // deno-lint-ignore no-explicit-any
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers } as any);
    const client = new WsJson(socket);
    const opened = await within(
      new Promise<boolean>((resolve) => {
        socket.onopen = () => resolve(true);
        socket.onerror = () => resolve(false);
      }),
      5000,
    );
    if (opened !== true) {
      socket.close();
      throw new Error("WebSocket refused");
    }
    return client;
  }

  /** Opens, sends hello and waits for the welcome. */
  static async hello(port: number): Promise<WsJson> {
    const ws = await WsJson.open(port);
    ws.send({ type: "hello", proto: 1, ref: "hello" });
    await ws.frame((f) => f.ref === "hello" && f.type === "welcome");
    return ws;
  }

  /** Whether the socket is closed. */
  get isClosed(): boolean {
    return this.closeEvent !== undefined;
  }

  /** Sends a JSON frame. */
  send(frame: Frame): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** Returns the next frame matching `match`, dropping those before it. */
  async frame(match: (f: Frame) => boolean = () => true, ms = 5000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i !== -1) return this.frames.splice(0, i + 1).at(-1)!;
      this.frames.length = 0;
      if (this.closeEvent !== undefined) {
        throw new Error(`WebSocket closed (${this.closeEvent.code}) before the expected frame`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("Timed out waiting for a WebSocket frame");
      await this.#waiters.sleep(left);
    }
  }

  /** Waits for the close, up to `ms`. */
  closed(ms = 5000): Promise<CloseEvent | undefined> {
    return within(this.#closed.promise, ms);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    await within(this.#closed.promise, 2000);
  }
}

// ---- JSON helpers over RawClient ----

/**
 * Sends `frame` with a fresh ref and waits for the reply carrying it.
 *
 * @param c A JSON-mode client.
 * @param frame The request.
 * @param ms How long to wait.
 */
export async function ask(c: RawClient | RawWs | WsJson, frame: Frame, ms = 5000): Promise<Frame> {
  const ref = crypto.randomUUID();
  if (c instanceof RawClient) c.send({ ...frame, ref });
  else void c.send({ ...frame, ref });
  return await c.frame((f) => f.ref === ref, ms);
}

// ---- the canary ----

/** What a {@linkcode Canary} measured. */
export interface CanaryReport {
  /** Round trips completed. */
  count: number;
  /** The slowest, in ms. */
  maxMs: number;
  /** Round trips that failed or timed out, with why. */
  failures: string[];
}

/**
 * Keeps doing one round trip after another (every `intervalMs` after the last finished) until
 * stopped (or `maxMs` in total), recording the slowest.
 */
export class Canary {
  readonly #trip: () => Promise<void>;
  readonly #intervalMs: number;
  readonly #limitMs: number;
  #stop = false;
  #running: Promise<void> | undefined;
  readonly report: CanaryReport = { count: 0, maxMs: 0, failures: [] };

  /**
   * @param trip One round trip (rejects on failure).
   * @param intervalMs Pause between round trips.
   * @param limitMs Stop by itself after this long.
   */
  constructor(trip: () => Promise<void>, intervalMs = 100, limitMs = 300_000) {
    this.#trip = trip;
    this.#intervalMs = intervalMs;
    this.#limitMs = limitMs;
  }

  /** A canary pinging a JSON client (`ping` → `pong`). */
  static pinging(c: RawClient | WsJson | RawWs, timeoutMs = 5000): Canary {
    return new Canary(async () => {
      const reply = await ask(c, { type: "ping" }, timeoutMs);
      if (reply.type !== "pong") throw new Error(`ping answered ${JSON.stringify(reply)}`);
    });
  }

  /** Starts the loop. */
  start(): this {
    const end = Date.now() + this.#limitMs;
    this.#running = (async () => {
      while (!this.#stop && Date.now() < end) {
        const t0 = performance.now();
        try {
          await this.#trip();
        } catch (error) {
          this.report.failures.push(`${new Date().toISOString()}: ${error}`);
          if (this.report.failures.length > 20) return;
        }
        const ms = performance.now() - t0;
        this.report.count++;
        if (ms > this.report.maxMs) this.report.maxMs = ms;
        await delay(this.#intervalMs);
      }
    })();
    return this;
  }

  /** Stops and returns what it measured. */
  async stop(): Promise<CanaryReport> {
    this.#stop = true;
    await this.#running;
    return this.report;
  }
}

// ---- fuzzing ----

const ROOMS = [
  "#general",
  "#fuzz",
  "#FUZZ",
  "#a",
  "#" + "r".repeat(64),
  "#" + "r".repeat(65),
  "#",
  "general",
  "#bad room",
  "#ünï",
  "",
  "#\u202eevil",
  "#x\u0000y",
  "##",
  "#general\n",
];
const NAMES = [
  "alice",
  "guest-1",
  "guest-0001",
  "a".repeat(32),
  "a".repeat(33),
  "",
  "-",
  "_",
  "nul\u0000",
  "\u202eevil",
  "bob smith",
  "ü",
  "fuzzer",
  "ADMIN",
  "x\u200by",
];
const NUMBERS = [
  0,
  -1,
  -0,
  1.5,
  2 ** 53 + 1,
  -(2 ** 63),
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER,
  4294967296,
  1e-300,
  200,
  201,
  50,
];
const RAW_TOKENS = [
  "1e999",
  "-1e999",
  "NaN",
  "Infinity",
  "123456789012345678901234567890123456789",
  "-0.0e-0",
  "0x10",
  "undefined",
  '"\\ud800"',
  '"\\u0000"',
  '"\\x41"',
  "'single'",
  "[1,2,",
  "{",
  "tru",
];
const TYPES = [
  "hello",
  "nick",
  "join",
  "part",
  "rooms",
  "who",
  "ping",
  "pong",
  "send",
  "history",
  "logout",
  "passwd",
  "login",
  "quit",
  "register",
  "welcome",
  "ack",
  "message",
  "error",
  "presence",
  "shutdown",
  "",
  "PING",
  "__proto__",
  "constructor",
  "toString",
];
const KEYS = [
  "type",
  "ref",
  "room",
  "to",
  "text",
  "name",
  "password",
  "token",
  "before",
  "limit",
  "with",
  "action",
  "file",
  "proto",
  "client",
  "old",
  "new",
  "reason",
  "__proto__",
  "constructor",
  "prototype",
  "hasOwnProperty",
  "",
  "\u0000",
];

/** A string meant to hurt: empty, huge, controls, bidi, lone surrogates, JSON specials. */
export function fuzzString(rng: Prng): string {
  switch (rng.int(13)) {
    case 0:
      return "";
    case 1:
      return rng.pick(["hi", "hello world", "x", "1", "true", "null", "#general", "guest-1"]);
    case 2:
      return "L".repeat(rng.range(100, 6000));
    case 3:
      return Array.from({ length: rng.range(1, 20) }, () => String.fromCharCode(rng.int(0x20)))
        .join("") + "\u007f\u0085\u009b";
    case 4:
      return "a\u202eb\u2066c\u200bd\ufeff\u3164\u2028\u2029";
    case 5:
      return rng.pick(["\ud800", "\udfff", "x\ud83dy", "\udc00\ud800"]);
    case 6:
      return "😀é中\u{10ffff}".repeat(rng.range(1, 300));
    case 7:
      return '"\\'.repeat(rng.range(1, 3000));
    case 8:
      return rng.pick(["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"]);
    case 9:
      return rng.pick(["NaN", "Infinity", "-0", "1e309", "-1", "0x1f", " 5 "]);
    case 10:
      return rng.pick([" ", "\t", "\n", " \n\t", "\u00a0", "\u3000"]);
    case 11:
      return String.fromCodePoint(
        ...Array.from({ length: rng.range(1, 40) }, () => {
          const cp = rng.int(0x110000);
          return cp >= 0xd800 && cp < 0xe000 ? 0x41 : cp;
        }),
      );
    default:
      return "\u001b[2J\u001b]0;pwned\u0007\u001b[31m";
  }
}

/** Any JSON value, possibly nested, possibly huge, possibly a raw (invalid) token. */
function fuzzValue(rng: Prng, raws: string[], depth = 0): unknown {
  switch (rng.int(depth > 2 ? 6 : 11)) {
    case 0:
    case 1:
      return fuzzString(rng);
    case 2:
      return rng.pick(NUMBERS);
    case 3:
      return rng.chance(0.5);
    case 4:
      return null;
    case 5:
      return rng.int(1000);
    case 6:
      return Array.from({ length: rng.range(0, 5) }, () => fuzzValue(rng, raws, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      for (let i = rng.range(0, 4); i > 0; i--) o[rng.pick(KEYS)] = fuzzValue(rng, raws, depth + 1);
      return o;
    }
    case 8: {
      const d = rng.range(10, 6000);
      const open = rng.chance(0.5) ? "[" : '{"a":';
      const close = open === "[" ? "]" : "}";
      return placeholder(raws, open.repeat(d) + "1" + close.repeat(d));
    }
    case 9:
      return placeholder(raws, rng.pick(RAW_TOKENS));
    default:
      return Array.from({ length: rng.range(100, 2000) }, () => rng.int(10));
  }
}

function placeholder(raws: string[], raw: string): string {
  raws.push(raw);
  return `\u0001RAW${raws.length - 1}\u0001`;
}

/** A plausible client frame of a cheap type (password work is rare). */
function baseFrame(rng: Prng): Frame {
  const room = () => rng.chance(0.7) ? rng.pick(ROOMS) : `#f${rng.int(50)}`;
  const r = rng.next();
  if (r < 0.25) {
    const f: Frame = {
      type: "send",
      text: rng.chance(0.5) ? `fuzz ${rng.int(1e6)}` : fuzzString(rng),
    };
    if (rng.chance(0.8)) f.room = room();
    else f.to = rng.pick(NAMES);
    if (rng.chance(0.1)) f.action = true;
    return f;
  }
  if (r < 0.35) return { type: "join", room: room() };
  if (r < 0.40) return { type: "part", room: room() };
  if (r < 0.48) {
    return { type: "nick", name: rng.chance(0.5) ? `f${rng.int(1e6)}` : rng.pick(NAMES) };
  }
  if (r < 0.53) return { type: "who", room: room() };
  if (r < 0.57) return { type: "rooms" };
  if (r < 0.62) return { type: "ping" };
  if (r < 0.65) return { type: "pong" };
  if (r < 0.77) {
    return rng.chance(0.7)
      ? { type: "history", room: room(), before: rng.pick(NUMBERS), limit: rng.pick(NUMBERS) }
      : { type: "history", with: rng.pick(NAMES) };
  }
  if (r < 0.82) {
    return { type: "hello", proto: rng.pick([1, 1, 2, 0, -1]), client: fuzzString(rng) };
  }
  if (r < 0.86) return { type: "login", token: rng.chance(0.5) ? "x".repeat(43) : fuzzString(rng) };
  if (r < 0.87) return { type: "logout" };
  if (r < 0.89) return { type: "passwd", old: "x", new: fuzzString(rng) };
  if (r < 0.895) {
    return {
      type: rng.pick(["login", "register"]),
      name: `f${rng.int(1e9)}`,
      password: PASSWORD_FUZZ,
    };
  }
  if (r < 0.897) return { type: "quit", reason: fuzzString(rng) };
  return { type: rng.pick(TYPES), [rng.pick(KEYS)]: fuzzValue(rng, []) };
}
const PASSWORD_FUZZ = "fuzzing password";

/** Control characters, bidi, invalid UTF-8 and overlong encodings, as bytes. */
const NASTY_BYTES: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0x80],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
  [0xc3],
  [0x00],
  [0x1b, 0x5b, 0x32, 0x4a],
  [0x0d],
  [0xe2, 0x80, 0xae],
];

/**
 * One fuzzed JSON-mode frame, as bytes without a line ending: a valid frame with mutated fields
 * (wrong types, huge or odd numbers, long strings, deep nesting, unknown types, missing and
 * extra fields), then perhaps mutated as bytes (truncated, spliced with invalid UTF-8 or
 * controls, made overlong), or plain random bytes.
 */
export function fuzzJsonFrame(rng: Prng, maxLine: number): Uint8Array {
  if (rng.chance(0.05)) return rng.bytes(rng.range(0, 300));
  if (rng.chance(0.03)) {
    return encoder.encode(rng.pick(["[]", "1", '"s"', "null", "true", "{}", "[{}]", "{}{}", ""]));
  }
  const raws: string[] = [];
  const frame = baseFrame(rng);
  if (rng.chance(0.7)) {
    for (let n = rng.range(1, 3); n > 0; n--) {
      const keys = Object.keys(frame);
      switch (rng.int(5)) {
        case 0: // wrong type or odd value for a field
          frame[rng.pick(keys)] = fuzzValue(rng, raws);
          break;
        case 1: // a missing field
          delete frame[rng.pick(keys)];
          break;
        case 2: // an extra field
          frame[rng.pick(KEYS) + (rng.chance(0.5) ? "" : "x")] = fuzzValue(rng, raws);
          break;
        case 3: // an odd ref
          frame.ref = rng.chance(0.5) ? "R".repeat(rng.range(60, 500)) : fuzzValue(rng, raws);
          break;
        default: // an odd type
          frame.type = rng.chance(0.5) ? rng.pick(TYPES) : fuzzValue(rng, raws);
      }
    }
  }
  let text = JSON.stringify(frame).replace(/"\\u0001RAW(\d+)\\u0001"/g, (_, i) => raws[Number(i)]!);
  if (rng.chance(0.05)) text = text.slice(0, rng.int(text.length)); // truncated
  let bytes: Uint8Array = encoder.encode(text);
  if (rng.chance(0.08)) {
    const at = rng.int(bytes.length + 1);
    const nasty = rng.pick(NASTY_BYTES);
    const out = new Uint8Array(bytes.length + nasty.length);
    out.set(bytes.subarray(0, at));
    out.set(nasty, at);
    out.set(bytes.subarray(at), at + nasty.length);
    bytes = out;
  }
  if (rng.chance(0.02)) {
    const over = new Uint8Array(maxLine + rng.range(1, 4096)).fill(0x20);
    over.set(bytes.subarray(0, Math.min(bytes.length, over.length)));
    bytes = over;
  }
  return bytes.filter((b) => b !== 0x0a);
}

const TEXT_COMMANDS = [
  "/nick",
  "/join",
  "/part",
  "/leave",
  "/msg",
  "/dm",
  "/me",
  "/who",
  "/names",
  "/rooms",
  "/list",
  "/history",
  "/help",
  "/passwd",
  "/get",
  "/send",
  "/unknown",
  "/NICK",
  "/jOiN",
  "/",
  "//",
  "/ ",
];

/**
 * One fuzzed text-mode line, as bytes without a line ending: text, commands with odd arguments,
 * random bytes, terminal escapes, invalid UTF-8, overlong lines. Lines that end the session
 * (`/quit`, `bye`) or cost a password hash (`/login`, `/register`) are rare.
 */
export function fuzzTextLine(rng: Prng, maxLine: number): Uint8Array {
  const r = rng.next();
  let line: string | Uint8Array;
  if (r < 0.3) line = rng.chance(0.5) ? `fuzz text ${rng.int(1e6)}` : fuzzString(rng);
  else if (r < 0.68) {
    const args = Array.from(
      { length: rng.range(0, 3) },
      () =>
        rng.chance(0.5)
          ? rng.pick([...ROOMS, ...NAMES, "200", "-5", "99999999999"])
          : fuzzString(rng),
    );
    line = [rng.pick(TEXT_COMMANDS), ...args].join(" ");
  } else if (r < 0.78) line = rng.bytes(rng.range(0, 300));
  else if (r < 0.86) line = "\u001b[2J\u001b[H\u001b]0;title\u0007\u009b1m text \r\u0000 end";
  else if (r < 0.88) line = "o".repeat(maxLine + rng.range(1, 5000));
  else if (r < 0.94) {
    const nasty = rng.pick(NASTY_BYTES);
    line = new Uint8Array([0x68, 0x69, ...nasty, 0x21]);
  } else if (r < 0.98) line = rng.pick(["", " ", "\t", "\u200b", "\u3164", "  \t  "]);
  else if (r < 0.995) line = `//${fuzzString(rng)}`;
  else if (r < 0.998) line = rng.pick(["/quit fuzz", "bye", "QUIT", "/quit"]);
  else line = `${rng.pick(["/login", "/register"])} f${rng.int(1e9)} ${PASSWORD_FUZZ}`;
  const bytes = typeof line === "string" ? encoder.encode(line) : line;
  return bytes.filter((b) => b !== 0x0a);
}

/** What {@linkcode finish} got. */
export interface Finished {
  /** Everything the server logged. */
  stderr: string;
  /** Whether it exited within the grace after SIGTERM (else it was killed). */
  exitedInTime: boolean;
  /** How long it took to exit after SIGTERM, in ms. */
  ms: number;
}

/**
 * Stops the server with SIGTERM, kills it if it has not exited within `ms`, and returns its
 * log: `server.stderr()` alone waits for the exit without bound.
 *
 * @param server The server.
 * @param ms The grace.
 */
export async function finish(server: ServerProcess, ms = 10_000): Promise<Finished> {
  const t0 = performance.now();
  const exitedInTime = (await within(server.stop("SIGTERM"), ms)) !== undefined;
  if (!exitedInTime) {
    try {
      server.child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  return { stderr: await server.stderr(), exitedInTime, ms: performance.now() - t0 };
}

/**
 * Why the server is gone, with the end of its log, or `undefined` while it runs.
 *
 * @param server The server.
 */
export async function died(server: ServerProcess): Promise<string | undefined> {
  if (await alive(server.child)) return undefined;
  const status = await server.child.status;
  const log = (await server.stderr()).trim().split("\n").slice(-8).join("\n    ");
  const how = status.signal === null ? `code ${status.code}` : `signal ${status.signal}`;
  return `the server died (${how}); its log ends:\n    ${log}`;
}
