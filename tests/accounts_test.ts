// End to end: accounts, tokens, history, offline delivery and durability, against the real
// server on real SQLite files in temporary data folders.
import assert from "node:assert/strict";
import { MAIN, RawClient, request, startServer } from "./_helpers.ts";

type Frame = Record<string, unknown>;

async function account(port: number, name: string, pw: string, verb = "register") {
  const c = await RawClient.json(port);
  const reply = await request(c, { type: verb, name, password: pw });
  assert.equal(reply.type, "ack", JSON.stringify(reply));
  return { c, reply, token: String(reply.token) };
}

async function withData<T>(fn: (data: string) => Promise<T>): Promise<T> {
  const data = await Deno.makeTempDir({ prefix: "parley-accounts-" });
  try {
    return await fn(data);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
}

Deno.test("register, log in by password and by token; failures say nothing about existence", async () => {
  await using server = await startServer();
  const { c: a, reply, token } = await account(server.port, "alice", "correct horse");
  await using _a = a;
  assert.equal(reply.name, "alice");
  assert.match(token, /^[A-Za-z0-9_-]{43}$/, "256-bit base64url token");
  assert.deepEqual(reply.rooms, ["#general"]);
  await using b = await RawClient.json(server.port);
  const wrong = await request(b, { type: "login", name: "alice", password: "wrong horse" });
  const nobody = await request(b, { type: "login", name: "nobody", password: "wrong horse" });
  assert.equal(wrong.code, "auth_failed");
  assert.equal(nobody.code, "auth_failed");
  assert.equal(wrong.message, nobody.message);
  const byToken = await request(b, { type: "login", token });
  assert.equal(byToken.name, "alice");
  assert.equal(byToken.token, token);
  const badToken = await request(b, { type: "login", token: "x".repeat(43) });
  assert.equal(badToken.code, "auth_failed");
  await using c = await RawClient.json(server.port);
  assert.equal((await request(c, { type: "login", token: "x".repeat(43) })).code, "auth_failed");
  const dup = await request(c, { type: "register", name: "ALICE", password: "another one" });
  assert.equal(dup.code, "name_taken");
  const weak = await request(c, { type: "register", name: "carol", password: "short" });
  assert.equal(weak.code, "weak_password");
  const guesty = await request(c, { type: "register", name: "guest-77", password: "long enough" });
  assert.equal(guesty.code, "invalid_name");
});

Deno.test("a registered name is protected from guests; logged-in users appear under it", async () => {
  await using server = await startServer();
  const { c: alice } = await account(server.port, "alice", "correct horse");
  await using _a = alice;
  await using guest = await RawClient.text(server.port);
  guest.send("/nick Alice");
  assert.equal(await guest.line(), "! Cannot rename: alice is a registered name; /login to use it");
  alice.send({ type: "nick", name: "bob", ref: "n" });
  assert.equal((await alice.frame((f) => f.ref === "n")).code, "forbidden");
  alice.send({ type: "send", room: "#general", text: "hi", ref: "s" });
  assert.equal(await guest.line((l) => l.startsWith("[")), "[#general] <alice> hi");
});

Deno.test("text mode: /register, /login, /history, /passwd, /logout", async () => {
  await using server = await startServer();
  await using a = await RawClient.text(server.port);
  a.send("/register dave secret-words");
  assert.equal(await a.line(), "* Registered and logged in as dave; no unread direct messages");
  a.send("one");
  a.send("two");
  a.send("/history");
  assert.equal(await a.line(), "* History of #general (2 messages):");
  const dim = (text: string) =>
    new RegExp(`^\\[#general \\d\\d:\\d\\d\\] \x1b\\[2m${text}\x1b\\[22m$`);
  assert.match(await a.line(), dim("<dave> one"));
  assert.match(await a.line(), dim("<dave> two"));
  a.send("/passwd wrong-words new-secret-words");
  assert.equal(await a.line(), "! Cannot change password: the old password is wrong");
  a.send("/passwd secret-words new-secret-words");
  assert.equal(await a.line(), "* Password changed; your other sessions must log in again");
  a.send("/logout");
  assert.equal(await a.line(), "* Logged out; goodbye, dave");
  await a.closed();
  await using b = await RawClient.text(server.port);
  b.send("/login dave secret-words");
  assert.equal(await b.line((l) => l.startsWith("!")), "! Login failed: wrong name or password");
  b.send("/login dave new-secret-words");
  assert.equal(
    await b.line((l) => l.startsWith("* Logged in")),
    "* Logged in as dave; no unread direct messages",
  );
  // Joining #general again is not new, so the history came on connect, not again here.
});

Deno.test("joining replays recent history; history pages backwards", async () => {
  await using server = await startServer(["--history-on-join", "5", "--flood-rate", "0"]);
  const { c: alice } = await account(server.port, "alice", "correct horse");
  await using _a = alice;
  await request(alice, { type: "join", room: "#log" });
  const ids: number[] = [];
  for (let i = 0; i < 12; i++) {
    ids.push(Number((await request(alice, { type: "send", room: "#log", text: `n${i}` })).id));
  }
  await using bob = await RawClient.json(server.port, "bob");
  const joined = await request(bob, { type: "join", room: "#log" });
  assert.equal(joined.type, "ack");
  const replay = await bob.frame((f) => f.type === "history");
  assert.equal(replay.room, "#log");
  assert.equal(replay.more, true);
  const texts = (replay.messages as Frame[]).map((m) => m.text);
  assert.deepEqual(texts, ["n7", "n8", "n9", "n10", "n11"]);
  const page = await request(bob, { type: "history", room: "#log", before: ids[7], limit: 4 });
  assert.deepEqual((page.messages as Frame[]).map((m) => m.id), ids.slice(3, 7));
  assert.equal(page.more, true);
  const first = await request(bob, { type: "history", room: "#log", before: ids[3], limit: 10 });
  assert.deepEqual((first.messages as Frame[]).map((m) => m.text), ["n0", "n1", "n2"]);
  assert.equal(first.more, false);
  const outsider = await request(bob, { type: "history", room: "#elsewhere" });
  assert.equal(outsider.code, "not_in_room");
  const dmAsGuest = await request(bob, { type: "history", with: "alice" });
  assert.equal(dmAsGuest.code, "login_required");
});

Deno.test("DMs to an offline account wait for its next login, delivered once", async () => {
  await using server = await startServer();
  const first = await account(server.port, "alice", "correct horse");
  first.c.send({ type: "quit" });
  await first.c.closed();
  await first.c[Symbol.asyncDispose]();
  await using bob = await RawClient.json(server.port, "bob");
  for (const text of ["are you there?", "call me"]) {
    const ack = await request(bob, { type: "send", to: "alice", text });
    assert.equal(ack.type, "ack");
  }
  assert.equal(
    (await request(bob, { type: "send", to: "nobody", text: "x" })).code,
    "no_such_user",
  );
  const { c: back, reply } = await account(server.port, "alice", "correct horse", "login");
  await using _b = back;
  assert.deepEqual(reply.unread, [{ from: "bob", count: 2 }]);
  const m1 = await back.frame((f) => f.type === "message");
  const m2 = await back.frame((f) => f.type === "message");
  assert.deepEqual([m1.text, m2.text, m1.offline, m1.from, m1.to], [
    "are you there?",
    "call me",
    true,
    "bob",
    "alice",
  ]);
  const again = await account(server.port, "alice", "correct horse", "login");
  await using _c = again.c;
  assert.deepEqual(again.reply.unread, []);
  const dms = await request(again.c, { type: "history", with: "bob" });
  assert.deepEqual((dms.messages as Frame[]).map((m) => m.text), ["are you there?", "call me"]);
});

Deno.test("DMs sent while the recipient logs in or out are delivered exactly once", async () => {
  await using server = await startServer();
  const { c: first, token } = await account(server.port, "alice", "correct horse");
  first.send({ type: "quit" });
  await first.closed();
  await first[Symbol.asyncDispose]();
  await using bob = await RawClient.json(server.port, "bob");
  const received: string[] = [];
  const note = (f: Frame) => {
    if (f.type === "message" && f.from === "bob") received.push(String(f.text));
  };
  /** Reads up to the reply to `frame`, noting every DM from bob on the way. */
  const ask = (c: RawClient, frame: Frame) => {
    const ref = crypto.randomUUID();
    c.send({ ...frame, ref });
    return c.frame((f) => (note(f), f.ref === ref));
  };
  const collect = (c: RawClient) => c.pending().forEach((line) => note(JSON.parse(line)));
  const rounds = 25;
  for (let round = 0; round < rounds; round++) {
    // Alice logs in by token (answered within the same turn of the server's event loop) while
    // bob's DM to the offline alice waits for its commit; then she leaves while the next one
    // waits.
    const alice = await RawClient.json(server.port);
    bob.send({ type: "send", to: "alice", text: `in ${round}` });
    const login = ask(alice, { type: "login", token });
    await bob.frame((f) => f.type === "ack");
    assert.equal((await login).type, "ack");
    await ask(alice, { type: "ping" }); // everything pushed to her before is read now
    bob.send({ type: "send", to: "alice", text: `out ${round}` });
    alice.send({ type: "quit" });
    await bob.frame((f) => f.type === "ack");
    await alice.closed();
    collect(alice);
    await alice[Symbol.asyncDispose]();
  }
  const last = await RawClient.json(server.port);
  await using _last = last;
  await ask(last, { type: "login", token });
  await ask(last, { type: "ping" });
  const expected = Array.from({ length: rounds }, (_, i) => [`in ${i}`, `out ${i}`]).flat();
  assert.deepEqual(received.toSorted(), expected.toSorted());
});

Deno.test("several sessions of one account each get what the others send", async () => {
  await using server = await startServer();
  const { c: laptop, token } = await account(server.port, "alice", "correct horse");
  await using _l = laptop;
  await using phone = await RawClient.json(server.port);
  assert.equal((await request(phone, { type: "login", token })).name, "alice");
  await using bob = await RawClient.json(server.port, "bob");
  await request(laptop, { type: "send", room: "#general", text: "from laptop" });
  assert.equal((await phone.frame((f) => f.type === "message")).text, "from laptop");
  assert.equal((await bob.frame((f) => f.type === "message")).text, "from laptop");
  await request(laptop, { type: "send", to: "bob", text: "dm from laptop" });
  const copy = await phone.frame((f) => f.type === "message");
  assert.deepEqual([copy.text, copy.to, copy.from], ["dm from laptop", "bob", "alice"]);
  await request(bob, { type: "send", room: "#general", text: "hi both" });
  assert.equal((await laptop.frame((f) => f.type === "message")).text, "hi both");
  assert.equal((await phone.frame((f) => f.type === "message")).text, "hi both");
  await request(phone, { type: "join", room: "#mobile" });
  const joined = await laptop.frame((f) => f.type === "presence" && f.room === "#mobile");
  assert.equal(joined.name, "alice", "the laptop learns its account joined a room");
  const who = await request(bob, { type: "who", room: "#general" });
  assert.deepEqual(who.members, ["alice", "bob"], "one user, however many sessions");
});

Deno.test("restart on the same data folder: users, rooms, history and tokens survive", async () => {
  await withData(async (data) => {
    let token: string;
    let sentId: number;
    {
      await using server = await startServer(["--data", data]);
      const a = await account(server.port, "alice", "correct horse");
      await using _a = a.c;
      token = a.token;
      await request(a.c, { type: "join", room: "#keep" });
      sentId = Number(
        (await request(a.c, { type: "send", room: "#keep", text: "remember me" })).id,
      );
      assert.equal((await server.stop()).code, 0);
    }
    const mode = (await Deno.stat(data)).mode! & 0o777;
    assert.equal(mode, 0o700, "the data folder is private");
    await using server = await startServer(["--data", data]);
    await using c = await RawClient.json(server.port);
    const reply = await request(c, { type: "login", token });
    assert.equal(reply.name, "alice");
    assert.deepEqual(reply.rooms, ["#general", "#keep"]);
    const replay = await c.frame((f) => f.type === "history" && f.room === "#keep");
    assert.deepEqual((replay.messages as Frame[]).map((m) => [m.id, m.text]), [[
      sentId,
      "remember me",
    ]]);
    const next = Number((await request(c, { type: "send", room: "#keep", text: "later" })).id);
    assert.ok(next > sentId, "message ids keep increasing across restarts");
    await using d = await RawClient.json(server.port);
    assert.equal(
      (await request(d, { type: "login", name: "alice", password: "correct horse" })).type,
      "ack",
    );
  });
});

Deno.test("SIGKILL while clients send: every acknowledged message is in history exactly once", async () => {
  await withData(async (data) => {
    const acked: number[] = [];
    {
      await using server = await startServer(["--data", data, "--flood-rate", "0"]);
      const writers = await Promise.all([0, 1, 2].map(async (i) => {
        const c = await RawClient.json(server.port, `w${i}`);
        await request(c, { type: "join", room: "#crash" });
        return c;
      }));
      let n = 0;
      const pump = writers.map(async (c) => {
        for (;;) {
          c.send({ type: "send", room: "#crash", text: `x${n++}`, ref: `r${n}` });
          let ack: Frame;
          try {
            ack = await c.frame((f) => f.type === "ack" || f.type === "error", 2000);
          } catch {
            return; // the server died
          }
          if (ack.type === "ack") acked.push(Number(ack.id));
        }
      });
      await new Promise((r) => setTimeout(r, 700));
      await server.stop("SIGKILL");
      await Promise.all(pump);
      for (const c of writers) await c[Symbol.asyncDispose]();
    }
    assert.ok(acked.length > 20, `only ${acked.length} acks before the kill`);
    await using server = await startServer(["--data", data]);
    const { c } = await account(server.port, "reader", "correct horse");
    await using _c = c;
    await request(c, { type: "join", room: "#crash" });
    const stored: number[] = [];
    let before: number | undefined;
    for (;;) {
      const page = await request(c, {
        type: "history",
        room: "#crash",
        limit: 200,
        ...(before ? { before } : {}),
      });
      const ids = (page.messages as Frame[]).map((m) => Number(m.id));
      stored.unshift(...ids);
      if (!page.more) break;
      before = ids[0];
    }
    assert.equal(new Set(stored).size, stored.length, "no message stored twice");
    const have = new Set(stored);
    const lost = acked.filter((id) => !have.has(id));
    assert.deepEqual(lost, [], "every acknowledged message survived");
  });
});

Deno.test("failed logins are throttled per IP; the owner logs in after the window", async () => {
  await using server = await startServer(["--login-burst", "3", "--login-interval", "1"]);
  const { c: owner } = await account(server.port, "alice", "correct horse");
  await owner[Symbol.asyncDispose]();
  await using attacker = await RawClient.json(server.port);
  for (let i = 0; i < 3; i++) {
    const r = await request(attacker, { type: "login", name: "alice", password: `guess${i}xx` });
    assert.equal(r.code, "auth_failed");
  }
  const limited = await request(attacker, { type: "login", name: "alice", password: "guess4xxx" });
  assert.equal(limited.code, "rate_limited");
  assert.ok(Number(limited.retryAfter) >= 1, "says when to retry");
  await using text = await RawClient.text(server.port);
  text.send("/login alice correct horse");
  assert.match(
    await text.line((l) => l.startsWith("!")),
    /^! Too many failed logins: try again in \d+ s$/,
  );
  await new Promise((r) => setTimeout(r, 1100));
  text.send("/login alice correct horse");
  assert.match(await text.line((l) => l.startsWith("* Logged in")), /^\* Logged in as alice/);
});

Deno.test("--require-login: only hello, register, login, help, ping and quit before login", async () => {
  await using server = await startServer(["--require-login"]);
  await using c = await RawClient.json(server.port);
  assert.equal((await request(c, { type: "join", room: "#x" })).code, "login_required");
  assert.equal(
    (await request(c, { type: "send", room: "#general", text: "hi" })).code,
    "login_required",
  );
  assert.equal((await request(c, { type: "ping" })).type, "pong");
  const reg = await request(c, { type: "register", name: "erin", password: "correct horse" });
  assert.deepEqual(reg.rooms, ["#general"]);
  assert.equal((await request(c, { type: "send", room: "#general", text: "hi" })).type, "ack");
  await using t = await RawClient.connect(server.port);
  await t.line();
  t.send("hello?");
  assert.equal(
    await t.line(),
    "* This server requires an account: /login NAME PASSWORD or /register NAME PASSWORD",
  );
  assert.match(await t.line(), /^! Log in first/);
});

Deno.test("--no-registration refuses registration; 'parley user' accounts still log in", async () => {
  await withData(async (data) => {
    const add = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        MAIN,
        "user",
        "add",
        "frank",
        "--data",
        data,
        "--password-stdin",
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = add.stdin.getWriter();
    await w.write(new TextEncoder().encode("frank's password\n"));
    await w.close();
    const out = await add.output();
    assert.equal(out.code, 0);
    assert.match(new TextDecoder().decode(out.stdout), /created account frank/);
    await using server = await startServer(["--data", data, "--no-registration"]);
    await using c = await RawClient.json(server.port);
    const reg = await request(c, { type: "register", name: "gina", password: "correct horse" });
    assert.equal(reg.code, "registration_closed");
    assert.equal(
      (await request(c, { type: "login", name: "frank", password: "frank's password" })).name,
      "frank",
    );
  });
});

Deno.test("a database from a newer parley is refused with a clear error", async () => {
  await withData(async (data) => {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(`${data}/parley.db`);
    db.exec("PRAGMA user_version = 999");
    db.close();
    await assert.rejects(
      startServer(["--data", data]),
      /schema version 999 is newer than this parley's/,
    );
  });
});

Deno.test("the log of a full run holds no password, token or message text", async () => {
  await using server = await startServer(["--log-level", "debug"]);
  const { c, token } = await account(server.port, "alice", "very-secret-pw");
  await using _c = c;
  await request(c, { type: "send", room: "#general", text: "private words here" });
  await using d = await RawClient.json(server.port);
  await request(d, { type: "login", token });
  await request(d, { type: "login", name: "alice", password: "other-secret-pw" });
  const log = await server.stderr();
  assert.match(log, /logged in as "alice"/, "the log is not empty");
  for (const secret of ["very-secret-pw", "other-secret-pw", token, "private words here"]) {
    assert.ok(!log.includes(secret), `log leaks ${secret}`);
  }
});

Deno.test("an account that left #general is not put back in it by logging in", async () => {
  await using server = await startServer();
  const { c: first, token } = await account(server.port, "alice", "correct horse");
  await request(first, { type: "join", room: "#ops" });
  await request(first, { type: "part", room: "#general" });
  first.send({ type: "quit" });
  await first.closed();
  await first[Symbol.asyncDispose]();
  await using again = await RawClient.json(server.port); // a guest in #general, then alice
  const reply = await request(again, { type: "login", token });
  assert.deepEqual(reply.rooms, ["#ops"]);
  assert.deepEqual((await request(again, { type: "who", room: "#general" })).members, []);
  // A first login keeps the guest's #general: it becomes the account's room.
  await using fresh = await RawClient.json(server.port);
  const reg = await request(fresh, { type: "register", name: "bob", password: "correct horse" });
  assert.deepEqual(reg.rooms, ["#general"]);
});
