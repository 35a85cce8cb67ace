// The SQLite store, migrations, group commit and password hashing, on real database files.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DEFAULT_PARAMS, deriveHere, hashPassword, verifyPassword } from "../src/auth/password.ts";
import type { Argon2Params, Derive } from "../src/auth/password.ts";
import { CommitQueue } from "../src/store/commit_queue.ts";
import { SCHEMA_VERSION } from "../src/store/migrations.ts";
import { SchemaTooNewError, SqliteStore } from "../src/store/sqlite_store.ts";

async function tempDb(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  return {
    path: `${dir}/parley.db`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("SqliteStore.open() migrates an empty database to the current schema, in WAL mode", async () => {
  await using db = await tempDb();
  {
    using store = SqliteStore.open(db.path);
    assert.equal(store.schemaVersion, SCHEMA_VERSION);
  }
  const raw = new DatabaseSync(db.path);
  try {
    assert.equal(
      (raw.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
      "wal",
    );
    const tables = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
      name: string;
    }[]).map((t) => t.name);
    for (const t of ["users", "sessions", "rooms", "memberships", "messages", "pending_dms"]) {
      assert.ok(tables.includes(t), `table ${t}`);
    }
  } finally {
    raw.close();
  }
  // Opening again is a no-op migration.
  using again = SqliteStore.open(db.path);
  assert.equal(again.schemaVersion, SCHEMA_VERSION);
});

Deno.test("SqliteStore.open() refuses a database from a newer parley", async () => {
  await using db = await tempDb();
  const raw = new DatabaseSync(db.path);
  raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 5}`);
  raw.close();
  assert.throws(() => SqliteStore.open(db.path), (e: unknown) => {
    assert.ok(e instanceof SchemaTooNewError);
    assert.match(e.message, new RegExp(`schema version ${SCHEMA_VERSION + 5} is newer`));
    return true;
  });
});

Deno.test("SqliteStore users: unique case-insensitively, disable ends sessions, delete cascades", async () => {
  await using db = await tempDb();
  using store = SqliteStore.open(db.path);
  const alice = store.createUser("Alice", "hash", 1)!;
  assert.equal(store.createUser("ALICE", "hash", 2), undefined);
  assert.equal(store.getUser("alice")?.name, "Alice");
  const token = new Uint8Array(32).fill(7);
  store.createSession(alice.id, token, 10, 1000);
  assert.equal(store.useSession(token, 20, 2000)?.id, alice.id);
  assert.equal(store.useSession(token, 3000, 4000), undefined, "expired tokens do not work");
  store.createSession(alice.id, token.map(() => 8), 10, 10_000);
  store.setDisabled(alice.id, true);
  assert.equal(store.useSession(token.map(() => 8), 20, 30), undefined);
  assert.equal(store.getUser("alice")?.disabled, true);
  store.addMembership(alice.id, "#ops");
  assert.deepEqual(store.memberships(alice.id), ["#ops"]);
  store.deleteUser(alice.id);
  assert.equal(store.getUser("alice"), undefined);
  assert.deepEqual(store.memberships(alice.id), []);
});

Deno.test("SqliteStore history pages backwards through a room and a DM pair, oldest first", async () => {
  await using db = await tempDb();
  using store = SqliteStore.open(db.path);
  const messages = Array.from({ length: 30 }, (_, i) => ({
    id: i + 1,
    ts: 1000 + i,
    from: i % 2 ? "alice" : "bob",
    text: `m${i + 1}`,
    ...(i % 3 === 0 ? { to: i % 2 ? "Bob" : "alice" } : { room: "#ops" }),
  }));
  store.appendMessages(messages);
  const room = messages.filter((m) => "room" in m).map((m) => m.id);
  const page1 = store.history({ room: "#OPS" }, undefined, 5);
  assert.deepEqual(page1.map((m) => m.id), room.slice(-5));
  const page2 = store.history({ room: "#ops" }, page1[0]!.id, 5);
  assert.deepEqual(page2.map((m) => m.id), room.slice(-10, -5));
  const dms = messages.filter((m) => "to" in m).map((m) => m.id);
  assert.deepEqual(
    store.history({ between: ["BOB", "alice"] }, undefined, 100).map((m) => m.id),
    dms,
  );
  assert.equal(store.history({ room: "#nowhere" }, undefined, 5).length, 0);
  assert.equal(store.lastMessageId(), 30);
});

Deno.test("SqliteStore history and pending reads use indexes, never a scan of messages", async () => {
  await using db = await tempDb();
  using store = SqliteStore.open(db.path);
  for (const plan of store.explainHistory()) {
    assert.doesNotMatch(plan, /SCAN m\b|SCAN messages/, plan);
    assert.match(plan, /USING (INDEX|COVERING INDEX|INTEGER PRIMARY KEY|PRIMARY KEY)/, plan);
  }
});

Deno.test("SqliteStore.pendingFor() keeps a user's waiting DMs until removePending()", async () => {
  await using db = await tempDb();
  using store = SqliteStore.open(db.path);
  const alice = store.createUser("alice", "h", 0)!;
  store.appendMessages([
    { id: 1, from: "bob", to: "alice", text: "one", ts: 1, pendingFor: [alice.id] },
    { id: 2, from: "bob", to: "alice", text: "two", ts: 2, pendingFor: [alice.id] },
  ]);
  assert.deepEqual(store.pendingFor(alice.id).map((m) => m.text), ["one", "two"]);
  assert.deepEqual(store.pendingFor(alice.id).map((m) => m.text), ["one", "two"]);
  store.removePending(alice.id, [1]);
  assert.deepEqual(store.pendingFor(alice.id).map((m) => m.text), ["two"]);
  store.removePending(alice.id, [2]);
  assert.deepEqual(store.pendingFor(alice.id), []);
});

Deno.test("CommitQueue commits one tick's appends in one transaction, then settles them", async () => {
  await using db = await tempDb();
  using store = SqliteStore.open(db.path);
  const queue = new CommitQueue(store);
  let committed = 0;
  const appended = Array.from(
    { length: 100 },
    (_, i) =>
      queue.append({ id: i + 1, room: "#general", from: "a", text: `${i}`, ts: i }).then(() => {
        committed = store.lastMessageId();
      }),
  );
  assert.equal(store.lastMessageId(), 0, "nothing is written synchronously");
  await Promise.all(appended);
  assert.equal(committed, 100, "every append settled after the whole batch was committed");
  // A failing commit rejects every append of its batch.
  const dup = queue.append({ id: 1, room: "#general", from: "a", text: "dup", ts: 0 });
  await assert.rejects(dup);
});

Deno.test("hashPassword() writes PHC Argon2id; verifyPassword() checks it and asks for rehash", async () => {
  const weak = { memory: 1024, passes: 1, parallelism: 1 };
  const phc = await hashPassword("correct horse battery", weak);
  assert.match(phc, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.deepEqual(await verifyPassword(phc, "correct horse battery", weak), {
    ok: true,
    rehash: false,
  });
  assert.deepEqual(await verifyPassword(phc, "correct horse battery"), { ok: true, rehash: true });
  assert.deepEqual(await verifyPassword(phc, "wrong horse battery", weak), {
    ok: false,
    rehash: false,
  });
  assert.equal((await verifyPassword(undefined, "anything")).ok, false);
  assert.notEqual(await hashPassword("same", weak), await hashPassword("same", weak), "salted");
});

Deno.test("verifyPassword() of a missing account costs one check under the caller's parameters", async () => {
  const calls: Argon2Params[] = [];
  const counting: Derive = (password, salt, params, bytes) => {
    calls.push(params);
    return deriveHere(password, salt, params, bytes);
  };
  const failing: Derive = () => Promise.reject(new Error("hasher down"));
  // A failed check is not remembered: the next caller, with its own parameters, is unaffected.
  await assert.rejects(verifyPassword(undefined, "anything", DEFAULT_PARAMS, failing), /down/);
  for (
    const params of [{ memory: 1024, passes: 1, parallelism: 1 }, {
      memory: 2048,
      passes: 2,
      parallelism: 1,
    }]
  ) {
    const phc = await hashPassword("correct horse battery", params);
    calls.length = 0;
    assert.deepEqual(await verifyPassword(phc, "wrong horse battery", params, counting), {
      ok: false,
      rehash: false,
    });
    assert.deepEqual(calls, [params], "an existing account: one derivation");
    calls.length = 0;
    assert.deepEqual(await verifyPassword(undefined, "wrong horse battery", params, counting), {
      ok: false,
      rehash: false,
    });
    assert.deepEqual(calls, [params], "a missing account: the same work, every time");
    calls.length = 0;
    await verifyPassword(undefined, "correct horse battery", params, counting);
    assert.deepEqual(calls, [params]);
  }
});

Deno.test("SqliteStore.expireFiles() forgets old and never-sent files, returning blobs nobody uses", async () => {
  await using db = await tempDb();
  using store = SqliteStore.open(db.path);
  const alice = store.createUser("alice", "h", 0)!;
  const file = (id: string, sha256: string, created: number) =>
    store.createFile({ id, sha256, size: 1, name: id, type: "x/y", ownerId: alice.id, created });
  file("sent-old", "aa", 100);
  file("sent-new", "bb", 5000);
  file("orphan-old", "cc", 100);
  file("orphan-new", "dd", 5000);
  file("dup-of-new", "bb", 100);
  for (const [i, id] of ["sent-old", "sent-new", "dup-of-new"].entries()) {
    store.appendMessages([{
      id: i + 1,
      room: "#r",
      from: "alice",
      text: "",
      ts: 1,
      file: { id, name: id, size: 1, type: "x/y", sha256: "" },
    }]);
  }
  // Keep sent files; forget orphans older than 1000.
  assert.deepEqual(store.expireFiles(-Infinity, 1000), ["cc"]);
  assert.equal(store.getFile("orphan-new")?.id, "orphan-new");
  assert.equal(store.bytesOwnedBy(alice.id), 4);
  // Retention: everything older than 1000 goes; "bb" is still used by sent-new.
  assert.deepEqual(store.expireFiles(1000, 1000), ["aa"]);
  assert.equal(store.getFile("dup-of-new"), undefined);
  assert.deepEqual(store.fileUses("sent-new"), { rooms: ["#r"], dmKeys: [] });
});
