// End to end: the real server as a subprocess, clients speaking text mode as `nc` does.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";

Deno.test("text mode: the banner tells a human how to start", async () => {
  await using server = await startServer();
  await using c = await RawClient.connect(server.port);
  const banner = await c.line();
  assert.match(banner, /^\* Welcome to parley\..*\/help/);
  c.send("hello");
  assert.match(await c.line(), /^\* You are guest-\d{4,}, in #general$/);
});

Deno.test("text mode: three users relay in #general; the sender gets no echo", async () => {
  await using server = await startServer();
  await using alice = await RawClient.text(server.port, "alice");
  await using bob = await RawClient.text(server.port, "bob");
  await using carol = await RawClient.text(server.port, "carol");
  alice.send("hello everyone");
  assert.equal(await bob.line((l) => l.startsWith("[")), "[#general] <alice> hello everyone");
  assert.equal(await carol.line((l) => l.startsWith("[")), "[#general] <alice> hello everyone");
  carol.send("hi alice");
  assert.equal(await alice.line((l) => l.startsWith("[")), "[#general] <carol> hi alice");
  assert.equal(await bob.line((l) => l.startsWith("[")), "[#general] <carol> hi alice");
  // alice's first line back is carol's message, never her own.
});

Deno.test("text mode: /msg reaches only its target; /me is an action", async () => {
  await using server = await startServer();
  await using alice = await RawClient.text(server.port, "alice");
  await using bob = await RawClient.text(server.port, "bob");
  await using carol = await RawClient.text(server.port, "carol");
  alice.send("/msg Bob psst");
  assert.equal(await alice.line((l) => l.startsWith("[")), "[dm to bob] <alice> psst");
  assert.equal(await bob.line((l) => l.startsWith("[")), "[dm] <alice> psst");
  alice.send("/me waves");
  assert.equal(await carol.line((l) => l.startsWith("[")), "[#general] * alice waves");
  assert.equal(await bob.line((l) => l.startsWith("[")), "[#general] * alice waves");
  alice.send("/msg nobody hi");
  assert.equal(
    await alice.line((l) => l.startsWith("!")),
    "! Cannot send: no user named nobody is online",
  );
});

Deno.test("text mode: join, part, who, rooms and presence", async () => {
  await using server = await startServer();
  await using alice = await RawClient.text(server.port, "alice");
  await using bob = await RawClient.text(server.port, "bob");
  await alice.line((l) => l.endsWith("is now known as bob"));
  alice.send("/join #ops");
  assert.equal(await alice.line(), "* You joined #ops; members (1): alice");
  bob.send("/join ops");
  assert.equal(await bob.line(), "* You joined #ops; members (2): alice, bob");
  assert.equal(await alice.line(), "* bob joined #ops");
  bob.send("in ops now");
  assert.equal(await alice.line(), "[#ops] <bob> in ops now");
  alice.send("/who");
  assert.equal(await alice.line(), "* Members of #ops (2): alice, bob");
  alice.send("/rooms");
  assert.equal(await alice.line(), "* Rooms: #general (2), #ops (2)");
  bob.send("/part");
  assert.equal(await bob.line(), "* You left #ops");
  assert.equal(await bob.line(), "* Current room: #general");
  assert.equal(await alice.line(), "* bob left #ops");
  bob.send("/part #ops");
  assert.equal(await bob.line(), "! Cannot leave: you are not in #ops");
  alice.send("/who #nowhere");
  assert.equal(await alice.line(), "! No room named #nowhere");
  alice.send("/join #bad!name");
  assert.match(await alice.line(), /^! Invalid room "#bad!name"/);
});

Deno.test("text mode: rename is announced once, names are unique case-insensitively", async () => {
  await using server = await startServer();
  await using alice = await RawClient.text(server.port, "alice");
  await using bob = await RawClient.text(server.port);
  await alice.line((l) => l.endsWith("joined #general"));
  alice.send("/join #ops");
  await alice.line((l) => l.startsWith("* You joined"));
  bob.send("/join #ops");
  await bob.line();
  await alice.line((l) => l.endsWith("joined #ops"));
  bob.send("/nick ALICE");
  assert.equal(await bob.line(), "! Cannot rename: the name ALICE is taken");
  bob.send("/nick no spaces allowed");
  assert.match(await bob.line(), /^! Invalid name "no spaces allowed": use 1-32 letters/);
  bob.send(`/nick ${"x".repeat(33)}`);
  assert.match(await bob.line(), /^! Invalid name/);
  bob.send("/nick robert");
  assert.equal(await bob.line(), "* You are now robert");
  const renamed = await alice.line();
  assert.match(renamed, /^\* guest-\d+ is now known as robert$/);
  // They share two rooms, and alice is told once: the next line she sees is the marker.
  bob.send("marker");
  assert.equal(await alice.line(), "[#ops] <robert> marker");
});

Deno.test("text mode: bye ends the session with a goodbye; others see the quit", async () => {
  await using server = await startServer();
  await using alice = await RawClient.text(server.port, "alice");
  await using bob = await RawClient.text(server.port, "bob");
  await alice.line((l) => l.endsWith("is now known as bob"));
  bob.send("bye");
  assert.equal(await bob.line(), "* Goodbye, bob");
  await bob.closed();
  assert.equal(await alice.line(), "* bob quit");
  for (const word of ["logout", "QUIT", "/quit"]) {
    await using c = await RawClient.text(server.port);
    c.send(word);
    assert.match(await c.line(), /^\* Goodbye, guest-\d+$/);
    await c.closed();
  }
});

Deno.test("text mode: /help lists the commands; unknown commands get an error", async () => {
  await using server = await startServer();
  await using c = await RawClient.text(server.port);
  c.send("/help");
  assert.equal(await c.line(), "* Commands:");
  const help: string[] = [];
  await c.line((l) => (help.push(l), l.startsWith("* Any other line")));
  for (const cmd of ["/nick", "/join", "/part", "/msg", "/me", "/who", "/rooms", "/quit"]) {
    assert.ok(help.some((l) => l.includes(cmd)), `help mentions ${cmd}`);
  }
  c.send("/frobnicate now");
  assert.equal(await c.line(), "! Unknown command /frobnicate: type /help for the list");
});

Deno.test("text mode: control characters never reach another terminal", async () => {
  await using server = await startServer();
  await using alice = await RawClient.text(server.port, "alice");
  await using bob = await RawClient.text(server.port, "bob");
  alice.send("\x1b[2Jcleared?\x07");
  assert.equal(
    await alice.line((l) => l.startsWith("!")),
    "! Cannot send: it contains the control character U+001B",
  );
  alice.send("tab\there, bidi \u202eexe.txt");
  assert.equal(
    await bob.line((l) => l.startsWith("[")),
    "[#general] <alice> tab here, bidi \ufffdexe.txt",
    "the escape never arrived; a tab shows as a space and a bidi override is neutralised",
  );
});

Deno.test("text mode: coming online replays #general's recent history as dimmed lines", async () => {
  await using server = await startServer();
  await using alice = await RawClient.text(server.port, "alice");
  alice.send("said before you came");
  alice.send("/me waved");
  alice.send("/ping");
  await alice.line((l) => l === "* pong");
  await using late = await RawClient.connect(server.port);
  await late.line(); // banner
  late.send("/ping");
  assert.match(await late.line(), /^\* You are guest-\d+, in #general$/);
  assert.equal(await late.line(), "* History of #general (2 messages):");
  const dim = (body: string) =>
    new RegExp(`^\\[#general \\d\\d:\\d\\d\\] \x1b\\[2m${body}\x1b\\[22m$`);
  assert.match(await late.line(), dim("<alice> said before you came"));
  assert.match(await late.line(), dim("\\* alice waved"));
  assert.equal(await late.line(), "* pong");
});
