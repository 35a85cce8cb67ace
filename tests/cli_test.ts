// The command line: usage, help and mistakes; `parley user`'s administration and audit log;
// `parley backup` of a database a running server uses.
import assert from "node:assert/strict";
import { openSqliteStore } from "../src/store/worker_store.ts";
import { MAIN, RawClient, request, startServer, tempDir } from "./_helpers.ts";

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", MAIN, ...args],
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("main.ts --help lists the subcommands", async () => {
  const { code, out } = await run("--help");
  assert.equal(code, 0);
  assert.match(out, /Usage: parley <command>/);
  assert.match(out, /\bserver\b/);
  assert.match(out, /\bclient\b/);
});

Deno.test("main.ts server --help lists every limit with its default", async () => {
  const { code, out } = await run("server", "--help");
  assert.equal(code, 0);
  for (
    const flag of [
      "--host HOST .*0\\.0\\.0\\.0",
      "--port PORT .*5000",
      "--max-line BYTES .*16384",
      "--max-text BYTES .*4096",
      "--max-sendq BYTES .*1048576",
      "--max-conns N .*10000",
      "--max-conns-per-ip N .*20",
      "--flood-burst",
      "--flood-rate",
      "--log-level",
      "--log-format",
    ]
  ) {
    assert.match(out, new RegExp(flag), flag);
  }
});

Deno.test("mistakes on the command line exit 2 with one clear line", async () => {
  const unknownCmd = await run("frobnicate");
  assert.equal(unknownCmd.code, 2);
  assert.match(unknownCmd.err, /unknown command 'frobnicate'/);
  const badFlag = await run("server", "--bogus");
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.err, /--bogus/);
  const badPort = await run("server", "--port", "70000");
  assert.equal(badPort.code, 2);
  assert.match(badPort.err, /--port must be a number from 0 to 65535, got '70000'/);
  const badLevel = await run("server", "--log-level", "loud");
  assert.equal(badLevel.code, 2);
  assert.match(badLevel.err, /--log-level must be one of/);
});

/** Runs `main.ts ARGS` with read and write access, `stdin` (when given) as its input. */
async function runRw(
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", MAIN, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("user admin|unadmin|passwd|disable|enable|delete: audited, and posted for running servers", async () => {
  await using dir = await tempDir("parley-cli-");
  const data = ["--data", dir.path];
  {
    await using store = await openSqliteStore(`${dir.path}/parley.db`);
    await store.accounts.createUser("Frank", "h", 0);
  }
  const ok = async (args: string[], out: RegExp, stdin?: string) => {
    const r = await runRw(["user", ...args, ...data], stdin);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.err}`);
    assert.match(r.out, out, args.join(" "));
  };
  await ok(["admin", "frank"], /^Frank is now an administrator$/m);
  await ok(["list"], /^Frank\tactive, admin\tcreated /m);
  await ok(["admin", "FRANK"], /already an administrator/); // no change: neither audited nor posted
  await ok(["unadmin", "frank"], /^Frank is no longer an administrator$/m);
  await ok(
    ["passwd", "frank", "--password-stdin"],
    /password of Frank changed/,
    "new secret words\n",
  );
  await ok(["disable", "frank"], /^Frank disabled$/m);
  await ok(["enable", "frank"], /^Frank enabled$/m);
  await ok(["delete", "frank"], /^deleted account Frank$/m);
  {
    await using store = await openSqliteStore(`${dir.path}/parley.db`);
    const events = await store.moderation.adminEventsAfter(0);
    assert.deepEqual(events.map((e) => [e.kind, e.name]), [
      ["role", "Frank"],
      ["role", "Frank"],
      ["revoke", "Frank"],
      ["revoke", "Frank"],
      ["revoke", "Frank"],
    ]);
    assert.ok(events.every((e) => e.userId === events[0]!.userId));
    const log = await store.moderation.auditLog(100);
    assert.deepEqual(log.map((e) => [e.actor, e.action, e.target, e.room]), [
      ["admin", "delete", "Frank", undefined],
      ["admin", "enable", "Frank", undefined],
      ["admin", "disable", "Frank", undefined],
      ["admin", "passwd", "Frank", undefined],
      ["admin", "unadmin", "Frank", undefined],
      ["admin", "admin", "Frank", undefined],
    ]);
    await store.moderation.audit({
      ts: Date.UTC(2030, 0, 2, 3, 4, 5),
      actor: "alice",
      action: "topic",
      room: "#ops",
      target: undefined,
      detail: "new\ttopic\u202e!",
    });
  }
  const audit = await runRw(["user", "audit", "--limit", "3", ...data]);
  assert.equal(audit.code, 0, audit.err);
  const lines = audit.out.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[0], "2030-01-02T03:04:05.000Z\talice\ttopic\t#ops\t-\tnew?topic?!");
  assert.match(lines[1]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tadmin\tdelete\t-\tFrank\t-$/);
  assert.match(lines[2]!, /\tadmin\tenable\t-\tFrank\t-$/);
  const all = await runRw(["user", "audit", ...data]);
  assert.equal(all.out.trimEnd().split("\n").length, 7);
  // Mistakes.
  const missing = await runRw(["user", "admin", "nobody", ...data]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /parley user admin: No account named nobody/);
  const badLimit = await runRw(["user", "audit", "--limit", "0", ...data]);
  assert.equal(badLimit.code, 2);
  assert.match(badLimit.err, /--limit must be a number from 1 to 100000, got '0'/);
});

Deno.test("user: an unknown action or a stray argument exits 2 with one clear line", async () => {
  const unknown = await run("user", "frobnicate", "x");
  assert.equal(unknown.code, 2);
  assert.equal(
    unknown.err.trim(),
    "parley user: unknown action 'frobnicate'; run 'parley user --help'",
  );
  const stray = await run("user", "audit", "extra");
  assert.equal(stray.code, 2);
  assert.match(stray.err, /unexpected argument 'extra'/);
  const nameless = await run("user", "admin");
  assert.equal(nameless.code, 2);
  assert.match(nameless.err, /Missing NAME for 'user admin'/);
  const help = await run("user", "--help");
  assert.equal(help.code, 0);
  for (const action of ["admin NAME", "unadmin NAME", "audit", "--limit N"]) {
    assert.match(help.out, new RegExp(`^  ${action} `, "m"), action);
  }
});

Deno.test("backup copies the database while a server uses it; refuses to overwrite", async () => {
  await using dir = await tempDir("parley-backup-");
  const data = `${dir.path}/data`;
  await Deno.mkdir(data);
  await using server = await startServer(["--data", data]);
  await using c = await RawClient.json(server.port);
  const reg = await request(c, { type: "register", name: "alice", password: "correct horse" });
  assert.equal(reg.type, "ack", JSON.stringify(reg));
  const sent = await request(c, { type: "send", room: "#general", text: "kept in the copy" });
  assert.equal(sent.type, "ack", JSON.stringify(sent));
  const out = `${dir.path}/copy.db`;
  const backup = await runRw(["backup", "--data", data, "--out", out]);
  assert.equal(backup.code, 0, backup.err);
  assert.match(backup.out, /^backed up .*parley\.db to .*copy\.db \(\d+ bytes, \d+ ms\)$/m);
  // The server goes on: a message after the backup is not in the copy.
  const later = await request(c, { type: "send", room: "#general", text: "after the copy" });
  assert.equal(later.type, "ack", JSON.stringify(later));
  {
    await using copy = await openSqliteStore(out);
    const history = await copy.messages.history({ room: "#general" }, undefined, 10);
    assert.deepEqual(history.map((m) => [m.from, m.text]), [["alice", "kept in the copy"]]);
    assert.equal((await copy.accounts.getUser("alice"))?.name, "alice");
  }
  const again = await runRw(["backup", "--data", data, "--out", out]);
  assert.equal(again.code, 1);
  assert.match(again.err, /^parley backup: .*copy\.db already exists; choose a new file name$/m);
  const none = await runRw([
    "backup",
    "--data",
    `${dir.path}/nowhere`,
    "--out",
    `${dir.path}/x.db`,
  ]);
  assert.equal(none.code, 1);
  assert.match(none.err, /no database in/);
  await assert.rejects(Deno.stat(`${dir.path}/x.db`), Deno.errors.NotFound);
  const noOut = await run("backup");
  assert.equal(noOut.code, 2);
  assert.match(noOut.err, /parley backup: Missing --out FILE; run 'parley backup --help'/);
  const readOnly = await run("backup", "--data", data, "--out", `${dir.path}/ro.db`);
  assert.equal(readOnly.code, 1, "no write permission: refused before SQLite writes anything");
  assert.match(readOnly.err, /no permission/);
  await assert.rejects(Deno.stat(`${dir.path}/ro.db`), Deno.errors.NotFound);
});

Deno.test("user passwd|disable|admin reach a running server's live sessions within 2 s", async () => {
  await using dir = await tempDir("parley-cli-live-");
  await using server = await startServer(["--data", dir.path]);
  const connect = async (name: string) => {
    const c = await RawClient.json(server.port);
    const reg = await request(c, { type: "register", name, password: "correct horse" });
    assert.equal(reg.type, "ack", JSON.stringify(reg));
    return c;
  };
  await using alice = await connect("alice");
  await using bob = await connect("bob");
  await using carol = await connect("carol");
  const data = ["--data", dir.path];
  /** Runs `parley user …`; the time it finished, when the server's 2 s begin. */
  const user = async (args: string[], stdin?: string) => {
    const r = await runRw(["user", ...args, ...data], stdin);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.err}`);
    return performance.now();
  };

  // admin: bob may wall at once, without logging in again.
  let done = await user(["admin", "bob"]);
  await bob.frame((f) => f.type === "notice" && f.text === "You are now a server administrator");
  assert.ok(performance.now() - done < 2000, `admin: ${performance.now() - done} ms`);
  const wall = await request(bob, { type: "wall", text: "maintenance at noon" });
  assert.equal(wall.type, "ack", JSON.stringify(wall));
  await alice.frame((f) => f.type === "wall" && f.text === "maintenance at noon");

  // disable and passwd: the live session is told, then closed.
  const cases: [RawClient, string[], string | undefined][] = [
    [alice, ["disable", "alice"], undefined],
    [carol, ["passwd", "carol", "--password-stdin"], "brand new secret\n"],
  ];
  for (const [c, args, stdin] of cases) {
    done = await user(args, stdin);
    const told = await c.frame((f) => f.type === "error" && f.code === "auth_failed");
    assert.match(String(told.message), /administrator changed your account/);
    const after = await c.line(() => false, 2000).then(() => "a line", (e) => String(e));
    assert.match(after, /ended/, `${args[0]}: the connection was closed`);
    assert.ok(performance.now() - done < 2000, `${args[0]}: ${performance.now() - done} ms`);
  }
});

Deno.test("every usage error quotes what was given, one line, exit 2", async () => {
  const cases: [string[], string][] = [
    [["server", "--port", "abc"], "parley server: --port must be a number, got 'abc'"],
    [["server", "--http-port", "8o8o"], "parley server: --http-port must be a number, got '8o8o'"],
    [
      ["server", "--tls-port", "99999"],
      "parley server: --tls-port must be a number from 0 to 65535, got '99999'",
    ],
    [
      ["server", "--idle-timeout", "1.5"],
      "parley server: --idle-timeout must be a number, got '1.5'",
    ],
    [
      ["server", "--sync", "maybe"],
      "parley server: --sync must be one of full, normal, got 'maybe'",
    ],
    [["server", "extra"], "parley server: unexpected argument 'extra'"],
    [["client", "localhost", "abc"], "parley client: PORT must be a number, got 'abc'"],
    [["client", "localhost", "5000", "more"], "parley client: unexpected argument 'more'"],
    [
      ["client", "localhost", "--http-port", "x"],
      "parley client: --http-port must be a number, got 'x'",
    ],
    [["cert", "--days", "soon"], "parley cert: --days must be a number, got 'soon'"],
    [
      ["cert", "--host", "a b"],
      "parley cert: --host must be a DNS name or an IP address, got 'a b'",
    ],
    [["cert", "extra"], "parley cert: unexpected argument 'extra'"],
    [["user", "add", "bob", "extra"], "parley user: unexpected argument 'extra'"],
    [["user", "frob", "bob"], "parley user: unknown action 'frob'"],
  ];
  for (const [args, message] of cases) {
    const { code, err } = await run(...args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(err.trim().split("\n").length, 1, err);
    assert.ok(
      err.startsWith(`${message}; run 'parley ${args[0]} --help'`),
      `${args.join(" ")}: ${err}`,
    );
  }
});

Deno.test("cert refuses to replace an existing key without --force", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-cert-" });
  try {
    const cert = (...more: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", MAIN, "cert", "--out", dir, ...more],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
    assert.equal((await cert()).code, 0);
    const key = await Deno.readTextFile(`${dir}/key.pem`);
    const again = await cert();
    assert.equal(again.code, 2);
    assert.match(
      new TextDecoder().decode(again.stderr),
      new RegExp(`^parley cert: '${dir}/key.pem' exists: pass --force to replace it`),
    );
    assert.equal(await Deno.readTextFile(`${dir}/key.pem`), key, "the key is untouched");
    assert.equal((await cert("--force")).code, 0);
    assert.notEqual(await Deno.readTextFile(`${dir}/key.pem`), key);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
