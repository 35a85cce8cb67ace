// Voice signalling in process (no media): who may join a room's voice, the offer each
// participant gets, the state every member sees, and every limit on what a client sends.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { memoryConnection } from "../src/transport/memory.ts";
import type { MemoryPeer } from "../src/transport/memory.ts";
import type { ServerConfig } from "../src/server/config.ts";
import { app, type Frame } from "./_in_process.ts";
import { Formatter } from "../src/client/terminal/format.ts";
import { parseServerArgs } from "../src/cli/server_cmd.ts";
import { UsageError } from "../src/cli/args.ts";

/** Every frame a connection got, read as they come, with requests answered from the record. */
class Recorder {
  readonly all: Frame[] = [];
  readonly peer: MemoryPeer;
  #refs = 0;
  constructor(peer: MemoryPeer) {
    this.peer = peer;
    void (async () => {
      for (;;) {
        try {
          this.all.push(await peer.frame(() => true, 3_600_000));
        } catch {
          return;
        }
      }
    })();
  }
  /** Where the record is now, to wait for what comes after. */
  mark(): number {
    return this.all.length;
  }
  /** The first frame from `after` on that matches. */
  async wait(match: (f: Frame) => boolean, after = 0, timeoutMs = 8000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.all.slice(after).find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error("Timed out waiting for a frame");
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  async ask(frame: Frame): Promise<Frame> {
    const ref = `r${++this.#refs}`;
    this.peer.send({ ...frame, ref });
    return await this.wait((f) => f.ref === ref);
  }
  close(): void {
    this.peer.close();
  }
}

async function ok(peer: Recorder, frame: Frame): Promise<Frame> {
  const reply = await peer.ask(frame);
  assert.notEqual(reply.type, "error", JSON.stringify(reply));
  return reply;
}

async function refused(peer: Recorder, frame: Frame, code: string, message?: RegExp) {
  const reply = await peer.ask(frame);
  assert.equal(reply.type, "error", JSON.stringify(reply));
  assert.equal(reply.code, code, JSON.stringify(reply));
  if (message) assert.match(String(reply.message), message);
}

function seen(peer: Recorder, match: (f: Frame) => boolean): Promise<Frame> {
  return peer.wait((f) => f.ref === undefined && match(f), peer.mark());
}

async function ask(peer: Recorder, frame: Frame): Promise<Frame> {
  return await peer.ask(frame);
}

/** The in-process server of tests/_in_process.ts, with voice on loopback, its connections recorded. */
async function voiceApp(config: Partial<ServerConfig> = {}) {
  const inner = await app(":memory:", {
    host: "127.0.0.1",
    voicePorts: [41000, 41200],
    ...config,
  });
  return {
    server: inner.server,
    connect: async () => new Recorder(await inner.connect()),
    [Symbol.asyncDispose]: () => inner[Symbol.asyncDispose](),
  };
}

async function inRoom(a: Awaited<ReturnType<typeof voiceApp>>, nick: string, room = "#ops") {
  const peer = await a.connect();
  await ok(peer, { type: "nick", name: nick });
  await ok(peer, { type: "join", room });
  return peer;
}

Deno.test("voice_join: a member gets an offer and everyone in the room sees who is in voice", async () => {
  await using a = await voiceApp();
  const alice = await inRoom(a, "alice");
  const bob = await inRoom(a, "bob");
  const offer = seen(alice, (f) => f.type === "voice_offer");
  const bobSees = seen(bob, (f) => f.type === "voice_state" && f.change === "joined");
  const ack = await ok(alice, { type: "voice_join", room: "#ops" });
  assert.deepEqual(ack.participants, [{ name: "alice", muted: false, deafened: false }]);
  const sdp = String((await offer).sdp);
  assert.match(sdp, /^v=0/);
  assert.match(sdp, /a=recvonly/);
  assert.match(sdp, /opus\/48000/);
  assert.match(sdp, /a=candidate:.* 127\.0\.0\.1 \d+ typ host/);
  assert.equal((await bobSees).name, "alice");
  // bob joins: his offer names alice's stream; alice's next offer waits for her first answer.
  const bobOffer = seen(bob, (f) => f.type === "voice_offer");
  await ok(bob, { type: "voice_join", room: "#ops" });
  const streams = (await bobOffer).streams as Record<string, string>;
  assert.deepEqual(Object.values(streams), ["alice"]);
  assert.match(
    String((await bobOffer).sdp),
    new RegExp(
      `a=mid:${Object.keys(streams)[0]}\r\na=sendonly|a=sendonly[^]*a=mid:${
        Object.keys(streams)[0]
      }`,
    ),
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(alice.all.filter((f) => f.type === "voice_offer").length, 1);
  // An answer that does not answer the offer's m-lines is refused.
  await refused(alice, { type: "voice_answer", room: "#ops", sdp: "v=0\r\n" }, "bad_frame");
  const who = await ok(bob, { type: "voice_who", room: "#ops" });
  assert.deepEqual((who.participants as Frame[]).map((p) => p.name), ["alice", "bob"]);
  assert.equal(who.enabled, true);
  const left = seen(bob, (f) => f.type === "voice_state" && f.change === "left");
  await ok(alice, { type: "voice_leave", room: "#ops" });
  assert.deepEqual(((await left).participants as Frame[]).map((p) => p.name), ["bob"]);
  await refused(alice, { type: "voice_leave", room: "#ops" }, "bad_frame");
});

/** Binds a UDP socket to `port` of every address: the socket, or undefined when it is taken. */
async function holdPort(port: number): Promise<Socket | undefined> {
  const socket = createSocket("udp4");
  const error = await new Promise<Error | undefined>((resolve) => {
    socket.once("error", resolve);
    socket.bind({ port }, () => resolve(undefined));
  });
  if (error === undefined) return socket;
  socket.close();
  return undefined;
}

function candidatePorts(sdp: string): number[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host/gm)].map((m) =>
    Number(m[1])
  );
}

Deno.test("voice ports: a taken port is skipped; with none free a join is told and taken out, not left hanging", async () => {
  const [first, last] = [41300, 41309];
  await using a = await voiceApp({ voicePorts: [first, last] });
  const held: Socket[] = [];
  try {
    held.push((await holdPort(first))!); // another program's
    const alice = await inRoom(a, "alice");
    const offer = seen(alice, (f) => f.type === "voice_offer");
    await ok(alice, { type: "voice_join", room: "#ops" });
    const ports = candidatePorts(String((await offer).sdp));
    assert.ok(ports.length >= 1, "a host candidate");
    for (const port of ports) {
      assert.ok(port > first && port <= last, `port ${port} in range, not ${first}`);
    }

    for (let port = first + 1; port <= last; port++) { // everything alice's peer does not hold
      const socket = await holdPort(port);
      if (socket !== undefined) held.push(socket);
    }
    const bob = await inRoom(a, "bob");
    const ended = seen(bob, (f) => f.type === "voice_ended");
    const left = seen(
      alice,
      (f) => f.type === "voice_state" && f.name === "bob" && f.change === "left",
    );
    await ok(bob, { type: "voice_join", room: "#ops" });
    assert.match(String((await ended).reason), /no UDP port/);
    await left;
    const who = await ok(alice, { type: "voice_who", room: "#ops" });
    assert.deepEqual((who.participants as Frame[]).map((p) => p.name), ["alice"]);

    for (const socket of held.splice(0)) socket.close();
    await new Promise((r) => setTimeout(r, 50));
    const again = seen(bob, (f) => f.type === "voice_offer");
    await ok(bob, { type: "voice_join", room: "#ops" });
    assert.ok(candidatePorts(String((await again).sdp)).length >= 1);
  } finally {
    for (const socket of held) socket.close();
  }
});

Deno.test("voice_join: a non-member is refused, and parting the room leaves its voice", async () => {
  await using a = await voiceApp();
  const alice = await inRoom(a, "alice");
  const eve = await inRoom(a, "eve", "#elsewhere");
  await refused(eve, { type: "voice_join", room: "#ops" }, "not_in_room");
  await refused(eve, { type: "voice_who", room: "#ops" }, "not_in_room");
  // Signalling for a voice you are not in goes nowhere.
  await refused(eve, { type: "voice_answer", room: "#ops", sdp: "x" }, "bad_frame", /not in/);
  await refused(eve, { type: "voice_mute", room: "#ops", muted: true }, "bad_frame", /not in/);
  await refused(eve, { type: "voice_ice", room: "#ops", candidate: "" }, "bad_frame", /not in/);
  const bob = await inRoom(a, "bob");
  await ok(alice, { type: "voice_join", room: "#ops" });
  const left = seen(bob, (f) => f.type === "voice_state" && f.change === "left");
  await ok(alice, { type: "part", room: "#ops" });
  assert.equal((await left).name, "alice");
  assert.deepEqual((await ok(bob, { type: "voice_who", room: "#ops" })).participants, []);
  // Going offline leaves voice too.
  await ok(bob, { type: "voice_join", room: "#ops" });
  const carol = await inRoom(a, "carol");
  const gone = seen(carol, (f) => f.type === "voice_state" && f.change === "left");
  bob.close();
  assert.equal((await gone).name, "bob");
});

Deno.test("voice_mute: muting is announced and answered with the state", async () => {
  await using a = await voiceApp();
  const alice = await inRoom(a, "alice");
  const bob = await inRoom(a, "bob");
  await ok(alice, { type: "voice_join", room: "#ops" });
  const muted = seen(bob, (f) => f.type === "voice_state" && f.change === "muted");
  const ack = await ok(alice, { type: "voice_mute", room: "#ops", muted: true });
  assert.equal(ack.muted, true);
  assert.equal(ack.deafened, false);
  assert.deepEqual((await muted).participants, [{ name: "alice", muted: true, deafened: false }]);
  const deaf = await ok(alice, { type: "voice_mute", room: "#ops", deafened: true });
  assert.deepEqual([deaf.muted, deaf.deafened], [true, true]);
});

Deno.test("voice limits: room size, SDP size, candidates per offer, rate, and --no-voice", async () => {
  await using a = await voiceApp({ voiceMaxPerRoom: 2, maxLine: 64 * 1024 });
  const [alice, bob, carol] = [
    await inRoom(a, "alice"),
    await inRoom(a, "bob"),
    await inRoom(a, "carol"),
  ];
  const offer = seen(alice, (f) => f.type === "voice_offer");
  await ok(alice, { type: "voice_join", room: "#ops" });
  await offer;
  await ok(bob, { type: "voice_join", room: "#ops" });
  await refused(carol, { type: "voice_join", room: "#ops" }, "voice_full", /has 2 people/);
  await refused(
    alice,
    { type: "voice_answer", room: "#ops", sdp: "v=0\r\n" + "a=x\r\n".repeat(7000) },
    "bad_frame",
    /longer than/,
  );
  await refused(
    alice,
    { type: "voice_ice", room: "#ops", candidate: "x".repeat(600) },
    "bad_frame",
  );
  let last: Frame = {};
  for (let i = 0; i < 33; i++) {
    last = await ask(alice, { type: "voice_ice", room: "#ops", candidate: "" });
  }
  assert.equal(last.code, "bad_frame");
  assert.match(String(last.message), /more than 32/);
  // The join rate: 5 at once, then 1 a second.
  let limited: Frame | undefined;
  for (let i = 0; i < 8 && limited === undefined; i++) {
    const reply = await ask(carol, { type: "voice_join", room: "#ops" });
    if (reply.code === "rate_limited") limited = reply;
  }
  assert.ok(limited, "voice_join was never rate limited");
  // Garbage in every field type is refused by the frame parser, not thrown.
  await refused(alice, { type: "voice_answer", room: "#ops", sdp: 5 }, "bad_frame");
  await refused(alice, { type: "voice_mute", room: "#ops", muted: "yes" }, "bad_frame");

  // The server's stream limit: two people are two streams; a third would make six.
  await using small = await voiceApp({ voiceMaxStreams: 2 });
  const [x, y, z] = [await inRoom(small, "x"), await inRoom(small, "y"), await inRoom(small, "z")];
  await ok(x, { type: "voice_join", room: "#ops" });
  await ok(y, { type: "voice_join", room: "#ops" });
  await refused(z, { type: "voice_join", room: "#ops" }, "voice_full", /carries all it can/);
  await ok(y, { type: "voice_leave", room: "#ops" });
  await ok(z, { type: "voice_join", room: "#ops" });

  await using off = await voiceApp({ voice: false });
  const dave = await inRoom(off, "dave");
  await refused(dave, { type: "voice_join", room: "#ops" }, "forbidden", /turned off/);
  assert.equal((await ok(dave, { type: "voice_who", room: "#ops" })).enabled, false);
});

Deno.test("voice_answer has no rate of its own: answers beyond any burst are judged, not rate limited", async () => {
  await using a = await voiceApp();
  const alice = await inRoom(a, "alice");
  const offer = seen(alice, (f) => f.type === "voice_offer");
  await ok(alice, { type: "voice_join", room: "#ops" });
  await offer;
  // More answers than the old limit (10 at once) allowed: each is judged on what it says.
  for (let i = 0; i < 20; i++) {
    await refused(alice, { type: "voice_answer", room: "#ops", sdp: "v=0\r\n" }, "bad_frame");
  }
});

Deno.test("voice_moderate: an operator mutes (they cannot unmute themselves), unmutes and removes", async () => {
  await using a = await voiceApp();
  const owner = await a.connect();
  await ok(owner, { type: "register", name: "olga", password: "correct horse battery" });
  await ok(owner, { type: "join", room: "#ops" }); // the first account in a room owns it
  const bob = await inRoom(a, "bob");
  await ok(owner, { type: "voice_join", room: "#ops" });
  await ok(bob, { type: "voice_join", room: "#ops" });
  await refused(
    bob,
    { type: "voice_moderate", room: "#ops", name: "olga", action: "mute" },
    "forbidden",
  );
  await refused(
    owner,
    { type: "voice_moderate", room: "#ops", name: "bob", action: "shout" },
    "bad_frame",
  );
  await refused(
    owner,
    { type: "voice_moderate", room: "#ops", name: "nobody", action: "mute" },
    "no_such_user",
  );
  const muted = seen(bob, (f) => f.type === "voice_state" && f.change === "muted");
  await ok(owner, { type: "voice_moderate", room: "#ops", name: "bob", action: "mute" });
  const state = await muted;
  assert.equal(state.by, "olga");
  assert.deepEqual((state.participants as Frame[]).find((p) => p.name === "bob"), {
    name: "bob",
    muted: true,
    deafened: false,
    silenced: true,
  });
  await refused(bob, { type: "voice_mute", room: "#ops", muted: false }, "forbidden");
  await ok(owner, { type: "voice_moderate", room: "#ops", name: "bob", action: "unmute" });
  await ok(bob, { type: "voice_mute", room: "#ops", muted: false });
  const ended = seen(bob, (f) => f.type === "voice_ended");
  const removed = seen(owner, (f) => f.type === "voice_state" && f.change === "removed");
  await ok(owner, { type: "voice_moderate", room: "#ops", name: "bob", action: "remove" });
  assert.match(String((await ended).reason), /removed by olga/);
  assert.deepEqual(((await removed).participants as Frame[]).map((p) => p.name), ["olga"]);
  // A kick takes the one kicked out of voice too.
  await ok(bob, { type: "voice_join", room: "#ops" });
  const left = seen(owner, (f) => f.type === "voice_state" && f.change === "left");
  await ok(owner, { type: "kick", room: "#ops", name: "bob" });
  assert.equal((await left).name, "bob");
});

Deno.test("call: rings every session of the one called, one accepts, the other stops, hang up", async () => {
  await using a = await voiceApp();
  const alice = await a.connect();
  await ok(alice, { type: "register", name: "alice", password: "correct horse battery" });
  const bobPhone = await a.connect();
  await ok(bobPhone, { type: "register", name: "bob", password: "correct horse battery" });
  const bobLaptop = await a.connect();
  await ok(bobLaptop, { type: "login", name: "bob", password: "correct horse battery" });
  const eve = await inRoom(a, "eve");
  await refused(alice, { type: "call", to: "alice" }, "bad_frame", /yourself/);
  await refused(alice, { type: "call", to: "nobody" }, "no_such_user");
  const rings = [bobPhone, bobLaptop].map((p) =>
    seen(p, (f) => f.type === "call_state" && f.state === "ringing")
  );
  const ack = await ok(alice, { type: "call", to: "bob" });
  const id = String(ack.call);
  for (const ring of rings) assert.equal((await ring).from, "alice");
  await refused(alice, { type: "call", to: "eve" }, "busy");
  // Only the one called may accept or decline; only the two may hang up.
  await refused(eve, { type: "call_accept", call: id }, "bad_frame");
  await refused(eve, { type: "call_decline", call: id }, "bad_frame");
  await refused(eve, { type: "call_hangup", call: id }, "bad_frame");
  await refused(alice, { type: "call_accept", call: id }, "bad_frame");
  const laptopSees = seen(bobLaptop, (f) => f.type === "call_state" && f.state === "active");
  const aliceOffer = seen(alice, (f) => f.type === "voice_offer" && f.room === `call:${id}`);
  const bobOffer = seen(bobPhone, (f) => f.type === "voice_offer" && f.room === `call:${id}`);
  await ok(bobPhone, { type: "call_accept", call: id });
  await laptopSees; // stops ringing there
  assert.deepEqual(Object.values((await aliceOffer).streams as object), ["bob"]);
  assert.deepEqual(Object.values((await bobOffer).streams as object), ["alice"]);
  assert.equal(bobLaptop.all.some((f) => f.type === "voice_offer"), false);
  await refused(bobLaptop, { type: "call_accept", call: id }, "bad_frame", /not ringing/);
  // Eve cannot inject herself into the call's voice.
  await refused(eve, { type: "voice_join", room: `call:${id}` }, "not_in_room");
  await refused(eve, { type: "voice_answer", room: `call:${id}`, sdp: "v=0" }, "bad_frame");
  const ended = seen(alice, (f) => f.type === "call_state" && f.state === "ended");
  await ok(bobPhone, { type: "call_hangup", call: id });
  assert.equal((await ended).reason, "hung up");
  await refused(alice, { type: "call_hangup", call: id }, "bad_frame");
});

Deno.test("call: declined, and missed (no answer, or the caller hangs up) leaves a missed call in the DM", async () => {
  await using a = await voiceApp({ callRingMs: 300 });
  const alice = await a.connect();
  await ok(alice, { type: "register", name: "alice", password: "correct horse battery" });
  const bob = await a.connect();
  await ok(bob, { type: "register", name: "bob", password: "correct horse battery" });
  let id = String((await ok(alice, { type: "call", to: "bob" })).call);
  const declined = seen(alice, (f) => f.type === "call_state" && f.state === "ended");
  await ok(bob, { type: "call_decline", call: id });
  assert.equal((await declined).reason, "declined");

  const missed = seen(alice, (f) => f.type === "call_state" && f.state === "ended");
  const dm = seen(bob, (f) => f.type === "message" && f.from === "alice");
  // The calling session sees the missed call in its DM too (it sent nothing to be answered).
  const mine = seen(alice, (f) => f.type === "message" && f.to === "bob");
  await ok(alice, { type: "call", to: "bob" });
  assert.equal((await missed).reason, "no answer");
  const message = await dm;
  assert.equal(message.text, "called you: missed call");
  assert.equal(message.action, true);
  assert.equal((await mine).id, message.id);

  id = String((await ok(alice, { type: "call", to: "bob" })).call);
  const dm2 = seen(bob, (f) => f.type === "message" && f.from === "alice");
  const mine2 = seen(alice, (f) => f.type === "message" && f.to === "bob");
  await ok(alice, { type: "call_hangup", call: id });
  assert.equal((await dm2).text, "called you: missed call");
  assert.equal((await mine2).id, (await dm2).id);
  const history = await ok(bob, { type: "history", with: "alice" });
  assert.equal((history.messages as Frame[]).length, 2);

  // A caller who goes away ends the call.
  id = String((await ok(alice, { type: "call", to: "bob" })).call);
  const gone = seen(bob, (f) => f.type === "call_state" && f.state === "ended");
  alice.close();
  assert.equal((await gone).call, id);
});

Deno.test("text mode: 'alice joined voice in #ops', and /voice lists who is there", async () => {
  await using a = await voiceApp();
  const [conn, tom] = memoryConnection("127.0.0.1");
  // A text-mode session (nc): its first line is a command, not JSON.
  void a.server.serve(conn);
  tom.send("/nick tom");
  await tom.line((l) => l.includes("You are now tom"));
  tom.send("/join #ops");
  await tom.line((l) => l.includes("You joined #ops"));
  const alice = await inRoom(a, "alice");
  await ok(alice, { type: "voice_join", room: "#ops" });
  assert.equal(await tom.line((l) => l.includes("voice")), "* alice joined voice in #ops");
  await ok(alice, { type: "voice_mute", room: "#ops", muted: true });
  assert.equal(await tom.line((l) => l.includes("voice")), "* alice muted in voice in #ops");
  tom.send("/voice");
  assert.equal(
    await tom.line((l) => l.includes("In voice")),
    "* In voice in #ops (1): alice (muted)",
  );
  tom.send("/voice #elsewhere");
  assert.match(await tom.line((l) => l.startsWith("!")), /not in #elsewhere/);
  await ok(alice, { type: "voice_leave", room: "#ops" });
  assert.equal(await tom.line((l) => l.includes("voice")), "* alice left voice in #ops");
  tom.send("/voice");
  assert.equal(await tom.line((l) => l.includes("voice")), "* Nobody is in voice in #ops");
});

Deno.test("text mode: a call rings with how to refuse it, and /decline refuses the latest", async () => {
  await using a = await voiceApp();
  const alice = await a.connect();
  await ok(alice, { type: "register", name: "alice", password: "correct horse battery" });
  const [conn, tom] = memoryConnection("127.0.0.1");
  void a.server.serve(conn);
  tom.send("/nick tom");
  await tom.line((l) => l.includes("You are now tom"));
  tom.send("/decline");
  assert.match(await tom.line((l) => l.startsWith("!")), /no call rings for you/);
  const ended = seen(alice, (f) => f.type === "call_state" && f.state === "ended");
  await ok(alice, { type: "call", to: "tom" });
  assert.equal(
    await tom.line((l) => l.includes("calling")),
    "* alice is calling tom (answer it in a browser, or /decline)",
  );
  tom.send("/decline");
  assert.equal((await ended).reason, "declined");
  // From JSON too, without naming the call; and only the one called may.
  const bob = await a.connect();
  await ok(bob, { type: "register", name: "bob", password: "correct horse battery" });
  await ok(alice, { type: "call", to: "bob" });
  await refused(alice, { type: "call_decline" }, "bad_frame");
  const over = seen(alice, (f) => f.type === "call_state" && f.state === "ended");
  await ok(bob, { type: "call_decline" });
  assert.equal((await over).reason, "declined");
});

Deno.test("terminal client: voice and call events in its words, /voice with the browser link", () => {
  const f = new Formatter(false, () => 0);
  const line = (e: Parameters<Formatter["event"]>[0]) => f.event(e).map((l) => l.text);
  assert.match(
    line({
      type: "voice_state",
      room: "#ops",
      participants: [{ name: "alice", muted: false, deafened: false }],
      name: "alice",
      change: "joined",
    }).join(),
    /alice joined voice in #ops$/,
  );
  assert.deepEqual(line({ type: "voice_offer", room: "#ops", sdp: "v=0", streams: {} }), []);
  assert.match(
    line({ type: "call_state", call: "c1", from: "bob", to: "alice", state: "ringing" }).join(),
    /bob is calling alice/,
  );
  const reply = f.reply(
    {
      type: "voice_who",
      frame: { type: "voice_who", room: "#ops" },
      reply: {
        type: "ack",
        room: "#ops",
        enabled: true,
        participants: [{ name: "alice", muted: false, deafened: true }],
      },
    },
    "tom",
    "http://chat.example:8080",
  ).map((l) => l.text);
  assert.match(reply[0]!, /In voice in #ops \(1\): alice \(deafened\)$/);
  assert.match(reply[1]!, /Join from a browser: http:\/\/chat\.example:8080\/#voice=%23ops$/);
});

Deno.test("voice_servers: time-limited TURN credentials in coturn's REST scheme", async () => {
  await using a = await voiceApp({
    turnUrls: ["turn:127.0.0.1:3478"],
    turnSecret: "s3cret",
    turnTtlMs: 3_600_000,
  });
  const alice = await inRoom(a, "alice");
  const before = Math.floor(Date.now() / 1000) + 3600;
  const ack = await ok(alice, { type: "voice_servers" });
  const [server] = ack.iceServers as { urls: string[]; username: string; credential: string }[];
  assert.deepEqual(server!.urls, ["turn:127.0.0.1:3478"]);
  const [expiry, name] = server!.username.split(":");
  assert.equal(name, "alice");
  assert.ok(Math.abs(Number(expiry) - before) <= 2, server!.username);
  const expected = createHmac("sha1", "s3cret").update(server!.username).digest("base64");
  assert.equal(server!.credential, expected);

  await using plain = await voiceApp();
  const bob = await inRoom(plain, "bob");
  assert.deepEqual((await ok(bob, { type: "voice_servers" })).iceServers, []);
});

Deno.test("server flags: --voice-*, --turn-*, --call-ring are read and checked", () => {
  const parsed = parseServerArgs([
    "--voice-ports",
    "41000-41010",
    "--voice-public-ip",
    "203.0.113.7",
    "--voice-max-per-room",
    "8",
    "--turn-url",
    "turn:turn.example:3478",
    "--turn-secret",
    "x",
    "--call-ring",
    "5",
  ])!;
  assert.deepEqual(parsed.config.voicePorts, [41000, 41010]);
  assert.equal(parsed.config.voicePublicIp, "203.0.113.7");
  assert.equal(parsed.config.voiceMaxPerRoom, 8);
  assert.deepEqual(parsed.config.turnUrls, ["turn:turn.example:3478"]);
  assert.equal(parsed.config.callRingMs, 5000);
  assert.equal(parsed.config.voice, true);
  assert.equal(parseServerArgs(["--no-voice"])!.config.voice, false);
  for (
    const bad of [
      ["--voice-ports", "41000"],
      ["--voice-ports", "41010-41000"],
      ["--voice-ports", "80-90"],
      ["--voice-public-ip", "example.com"],
      ["--voice-public-ip", "1.2.3.256"],
      ["--voice-max-per-room", "1"],
      ["--turn-url", "turn:x:1"],
      ["--turn-url", "http://x", "--turn-secret", "s"],
    ]
  ) {
    assert.throws(() => parseServerArgs(bad), UsageError, bad.join(" "));
  }
});

Deno.test("voice_answer: hostile answers shaped like real ones are refused or harmless, never fatal", async () => {
  await using a = await voiceApp();
  const alice = await inRoom(a, "alice");
  const offer = seen(alice, (f) => f.type === "voice_offer");
  await ok(alice, { type: "voice_join", room: "#ops" });
  await offer;
  const shaped = (body: string) =>
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
    "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:x\r\na=ice-pwd:y\r\n" +
    "a=fingerprint:sha-256 00\r\na=setup:active\r\na=mid:0\r\n" + body;
  for (
    const body of [
      "",
      "a=rtpmap:96 opus/48000/2\r\na=sendonly\r\n",
      "a=rtpmap:abc\r\na=candidate:1 1 udp 1 999.999.999.999 -5 typ host\r\n",
      "a=ssrc:-1 cname:\u0000\r\na=extmap:99999 x\r\n" + "a=rtcp-fb:96 nack\r\n".repeat(200),
      "a=group:BUNDLE 0 1 2 3\r\na=mid:0\r\na=mid:zzz\r\n",
    ]
  ) {
    const reply = await ask(alice, { type: "voice_answer", room: "#ops", sdp: shaped(body) });
    assert.ok(reply.type === "ack" || reply.code === "bad_frame", JSON.stringify(reply));
    // Whatever was made of it, an answer was used or refused; a new join offers again.
    await new Promise((r) => setTimeout(r, 1000)); // voice_join's rate
    const again = seen(alice, (f) => f.type === "voice_offer");
    await ok(alice, { type: "voice_join", room: "#ops" });
    await again;
  }
  for (const candidate of ["candidate:", "candidate:1 1 udp x y z typ", "\u0000".repeat(100)]) {
    const reply = await ask(alice, { type: "voice_ice", room: "#ops", candidate, mid: "0" });
    assert.ok(reply.type === "ack" || reply.code === "bad_frame", JSON.stringify(reply));
  }
  // The session and the server still work.
  assert.equal((await ok(alice, { type: "voice_who", room: "#ops" })).enabled, true);
});
