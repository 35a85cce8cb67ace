// In-process session tests: the real ChatServer with no ports, connections from
// memoryConnection(), a real SQLite store, and the group commit held to force the races the
// subprocess tests could only try to hit.
import assert from "node:assert/strict";
import { ChatServer } from "../src/server/server.ts";
import { CommitQueue } from "../src/store/commit_queue.ts";
import { SqliteStore } from "../src/store/sqlite_store.ts";
import type { Store } from "../src/store/store.ts";
import { memoryConnection } from "../src/transport/memory.ts";
import type { MemoryPeer } from "../src/transport/memory.ts";

/** A group commit that can be held: while held, nothing commits; release commits it all. */
class HeldCommits extends CommitQueue {
  held = false;
  #due = false;

  override flush(): void {
    if (this.held) {
      this.#due = true;
      return;
    }
    super.flush();
  }

  release(): void {
    this.held = false;
    if (this.#due) super.flush();
    this.#due = false;
  }
}

const PASSWORD = "correct horse battery";

async function inProcess(): Promise<
  { server: ChatServer; commits: HeldCommits; connect(): Promise<MemoryPeer> } & AsyncDisposable
> {
  const store: Store = SqliteStore.open(":memory:", { sync: "normal" });
  const commits = new HeldCommits(store);
  const server = await ChatServer.start(
    { data: ":memory:", lowPriorityHashing: false, hashConcurrency: 1 },
    { store, commits, listen: false },
  );
  return {
    server,
    commits,
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
  app.commits.held = true;
  bob.send({ type: "send", to: "alice", text: "while you were away", ref: "dm" });
  await new Promise((resolve) => setTimeout(resolve, 20)); // the send waits for its commit
  const back = await app.connect();
  const login = await ask(back, { type: "login", token: alice.token });
  assert.deepEqual(login.unread, [], "not committed yet: nothing waits in the store");
  app.commits.release();
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
  app.commits.held = true;
  bob.send({ type: "send", to: "alice", text: "are you there?", ref: "dm" });
  await new Promise((resolve) => setTimeout(resolve, 20));
  alice.peer.close();
  await new Promise((resolve) => setTimeout(resolve, 20)); // alice's session ends
  app.commits.release();
  assert.equal((await bob.frame((f) => f.ref === "dm")).type, "ack");
  const back = await app.connect();
  const login = await ask(back, { type: "login", token: alice.token });
  assert.deepEqual(login.unread, [{ from: "bob", count: 1 }]);
  await back.frame((f) =>
    f.type === "message" && f.offline === true && f.text === "are you there?"
  );
});
