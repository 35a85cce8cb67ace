// End to end: the real terminal client (`main.ts client`) as a subprocess with piped stdin and
// stdout, against the real server as a subprocess.
import assert from "node:assert/strict";
import {
  clientPermissions,
  ClientProcess,
  freePort,
  MAIN,
  makeCert,
  RawClient,
  startServer,
  tempDir,
  tlsServerArgs,
} from "./_helpers.ts";
import type { ServerProcess } from "./_helpers.ts";

const TIME = /^\d\d:\d\d:\d\d /;

/**
 * A config folder for the clients of this file (tokens land in CONFIG/parley), so no test reads
 * or writes the real ~/.config.
 */
const CONFIG = await Deno.makeTempDir({ prefix: "parley-client-config-" });
globalThis.addEventListener("unload", () => Deno.removeSync(CONFIG, { recursive: true }));

/**
 * The terminal client with the `client` task's permissions, its tokens in `XDG_CONFIG_HOME`
 * (CONFIG unless `env` names another).
 */
function clientProcess(args: string[], env: Record<string, string> = {}): ClientProcess {
  const config = env.XDG_CONFIG_HOME ?? CONFIG;
  return new ClientProcess(args, {
    permissions: clientPermissions(config),
    env: { XDG_CONFIG_HOME: config, ...env },
  });
}

function client(port: number, ...args: string[]): ClientProcess {
  return clientProcess(["127.0.0.1", String(port), ...args]);
}

/** Runs a client with all of `input` piped in; returns once it exits. */
function runPiped(port: number, input: string, ...args: string[]) {
  return finishPiped(client(port, ...args), input);
}

/** Types all of `input` into `proc`, ends the input, and waits for the exit. */
async function finishPiped(proc: ClientProcess, input: string) {
  await using c = proc;
  await c.type(...input.split("\n").slice(0, -1));
  return await c.finish();
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
  await using proc = clientProcess([String(server.port), "127.0.0.1", "--room", "ops"]);
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
  for (
    const flag of [
      "--name NAME",
      "--password-stdin",
      "--room #ROOM",
      "--tls",
      "--ca FILE",
      "--insecure",
      "--no-token-file",
      "--no-color",
      "tokens.json",
      "Exit codes",
    ]
  ) {
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
  const port = freePort();
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

Deno.test("client: control characters and bidi overrides from others never reach the output", async () => {
  await using server = await startServer();
  await using proc = client(server.port, "--name", "reader");
  await proc.line(/You are now reader$/);
  await using evil = await RawClient.json(server.port, "evil");
  evil.send({ type: "send", room: "#general", text: "a\x1b[2Jb\rc\u009bd\u0007", ref: "s" });
  assert.equal((await evil.frame((f) => f.ref === "s")).code, "bad_frame", "the server refuses it");
  evil.send({ type: "send", room: "#general", text: "a\tb \u202etxt.exe", ref: "t" });
  assert.match(await proc.line(/<evil>/), / <evil> a b \ufffdtxt\.exe$/);
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

// Accounts: --name with a saved token, --password-stdin, the token file, history, offline DMs.

const PASSWORD = "a long enough password 42";

/** Registers `name` over a raw JSON connection, optionally joins `rooms`, and leaves. */
async function register(port: number, name: string, ...rooms: string[]): Promise<void> {
  await using c = await RawClient.json(port);
  c.send({ type: "register", name, password: PASSWORD, ref: "r" });
  assert.equal((await c.frame((f) => f.ref === "r")).type, "ack");
  for (const room of rooms) {
    c.send({ type: "join", room, ref: `j${room}` });
    await c.frame((f) => f.ref === `j${room}`);
  }
  c.send({ type: "quit", ref: "q" });
  await c.closed();
}

/** The tokens saved under `config`, by server and account. */
async function savedTokens(config: string): Promise<Record<string, Record<string, string>>> {
  try {
    return JSON.parse(await Deno.readTextFile(`${config}/parley/tokens.json`)).servers;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw error;
  }
}

Deno.test("client --name --password-stdin logs in and saves the token; later starts resume with it", async () => {
  await using server = await startServer();
  await using config = await tempDir("parley-client-config-");
  const env = { XDG_CONFIG_HOME: config.path };
  const key = `127.0.0.1:${server.port}`;
  await register(server.port, "erin");
  const start = (input: string, ...args: string[]) =>
    finishPiped(
      clientProcess(["127.0.0.1", String(server.port), "--name", "erin", ...args], env),
      input,
    );

  // The first line is the password; the rest is chat.
  const first = await start(`${PASSWORD}\nhello\n`, "--password-stdin");
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr, "");
  const shown = first.stdout.map((l) => l.replace(TIME, ""));
  assert.ok(shown.includes("* Logged in as erin; no unread direct messages"), shown.join("\n"));
  assert.ok(shown.includes("[#general] <erin> hello"));
  assert.ok(!first.stdout.some((l) => l.includes(PASSWORD)), "the password is never shown");
  const token = (await savedTokens(config.path))[key]?.erin;
  assert.match(token ?? "", /^[A-Za-z0-9_-]{43}$/);
  if (Deno.build.os !== "windows") {
    assert.equal((await Deno.stat(`${config.path}/parley`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${config.path}/parley/tokens.json`)).mode! & 0o777, 0o600);
  }

  // Next time the saved token logs in: no password needed.
  const second = await start("hello again\n", "--room", "#ops");
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stderr, "");
  const again = second.stdout.map((l) => l.replace(TIME, ""));
  assert.ok(again.includes("* Logged in as erin; no unread direct messages"), again.join("\n"));
  assert.ok(again.includes("[#ops] <erin> hello again"));

  // --no-token-file: neither used nor saved.
  const guest = await start("x\n", "--no-token-file");
  assert.equal(guest.code, 0);
  assert.match(guest.stderr, /! Cannot rename: erin is a registered name/);

  // /logout revokes the token and forgets it.
  const out = await start("/logout\n");
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.at(-1)?.replace(TIME, ""), "* Logged out; goodbye, erin");
  assert.deepEqual(await savedTokens(config.path), {});

  // A saved token the server refuses (revoked, expired) is forgotten; the client goes on as a
  // guest (piped: no prompt).
  await Deno.writeTextFile(
    `${config.path}/parley/tokens.json`,
    JSON.stringify({ version: 1, servers: { [key]: { erin: token } } }),
  );
  const stale = await start("still a guest\n");
  assert.equal(stale.code, 0, stale.stderr);
  assert.deepEqual(stale.stderr.trim().split("\n").map((l) => l.replace(TIME, "")), [
    "! The saved session for erin has expired or was revoked",
    "! Cannot rename: erin is a registered name; /login to use it",
  ]);
  assert.ok(stale.stdout.some((l) => / \[#general\] <guest-\d+> still a guest$/.test(l)));
  assert.deepEqual(await savedTokens(config.path), {});
});

Deno.test("client --password-stdin: a wrong password exits 1 and sends nothing", async () => {
  await using server = await startServer();
  await register(server.port, "finn");
  await using watcher = await RawClient.json(server.port, "watcher");
  const { code, stdout, stderr } = await runPiped(
    server.port,
    "wrong password\nnever sent\n",
    "--name",
    "finn",
    "--password-stdin",
  );
  assert.equal(code, 1);
  assert.deepEqual(stderr.trim().split("\n").map((l) => l.replace(TIME, "")), [
    "! Cannot log in as finn: Login failed: wrong name or password",
  ]);
  assert.ok(!stdout.some((l) => l.includes("never sent")));
  await watcher.frame((f) => f.type === "presence" && f.event === "quit");
  assert.ok(!watcher.pending().some((l) => l.includes("never sent")));
});

Deno.test("client shows the login summary, replayed history and offline direct messages", async () => {
  await using server = await startServer();
  await register(server.port, "gwen", "#ops");
  await using bob = await RawClient.json(server.port, "bob");
  for (
    const [i, frame] of [
      { type: "join", room: "#ops" },
      { type: "send", room: "#ops", text: "earlier in ops" },
      { type: "send", to: "gwen", text: "call me", action: false },
      { type: "send", to: "gwen", text: "waves", action: true },
    ].entries()
  ) {
    bob.send({ ...frame, ref: `b${i}` });
    assert.equal((await bob.frame((f) => f.ref === `b${i}`)).type, "ack");
  }
  const { code, stdout, stderr } = await runPiped(
    server.port,
    `${PASSWORD}\n/history bob\n`,
    "--name",
    "gwen",
    "--password-stdin",
    "--no-token-file",
  );
  assert.equal(code, 0, stderr);
  const shown = stdout.map((l) => l.replace(TIME, ""));
  const expected = [
    "* Logged in as gwen; unread direct messages: bob (2)",
    "* History of #ops (1 message):",
    "[#ops] <bob> earlier in ops",
    "[dm] <bob> call me (sent while you were away)",
    "[dm] * bob waves (sent while you were away)",
    "* History of your messages with bob (2 messages):",
    "[dm] <bob> call me",
    "[dm] * bob waves",
  ];
  const at = expected.map((line) => shown.indexOf(line));
  assert.ok(at.every((i) => i > 0), `${JSON.stringify(at)}\n${shown.join("\n")}`);
  assert.deepEqual([...at].sort((a, b) => a - b), at, "in this order");
  // History lines carry the message's own time.
  assert.match(stdout[shown.indexOf("[#ops] <bob> earlier in ops")]!, TIME);
});

Deno.test("client logs in again after a restart; a session the server no longer knows is forgotten", async () => {
  await using data = await tempDir("parley-client-data-");
  await using config = await tempDir("parley-client-config-");
  let server: ServerProcess = await startServer(["--data", data.path]);
  const port = server.port;
  try {
    await register(port, "hal");
    await using proc = clientProcess(
      ["127.0.0.1", String(port), "--name", "hal", "--password-stdin"],
      { XDG_CONFIG_HOME: config.path },
    );
    await proc.type(PASSWORD);
    await proc.line(/Logged in as hal/);
    for (let i = 0; !(await savedTokens(config.path))[`127.0.0.1:${port}`]?.hal; i++) {
      assert.ok(i < 100, "the token is saved");
      await new Promise((r) => setTimeout(r, 50));
    }

    await server.stop();
    server = await startServer(["--data", data.path, "--port", String(port)]);
    assert.match(await proc.line(/Reconnected/, 15_000), /\* Reconnected as hal, in #general$/);

    await server.stop();
    await Deno.remove(`${data.path}/parley.db`);
    server = await startServer(["--data", data.path, "--port", String(port)]);
    assert.match(await proc.line(/Reconnected/, 15_000), /Reconnected as guest-\d+, in #general$/);
    await proc.type("/ping");
    await proc.line(/\* pong$/);
    const { code, stderr } = await proc.finish();
    assert.equal(code, 0, stderr);
    assert.match(
      stderr,
      /! Your session as hal has expired or was revoked; you are guest-\d+ \(\/login to log in again\)\n/,
    );
    assert.deepEqual(await savedTokens(config.path), {});
  } finally {
    await server[Symbol.asyncDispose]();
  }
});

/** Whether util-linux `script` is there to give the client a terminal. */
const HAS_SCRIPT = Deno.build.os === "linux" &&
  await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false);

Deno.test({
  name: "client at a terminal: a taken --name asks for the account's password, without echo",
  ignore: !HAS_SCRIPT,
  fn: async () => {
    await using server = await startServer();
    await using config = await tempDir("parley-client-config-");
    await register(server.port, "ivy");
    const command = [
      Deno.execPath(),
      "run",
      ...clientPermissions(config.path),
      MAIN,
      "client",
      "127.0.0.1",
      String(server.port),
      "--name",
      "ivy",
    ].join(" ");
    const child = new Deno.Command("script", {
      args: ["-qfec", command, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { XDG_CONFIG_HOME: config.path, NO_COLOR: "1" },
    }).spawn();
    const stdin = child.stdin.getWriter();
    let screen = "";
    const reading = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) screen += chunk;
    })();
    const waitFor = async (pattern: RegExp) => {
      for (let i = 0; !pattern.test(screen); i++) {
        assert.ok(i < 200, `no ${pattern} in:\n${screen}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await waitFor(/Cannot rename: ivy is a registered name/);
      await waitFor(/Password for ivy, if it is your account \(Enter to skip\): /);
      await stdin.write(new TextEncoder().encode(`${PASSWORD}\r`));
      await waitFor(/\* Logged in as ivy; no unread direct messages/);
      await stdin.write(new TextEncoder().encode("/quit\r"));
      await waitFor(/\* Goodbye, ivy/);
      assert.equal((await child.status).code, 0);
      assert.ok(!screen.includes(PASSWORD), `the password was echoed:\n${screen}`);
      assert.ok((await savedTokens(config.path))[`127.0.0.1:${server.port}`]?.ivy);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      await stdin.close().catch(() => {});
      await child.status;
      await reading;
    }
  },
});

// TLS: certificates made by `main.ts cert`, the real server with a TLS listener.

Deno.test("client --tls --ca: verified TLS, chatting with a plain-TCP client", async () => {
  await using dir = await tempDir("parley-client-tls-");
  const ca = (await makeCert(dir.path, "localhost")).path;
  await using server = await startServer(tlsServerArgs(dir.path));
  const tlsPort = String(server.tlsPort);
  await using proc = clientProcess([
    "localhost",
    tlsPort,
    "--tls",
    "--ca",
    ca,
    "--name",
    "sec",
  ]);
  assert.match(
    await proc.line(/Connected/),
    /\* Connected to localhost:\d+ \(parley [^,]+, TLS\) as guest-\d+, in #general$/,
  );
  await proc.line(/You are now sec$/);
  await using plain = await RawClient.text(server.port, "plain");
  await proc.type("hello plain");
  assert.equal(await plain.line((l) => l.startsWith("[")), "[#general] <sec> hello plain");
  plain.send("hello tls");
  assert.match(await proc.line(/<plain>/), / \[#general\] <plain> hello tls$/);
  const { code, stderr } = await proc.finish();
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
});

Deno.test("client --tls: an unverifiable certificate exits 1 with one line naming the problem", async () => {
  await using dir = await tempDir("parley-client-tls-");
  const ca = (await makeCert(dir.path, "otherhost")).path;
  await using server = await startServer(tlsServerArgs(dir.path));
  const tlsPort = String(server.tlsPort);
  const unknown = await finishPiped(clientProcess(["localhost", tlsPort, "--tls"]), "hi\n");
  assert.equal(unknown.code, 1);
  assert.deepEqual(unknown.stdout, []);
  assert.equal(
    unknown.stderr,
    `parley client: cannot connect to localhost:${tlsPort}: the server's certificate is not ` +
      "signed by a trusted certificate authority; for a private CA or a self-signed " +
      "certificate use --ca FILE\n",
  );
  const host = await finishPiped(clientProcess(["localhost", tlsPort, "--ca", ca]), "hi\n");
  assert.equal(host.code, 1);
  assert.equal(
    host.stderr,
    `parley client: cannot connect to localhost:${tlsPort}: the server's certificate is not ` +
      "valid for the host name localhost (it is for otherhost)\n",
  );
  // --ca must name a readable PEM certificate: a command-line mistake.
  const missing = await finishPiped(
    clientProcess(["localhost", tlsPort, "--ca", `${dir.path}/nope.pem`]),
    "",
  );
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^parley client: cannot read --ca .*nope\.pem: .+\n$/);
  const notPem = await finishPiped(
    clientProcess(["localhost", tlsPort, "--ca", `${dir.path}/key.pem`]),
    "",
  );
  assert.equal(notPem.code, 2);
  assert.match(notPem.stderr, /it holds no PEM certificate/);
});

Deno.test("client --insecure connects without verifying and warns loudly", async () => {
  await using dir = await tempDir("parley-client-tls-");
  await makeCert(dir.path, "otherhost");
  await using server = await startServer(tlsServerArgs(dir.path));
  const tlsPort = String(server.tlsPort);
  await using watcher = await RawClient.json(server.port, "watcher");
  const { code, stdout, stderr } = await finishPiped(
    clientProcess(["localhost", tlsPort, "--insecure"]),
    "unverified hello\n",
  );
  assert.equal(code, 0, stderr);
  assert.equal(
    stderr,
    "WARNING: --insecure: the server's certificate is NOT verified; anyone on the network " +
      "path can read and change this chat\n",
  );
  assert.match(stdout[0]!, /\(parley [^,]+, TLS NOT VERIFIED\) as guest-\d+/);
  assert.equal((await watcher.frame((f) => f.type === "message")).text, "unverified hello");
});

Deno.test("client: the server's password from --server-password-stdin or PARLEY_SERVER_PASSWORD; missing or wrong: exit 1", async () => {
  await using server = await startServer(["--server-password", "open sesame"]);
  await using watcher = await RawClient.connect(server.port);
  watcher.send({ type: "hello", proto: 1, ref: "h", serverPassword: "open sesame" });
  await watcher.frame((f) => f.ref === "h" && f.type === "welcome");

  const piped = await runPiped(
    server.port,
    "open sesame\nfrom stdin\n",
    "--server-password-stdin",
    "--name",
    "stdinuser",
  );
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(
    (await watcher.frame((f) => f.type === "message" && f.from === "stdinuser")).text,
    "from stdin",
    "the password line is not sent as chat",
  );
  assert.doesNotMatch(piped.stdout.join("\n") + piped.stderr, /open sesame/);

  const env = await finishPiped(
    clientProcess(["127.0.0.1", String(server.port), "--name", "envuser"], {
      PARLEY_SERVER_PASSWORD: "open sesame",
    }),
    "from env\n",
  );
  assert.equal(env.code, 0, env.stderr);
  assert.equal(
    (await watcher.frame((f) => f.type === "message" && f.from === "envuser")).text,
    "from env",
  );

  const missing = await runPiped(server.port, "hello\n");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /refused the session: it needs its password/);
  const wrong = await runPiped(server.port, "letmeout\nhello\n", "--server-password-stdin");
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /wrong server password/);
  assert.doesNotMatch(wrong.stderr, /letmeout/);
});
