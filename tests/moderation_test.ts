// Moderation in process: the real ChatServer with no ports, connections from memoryConnection()
// (each with its own address), a real SQLite store on its worker. What every role may and may
// not do, what the room sees, and what survives a restart.
import assert from "node:assert/strict";
import { memoryConnection } from "../src/transport/memory.ts";
import type { MemoryPeer } from "../src/transport/memory.ts";
import { tempDir } from "./_helpers.ts";
import { app, ok, PASSWORD, refused, register, seen } from "./_in_process.ts";
import type { App } from "./_in_process.ts";

async function guest(a: App, name: string, ip: string): Promise<MemoryPeer> {
  const peer = await a.connect(ip);
  await ok(peer, { type: "nick", name });
  return peer;
}

Deno.test("moderation: the account that creates a room owns it; it names operators; who and join report roles, topic and modes", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const joined = await ok(alice, { type: "join", room: "#den" });
  assert.deepEqual(joined.roles, { alice: "owner" });
  assert.equal(joined.modes, "");
  assert.equal(joined.topic, undefined);
  await ok(bob, { type: "join", room: "#den" });
  await ok(alice, { type: "op", room: "#den", name: "bob" });
  const event = await seen(bob, (f) => f.type === "moderation");
  assert.deepEqual(event, {
    type: "moderation",
    room: "#den",
    action: "op",
    by: "alice",
    name: "bob",
  });
  const who = await ok(bob, { type: "who", room: "#den" });
  assert.deepEqual(who.roles, { alice: "owner", bob: "op" });
  // #general belongs to nobody: the server made it.
  assert.deepEqual((await ok(alice, { type: "who", room: "#general" })).roles, {});
});

Deno.test("moderation: without the role a request is forbidden; nobody acts on their own rank or above", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const carol = await guest(a, "carol", "10.0.0.3");
  await ok(alice, { type: "join", room: "#den" });
  await ok(bob, { type: "join", room: "#den" });
  await ok(carol, { type: "join", room: "#den" });
  await refused(
    carol,
    { type: "kick", room: "#den", name: "bob" },
    "forbidden",
    /not an operator of #den/,
  );
  await refused(carol, { type: "topic", room: "#den", text: "mine" }, "forbidden");
  await refused(carol, { type: "mode", room: "#den", modes: "+m" }, "forbidden");
  await refused(carol, { type: "wall", text: "hi" }, "login_required");
  await refused(bob, { type: "wall", text: "hi" }, "forbidden", /not a server administrator/);
  await ok(alice, { type: "op", room: "#den", name: "bob" });
  await refused(bob, { type: "op", room: "#den", name: "carol" }, "forbidden", /not the owner/);
  await refused(bob, { type: "kick", room: "#den", name: "alice" }, "forbidden", /owner of #den/);
  await refused(alice, { type: "op", room: "#den", name: "dave" }, "no_such_user", /accounts/);
  await refused(alice, { type: "kick", room: "#den", name: "nobody" }, "not_in_room");
  await refused(alice, { type: "kick", room: "#nowhere", name: "bob" }, "no_such_room");
});

Deno.test("moderation: a kick puts every session of the target out of the room, announced; they may come back", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  await ok(alice, { type: "join", room: "#den" });
  await ok(bob, { type: "join", room: "#den" });
  await ok(alice, { type: "kick", room: "#den", name: "bob", reason: "calm down" });
  const told = await seen(bob, (f) => f.type === "moderation");
  assert.deepEqual(told, {
    type: "moderation",
    room: "#den",
    action: "kick",
    by: "alice",
    name: "bob",
    reason: "calm down",
  });
  assert.deepEqual((await ok(alice, { type: "who", room: "#den" })).members, ["alice"]);
  await refused(bob, { type: "send", room: "#den", text: "still here?" }, "not_in_room");
  await ok(bob, { type: "join", room: "#den" });
});

Deno.test("moderation: a banned guest cannot come back by renaming or as another guest from its address; unban lifts it", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const carol = await guest(a, "carol", "10.0.0.3");
  await ok(alice, { type: "join", room: "#den" });
  await ok(carol, { type: "join", room: "#den" });
  await ok(alice, { type: "ban", room: "#den", name: "carol", reason: "spam" });
  await seen(carol, (f) => f.type === "moderation" && f.action === "ban");
  await refused(carol, { type: "join", room: "#den" }, "forbidden", /banned/);
  await ok(carol, { type: "nick", name: "carol2" });
  await refused(carol, { type: "join", room: "#den" }, "forbidden", /banned/);
  const sameAddress = await guest(a, "someone", "10.0.0.3");
  await refused(sameAddress, { type: "join", room: "#den" }, "forbidden");
  const elsewhere = await guest(a, "other", "10.0.0.4");
  await ok(elsewhere, { type: "join", room: "#den" });
  await ok(alice, { type: "unban", room: "#den", name: "carol" });
  await ok(carol, { type: "join", room: "#den" });
});

Deno.test("moderation: a banned account is out for good, its stored membership gone, across connections", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const dave = await register(a, "dave");
  await ok(alice, { type: "join", room: "#den" });
  const ack = await ok(dave, { type: "join", room: "#den" });
  assert.ok((ack.members as string[]).includes("dave"));
  await ok(alice, { type: "ban", room: "#den", name: "dave" });
  const again = await a.connect("10.9.9.9");
  const login = await ok(again, { type: "login", name: "dave", password: PASSWORD });
  assert.ok(!(login.rooms as string[]).includes("#den"), "not put back in at login");
  await refused(again, { type: "join", room: "#den" }, "forbidden", /banned/);
  // Nor by joining as a guest first, then logging in.
  const sneaky = await guest(a, "notdave", "10.8.8.8");
  await ok(sneaky, { type: "join", room: "#den" });
  const carried = await ok(sneaky, { type: "login", name: "dave", password: PASSWORD });
  assert.ok(!(carried.rooms as string[]).includes("#den"), JSON.stringify(carried.rooms));
  assert.ok(
    !((await ok(alice, { type: "who", room: "#den" })).members as string[]).includes("dave"),
  );
});

Deno.test("moderation: mute and +m stop sending; +i admits the invited once, and operators", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const carol = await guest(a, "carol", "10.0.0.3");
  await ok(alice, { type: "join", room: "#den" });
  await ok(carol, { type: "join", room: "#den" });
  await ok(alice, { type: "mute", room: "#den", name: "carol" });
  await refused(carol, { type: "send", room: "#den", text: "hello?" }, "forbidden", /muted/);
  await ok(alice, { type: "unmute", room: "#den", name: "carol" });
  await ok(carol, { type: "send", room: "#den", text: "hello!" });
  assert.equal((await ok(alice, { type: "mode", room: "#den", modes: "+m" })).modes, "+m");
  await refused(carol, { type: "send", room: "#den", text: "hi" }, "forbidden", /moderated/);
  await ok(alice, { type: "send", room: "#den", text: "only me" });
  assert.equal((await ok(alice, { type: "mode", room: "#den", modes: "-m+i" })).modes, "+i");
  await refused(alice, { type: "mode", room: "#den", modes: "+x" }, "bad_frame");
  await ok(carol, { type: "part", room: "#den" });
  await refused(carol, { type: "join", room: "#den" }, "forbidden", /invite only/);
  await ok(alice, { type: "invite", room: "#den", name: "carol" });
  await ok(carol, { type: "join", room: "#den" });
  await ok(carol, { type: "part", room: "#den" });
  await refused(carol, { type: "join", room: "#den" }, "forbidden", /invite only/);
});

Deno.test("moderation: the topic is set by operators, announced, shown on join, and cleared", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  await ok(alice, { type: "join", room: "#den" });
  await ok(bob, { type: "join", room: "#den" });
  const set = await ok(alice, { type: "topic", room: "#den", text: "Release day" });
  assert.equal(set.topic, "Release day");
  assert.deepEqual(await seen(bob, (f) => f.type === "topic"), {
    type: "topic",
    room: "#den",
    topic: "Release day",
    by: "alice",
  });
  assert.equal((await ok(bob, { type: "topic", room: "#den" })).topic, "Release day");
  const carol = await guest(a, "carol", "10.0.0.3");
  assert.equal((await ok(carol, { type: "join", room: "#den" })).topic, "Release day");
  await refused(alice, { type: "topic", room: "#den", text: "x".repeat(301) }, "text_too_long");
  await refused(alice, { type: "topic", room: "#den", text: "two\nlines" }, "bad_frame");
  const cleared = await ok(alice, { type: "topic", room: "#den", text: "" });
  assert.equal(cleared.topic, undefined);
});

Deno.test("moderation: text mode commands act on the current room and read as the protocol says", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  await ok(alice, { type: "join", room: "#den" });
  const [conn, carol] = memoryConnection("10.0.0.3");
  void a.server.serve(conn);
  carol.send("/join #den");
  await carol.line((l) => l.startsWith("* You are guest-"));
  await carol.line((l) => l.startsWith("* You joined #den"));
  carol.send("/kick alice");
  assert.equal(
    await carol.line((l) => l.startsWith("!")),
    "! Cannot kick in #den: you are not an operator of #den",
  );
  await ok(alice, { type: "topic", room: "#den", text: "Be nice" });
  assert.equal(
    await carol.line((l) => l.includes("topic")),
    "* alice set the topic of #den: Be nice",
  );
  carol.send("/topic");
  assert.equal(await carol.line((l) => l.startsWith("* Topic")), "* Topic of #den: Be nice");
  carol.send("/nick carol");
  await carol.line((l) => l === "* You are now carol");
  await ok(alice, { type: "kick", room: "#den", name: "carol", reason: "testing" });
  assert.equal(
    await carol.line((l) => l.includes("kicked")),
    "* alice kicked carol from #den (testing)",
  );
  // Out of #den, plain lines go to the room that is current now.
  carol.send("plain line");
  const message = await seen(alice, (f) => f.type === "message" && f.text === "plain line");
  assert.equal(message.room, "#general");
});

Deno.test("moderation: settings, roles, bans and the audit log survive a restart", async () => {
  await using data = await tempDir("parley-moderation-");
  const path = `${data.path}/parley.db`;
  {
    await using a = await app(path);
    const alice = await register(a, "alice");
    const bob = await register(a, "bob");
    const dave = await register(a, "dave");
    await ok(alice, { type: "join", room: "#den" });
    await ok(bob, { type: "join", room: "#den" });
    await ok(dave, { type: "join", room: "#den" });
    await ok(alice, { type: "op", room: "#den", name: "bob" });
    await ok(alice, { type: "topic", room: "#den", text: "Kept" });
    await ok(alice, { type: "mode", room: "#den", modes: "+m" });
    await ok(alice, { type: "ban", room: "#den", name: "dave", reason: "gone" });
  }
  await using a = await app(path);
  const bob = await a.connect();
  const login = await ok(bob, { type: "login", name: "bob", password: PASSWORD });
  assert.ok((login.rooms as string[]).includes("#den"));
  const who = await ok(bob, { type: "who", room: "#den" });
  assert.deepEqual(who.roles, { bob: "op" });
  assert.equal(who.topic, "Kept");
  assert.equal(who.modes, "+m");
  const dave = await a.connect("10.1.1.1");
  await ok(dave, { type: "login", name: "dave", password: PASSWORD });
  await refused(dave, { type: "join", room: "#den" }, "forbidden", /banned/);
  const log = await a.store.moderation.auditLog(10);
  assert.deepEqual(log.map((e) => [e.actor, e.action, e.target ?? null]), [
    ["alice", "ban", "dave"],
    ["alice", "mode", null],
    ["alice", "topic", null],
    ["alice", "op", "bob"],
  ]);
});

Deno.test("moderation: an administrator made on the command line can act in any room within 2 s, and wall", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const root = await register(a, "root");
  const carol = await guest(a, "carol", "10.0.0.3");
  await ok(alice, { type: "join", room: "#den" });
  await ok(carol, { type: "join", room: "#den" });
  await ok(root, { type: "join", room: "#den" });
  await refused(root, { type: "kick", room: "#den", name: "alice" }, "forbidden");
  // What `parley user admin root` does: the flag, and a change the running server follows.
  const user = (await a.store.accounts.getUser("root"))!;
  await a.store.accounts.setAdmin(user.id, true);
  await a.store.moderation.postAdminEvent({ kind: "role", userId: user.id, name: "root", ts: 0 });
  const started = performance.now();
  await seen(root, (f) => f.type === "notice" && f.text === "You are now a server administrator");
  assert.ok(performance.now() - started < 2000);
  await ok(root, { type: "kick", room: "#den", name: "alice", reason: "admin" });
  await ok(root, { type: "wall", text: "Restarting at noon" });
  for (const peer of [alice, carol]) {
    assert.deepEqual(await seen(peer, (f) => f.type === "wall"), {
      type: "wall",
      from: "root",
      text: "Restarting at noon",
    });
  }
});

Deno.test("administration: a password changed on the command line ends the account's live sessions within 2 s", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const user = (await a.store.accounts.getUser("alice"))!;
  await a.store.accounts.deleteSessionsOf(user.id);
  await a.store.moderation.postAdminEvent({
    kind: "revoke",
    userId: user.id,
    name: "alice",
    ts: 0,
  });
  const started = performance.now();
  const told = await seen(alice, (f) => f.type === "error");
  assert.equal(told.code, "auth_failed");
  const deadline = performance.now() + 2000;
  while (!alice.closed && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(alice.closed, "the session was closed");
  assert.ok(performance.now() - started < 2000);
});
