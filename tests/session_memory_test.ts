// In-process session tests: the real ChatServer with no ports, connections from
// memoryConnection(), a real SQLite store on its worker, and its commits held to force the races
// the subprocess tests could only try to hit.
import assert from "node:assert/strict";
import { ManualClock } from "../src/clock.ts";
import { ChatServer } from "../src/server/server.ts";
import { openSqliteStore } from "../src/store/worker_store.ts";
import { memoryConnection } from "../src/transport/memory.ts";
import type { MemoryPeer } from "../src/transport/memory.ts";
import { HeldStore } from "./_held_store.ts";

const PASSWORD = "correct horse battery";

async function inProcess(): Promise<
  { server: ChatServer; store: HeldStore; connect(): Promise<MemoryPeer> } & AsyncDisposable
> {
  const store = new HeldStore(await openSqliteStore(":memory:", { sync: "normal" }));
  const server = await ChatServer.start(
    { data: ":memory:", lowPriorityHashing: false, hashConcurrency: 1 },
    { store, listen: false },
  );
  return {
    server,
    store,
    async connect() {
      const [conn, peer] = memoryConnection();
      void server.serve(conn);
      peer.send({ type: "hello", proto: 1, ref: "hello" });
      await peer.frame((f) => f.ref === "hello");
      return peer;
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function ask(peer: MemoryPeer, frame: Record<string, unknown>) {
  const ref = crypto.randomUUID();
  peer.send({ ...frame, ref });
  return await peer.frame((f) => f.ref === ref);
}

async function account(connect: () => Promise<MemoryPeer>, name: string) {
  const peer = await connect();
  const ack = await ask(peer, { type: "register", name, password: PASSWORD });
  assert.equal(ack.type, "ack", JSON.stringify(ack));
  return { peer, token: String(ack.token) };
}

/** The DMs from `from` a connection received, by text. */
function dmsFrom(peer: MemoryPeer, from: string): string[] {
  return peer.pending().map((l) => JSON.parse(l)).filter((f) =>
    f.type === "message" && f.from === from && f.to !== undefined
  ).map((f) => f.text);
}

Deno.test("in process: a DM whose recipient logs in while its commit is held arrives exactly once", async () => {
  await using app = await inProcess();
  const alice = await account(app.connect, "alice");
  alice.peer.close();
  const bob = await app.connect();
  assert.equal((await ask(bob, { type: "nick", name: "bob" })).name, "bob");
  app.store.hold("commit");
  bob.send({ type: "send", to: "alice", text: "while you were away", ref: "dm" });
  await new Promise((resolve) => setTimeout(resolve, 20)); // the send waits for its commit
  const back = await app.connect();
  const login = await ask(back, { type: "login", token: alice.token });
  assert.deepEqual(login.unread, [], "not committed yet: nothing waits in the store");
  app.store.release();
  assert.equal((await bob.frame((f) => f.ref === "dm")).type, "ack");
  await back.frame((f) => f.type === "message" && f.text === "while you were away");
  back.close();
  const again = await app.connect();
  const second = await ask(again, { type: "login", token: alice.token });
  assert.deepEqual(second.unread, [], "delivered live, so not waiting for the next login");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(dmsFrom(again, "bob"), [], "and not delivered again");
});

Deno.test("in process: a DM whose recipient leaves while its commit is held waits for the next login", async () => {
  await using app = await inProcess();
  const alice = await account(app.connect, "alice");
  const bob = await app.connect();
  assert.equal((await ask(bob, { type: "nick", name: "bob" })).name, "bob");
  app.store.hold("commit");
  bob.send({ type: "send", to: "alice", text: "are you there?", ref: "dm" });
  await new Promise((resolve) => setTimeout(resolve, 20));
  alice.peer.close();
  await new Promise((resolve) => setTimeout(resolve, 20)); // alice's session ends
  app.store.release();
  assert.equal((await bob.frame((f) => f.ref === "dm")).type, "ack");
  const back = await app.connect();
  const login = await ask(back, { type: "login", token: alice.token });
  assert.deepEqual(login.unread, [{ from: "bob", count: 1 }]);
  await back.frame((f) =>
    f.type === "message" && f.offline === true && f.text === "are you there?"
  );
});

Deno.test("in process: a DM committed as waiting, whose sender hears of it only after the recipient's login replayed it, arrives once", async () => {
  await using app = await inProcess();
  const alice = await account(app.connect, "alice");
  alice.peer.close();
  const bob = await app.connect();
  assert.equal((await ask(bob, { type: "nick", name: "bob" })).name, "bob");
  app.store.hold("answer");
  bob.send({ type: "send", to: "alice", text: "stored, not yet told", ref: "dm" });
  await new Promise((resolve) => setTimeout(resolve, 50)); // committed; bob not told yet
  const back = await app.connect();
  const login = await ask(back, { type: "login", token: alice.token });
  assert.deepEqual(login.unread, [{ from: "bob", count: 1 }], "the login found it waiting");
  await back.frame((f) => f.type === "message" && f.offline === true);
  app.store.release();
  assert.equal((await bob.frame((f) => f.ref === "dm")).type, "ack");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(dmsFrom(back, "bob"), [], "not delivered live as well");
  back.close();
  const again = await app.connect();
  const second = await ask(again, { type: "login", token: alice.token });
  assert.deepEqual(second.unread, [], "and not waiting any more");
});

Deno.test("in process: renames past the nick guard's rate are refused rate_limited, the name kept", async () => {
  await using app = await inProcess();
  const peer = await app.connect();
  for (let i = 0; i < 10; i++) {
    assert.equal((await ask(peer, { type: "nick", name: `n${i}` })).type, "ack", `rename ${i}`);
  }
  const refused = await ask(peer, { type: "nick", name: "one-too-many" });
  assert.equal(refused.type, "error");
  assert.equal(refused.code, "rate_limited");
  assert.ok(Number(refused.retryAfter) >= 1);
  const who = await ask(peer, { type: "who", room: "#general" });
  assert.deepEqual(who.members, ["n9"]);
});

Deno.test("in process: the clock in the server's deps stamps messages and expires tokens", async () => {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const store = new HeldStore(await openSqliteStore(":memory:", { sync: "normal" }));
  await using server = await ChatServer.start(
    { data: ":memory:", lowPriorityHashing: false, hashConcurrency: 1, sessionTtlMs: 3600_000 },
    { store, listen: false, clock },
  );
  const connect = async () => {
    const [conn, peer] = memoryConnection();
    void server.serve(conn);
    peer.send({ type: "hello", proto: 1, ref: "hello" });
    await peer.frame((f) => f.ref === "hello");
    return peer;
  };
  const alice = await account(connect, "alice");
  const sent = await ask(alice.peer, { type: "send", room: "#general", text: "hi" });
  assert.equal(sent.ts, Date.UTC(2030, 0, 1), "stamped by the server's clock");
  alice.peer.close();
  clock.advance(3600_000 + 1); // the token has not been used for longer than the TTL
  const later = await connect();
  const login = await ask(later, { type: "login", token: alice.token });
  assert.equal(login.type, "error");
  assert.equal(login.code, "auth_failed");
});

Deno.test("in process: at shutdown every client hears of it before any presence of others leaving", async () => {
  const app = await inProcess();
  const peers = [];
  for (const name of ["ann", "ben", "cat", "dan"]) {
    const peer = await app.connect();
    assert.equal((await ask(peer, { type: "nick", name })).name, name);
    peers.push(peer);
  }
  await new Promise((resolve) => setTimeout(resolve, 50)); // the renames' presence is delivered
  const before = peers.map((p) => p.pending().length);
  await app.server.shutdown();
  peers.forEach((peer, i) => {
    const after = peer.pending().slice(before[i]).map((l) => JSON.parse(l));
    const first = after.findIndex((f) => f.type === "shutdown");
    assert.ok(first >= 0, `client ${i} got the notice`);
    assert.equal(
      after.slice(0, first).filter((f) => f.type === "presence").length,
      0,
      `client ${i}: ${JSON.stringify(after)}`,
    );
  });
});

Deno.test("in process: a hello that logs in comes online as the account, never as a guest first", async () => {
  await using app = await inProcess();
  const alice = await account(app.connect, "alice");
  alice.peer.close();
  const watcher = await app.connect();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const [conn, peer] = memoryConnection();
  void app.server.serve(conn);
  peer.send({ type: "hello", proto: 1, token: alice.token, ref: "h" });
  const welcome = await peer.frame((f) => f.ref === "h");
  assert.equal(welcome.type, "welcome", JSON.stringify(welcome));
  assert.equal(welcome.name, "alice");
  const login = welcome.login as { name: string; token: string; rooms: string[] };
  assert.equal(login.name, "alice");
  assert.equal(login.token, alice.token);
  assert.deepEqual(login.rooms, ["#general"]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const presence = watcher.pending().map((l) => JSON.parse(l)).filter((f) => f.type === "presence");
  assert.deepEqual(presence, [
    { type: "presence", room: "#general", name: "alice", event: "joined" },
  ], "one join, no guest, no rename");
  // A hello whose token is refused says so, and the session is a guest after all.
  const [conn2, other] = memoryConnection();
  void app.server.serve(conn2);
  other.send({ type: "hello", proto: 1, token: "not-a-token-at-all", ref: "h2" });
  const refused = await other.frame((f) => f.ref === "h2");
  assert.equal(refused.code, "auth_failed");
  const who = await ask(other, { type: "who", room: "#general" });
  assert.ok((who.members as string[]).some((m) => m.startsWith("guest-")));
});
