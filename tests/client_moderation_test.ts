// Moderation in the clients, against the real server as a subprocess: the library's typed
// events and room state (topic, modes, roles), a kick or ban putting it out of the room (and
// not back in on reconnect); and the terminal client (`main.ts client`) speaking the commands.
import assert from "node:assert/strict";
import { ChatClient, ServerError } from "../src/client/mod.ts";
import type { ChatClientOptions, ChatEvent } from "../src/client/mod.ts";
import { ClientProcess, RawClient, request, startServer, tempDir } from "./_helpers.ts";

const FAST: ChatClientOptions = { backoff: { baseMs: 20, capMs: 200 } };
const PASSWORD = "correct horse battery";
const TIME = /^\d\d:\d\d:\d\d /;

/** The next event of `type` matching `match`, skipping others; throws after `ms`. */
async function next<T extends ChatEvent["type"]>(
  client: ChatClient,
  type: T,
  match: (event: Extract<ChatEvent, { type: T }>) => boolean = () => true,
  ms = 8000,
): Promise<Extract<ChatEvent, { type: T }>> {
  const events = client[Symbol.asyncIterator]();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for a ${type} event`)), ms);
  });
  try {
    for (;;) {
      const result = await Promise.race([events.next(), expired]);
      if (result.done) throw new Error(`Events ended before a ${type} event`);
      const event = result.value as Extract<ChatEvent, { type: T }>;
      if (event.type === type && match(event)) return event;
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("ChatClient moderation: typed events, room state kept current, a kick drops the room even across a reconnect", async () => {
  await using data = await tempDir("parley-client-moderation-");
  await using first = await startServer(["--data", data.path]);
  const port = first.port;
  await using alice = await ChatClient.connect("127.0.0.1", port, FAST);
  await alice.register("alice", PASSWORD);
  await using carol = await ChatClient.connect("127.0.0.1", port, FAST);
  await carol.register("carol", PASSWORD);
  await using bob = await ChatClient.connect("127.0.0.1", port, FAST);
  await bob.nick("bob");

  await alice.join("#den");
  assert.deepEqual(alice.roomState("#DEN"), { modes: "", roles: { alice: "owner" } });
  await bob.join("#den");
  await carol.join("#den");
  assert.deepEqual(bob.roomState("#den"), { modes: "", roles: { alice: "owner" } });
  assert.equal(bob.roomState("#nowhere"), undefined);

  assert.equal(await alice.topic("#den", "Release day"), "Release day");
  assert.deepEqual(await next(bob, "topic"), {
    type: "topic",
    room: "#den",
    topic: "Release day",
    by: "alice",
  });
  assert.equal(bob.roomState("#den")?.topic, "Release day");
  assert.equal(alice.roomState("#den")?.topic, "Release day");
  assert.equal(await bob.topic("#den"), "Release day");

  assert.equal(await alice.mode("#den", "+m"), "+m");
  const mode = await next(bob, "moderation");
  assert.deepEqual(mode, {
    type: "moderation",
    room: "#den",
    action: "mode",
    by: "alice",
    modes: "+m",
  });
  assert.equal(bob.roomState("#den")?.modes, "+m");
  await assert.rejects(
    () => bob.send("#den", "hi"),
    (e: unknown) => e instanceof ServerError && e.code === "forbidden",
  );
  assert.equal(await alice.mode("#den", "-m"), "");
  await next(bob, "moderation", (e) => e.action === "mode" && e.modes === "");

  await assert.rejects(
    () => bob.moderate("kick", "#den", "alice"),
    (e: unknown) => e instanceof ServerError && e.code === "forbidden",
  );
  await alice.moderate("op", "#den", "carol");
  const op = await next(bob, "moderation", (e) => e.action === "op");
  assert.equal(op.action === "op" && op.name, "carol");
  assert.deepEqual(bob.roomState("#den")?.roles, { alice: "owner", carol: "op" });
  assert.deepEqual((await carol.who("#den")).members, ["alice", "bob", "carol"]);
  assert.deepEqual(carol.roomState("#den")?.roles, { alice: "owner", carol: "op" });
  await alice.moderate("deop", "#den", "carol");
  await next(bob, "moderation", (e) => e.action === "deop");
  assert.deepEqual(bob.roomState("#den")?.roles, { alice: "owner" });

  // Kicked: out of the room at once (no `left` presence comes), and not back in on reconnect.
  await alice.moderate("kick", "#den", "bob", "spam");
  assert.deepEqual(await next(bob, "moderation", (e) => e.action === "kick"), {
    type: "moderation",
    room: "#den",
    action: "kick",
    by: "alice",
    name: "bob",
    reason: "spam",
  });
  assert.deepEqual(bob.joinedRooms, ["#general"]);
  assert.equal(bob.roomState("#den"), undefined);
  assert.deepEqual(alice.joinedRooms, ["#general", "#den"], "the others stay");

  await first.stop();
  assert.equal((await next(bob, "disconnected")).reconnecting, true);
  await using _second = await startServer(["--data", data.path, "--port", String(port)]);
  const back = await next(bob, "reconnected");
  assert.deepEqual(back.rooms, ["#general"]);
  assert.equal(back.lostRooms, undefined);
  assert.deepEqual(bob.joinedRooms, ["#general"]);
  const aliceBack = await next(alice, "reconnected");
  assert.deepEqual([...aliceBack.rooms].sort(), ["#den", "#general"]);

  // A kick is not a ban: back in, with the stored topic in the join ack.
  await bob.join("#den");
  assert.deepEqual(bob.roomState("#den"), {
    topic: "Release day",
    modes: "",
    roles: { alice: "owner" },
  });
  await alice.moderate("ban", "#den", "bob");
  await next(bob, "moderation", (e) => e.action === "ban");
  assert.deepEqual(bob.joinedRooms, ["#general"]);
  await assert.rejects(
    () => bob.join("#den"),
    (e: unknown) => e instanceof ServerError && e.code === "forbidden" && /banned/.test(e.message),
  );
  await assert.rejects(
    () => alice.wall("hello"),
    (e: unknown) => e instanceof ServerError && e.code === "forbidden",
  );
});

Deno.test("client moderation: /topic, /mode, /kick with a reason, /wall refused; a kicked user's room moves on", async () => {
  await using server = await startServer();
  {
    await using setup = await RawClient.json(server.port);
    const reply = await request(setup, { type: "register", name: "alice", password: PASSWORD });
    assert.equal(reply.type, "ack", JSON.stringify(reply));
  }
  const args = ["127.0.0.1", String(server.port)];
  const env = { NO_COLOR: "1" };
  await using alice = new ClientProcess([...args, "--name", "alice", "--password-stdin"], { env });
  await alice.type(PASSWORD);
  await alice.line(/\* Logged in as alice/);
  await alice.type("/join #den");
  await alice.line(/\* You joined #den; members \(1\): alice$/);
  await using bob = await RawClient.json(server.port, "bob");
  assert.equal((await request(bob, { type: "join", room: "#den" })).type, "ack");

  await alice.type("/topic Release day");
  await alice.line(/\* Topic of #den: Release day$/);
  assert.deepEqual(await bob.frame((f) => f.type === "topic"), {
    type: "topic",
    room: "#den",
    topic: "Release day",
    by: "alice",
  });
  await alice.type("/mode +i");
  await alice.line(/\* Modes of #den: \+i$/);
  await alice.type("/mode -i");
  await alice.line(/\* #den has no modes$/);
  await alice.type("/kick bob calm down please");
  // The announcement and the reply ("* Done", checked at the end) come in either order.
  await alice.line(/\* alice kicked bob from #den \(calm down please\)$/);
  assert.deepEqual(await bob.frame((f) => f.type === "moderation" && f.action === "kick"), {
    type: "moderation",
    room: "#den",
    action: "kick",
    by: "alice",
    name: "bob",
    reason: "calm down please",
  });
  const rejoin = await request(bob, { type: "join", room: "#den" });
  assert.equal(rejoin.topic, "Release day");
  await alice.type("/help");
  await alice.line(/\/topic \[#room\] \[TEXT\]/);
  await alice.line(/\/kick, \/ban \[#room\] NAME \[reason\]/);
  await alice.line(/\/wall TEXT/);

  // carol, a guest in the terminal client, is shown the topic on joining, then kicked.
  await using carol = new ClientProcess([...args, "--name", "carol", "--room", "den"], { env });
  await carol.line(/\* You joined #den; members \(3\): alice, bob, carol$/);
  await carol.line(/\* Topic of #den: Release day$/);
  await alice.type("/kick carol bye");
  await carol.line(/\* alice kicked carol from #den \(bye\)$/);
  await carol.line(/\* Current room: #general$/);
  await carol.type("still talking");
  await carol.line(/\[#general\] <carol> still talking$/);
  await carol.type("/kick alice");
  const carolDone = await carol.finish();
  assert.match(carolDone.stderr, /! Cannot kick in #general: you are not an operator of #general/);

  await alice.type("/wall hello everyone");
  const done = await alice.finish();
  assert.equal(done.code, 0);
  assert.match(done.stderr, /! Cannot wall: you are not a server administrator/);
  assert.ok(done.stdout.every((l) => TIME.test(l)), done.stdout.join("\n"));
  assert.ok(done.stdout.some((l) => l.endsWith(" * Done")), done.stdout.join("\n"));
});
