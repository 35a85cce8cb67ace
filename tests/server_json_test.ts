// End to end: the real server as a subprocess, clients speaking JSON mode.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";

Deno.test("json mode: hello gets a welcome with the guest name", async () => {
  await using server = await startServer();
  await using c = await RawClient.connect(server.port);
  assert.match(await c.line(), /^\* Welcome/);
  c.send({ type: "hello", client: "test", proto: 1, ref: "h" });
  const welcome = await c.frame();
  assert.equal(welcome.type, "welcome");
  assert.equal(welcome.ref, "h");
  assert.equal(welcome.server, "parley");
  assert.equal(welcome.proto, 1);
  assert.match(String(welcome.version), /^\d+\.\d+\.\d+/);
  assert.match(String(welcome.name), /^guest-\d{4,}$/);
  assert.deepEqual(welcome.limits, {
    maxLine: 16384,
    maxText: 4096,
    maxFileSize: 100 * 1024 * 1024,
    floodBurst: 30,
    floodRate: 10,
  }, "the defaults, announced");
  c.send({ type: "hello", proto: 2, ref: "v2" });
  const err = await c.frame();
  assert.deepEqual([err.type, err.ref, err.code], ["error", "v2", "bad_frame"]);
});

Deno.test("json mode: send is acked with id and ts; others get the message", async () => {
  await using server = await startServer();
  await using alice = await RawClient.json(server.port, "alice");
  await using bob = await RawClient.json(server.port, "bob");
  await alice.frame((f) => f.type === "presence" && f.newName === "bob");
  alice.send({ type: "send", room: "#general", text: "hi bob", ref: "s1" });
  const ack = await alice.frame((f) => f.ref === "s1");
  assert.equal(ack.type, "ack");
  assert.equal(typeof ack.id, "number");
  assert.ok(Math.abs(Number(ack.ts) - Date.now()) < 60_000);
  const msg = await bob.frame((f) => f.type === "message");
  assert.deepEqual(msg, {
    type: "message",
    id: ack.id,
    room: "#general",
    from: "alice",
    text: "hi bob",
    ts: ack.ts,
  });
  alice.send({ type: "send", room: "#general", text: "again", ref: "s2" });
  const ack2 = await alice.frame((f) => f.ref === "s2");
  assert.ok(Number(ack2.id) > Number(ack.id), "message ids increase");
  alice.send({ type: "send", to: "bob", text: "direct", action: true, ref: "s3" });
  await alice.frame((f) => f.ref === "s3" && f.type === "ack");
  const dm = await bob.frame((f) => f.type === "message" && f.to === "bob");
  assert.equal(dm.from, "alice");
  assert.equal(dm.action, true);
  assert.equal(dm.room, undefined);
});

Deno.test("json mode: join, who, rooms, part, ping", async () => {
  await using server = await startServer();
  await using alice = await RawClient.json(server.port, "alice");
  await using bob = await RawClient.json(server.port, "bob");
  alice.send({ type: "join", room: "#dev", ref: "j" });
  assert.deepEqual(await alice.frame((f) => f.ref === "j"), {
    type: "ack",
    room: "#dev",
    members: ["alice"],
    modes: "",
    roles: {}, // a guest made it: nobody owns it
    ref: "j",
  });
  bob.send({ type: "join", room: "#DEV", ref: "j" });
  const joined = await bob.frame((f) => f.ref === "j");
  assert.deepEqual(joined.members, ["alice", "bob"]);
  assert.equal(joined.room, "#dev");
  assert.deepEqual(await alice.frame((f) => f.type === "presence" && f.room === "#dev"), {
    type: "presence",
    room: "#dev",
    name: "bob",
    event: "joined",
  });
  bob.send({ type: "who", room: "#dev", ref: "w" });
  assert.deepEqual((await bob.frame((f) => f.ref === "w")).members, ["alice", "bob"]);
  bob.send({ type: "rooms", ref: "r" });
  assert.deepEqual((await bob.frame((f) => f.ref === "r")).rooms, [
    { name: "#dev", members: 2 },
    { name: "#general", members: 2 },
  ]);
  bob.send({ type: "part", room: "#dev", ref: "p" });
  assert.deepEqual(await bob.frame((f) => f.ref === "p"), { type: "ack", room: "#dev", ref: "p" });
  assert.equal(
    (await alice.frame((f) => f.type === "presence" && f.room === "#dev")).event,
    "left",
  );
  bob.send({ type: "ping", ref: "pp" });
  assert.deepEqual(await bob.frame((f) => f.ref === "pp"), { type: "pong", ref: "pp" });
});

Deno.test("json mode: every refusal is an error frame with a stable code and the ref", async () => {
  await using server = await startServer();
  await using c = await RawClient.json(server.port, "alice");
  const cases: [Record<string, unknown> | string, string][] = [
    ["{not json", "bad_frame"],
    ['["array"]', "bad_frame"],
    [{ type: "dance", ref: "x" }, "unknown_type"],
    [{ type: "join", ref: "x" }, "bad_frame"],
    [{ type: "join", room: 5, ref: "x" }, "bad_frame"],
    [{ type: "join", room: "nohash", ref: "x" }, "invalid_room"],
    [{ type: "nick", name: "bad name", ref: "x" }, "invalid_name"],
    [{ type: "send", room: "#nowhere", text: "hi", ref: "x" }, "no_such_room"],
    [{ type: "send", to: "nobody", text: "hi", ref: "x" }, "no_such_user"],
    [{ type: "send", text: "hi", ref: "x" }, "bad_frame"],
    [{ type: "send", room: "#general", text: "  ", ref: "x" }, "bad_frame"],
    [{ type: "who", room: "#nowhere", ref: "x" }, "no_such_room"],
  ];
  for (const [frame, code] of cases) {
    c.send(frame);
    const err = await c.frame((f) => f.type === "error");
    assert.equal(err.code, code, `${JSON.stringify(frame)} -> ${code}`);
    assert.equal(typeof err.message, "string");
    if (typeof frame === "object") assert.equal(err.ref, "x");
  }
  await using bob = await RawClient.json(server.port, "bob");
  bob.send({ type: "join", room: "#side", ref: "j" });
  await bob.frame((f) => f.ref === "j");
  c.send({ type: "send", room: "#side", text: "hi", ref: "y" });
  assert.equal((await c.frame((f) => f.ref === "y")).code, "not_in_room");
  c.send({ type: "nick", name: "BOB", ref: "z" });
  assert.equal((await c.frame((f) => f.ref === "z")).code, "name_taken");
  // Still usable after all of that.
  c.send({ type: "ping", ref: "alive" });
  assert.equal((await c.frame((f) => f.ref === "alive")).type, "pong");
});

Deno.test("json and text users talk to each other", async () => {
  await using server = await startServer();
  await using json = await RawClient.json(server.port, "jay");
  await using text = await RawClient.text(server.port, "tex");
  json.send({ type: "send", room: "#general", text: "from json", ref: "1" });
  assert.equal(await text.line((l) => l.startsWith("[")), "[#general] <jay> from json");
  text.send("from text");
  const msg = await json.frame((f) => f.type === "message");
  assert.equal(msg.text, "from text");
  assert.equal(msg.from, "tex");
  text.send("bye");
  assert.deepEqual(await json.frame((f) => f.type === "presence" && f.event === "quit"), {
    type: "presence",
    name: "tex",
    event: "quit",
  });
  json.send({ type: "quit", ref: "q" });
  assert.equal((await json.frame((f) => f.ref === "q")).type, "ack");
  await json.closed();
});
