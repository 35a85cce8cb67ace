/**
 * Test fixtures: the real server spawned as a subprocess, a raw TCP client that talks to it the
 * way `nc` would, the real terminal client as a subprocess, certificates made by `main.ts cert`,
 * temporary folders and a system Chromium. All are async-disposable so nothing leaks when a
 * test fails.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { ChatError } from "../src/protocol/errors.ts";
import type { ErrorCode } from "../src/protocol/errors.ts";
import { LineSplitter } from "../src/protocol/line_splitter.ts";
import { spawnServer } from "../src/server/listening.ts";

/** The path of `main.ts`, for tests that spawn it themselves. */
export const MAIN: string = new URL("../main.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** A running `main.ts server` subprocess. */
export interface ServerProcess extends AsyncDisposable {
  /** The bound TCP chat port (0 with --no-plain). */
  port: number;
  /** The bound HTTP(S) port (0 with --no-http). */
  httpPort: number;
  /** The bound TLS chat port (0 without --tls-cert). */
  tlsPort: number;
  /** The bound IRC port (0 with --no-irc). */
  ircPort: number;
  /** The bound IRC over TLS port (0 with --no-irc or without --tls-cert). */
  ircTlsPort: number;
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
 * Spawns `main.ts server --host 127.0.0.1 --port 0 …args` and waits for its listening lines.
 * Unless `args` name a `--data` folder, the server gets a fresh temporary one, removed when the
 * fixture is disposed.
 *
 * @param args The server's flags (`--http-port 0` is added unless they name the web port).
 * @param options `prefix`: a command to run the server through, which must exec it so its pid
 * stays the server's (`["prlimit", "--nofile=128:128"]`).
 */
export async function startServer(
  args: string[] = [],
  options: { prefix?: string[] } = {},
): Promise<ServerProcess> {
  const ownData = !args.includes("--data");
  // Never the default 8080: tests run side by side (and beside a developer's server).
  if (!args.includes("--http-port") && !args.includes("--no-http")) {
    args = ["--http-port", "0", ...args];
  }
  const data = ownData ? await Deno.makeTempDir({ prefix: "parley-test-" }) : undefined;
  if (data !== undefined) args = ["--data", data, ...args];
  const { child, addresses, stdout, drained, stderr } = await spawnServer(args, options).catch(
    async (error) => {
      if (data !== undefined) await Deno.remove(data, { recursive: true });
      throw error;
    },
  );
  const portOf = (...schemes: string[]) =>
    addresses.find((a) => schemes.includes(a.scheme))?.port ?? 0;
  let status: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    if (status === undefined) {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
      status = Promise.all([child.status, drained, stderr]).then(([s]) => s);
    }
    return status;
  };
  const server: ServerProcess = {
    port: portOf("tcp"),
    httpPort: portOf("http", "https"),
    tlsPort: portOf("tls"),
    ircPort: portOf("irc"),
    ircTlsPort: portOf("ircs"),
    child,
    stdout,
    stderr: async () => (await stop(), await stderr),
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop("SIGKILL");
      if (data !== undefined) await Deno.remove(data, { recursive: true });
    },
  };
  if (args.includes("--tls-cert") && server.tlsPort === 0) {
    await server[Symbol.asyncDispose]();
    throw new Error(`No TLS listener in:\n${stdout.join("\n")}`);
  }
  return server;
}

/**
 * The server arguments for a TLS listener on `tlsPort` with the `cert.pem` and `key.pem` in
 * `dir` (as {@linkcode makeCert} writes them).
 *
 * @param dir The folder holding `cert.pem` and `key.pem`.
 * @param tlsPort The TLS port; 0 (the default) lets the system pick one.
 * @returns `--tls-cert DIR/cert.pem --tls-key DIR/key.pem --tls-port PORT`, for
 * {@linkcode startServer}.
 */
export function tlsServerArgs(dir: string, tlsPort = 0): string[] {
  return [
    "--tls-cert",
    `${dir}/cert.pem`,
    "--tls-key",
    `${dir}/key.pem`,
    "--tls-port",
    String(tlsPort),
  ];
}

/** A temporary folder, removed (with everything in it) when disposed. */
export interface TempDir extends AsyncDisposable {
  /** The folder's path. */
  path: string;
}

/**
 * Makes a temporary folder, removed when the fixture is disposed.
 *
 * @param prefix The start of the folder's name.
 * @returns The folder, to hold with `await using`.
 */
export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** What {@linkcode makeCert} made. */
export interface Cert {
  /** The path of the certificate, `DIR/cert.pem` (the key is `DIR/key.pem`). */
  path: string;
  /** The certificate, PEM text. */
  pem: string;
  /** What `main.ts cert` printed (the fingerprint among it). */
  stdout: string;
}

/**
 * Runs `main.ts cert --out DIR --host …` and asserts that it succeeds.
 *
 * @param dir The folder that gets `cert.pem` and `key.pem`.
 * @param hosts The host names the certificate is for.
 * @returns The certificate's path and text, and what the command printed.
 */
export async function makeCert(dir: string, ...hosts: string[]): Promise<Cert> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      MAIN,
      "cert",
      "--out",
      dir,
      "--force", // the certificate tests replace theirs (SIGHUP reloads)
      ...hosts.flatMap((h) => ["--host", h]),
    ],
    stdin: "null",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const path = `${dir}/cert.pem`;
  return { path, pem: await Deno.readTextFile(path), stdout: new TextDecoder().decode(stdout) };
}

/**
 * A TCP port on 127.0.0.1 that nothing listens on (bound briefly, then released).
 *
 * @returns The port.
 */
export function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return (listener.addr as Deno.NetAddr).port;
}

/**
 * Asserts that `fn` throws a {@linkcode ChatError} with `code`.
 *
 * @param fn What should throw.
 * @param code The error code it should carry.
 */
export function throwsChatError(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ChatError, `expected a ChatError, got ${error}`);
    assert.equal(error.code, code);
    return true;
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
    // Speaking first: the server greets a silent client only after a short wait.
    c.send({ type: "hello", proto: 1, ref: "hello" });
    await c.line(); // banner
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

/**
 * Sends `frame` with a fresh `ref` and returns the server's reply to it (JSON mode).
 *
 * @param c A client in JSON mode.
 * @param frame The request, without `ref`.
 * @returns The first frame carrying the request's `ref` (an `ack`, a reply or an `error`).
 */
export async function request(
  c: RawClient,
  frame: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const ref = crypto.randomUUID();
  c.send({ ...frame, ref });
  return await c.frame((f) => f.ref === ref);
}

/**
 * The terminal client's permissions as the `client` task grants them, the write access scoped
 * to the token folder `CONFIG/parley`.
 *
 * @param config The folder the client uses as `XDG_CONFIG_HOME`.
 * @returns Deno permission flags.
 */
export function clientPermissions(config: string): string[] {
  return [
    "--allow-net",
    "--allow-read",
    `--allow-write=${config}/parley`,
    "--allow-env=NO_COLOR,HOME,XDG_CONFIG_HOME,XDG_DOWNLOAD_DIR,APPDATA,PARLEY_SERVER_PASSWORD",
  ];
}

/** Options for {@linkcode ClientProcess}. */
export interface ClientProcessOptions {
  /**
   * The client's Deno permission flags.
   *
   * @default {["--allow-net", "--allow-env"]}
   */
  permissions?: string[];
  /**
   * Variables added to the environment the client inherits.
   *
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * The client's working folder.
   *
   * @default {Deno.cwd()}
   */
  cwd?: string;
}

/** What a {@linkcode ClientProcess} left once it exited. */
export interface ClientResult {
  /** The exit code. */
  code: number;
  /** Every stdout line. */
  stdout: string[];
  /** Everything written to stderr. */
  stderr: string;
}

/**
 * A running `main.ts client …args` with piped stdin, stdout and stderr; the stdout lines are
 * collected as they come. Killed when disposed.
 */
export class ClientProcess implements AsyncDisposable {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stdout: Promise<void>;
  readonly #stderr: Promise<string>;
  #cursor = 0;
  #wake: (() => void) | undefined;
  #ended = false;

  /**
   * Spawns the client.
   *
   * @param args The arguments after `client` (HOST PORT and options).
   * @param options Permissions, environment and working folder.
   */
  constructor(args: string[], options: ClientProcessOptions = {}) {
    const child = this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...(options.permissions ?? ["--allow-net", "--allow-env"]),
        MAIN,
        "client",
        ...args,
      ],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: options.env ?? {},
    }).spawn();
    this.#stdin = child.stdin.getWriter();
    this.#stderr = new Response(child.stderr).text();
    this.#stdout = (async () => {
      let rest = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        this.lines.push(...parts);
        this.#wake?.();
      }
      if (rest !== "") this.lines.push(rest);
      this.#ended = true;
      this.#wake?.();
    })();
  }

  /**
   * Types `lines` (a newline is added to each).
   *
   * @param lines The lines to type.
   */
  async type(...lines: string[]): Promise<void> {
    await this.#stdin.write(encoder.encode(lines.map((l) => l + "\n").join("")));
  }

  /** Closes stdin (end of input). */
  async endInput(): Promise<void> {
    await this.#stdin.close().catch(() => {});
  }

  /**
   * Waits for the next stdout line (after the last one matched) that matches `match`.
   *
   * @param match What the line must match.
   * @param ms How long to wait before throwing.
   * @returns The line.
   */
  async line(match: RegExp, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = this.#cursor; i < this.lines.length; i++) {
        if (match.test(this.lines[i]!)) {
          this.#cursor = i + 1;
          return this.lines[i]!;
        }
      }
      const left = deadline - Date.now();
      const why = this.#ended ? "Output ended" : left <= 0 ? "Timed out" : undefined;
      if (why !== undefined) {
        const stderr = this.#ended ? await this.#stderr : "";
        throw new Error(`${why} without ${match}:\n${this.lines.join("\n")}\n${stderr}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /**
   * Ends the input and waits for the exit.
   *
   * @returns The exit code, every stdout line and stderr.
   */
  async finish(): Promise<ClientResult> {
    await this.endInput();
    const { code } = await this.child.status;
    await this.#stdout;
    return { code, stdout: this.lines, stderr: await this.#stderr };
  }

  /** Kills the client (if it still runs) and waits for its output to end. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await this.endInput();
    await this.child.status;
    await this.#stdout;
    await this.#stderr;
  }
}

/**
 * Where browser tests put their screenshots: a temporary folder, so a test run modifies no
 * tracked file, or the folder `PARLEY_SCREENSHOTS` names (`deno task screenshots` refreshes
 * docs/screenshots/ that way).
 */
const SCREENSHOTS: string = Deno.env.get("PARLEY_SCREENSHOTS") ??
  `${Deno.env.get("TMPDIR") ?? "/tmp"}/parley-screenshots`;

/**
 * Saves a screenshot of `page` as `name` (see {@linkcode SCREENSHOTS}).
 *
 * @param page The page.
 * @param name The file name, e.g. `chat.png`.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}/${name}` });
}

/** The Chromium the browser tests drive: `PARLEY_CHROMIUM`, or Debian's `/usr/bin/chromium`. */
export const CHROMIUM: string = Deno.env.get("PARLEY_CHROMIUM") ?? "/usr/bin/chromium";

/**
 * Whether the browser tests can run. Without Chromium they are skipped with one notice, unless
 * `PARLEY_REQUIRE_BROWSER=1` (CI sets it), which makes a missing browser a failure.
 */
export const HAVE_CHROMIUM: boolean = (() => {
  try {
    if (Deno.statSync(CHROMIUM).isFile) return true;
  } catch {
    // not installed
  }
  if (Deno.env.get("PARLEY_REQUIRE_BROWSER") === "1") return true; // run, and fail
  console.log(
    `browser tests skipped: no Chromium at ${CHROMIUM} (install it: apt-get install -y chromium)`,
  );
  return false;
})();

/**
 * A test that drives Chromium: skipped (see {@linkcode HAVE_CHROMIUM}) where there is none.
 *
 * @param name The test's name.
 * @param fn The test.
 */
export function browserTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !HAVE_CHROMIUM, fn });
}

/**
 * Launches the system's headless Chromium through playwright-core (loaded on first use, so
 * tests without a browser never load it): Debian's `/usr/bin/chromium`, or the system browser
 * that PARLEY_CHROMIUM names (never a downloaded one).
 *
 * @param extraArgs More command-line switches (fake media devices, say).
 * @returns The browser, closed (with every page) when disposed.
 */
export async function launchChromium(
  extraArgs: readonly string[] = [],
): Promise<{ browser: Browser } & AsyncDisposable> {
  // playwright-core's WSL probe stats /proc/sys/fs/binfmt_misc/WSLInterop at import time, which
  // Deno only allows with --allow-all; this variable (the probe's own test switch) skips it.
  Deno.env.set("__IS_WSL_TEST__", "1");
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      ...extraArgs,
    ],
  });
  return { browser, [Symbol.asyncDispose]: () => browser.close() };
}

/** A TCP proxy to a local port: what clients send through it is kept, and it can cut them off. */
export interface TcpProxy extends AsyncDisposable {
  /** The proxy's port. */
  port: number;
  /** The JSON frames of `type` clients sent so far. */
  frames(type: string): Record<string, unknown>[];
  /** Closes every connection through it (the proxy goes on accepting). */
  drop(): void;
}

/** Starts a {@linkcode TcpProxy} in front of 127.0.0.1:`port`. */
export function tcpProxy(port: number): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sent: string[] = [];
  const conns = new Set<Deno.Conn>();
  const close = (c: Deno.Conn) => {
    conns.delete(c);
    try {
      c.close();
    } catch {
      // closed already
    }
  };
  const copy = async (from: Deno.Conn, to: Deno.Conn, keep: boolean) => {
    const decoder = new TextDecoder();
    let rest = "";
    try {
      for await (const chunk of from.readable) {
        if (keep) {
          const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
          rest = parts.pop()!;
          sent.push(...parts);
        }
        let off = 0;
        while (off < chunk.length) off += await to.write(chunk.subarray(off));
      }
    } catch {
      // closed
    }
    close(to);
  };
  const accepting = (async () => {
    try {
      for await (const client of listener) {
        const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
        conns.add(client).add(upstream);
        void copy(client, upstream, true);
        void copy(upstream, client, false);
      }
    } catch {
      // closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    frames: (type) =>
      sent.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((f) =>
        f.type === type
      ),
    drop: () => [...conns].forEach(close),
    async [Symbol.asyncDispose]() {
      listener.close();
      [...conns].forEach(close);
      await accepting;
    },
  };
}

/**
 * Runs the test file `file` again with `deno test`, inside a network namespace that has only
 * loopback (`unshare -n`, as root), with `PARLEY_VOICE_NETNS=1` set so that the file knows it is
 * inside: no media can leave the machine and ICE sees loopback alone. Prints what it printed and
 * fails when it failed. Where `unshare` is not allowed: skipped with a notice (what `skipped`
 * says), unless PARLEY_REQUIRE_VOICE=1, which makes that a failure.
 */
export async function rerunInLoopbackNamespace(
  file: string,
  skipped: string,
  filter?: string,
): Promise<void> {
  const probe = await new Deno.Command("unshare", {
    args: ["-n", "true"],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => ({ success: false }));
  if (!probe.success) {
    if (Deno.env.get("PARLEY_REQUIRE_VOICE") === "1") {
      assert.fail("Cannot create a network namespace (unshare -n): run as root");
    }
    console.log(`${skipped} skipped: unshare -n is not permitted (run as root)`);
    return;
  }
  const out = await new Deno.Command("unshare", {
    args: [
      "-n",
      "sh",
      "-c",
      'ip link set lo up && exec "$0" "$@"',
      Deno.execPath(),
      "test",
      "-P=test",
      ...filter === undefined ? [] : ["--filter", filter],
      file,
    ],
    env: { PARLEY_VOICE_NETNS: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  console.log(text.split("\n").filter((l) => !l.includes("experimental")).join("\n"));
  assert.equal(out.code, 0, `${skipped} in the namespace failed (above)`);
}
