// Replies, edits, deletions, reactions, typing and search, in process: the real ChatServer with
// no ports, connections from memoryConnection(), a real SQLite store on its worker.
import assert from "node:assert/strict";
import { memoryConnection } from "../src/transport/memory.ts";
import { app, ok, PASSWORD, refused, register, seen } from "./_in_process.ts";
import type { Frame } from "./_in_process.ts";

Deno.test("conversation: a reply carries the id it answers, goes where that message is, and is in history", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const first = await ok(alice, { type: "send", room: "#general", text: "lunch?" });
  const reply = await ok(bob, { type: "send", replyTo: first.id, text: "yes!" });
  const got = await seen(alice, (f) => f.type === "message" && f.text === "yes!");
  assert.equal(got.replyTo, first.id);
  assert.equal(got.room, "#general");
  assert.deepEqual(got.quote, { from: "alice", text: "lunch?" }, "the line it answers");
  const page = await ok(alice, { type: "history", room: "#general" });
  const stored = (page.messages as Frame[]).find((m) => m.id === reply.id)!;
  assert.equal(stored.replyTo, first.id);
  assert.deepEqual(stored.quote, { from: "alice", text: "lunch?" });
  // The quote read back is the message as it is now.
  await ok(alice, { type: "edit", id: first.id, text: `\n  ${"long ".repeat(30)}\nsecond line` });
  const edited = (await ok(bob, { type: "history", around: reply.id, limit: 1 }))
    .messages as Frame[];
  assert.deepEqual(edited[0]!.quote, { from: "alice", text: `${"long ".repeat(15)}long…` });
  await ok(alice, { type: "delete", id: first.id });
  const gone = (await ok(bob, { type: "search", text: "yes" })).messages as Frame[];
  assert.deepEqual(gone[0]!.quote, { from: "alice", text: "", deleted: true });
  await refused(bob, { type: "send", replyTo: 999_999, text: "to nothing" }, "no_such_message");
  await refused(bob, { type: "send", to: "alice", replyTo: first.id, text: "x" }, "bad_frame");
  // A guest outside the room cannot answer (or learn of) its messages.
  const guest = await a.connect("10.0.0.9");
  await ok(guest, { type: "part", room: "#general" });
  await refused(guest, { type: "send", replyTo: first.id, text: "hi" }, "no_such_message");
});

Deno.test("conversation: authors edit and delete their messages; everyone sees it, history too; others may not", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const sent = await ok(alice, { type: "send", room: "#general", text: "teh plan" });
  const edit = await ok(alice, { type: "edit", id: sent.id, text: "the plan" });
  assert.equal(typeof edit.edited, "number");
  assert.deepEqual(await seen(bob, (f) => f.type === "edited"), {
    type: "edited",
    id: sent.id,
    text: "the plan",
    edited: edit.edited,
    by: "alice",
    room: "#general",
  });
  await refused(bob, { type: "edit", id: sent.id, text: "hijack" }, "forbidden");
  await refused(bob, { type: "delete", id: sent.id }, "forbidden");
  await refused(alice, { type: "edit", id: sent.id, text: "\u0007" }, "bad_frame");
  let page = await ok(bob, { type: "history", room: "#general" });
  let stored = (page.messages as Frame[]).find((m) => m.id === sent.id)!;
  assert.equal(stored.text, "the plan");
  assert.equal(stored.edited, edit.edited);
  await ok(alice, { type: "delete", id: sent.id });
  await seen(bob, (f) => f.type === "deleted" && f.id === sent.id);
  page = await ok(bob, { type: "history", room: "#general" });
  stored = (page.messages as Frame[]).find((m) => m.id === sent.id)!;
  assert.equal(stored.deleted, true);
  assert.equal(stored.text, "");
  await refused(alice, { type: "edit", id: sent.id, text: "back" }, "no_such_message");
  // A guest's message cannot be edited by anyone who takes the name later.
  const guest = await a.connect("10.0.0.8");
  const g = await ok(guest, { type: "send", room: "#general", text: "guest words" });
  await refused(guest, { type: "edit", id: g.id, text: "changed" }, "login_required");
});

Deno.test("conversation: room operators delete anyone's message in their room", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  await ok(alice, { type: "join", room: "#den" });
  await ok(bob, { type: "join", room: "#den" });
  const rude = await ok(bob, { type: "send", room: "#den", text: "rude words" });
  await ok(alice, { type: "delete", id: rude.id }); // alice owns #den
  await seen(bob, (f) => f.type === "deleted" && f.id === rude.id && f.by === "alice");
  const fine = await ok(alice, { type: "send", room: "#general", text: "in general" });
  await refused(bob, { type: "delete", id: fine.id }, "forbidden");
});

Deno.test("conversation: reactions are counted per emoji, idempotent, announced, and kept", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const sent = await ok(alice, { type: "send", room: "#general", text: "shipped" });
  assert.deepEqual((await ok(bob, { type: "react", id: sent.id, emoji: "🎉" })).reactions, {
    "🎉": 1,
  });
  // (peer.frame drops what it skips: look at alice's events before she asks anything.)
  assert.deepEqual(await seen(alice, (f) => f.type === "reactions"), {
    type: "reactions",
    id: sent.id,
    reactions: { "🎉": 1 },
    room: "#general",
  });
  assert.deepEqual((await ok(bob, { type: "react", id: sent.id, emoji: "🎉" })).reactions, {
    "🎉": 1,
  });
  assert.deepEqual((await ok(alice, { type: "react", id: sent.id, emoji: "🎉" })).reactions, {
    "🎉": 2,
  });
  await ok(bob, { type: "react", id: sent.id, emoji: "🎉", off: true });
  await refused(bob, { type: "react", id: sent.id, emoji: "🦄" }, "bad_frame");
  const page = await ok(bob, { type: "history", room: "#general" });
  const stored = (page.messages as Frame[]).find((m) => m.id === sent.id)!;
  assert.deepEqual(stored.reactions, { "🎉": 1 });
});

Deno.test("conversation: typing reaches the others in the room, at most once per 3 s, never the typist", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  await ok(alice, { type: "typing", room: "#general" });
  await ok(alice, { type: "typing", room: "#general" }); // within 3 s: answered, not passed on
  assert.deepEqual(await seen(bob, (f) => f.type === "typing"), {
    type: "typing",
    room: "#general",
    name: "alice",
  });
  await ok(alice, { type: "send", room: "#general", text: "done typing" });
  await seen(bob, (f) => f.type === "message");
  const typed = bob.pending().map((l) => JSON.parse(l)).filter((f) => f.type === "typing");
  assert.equal(typed.length, 0, "the second one was not sent");
  assert.equal(alice.pending().some((l) => l.includes('"typing"') && !l.includes('"ref"')), false);
  await ok(alice, { type: "typing", to: "bob" });
  assert.deepEqual(await seen(bob, (f) => f.type === "typing"), {
    type: "typing",
    to: "bob",
    name: "alice",
  });
  await refused(alice, { type: "typing", room: "#nowhere" }, "no_such_room");
});

Deno.test("conversation: search finds what you may read, newest first; nothing else; odd input is words", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const carol = await register(a, "carol");
  await ok(alice, { type: "join", room: "#den" });
  await ok(alice, { type: "send", room: "#general", text: "release notes are out" });
  await ok(alice, { type: "send", room: "#den", text: "secret release plans" });
  await ok(alice, { type: "send", to: "bob", text: "release party at eight" });
  await ok(carol, { type: "send", to: "alice", text: "release of carol" });
  const latest = await ok(alice, { type: "send", room: "#general", text: "Releasing today" });
  const mine = await ok(alice, { type: "search", text: "releas" });
  assert.deepEqual((mine.messages as Frame[]).map((m) => m.text), [
    "Releasing today",
    "release of carol",
    "release party at eight",
    "secret release plans",
    "release notes are out",
  ]);
  assert.equal((mine.messages as Frame[])[0]!.id, latest.id);
  const bobs = await ok(bob, { type: "search", text: "release" });
  assert.deepEqual((bobs.messages as Frame[]).map((m) => m.text).sort(), [
    "release notes are out",
    "release party at eight",
  ], "not #den (bob is not in it), not alice and carol's messages");
  const withBob = await ok(alice, { type: "search", text: "release", with: "bob" });
  assert.deepEqual((withBob.messages as Frame[]).map((m) => m.text), ["release party at eight"]);
  const both = await ok(alice, { type: "search", text: "release notes" });
  assert.deepEqual((both.messages as Frame[]).map((m) => m.text), ["release notes are out"]);
  for (const odd of ['a"b', "OR", "NEAR(", "*", "release)"]) {
    await ok(carol, { type: "search", text: odd }); // (alice has used her burst)
  }
  await refused(bob, { type: "search", text: "release", room: "#den" }, "not_in_room");
});

Deno.test("conversation: searches past the rate guard are refused rate_limited", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  for (let i = 0; i < 5; i++) await ok(alice, { type: "search", text: `word${i}` });
  await refused(alice, { type: "search", text: "one more" }, "rate_limited");
});

Deno.test("conversation: text mode replies, edits and searches with ids, and reads edits", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const [conn, nc] = memoryConnection("10.0.0.7");
  void a.server.serve(conn);
  nc.send("/nick dana");
  await nc.line((l) => l === "* You are now dana");
  const sent = await ok(alice, { type: "send", room: "#general", text: "what time?" });
  await nc.line((l) => l === "[#general] <alice> what time?");
  nc.send(`/reply ${sent.id} noon`);
  const reply = await seen(alice, (f) => f.type === "message" && f.text === "noon");
  assert.equal(reply.replyTo, sent.id);
  await ok(alice, { type: "edit", id: sent.id, text: "what time tomorrow?" });
  assert.equal(
    await nc.line((l) => l.includes("edited")),
    "* alice edited a message in #general: what time tomorrow?",
  );
  nc.send("/search tomorrow");
  await nc.line((l) => l.startsWith('* Search results for "tomorrow" (1'));
  const found = await nc.line((l) => l.includes("what time tomorrow?"));
  assert.match(found, new RegExp(`\\(edited\\).*\\(id ${sent.id}\\)$`));
});

Deno.test("conversation: a DM to someone offline says it will be delivered when they log in", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const live = await ok(alice, { type: "send", to: "bob", text: "you there?" });
  assert.equal(live.waiting, undefined, "bob is online: delivered now");
  bob.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const later = await ok(alice, { type: "send", to: "bob", text: "call me" });
  assert.equal(later.waiting, true);
  const [conn, nc] = memoryConnection("10.0.0.6");
  void a.server.serve(conn);
  nc.send("/login alice " + PASSWORD);
  await nc.line((l) => l.startsWith("* Logged in as alice"));
  nc.send("/msg bob still there?");
  await nc.line((l) => l === "[dm to bob] <alice> still there?");
  assert.equal(
    await nc.line(),
    "* bob is offline: it will be delivered when they log in",
  );
});

Deno.test("conversation: read markers agree across an account's devices; unread lists rooms and DMs", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const phone = await a.connect("10.0.0.5");
  await ok(phone, { type: "login", name: "alice", password: PASSWORD });
  const bob = await register(a, "bob");
  const m1 = await ok(bob, { type: "send", room: "#general", text: "one" });
  await ok(bob, { type: "send", room: "#general", text: "two" });
  await ok(bob, { type: "send", to: "alice", text: "private" });
  const before = await ok(alice, { type: "unread" });
  assert.deepEqual(before.rooms, [{ room: "#general", read: 0, unread: 2 }]);
  const dm = (before.conversations as Frame[])[0]!;
  assert.equal(dm.with, "bob");
  assert.equal(dm.unread, 1);
  assert.equal((dm.last as Frame).text, "private");
  assert.equal((await ok(alice, { type: "read", room: "#general", id: m1.id })).id, m1.id);
  assert.deepEqual(await seen(phone, (f) => f.type === "read"), {
    type: "read",
    id: m1.id,
    room: "#general",
  });
  const fromPhone = await ok(phone, { type: "unread" });
  assert.deepEqual(fromPhone.rooms, [{ room: "#general", read: m1.id, unread: 1 }]);
  const guest = await a.connect("10.0.0.4");
  await refused(guest, { type: "unread" }, "login_required");
});

Deno.test("conversation: unread past its rate guard is refused rate_limited", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  for (let i = 0; i < 5; i++) await ok(alice, { type: "unread" });
  await refused(alice, { type: "unread" }, "rate_limited");
});

Deno.test("conversation: history around a message: about half before it, it, the rest after; more and newer; after pages forwards", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) {
    ids.push((await ok(alice, { type: "send", room: "#general", text: `m${i}` })).id as number);
  }
  const texts = (page: Frame) => (page.messages as Frame[]).map((m) => m.text);
  const mid = await ok(bob, { type: "history", around: ids[10], limit: 5 });
  assert.equal(mid.room, "#general", "the room is the message's");
  assert.equal(mid.around, ids[10]);
  assert.deepEqual(texts(mid), ["m8", "m9", "m10", "m11", "m12"]);
  assert.equal(mid.more, true);
  assert.equal(mid.newer, true);
  // Near an end, the other side gets the room.
  const start = await ok(bob, { type: "history", room: "#general", around: ids[1], limit: 5 });
  assert.deepEqual(texts(start), ["m0", "m1", "m2", "m3", "m4"]);
  assert.equal(start.more, false);
  const end = await ok(bob, { type: "history", around: ids[19], limit: 4 });
  assert.deepEqual(texts(end), ["m16", "m17", "m18", "m19"]);
  assert.equal(end.newer, false);
  // Paging forwards from the page's last message.
  const next = await ok(bob, { type: "history", room: "#general", after: ids[12], limit: 3 });
  assert.deepEqual(texts(next), ["m13", "m14", "m15"]);
  assert.equal(next.more, true);
  assert.equal(next.newer, true);
  const last = await ok(bob, { type: "history", room: "#general", after: ids[17] });
  assert.deepEqual(texts(last), ["m18", "m19"]);
  assert.equal(last.newer, false);
  // A direct message's page is the conversation with the other party.
  const dm = await ok(bob, { type: "send", to: "alice", text: "just us" });
  const dmPage = await ok(alice, { type: "history", around: dm.id });
  assert.equal(dmPage.with, "bob");
  assert.deepEqual(texts(dmPage), ["just us"]);
  // What you cannot see, what is elsewhere, and mixed paging are refused.
  await refused(bob, { type: "history", around: 999_999 }, "no_such_message");
  await refused(bob, { type: "history", with: "alice", around: ids[3] }, "no_such_message");
  await ok(bob, { type: "join", room: "#den" });
  await refused(bob, { type: "history", room: "#den", around: ids[3] }, "no_such_message");
  const guest = await a.connect("10.0.0.3");
  await ok(guest, { type: "part", room: "#general" });
  await refused(guest, { type: "history", around: ids[3] }, "no_such_message");
  await refused(guest, { type: "history", around: dm.id }, "no_such_message");
  await refused(bob, { type: "history", room: "#general", before: 5, around: ids[3] }, "bad_frame");
  await refused(bob, { type: "history", room: "#general", after: -1 }, "bad_frame");
});

Deno.test("conversation: text mode /context shows a message among its neighbours, with ids", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const ids: number[] = [];
  for (const text of ["one", "two", "three", "four", "five"]) {
    ids.push((await ok(alice, { type: "send", room: "#general", text })).id as number);
  }
  const [conn, nc] = memoryConnection("10.0.0.7");
  void a.server.serve(conn);
  nc.send("/nick dana");
  await nc.line((l) => l === "* You are now dana");
  nc.send(`/context ${ids[2]} 1`);
  assert.equal(
    await nc.line((l) => l.startsWith("* Around")),
    `* Around message ${ids[2]} in #general (3 messages):`,
  );
  const rows = [await nc.line(), await nc.line(), await nc.line()];
  assert.match(
    rows[0]!,
    new RegExp(
      `^\\[#general \\d\\d:\\d\\d\\] \\x1b\\[2m<alice> two\\x1b\\[22m \\(id ${ids[1]}\\)$`,
    ),
  );
  // The message asked for is not dimmed.
  assert.match(
    rows[1]!,
    new RegExp(`^\\[#general \\d\\d:\\d\\d\\] <alice> three \\(id ${ids[2]}\\)$`),
  );
  // deno-lint-ignore no-control-regex
  assert.match(rows[2]!, /<alice> four\x1b\[22m \(id \d+\)$/);
  nc.send("/context 12x");
  assert.match(await nc.line(), /^! Usage: \/context ID \[N\]/);
  nc.send(`/context ${ids[2]} 100`);
  assert.match(await nc.line(), /^! Usage: \/context ID \[N\] \(N: 0-99/, "past the limit");
  nc.send(`/context ${ids[2]} 0`);
  await nc.line((l) => l.startsWith("* Around") && l.endsWith("(1 message):"));
  assert.match(await nc.line(), /<alice> three \(id \d+\)$/);
  nc.send("/context 999999");
  assert.match(await nc.line(), /^! Cannot show history around it: there is no message 999999/);
});

Deno.test("conversation: text mode counts reactions per emoji on messages, on /react and as they change", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const sent = await ok(alice, { type: "send", room: "#general", text: "shipped" });
  const [conn, nc] = memoryConnection("10.0.0.7");
  void a.server.serve(conn);
  nc.send("/login alice " + PASSWORD);
  await nc.line((l) => l.startsWith("* Logged in as alice"));
  nc.send(`/react ${sent.id} 🎉`);
  // The reacting session hears it as everyone does (the reply itself says nothing more).
  assert.equal(
    await nc.line((l) => l.startsWith("* Reactions to message")),
    `* Reactions to message ${sent.id} in #general: 🎉1`,
  );
  await ok(bob, { type: "react", id: sent.id, emoji: "🎉" });
  assert.equal(
    await nc.line((l) => l.startsWith("* Reactions to message")),
    `* Reactions to message ${sent.id} in #general: 🎉2`,
  );
  await ok(bob, { type: "react", id: sent.id, emoji: "👍" });
  await nc.line((l) => l.includes("👍1"));
  nc.send("/history 1");
  assert.match(await nc.line((l) => l.includes("shipped")), /<alice> shipped 🎉2 👍1/);
  await ok(bob, { type: "react", id: sent.id, emoji: "🎉", off: true });
  await ok(bob, { type: "react", id: sent.id, emoji: "👍", off: true });
  nc.send(`/unreact ${sent.id} 🎉`);
  assert.equal(
    await nc.line((l) => l.startsWith(`* Reactions to message ${sent.id} in #general: n`)),
    `* Reactions to message ${sent.id} in #general: none`,
  );
  // A direct message's reactions.
  const dm = await ok(bob, { type: "send", to: "alice", text: "psst" });
  await ok(bob, { type: "react", id: dm.id, emoji: "👀" });
  assert.equal(
    await nc.line((l) => l.includes("direct message")),
    `* Reactions to direct message ${dm.id}: 👀1`,
  );
});

Deno.test("conversation: text mode shows deletions, and replies with the line they answer", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const [conn, nc] = memoryConnection("10.0.0.7");
  void a.server.serve(conn);
  nc.send("/nick dana");
  await nc.line((l) => l === "* You are now dana");
  const first = await ok(alice, { type: "send", room: "#general", text: "lunch?" });
  await nc.line((l) => l === "[#general] <alice> lunch?");
  await ok(alice, { type: "send", replyTo: first.id, text: "at noon" });
  assert.equal(await nc.line(), `[#general] <alice> (re alice: lunch?) at noon`);
  await ok(alice, { type: "delete", id: first.id });
  assert.equal(await nc.line(), "* alice deleted a message in #general");
  nc.send("/history 2");
  await nc.line((l) => l.startsWith("* History of #general"));
  assert.match(await nc.line(), /<alice> \(message deleted\)/);
  assert.match(await nc.line(), /<alice> \(re alice: message deleted\) at noon/);
});

Deno.test("conversation: text mode passes the Markdown subset through as written; a code block's lines stay one line", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const [conn, nc] = memoryConnection("10.0.0.7");
  void a.server.serve(conn);
  nc.send("/nick dana");
  await nc.line((l) => l === "* You are now dana");
  const bob = await register(a, "bob");
  const markdown = "**bold** _it_ `x()` https://e.x/a_b";
  await ok(alice, { type: "send", room: "#general", text: markdown });
  assert.equal(await nc.line((l) => l.includes("**")), `[#general] <alice> ${markdown}`);
  assert.equal((await seen(bob, (f) => f.type === "message")).text, markdown, "JSON: as sent");
  await ok(alice, { type: "send", room: "#general", text: "```\nconst a = 1;\n```" });
  assert.equal(await nc.line(), "[#general] <alice> ``` const a = 1; ```");
});

Deno.test("conversation: text mode /unread shows the server's counts, which another device's read moves; /read marks one read", async () => {
  await using a = await app();
  const alice = await register(a, "alice");
  const bob = await register(a, "bob");
  const [conn, nc] = memoryConnection("10.0.0.7");
  void a.server.serve(conn);
  nc.send("/login alice " + PASSWORD);
  await nc.line((l) => l.startsWith("* Logged in as alice"));
  nc.send("/unread");
  assert.equal(await nc.line((l) => l.includes("nread")), "* Nothing unread");
  await ok(bob, { type: "send", room: "#general", text: "one" });
  const two = await ok(bob, { type: "send", room: "#general", text: "two" });
  await ok(bob, { type: "send", to: "alice", text: "psst" });
  nc.send("/unread");
  assert.equal(await nc.line((l) => l.includes("nread")), "* Unread: #general (2), bob (1)");
  await ok(alice, { type: "read", room: "#general", id: two.id });
  nc.send("/unread");
  assert.equal(await nc.line((l) => l.includes("nread")), "* Unread: bob (1)");
  // Text mode marks a conversation read up to its latest message; the other devices hear of it.
  const three = await ok(bob, { type: "send", room: "#general", text: "three" });
  nc.send("/read");
  assert.equal(await nc.line((l) => l.startsWith("* Read")), `* Read up to message ${three.id}`);
  assert.deepEqual(await seen(alice, (f) => f.type === "read" && f.id === three.id), {
    type: "read",
    id: three.id,
    room: "#general",
  });
  nc.send("/read bob");
  await nc.line((l) => l.startsWith("* Read"));
  nc.send("/unread");
  assert.equal(await nc.line((l) => l.includes("nread")), "* Nothing unread");
  nc.send("/read #general extra");
  assert.equal(await nc.line(), "! Usage: /read [#room|NAME]");
  // JSON: read without an id is the same.
  const four = await ok(bob, { type: "send", room: "#general", text: "four" });
  assert.equal((await ok(alice, { type: "read", room: "#general" })).id, four.id);
  await refused(alice, { type: "read", room: "#general", id: -1 }, "bad_frame");
});
