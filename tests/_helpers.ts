/**
 * Test fixtures: the real server spawned as a subprocess, and a raw TCP client that talks
 * to it the way `nc` would. Both are async-disposable so nothing leaks when a test fails.
 *
 * @module
 */

import { LineSplitter } from "../src/protocol/line_splitter.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** A running `main.ts server` subprocess. */
export interface ServerProcess extends AsyncDisposable {
  /** The bound TCP chat port (0 with --no-plain). */
  port: number;
  /** The bound HTTP(S) port (0 with --no-http). */
  httpPort: number;
  /** The child process. */
  child: Deno.ChildProcess;
  /** Every stdout line so far (the listening lines first). */
  stdout: string[];
  /** Everything the server logged on stderr, once it has exited. */
  stderr(): Promise<string>;
  /** Sends a signal and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Spawns `main.ts server --host 127.0.0.1 --port 0 …args` and waits for its listening line.
 * Unless `args` name a `--data` folder, the server gets a fresh temporary one, removed when the
 * fixture is disposed.
 */
export async function startServer(args: string[] = []): Promise<ServerProcess> {
  const ownData = !args.includes("--data");
  // Never the default 8080: tests run side by side (and beside a developer's server).
  if (!args.includes("--http-port") && !args.includes("--no-http")) {
    args = ["--http-port", "0", ...args];
  }
  const data = ownData ? await Deno.makeTempDir({ prefix: "parley-test-" }) : undefined;
  if (data !== undefined) args = ["--data", data, ...args];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      MAIN,
      "server",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stdout: string[] = [];
  const stderrText = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineStream());
  const reader = lines.getReader();
  // One listening line per listener: plain TCP unless --no-plain, TLS with --tls-cert.
  const expected = (args.includes("--no-plain") ? 0 : 1) + (args.includes("--tls-cert") ? 1 : 0) +
    (args.includes("--no-http") ? 0 : 1);
  let port = 0;
  let httpPort = 0;
  let listening = 0;
  while (listening < expected) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(`Server exited before listening: ${await stderrText}`);
    }
    stdout.push(value);
    if (value.startsWith("listening on ")) listening++;
    const m = /^listening on tcp:\/\/[^ ]+:(\d+)$/.exec(value);
    if (m) port = Number(m[1]);
    const h = /^listening on https?:\/\/[^ ]+:(\d+)$/.exec(value);
    if (h) httpPort = Number(h[1]);
  }
  const drained = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      stdout.push(value);
    }
  })();
  let status: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    if (status === undefined) {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
      status = Promise.all([child.status, drained, stderrText]).then(([s]) => s);
    }
    return status;
  };
  return {
    port,
    httpPort,
    child,
    stdout,
    stderr: async () => (await stop(), await stderrText),
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop("SIGKILL");
      if (data !== undefined) await Deno.remove(data, { recursive: true });
    },
  };
}

/** Splits a text stream into lines. */
function lineStream(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) controller.enqueue(part);
    },
    flush(controller) {
      if (rest !== "") controller.enqueue(rest);
    },
  });
}

/** A raw line-based TCP client, like `nc`. */
export class RawClient implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  readonly #lines: string[] = [];
  readonly #waiters: (() => void)[] = [];
  #ended = false;
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#reading = this.#read();
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Connects and consumes the banner, then sends `first` and (JSON mode) waits for its reply. */
  static async json(port: number, name?: string): Promise<RawClient> {
    const c = await RawClient.connect(port);
    await c.line(); // banner
    c.send({ type: "hello", proto: 1, ref: "hello" });
    await c.frame((f) => f.type === "welcome");
    if (name !== undefined) {
      c.send({ type: "nick", name, ref: "nick" });
      await c.frame((f) => f.ref === "nick" && f.type === "ack");
    }
    return c;
  }

  /** Connects in text mode: consumes the banner, optionally renames. */
  static async text(port: number, name?: string): Promise<RawClient> {
    const c = await RawClient.connect(port);
    await c.line(); // banner
    if (name !== undefined) {
      c.send(`/nick ${name}`);
      await c.line((l) => l === `* You are now ${name}`);
    } else {
      c.send("/rooms");
      await c.line((l) => l.startsWith("* Rooms:"));
    }
    return c;
  }

  async #read(): Promise<void> {
    const splitter = new LineSplitter(1 << 24);
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        for (const ev of splitter.push(buf.subarray(0, n))) {
          this.#lines.push("line" in ev ? ev.line : `<${ev.error}>`);
        }
        this.#wake();
      }
    } catch {
      // reset or closed by us
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Whether the server closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Sends a line (a string as is, an object as JSON). */
  send(line: string | Record<string, unknown>): void {
    this.sendRaw(encoder.encode((typeof line === "string" ? line : JSON.stringify(line)) + "\n"));
  }

  /** Writes raw bytes (fire and forget; order is kept by a write chain). */
  sendRaw(bytes: Uint8Array): void {
    this.#chain = this.#chain.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
    }).catch(() => {});
  }
  #chain: Promise<void> = Promise.resolve();

  /** Resolves when everything sent so far is written. */
  flushed(): Promise<void> {
    return this.#chain;
  }

  /**
   * Returns the next line matching `match` (skipping and dropping the lines before it), or
   * throws after `timeoutMs` or when the connection ends first.
   */
  async line(match: (line: string) => boolean = () => true, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#lines.length > 0) {
        const l = this.#lines.shift()!;
        if (match(l)) return l;
      }
      if (this.#ended) throw new Error("Connection ended before the expected line");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for a line`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Like {@linkcode RawClient.line} for JSON frames. */
  async frame(
    match: (frame: Record<string, unknown>) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown>> {
    const line = await this.line((l) => l.startsWith("{") && match(JSON.parse(l)), timeoutMs);
    return JSON.parse(line);
  }

  /** Every line received and not yet consumed. */
  pending(): string[] {
    return [...this.#lines];
  }

  /** Waits until the server closes the connection. */
  async closed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      if (Date.now() > deadline) throw new Error("Connection still open");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
    await this.#reading;
  }
}
