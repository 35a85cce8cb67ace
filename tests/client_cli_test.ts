// End to end: the real terminal client (`main.ts client`) as a subprocess with piped stdin and
// stdout, against the real server as a subprocess.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TIME = /^\d\d:\d\d:\d\d /;

/** A running `main.ts client` with piped stdin, stdout and stderr. */
class ClientProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stdout: Promise<void>;
  readonly #stderr: Promise<string>;
  #cursor = 0;
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(args: string[], env: Record<string, string> = {}) {
    const child = this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", MAIN, "client", ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    this.#stdin = this.child.stdin.getWriter();
    this.#stderr = new Response(this.child.stderr).text();
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

  /** Types `text` (a newline is added to each line). */
  async type(...lines: string[]): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(lines.map((l) => l + "\n").join("")));
  }

  /** Closes stdin (end of input). */
  async endInput(): Promise<void> {
    await this.#stdin.close().catch(() => {});
  }

  /** The next stdout line (after the last one matched) that matches; throws after `ms`. */
  async line(match: RegExp, ms = 8000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = this.#cursor; i < this.lines.length; i++) {
        if (match.test(this.lines[i]!)) {
          this.#cursor = i + 1;
          return this.lines[i]!;
        }
      }
      if (this.#ended) throw new Error(`Output ended without ${match}:\n${this.lines.join("\n")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${match}:\n${this.lines.join("\n")}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Waits for the exit; returns the code, all stdout lines and stderr. */
  async finish(): Promise<{ code: number; stdout: string[]; stderr: string }> {
    await this.endInput();
    const { code } = await this.child.status;
    await this.#stdout;
    return { code, stdout: this.lines, stderr: await this.#stderr };
  }

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

function client(port: number, ...args: string[]): ClientProcess {
  return new ClientProcess(["127.0.0.1", String(port), ...args]);
}

/** Runs a client with all of `input` piped in; returns once it exits. */
function runPiped(port: number, input: string, ...args: string[]) {
  const c = client(port, ...args);
  return (async () => {
    await using proc = c;
    await proc.type(...input.split("\n").slice(0, -1));
    return await proc.finish();
  })();
}

Deno.test("client piped: every line is sent in order and it exits 0 once all are acknowledged", async () => {
  await using server = await startServer();
  await using watcher = await RawClient.json(server.port, "watcher");
  watcher.send({ type: "join", room: "#ops", ref: "j" });
  await watcher.frame((f) => f.ref === "j");
  const { code, stdout, stderr } = await runPiped(
    server.port,
    "/join #ops\nhello\n/me waves\n//slash\n",
    "--name",
    "bot",
  );
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assert.ok(stdout.every((l) => TIME.test(l)), stdout.join("\n"));
  assert.ok(stdout.every((l) => !l.includes("\x1b")), "no colors when stdout is not a terminal");
  const shown = stdout.map((l) => l.replace(TIME, ""));
  assert.match(
    shown[0]!,
    /^\* Connected to 127\.0\.0\.1:\d+ \(parley .*\) as guest-\d+, in #general$/,
  );
  assert.deepEqual(shown.slice(1), [
    "* You are now bot",
    "* You joined #ops; members (2): bot, watcher",
    "[#ops] <bot> hello",
    "[#ops] * bot waves",
    "[#ops] <bot> /slash",
  ]);
  const texts: unknown[] = [];
  await watcher.frame((f) => {
    if (f.type === "message") texts.push([f.room, f.from, f.text, f.action ?? false]);
    return texts.length === 3;
  });
  assert.deepEqual(texts, [
    ["#ops", "bot", "hello", false],
    ["#ops", "bot", "waves", true],
    ["#ops", "bot", "/slash", false],
  ]);
  await watcher.frame((f) => f.type === "presence" && f.name === "bot" && f.event === "quit");
});

Deno.test("client: two users converse while both keep typing", async () => {
  await using server = await startServer();
  await using alice = client(server.port, "--name", "alice");
  await alice.line(/\* You are now alice$/);
  await using bob = client(server.port, "--name", "bob");
  await bob.line(/\* You are now bob$/);
  await alice.line(/\* guest-\d+ is now known as bob$/);
  await bob.type("hi alice");
  assert.match(await bob.line(/<bob>/), / \[#general\] <bob> hi alice$/);
  assert.match(await alice.line(/<bob>/), / \[#general\] <bob> hi alice$/);
  await alice.type("hi bob", "how are you?");
  assert.match(await bob.line(/<alice>/), /<alice> hi bob$/);
  assert.match(await bob.line(/<alice>/), /<alice> how are you\?$/);
  await alice.type("bye", "this is never sent");
  const a = await alice.finish();
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout.filter((l) => l.includes("<alice> hi bob")).length, 1, "shown once");
  assert.match(await bob.line(/quit$/), /\* alice quit$/);
  await bob.type("/quit see you");
  const b = await bob.finish();
  assert.equal(b.code, 0, b.stderr);
  assert.ok(!b.stdout.some((l) => l.includes("never sent")));
});

Deno.test("client: direct messages, actions and renames", async () => {
  await using server = await startServer();
  await using alice = client(server.port, "--name", "alice");
  await alice.line(/You are now alice$/);
  await using bob = client(server.port, "--name", "bob");
  await bob.line(/You are now bob$/);
  await alice.type("/msg bob psst", "/dm bob /me is fine");
  assert.match(await alice.line(/\[dm to bob\]/), /\[dm to bob\] <alice> psst$/);
  assert.match(await bob.line(/\[dm\]/), /^\d\d:\d\d:\d\d \[dm\] <alice> psst$/);
  assert.match(await bob.line(/\[dm\]/), /\[dm\] <alice> \/me is fine$/);
  await bob.type("/nick robert");
  assert.match(await bob.line(/You are now/), /\* You are now robert$/);
  assert.match(await alice.line(/known as/), /\* bob is now known as robert$/);
  await bob.type("/me waves");
  assert.match(await alice.line(/robert/), /\[#general\] \* robert waves$/);
  await alice.type("/msg bob still there?", "/nick ROBERT", "/who", "/rooms", "/frob");
  assert.match(await alice.line(/Members of/), /\* Members of #general \(2\): alice, robert$/);
  assert.match(await alice.line(/Rooms:/), /\* Rooms: #general \(2\)$/);
  const a = await alice.finish();
  assert.equal(a.code, 0, "server refusals do not change the exit code");
  assert.deepEqual(a.stderr.trim().split("\n").map((l) => l.replace(TIME, "")), [
    "! Cannot send: no user named bob is online",
    "! Cannot rename: the name ROBERT is taken",
    "! Unknown command /frob: type /help for the list",
  ]);
});

Deno.test("client: quit words and end of input end it cleanly, after what was typed", async () => {
  await using server = await startServer();
  await using watcher = await RawClient.json(server.port, "watcher");
  for (const word of ["logout", "BYE", "quit", "/quit", "/quit gone fishing", undefined]) {
    const input = word === undefined ? "last words\n" : `last words\n${word}\nnot sent\n`;
    const { code, stderr } = await runPiped(server.port, input);
    assert.equal(code, 0, `${word}: ${stderr}`);
    const texts: unknown[] = [];
    await watcher.frame((f) => {
      if (f.type === "message") texts.push(f.text);
      return f.type === "presence" && f.event === "quit";
    });
    assert.deepEqual(texts, ["last words"], String(word));
  }
});

Deno.test("client: --room makes a room current; --help; argument order PORT HOST", async () => {
  await using server = await startServer();
  await using watcher = await RawClient.json(server.port, "watcher");
  watcher.send({ type: "join", room: "#ops", ref: "j" });
  await watcher.frame((f) => f.ref === "j");
  await using proc = new ClientProcess([String(server.port), "127.0.0.1", "--room", "ops"]);
  await proc.type("to ops", "/part", "to general", "/part", "nowhere");
  const { code, stdout, stderr } = await proc.finish();
  assert.equal(code, 0, stderr);
  assert.ok(stdout.some((l) => / \[#ops\] <guest-\d+> to ops$/.test(l)), stdout.join("\n"));
  assert.ok(stdout.some((l) => l.endsWith("* Current room: #general")));
  assert.ok(stdout.some((l) => l.endsWith("* You are in no room; /join one")));
  assert.match(stderr, /! Cannot send: you are in no room; \/join one first/);
  const ops = await watcher.frame((f) => f.type === "message");
  assert.deepEqual([ops.room, ops.text], ["#ops", "to ops"]);
  assert.equal((await watcher.frame((f) => f.type === "message")).room, "#general");

  const help = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", MAIN, "client", "--help"],
    stdin: "null",
  }).output();
  assert.equal(help.code, 0);
  const usage = new TextDecoder().decode(help.stdout);
  for (const flag of ["--name NAME", "--room #ROOM", "--no-color", "Exit codes"]) {
    assert.ok(usage.includes(flag), flag);
  }
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", MAIN, "client"],
    stdin: "null",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /Missing HOST/);
});

Deno.test("client: an unreachable server or a refused session exits 1 with one line", async () => {
  const port = (() => {
    using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return (l.addr as Deno.NetAddr).port;
  })();
  const down = await runPiped(port, "hello\n");
  assert.equal(down.code, 1);
  assert.deepEqual(down.stdout, []);
  assert.match(down.stderr, /^parley client: cannot connect to 127\.0\.0\.1:\d+: .+\n$/);

  await using server = await startServer(["--max-conns", "1"]);
  await using holder = await RawClient.text(server.port);
  const refused = await runPiped(server.port, "hello\n");
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    "parley client: the server refused the session: " +
      "Too many connections: the server is full, try again later\n",
  );
  assert.ok(!holder.ended);
});

Deno.test("client: control characters from others never reach the output", async () => {
  await using server = await startServer();
  await using proc = client(server.port, "--name", "reader");
  await proc.line(/You are now reader$/);
  await using evil = await RawClient.json(server.port, "evil");
  evil.send({ type: "send", room: "#general", text: "a\x1b[2Jb\rc\u009bd\u0007", ref: "s" });
  assert.match(await proc.line(/<evil>/), / <evil> a \[2Jb c d $/);
});

Deno.test("client: reconnects after the server restarts, keeping its name and rooms", async () => {
  await using first = await startServer();
  const port = first.port;
  await using proc = client(port, "--name", "phoenix", "--room", "#ops");
  await proc.line(/You joined #ops/);
  await first.stop();
  assert.match(await proc.line(/Server shutting down/), /\* Server shutting down: /);
  await using second = await startServer(["--port", String(port)]);
  assert.match(
    await proc.line(/Reconnected/, 15_000),
    /\* Reconnected as phoenix, in #general, #ops$/,
  );
  await using watcher = await RawClient.json(second.port, "watcher");
  watcher.send({ type: "join", room: "#ops", ref: "j" });
  assert.deepEqual((await watcher.frame((f) => f.ref === "j")).members, ["phoenix", "watcher"]);
  await proc.type("still here");
  const msg = await watcher.frame((f) => f.type === "message");
  assert.deepEqual([msg.room, msg.from, msg.text], ["#ops", "phoenix", "still here"]);
  const { code, stderr } = await proc.finish();
  assert.equal(code, 0, stderr);
  assert.match(
    stderr,
    /! Disconnected: .*; reconnecting\.\.\.\n/,
    "errors go to stderr when piped",
  );
});

Deno.test("client: SIGINT and SIGTERM quit cleanly", async () => {
  await using server = await startServer();
  await using watcher = await RawClient.json(server.port, "watcher");
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    await using proc = client(server.port, "--name", "sig");
    await proc.line(/You are now sig$/);
    proc.child.kill(signal);
    const { code } = await proc.child.status; // stdin still open: the signal alone ends it
    assert.equal(code, 0, `${signal}: ${(await proc.finish()).stderr}`);
    await watcher.frame((f) => f.type === "presence" && f.name === "sig" && f.event === "quit");
  }
});

Deno.test("client: accounts and history commands", async () => {
  await using server = await startServer();
  const { code, stdout, stderr } = await runPiped(
    server.port,
    "/register dave a long enough password 42\nhello\n/history\n/history bob\n/logout\nnot sent\n",
  );
  assert.equal(code, 0, stderr);
  const shown = stdout.map((l) => l.replace(TIME, ""));
  assert.ok(
    shown.includes("* Registered and logged in as dave; no unread direct messages"),
    shown.join("\n"),
  );
  const at = shown.indexOf("* History of #general (1 message):");
  assert.ok(at > 0, shown.join("\n"));
  assert.equal(shown[at + 1], "[#general] <dave> hello");
  assert.ok(shown.includes("* No messages"), "an empty DM history");
  assert.equal(shown.at(-1), "* Logged out; goodbye, dave");
  assert.equal(stderr, "");
});
