// The SQLite store: the conformance suite on its worker backend (a file, and :memory:), then what
// is SQLite's own: migrations, WAL, indexes, durability, group commit, the worker thread keeping
// the event loop free, and the worker's failures. Also password hashing.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import { Worker } from "node:worker_threads";
import { DEFAULT_PARAMS, deriveHere, hashPassword, verifyPassword } from "../src/auth/password.ts";
import type { Argon2Params, Derive } from "../src/auth/password.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "../src/store/migrations.ts";
import { SqliteDatabase } from "../src/store/sqlite_store.ts";
import type { Op } from "../src/store/sqlite_store.ts";
import { MAILBOX, mailboxChannel, newMailbox, writeText } from "../src/store/sqlite_worker.ts";
import type { Mailbox } from "../src/store/sqlite_worker.ts";
import {
  MAX_BATCH,
  openSqliteStore,
  SchemaTooNewError,
  SqliteWorkerStore,
} from "../src/store/worker_store.ts";
import type { NewMessage } from "../src/store/store.ts";
import { storeConformance } from "./store_conformance.ts";

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  return { path: dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

async function tempDb(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await tempDir();
  return { path: `${dir.path}/parley.db`, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

storeConformance({
  name: "SQLite worker (file)",
  async open() {
    const db = await tempDb();
    const store = await openSqliteStore(db.path, { sync: "normal" });
    const dispose = store[Symbol.asyncDispose].bind(store);
    let disposed: Promise<void> | undefined;
    return Object.assign(store, {
      [Symbol.asyncDispose]: () => disposed ??= dispose().finally(() => db[Symbol.asyncDispose]()),
    });
  },
});

storeConformance({ name: "SQLite worker (:memory:)", open: () => openSqliteStore(":memory:") });

const roomMessage = (i: number, room = "#general"): NewMessage => ({
  room,
  from: "alice",
  text: `message ${i} `.padEnd(80, "."),
  ts: 1_700_000_000_000 + i,
});

Deno.test("openSqliteStore() migrates an empty database to the current schema, in WAL mode", async () => {
  await using db = await tempDb();
  {
    await using store = await openSqliteStore(db.path);
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
    for (
      const t of [
        "users",
        "sessions",
        "rooms",
        "memberships",
        "messages",
        "pending_dms",
        "files",
        "room_operators",
        "room_restrictions",
        "room_invites",
        "audit_log",
        "admin_events",
        "message_reactions",
        "messages_fts",
      ]
    ) {
      assert.ok(tables.includes(t), `table ${t}`);
    }
  } finally {
    raw.close();
  }
  // Opening again is a no-op migration.
  await using again = await openSqliteStore(db.path);
  assert.equal(again.schemaVersion, SCHEMA_VERSION);
});

Deno.test("openSqliteStore() refuses a database from a newer parley with SchemaTooNewError", async () => {
  await using db = await tempDb();
  const raw = new DatabaseSync(db.path);
  raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 5}`);
  raw.close();
  const check = (e: unknown) => {
    assert.ok(e instanceof SchemaTooNewError, String(e));
    assert.equal(e.found, SCHEMA_VERSION + 5);
    assert.match(e.message, new RegExp(`schema version ${SCHEMA_VERSION + 5} is newer`));
    return true;
  };
  await assert.rejects(openSqliteStore(db.path), check);
  assert.throws(() => SqliteDatabase.open(db.path), check);
});

Deno.test("openSqliteStore() rejects with the worker's error when the file cannot be opened", async () => {
  await using dir = await tempDir();
  await assert.rejects(openSqliteStore(`${dir.path}/missing/folder/parley.db`), /unable to open/i);
});

Deno.test("migration 3 numbers existing messages per room and per DM pair, in id order", async () => {
  await using db = await tempDb();
  const raw = new DatabaseSync(db.path);
  for (const [v, sql] of MIGRATIONS.slice(0, 2).entries()) {
    raw.exec(sql);
    raw.exec(`PRAGMA user_version = ${v + 1}`);
  }
  raw.exec("INSERT INTO rooms (id, name, name_key) VALUES (1, '#a', '#a'), (2, '#b', '#b')");
  const insert = raw.prepare(
    "INSERT INTO messages (id, room_id, dm_key, from_name, to_name, text, ts) VALUES (?, ?, ?, 'x', ?, '', 0)",
  );
  // Ids with gaps, rooms and pairs interleaved.
  const rows: [number, number | null, string | null][] = [
    [3, 1, null],
    [5, 2, null],
    [6, null, "x y"],
    [9, 1, null],
    [10, null, "w x"],
    [12, null, "x y"],
    [13, 1, null],
  ];
  for (const [id, room, key] of rows) insert.run(id, room, key, key === null ? null : "y");
  raw.close();
  const engine = SqliteDatabase.open(db.path);
  try {
    assert.equal(engine.schemaVersion, SCHEMA_VERSION);
  } finally {
    engine.close();
  }
  const check = new DatabaseSync(db.path);
  try {
    const seqs = check.prepare("SELECT id, seq FROM messages ORDER BY id").all() as {
      id: number;
      seq: number;
    }[];
    assert.deepEqual(seqs.map((r) => [r.id, r.seq]), [[3, 1], [5, 1], [6, 1], [9, 2], [10, 1], [
      12,
      2,
    ], [13, 3]]);
    const indexes = check.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
      .all() as { name: string; sql: string | null }[];
    // Since migration 7, a message enters only the index of its room or of its pair, through
    // which the next sequence number is found.
    for (
      const [name, column] of [["messages_room", "room_id"], ["messages_dm", "dm_key"]] as const
    ) {
      const sql = indexes.find((i) => i.name === name)?.sql ?? "";
      assert.match(sql, new RegExp(`WHERE ${column} IS NOT NULL`), name);
    }
    for (const gone of ["messages_room_seq", "messages_dm_seq", "dm_partners_recent"]) {
      assert.equal(indexes.find((i) => i.name === gone), undefined, gone);
    }
  } finally {
    check.close();
  }
  // Appending continues each numbering.
  await using store = await openSqliteStore(db.path);
  assert.deepEqual(await store.messages.append(roomMessage(0, "#a")), { id: 14, seq: 4 });
  assert.deepEqual(await store.messages.append({ from: "Y", to: "X", text: "", ts: 0 }), {
    id: 15,
    seq: 3,
  });
  assert.deepEqual(await store.messages.append(roomMessage(0, "#new")), { id: 16, seq: 1 });
});

Deno.test("migration 4 keeps accounts and rooms: nobody is an admin, no room has an owner", async () => {
  await using db = await tempDb();
  const raw = new DatabaseSync(db.path);
  for (const [v, sql] of MIGRATIONS.slice(0, 3).entries()) {
    raw.exec(sql);
    raw.exec(`PRAGMA user_version = ${v + 1}`);
  }
  raw.exec(
    `INSERT INTO users (id, name, name_key, password_hash, created) VALUES (1, 'Ann', 'ann', 'h', 5);
    INSERT INTO rooms (id, name, name_key) VALUES (1, '#Ops', '#ops');
    INSERT INTO memberships (user_id, room_id) VALUES (1, 1);`,
  );
  raw.close();
  await using store = await openSqliteStore(db.path);
  assert.equal(store.schemaVersion, SCHEMA_VERSION);
  assert.deepEqual(await store.accounts.getUser("ann"), {
    id: 1,
    name: "Ann",
    passwordHash: "h",
    created: 5,
    disabled: false,
    admin: false,
  });
  assert.deepEqual(await store.moderation.claimRoom("#OPS", 1), {
    room: {
      name: "#Ops",
      inviteOnly: false,
      moderated: false,
    },
    created: false,
  });
  // Deleting the account still works through the new foreign keys.
  await store.moderation.setOperator("#ops", 1, true);
  await store.accounts.deleteUser(1);
  assert.deepEqual(await store.moderation.operators("#ops"), []);
});

Deno.test("migration 5 indexes existing messages for search; they read back unchanged", async () => {
  await using db = await tempDb();
  const raw = new DatabaseSync(db.path);
  for (const [v, sql] of MIGRATIONS.slice(0, 4).entries()) {
    raw.exec(sql);
    raw.exec(`PRAGMA user_version = ${v + 1}`);
  }
  raw.exec(
    `INSERT INTO users (id, name, name_key, password_hash, created) VALUES (1, 'Ann', 'ann', 'h', 5);
    INSERT INTO rooms (id, name, name_key) VALUES (1, '#Ops', '#ops');
    INSERT INTO messages (id, room_id, dm_key, from_name, to_name, text, ts, seq) VALUES
      (1, 1, NULL, 'Ann', NULL, 'the old release plan', 10, 1),
      (2, NULL, 'ann bob', 'bob', 'Ann', 'an old secret', 11, 1),
      (3, 1, NULL, 'bob', NULL, '', 12, 2),
      (4, 1, NULL, 'bob', NULL, 'older news', 13, 3);
    INSERT INTO pending_dms (user_id, message_id) VALUES (1, 2);`,
  );
  raw.close();
  await using store = await openSqliteStore(db.path);
  assert.equal(store.schemaVersion, SCHEMA_VERSION);
  const scope = { rooms: ["#ops"], dmsOf: "ann" };
  const found = async (...words: string[]) =>
    (await store.messages.search(words, scope, 10)).map((m) => m.id);
  assert.deepEqual(await found("old"), [4, 2, 1]);
  assert.deepEqual(await found("release"), [1]);
  assert.deepEqual(await found("secret"), [2]);
  assert.deepEqual(await store.messages.history({ room: "#ops" }, undefined, 10), [
    { type: "message", id: 1, room: "#Ops", from: "Ann", text: "the old release plan", ts: 10 },
    { type: "message", id: 3, room: "#Ops", from: "bob", text: "", ts: 12 },
    { type: "message", id: 4, room: "#Ops", from: "bob", text: "older news", ts: 13 },
  ]);
  assert.deepEqual(await store.messages.pendingFor(1), [
    { type: "message", id: 2, from: "bob", to: "Ann", text: "an old secret", ts: 11 },
  ]);
  assert.deepEqual(await store.messages.get(1), {
    type: "message",
    id: 1,
    room: "#Ops",
    from: "Ann",
    text: "the old release plan",
    ts: 10,
  });
  // The old messages take edits, deletions and reactions; new ones join the index.
  await store.messages.edit(1, "the new release plan", 20);
  await store.messages.remove(4);
  assert.deepEqual(await store.messages.react(2, "👍", "u:1", true), { "👍": 1 });
  const placed = await store.messages.append({
    room: "#ops",
    from: "Ann",
    text: "old habits",
    ts: 30,
    fromAccount: 1,
  });
  assert.deepEqual(placed, { id: 5, seq: 4 });
  assert.deepEqual(await found("old"), [5, 2]);
  assert.deepEqual(await found("new", "plan"), [1]);
});

Deno.test("backup: a consistent copy while in use, between the turn's writes; never over a file", async () => {
  await using dir = await tempDir();
  await using store = await openSqliteStore(`${dir.path}/parley.db`, { sync: "full" });
  const alice = (await store.accounts.createUser("alice", "h", 0))!;
  await store.accounts.setAdmin(alice.id, true);
  await store.moderation.claimRoom("#ops", alice.id);
  await store.moderation.audit({
    ts: 1,
    actor: "admin",
    action: "admin",
    room: undefined,
    target: "alice",
    detail: undefined,
  });
  const copy = `${dir.path}/copy.db`;
  // In one turn: the writes before the backup are in the copy, the ones after are not.
  const before = store.messages.append(roomMessage(1, "#ops"));
  const backup = store.moderation.backup(copy);
  const after = store.messages.append(roomMessage(2, "#ops"));
  const [placedBefore, , placedAfter] = await Promise.all([before, backup, after]);
  assert.equal(placedAfter.seq, placedBefore.seq + 1);
  assert.deepEqual(
    (await store.messages.history({ room: "#ops" }, undefined, 10)).map((m) => m.id),
    [placedBefore.id, placedAfter.id],
  );
  {
    await using restored = await openSqliteStore(copy);
    assert.equal(restored.schemaVersion, SCHEMA_VERSION);
    assert.deepEqual(
      await restored.accounts.getUser("alice"),
      await store.accounts.getUser("alice"),
    );
    assert.deepEqual(
      (await restored.messages.history({ room: "#ops" }, undefined, 10)).map((m) => m.id),
      [placedBefore.id],
    );
    assert.equal((await restored.moderation.claimRoom("#ops", undefined)).room.ownerId, alice.id);
    assert.equal((await restored.moderation.auditLog(5))[0]?.target, "alice");
  }
  const size = (await Deno.stat(copy)).size;
  await assert.rejects(store.moderation.backup(copy), /already exists/);
  assert.equal((await Deno.stat(copy)).size, size, "the existing file is untouched");
  await assert.rejects(store.moderation.backup(`${dir.path}/no/such/folder/copy.db`));
  // The store goes on working.
  assert.equal((await store.messages.append(roomMessage(3, "#ops"))).seq, placedAfter.seq + 1);
});

Deno.test("SQLite history, pending, seq, reaction and search reads use indexes, never a scan of messages", () => {
  const engine = SqliteDatabase.open(":memory:");
  try {
    const plans = engine.explain();
    for (const plan of plans) {
      assert.doesNotMatch(plan, /SCAN m\b|SCAN messages|SCAN message_reactions/, plan);
      assert.match(plan, /USING (INDEX|COVERING INDEX|INTEGER PRIMARY KEY|PRIMARY KEY)/, plan);
    }
    // Search walks the full-text index newest first, each match looked up by id: no sort, so it
    // stops at the limit.
    const search = plans.find((p) => p.includes("VIRTUAL TABLE INDEX") && p.includes("SCAN f"));
    assert.ok(search, plans.join("\n"));
    assert.match(
      search,
      /^SCAN f VIRTUAL TABLE INDEX \d+:D?M1; SEARCH m USING INTEGER PRIMARY KEY/,
    );
    assert.doesNotMatch(search, /TEMP B-TREE/);
    const reactions = plans.find((p) => p.includes("message_reactions"));
    assert.match(reactions ?? "", /SEARCH message_reactions USING PRIMARY KEY \(message_id=\?\)/);
  } finally {
    engine.close();
  }
});

Deno.test("an acknowledged write survives closing and reopening", async () => {
  await using db = await tempDb();
  let placed;
  {
    await using store = await openSqliteStore(db.path, { sync: "full" });
    placed = await store.messages.append(roomMessage(1));
    await store.accounts.createUser("alice", "h", 0);
  }
  await using store = await openSqliteStore(db.path);
  assert.deepEqual(
    (await store.messages.history({ room: "#general" }, undefined, 10)).map((m) => m.id),
    [
      placed.id,
    ],
  );
  assert.equal((await store.accounts.getUser("alice"))?.name, "alice");
});

Deno.test("an acknowledged write survives the process exiting at once, and an idle store lets it exit", async () => {
  await using dir = await tempDir();
  const script = `${dir.path}/child.ts`;
  const storeUrl = new URL("../src/store/worker_store.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { openSqliteStore } from ${JSON.stringify(storeUrl)};
    const store = await openSqliteStore(Deno.args[0], { sync: "full" });
    const placed = await store.messages.append({ room: "#r", from: "a", text: "kept", ts: 0 });
    console.log(JSON.stringify(placed));
    if (Deno.args[1] === "exit") Deno.exit(0);
    // Otherwise: never disposed; the idle worker must not keep the process alive.`,
  );
  const db = `${dir.path}/parley.db`;
  for (const mode of ["exit", "idle"]) {
    const started = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", `--allow-read=${dir.path}`, `--allow-write=${dir.path}`, script, db, mode],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill(), 10_000);
    const { code, stdout, stderr } = await child.output();
    clearTimeout(timer);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `${mode}: ${err}`);
    assert.ok(performance.now() - started < 9_000, `${mode}: the process exited by itself`);
    assert.equal(JSON.parse(new TextDecoder().decode(stdout)).seq, mode === "exit" ? 1 : 2);
  }
  await using store = await openSqliteStore(db);
  assert.deepEqual(
    (await store.messages.history({ room: "#r" }, undefined, 10)).map((m) => m.text),
    [
      "kept",
      "kept",
    ],
  );
});

Deno.test("group commit: a turn's writes share one transaction, bounded per batch", async () => {
  await using db = await tempDb();
  await using store = await openSqliteStore(db.path, { sync: "full" });
  const before = store.stats;
  const placed = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => store.messages.append(roomMessage(i))),
  );
  assert.deepEqual(placed.map((p) => p.seq), Array.from({ length: 1000 }, (_, i) => i + 1));
  const after = store.stats;
  assert.equal(after.commits - before.commits, 1, "1000 appends in one turn: one commit");
  assert.equal(after.ops - before.ops, 1000);
  // More than a batch holds: several batches, each at most MAX_BATCH.
  await Promise.all(
    Array.from(
      { length: 2 * MAX_BATCH + 1 },
      (_, i) => store.messages.append(roomMessage(i, "#b")),
    ),
  );
  assert.equal(store.stats.commits - after.commits, 3);
  // Writers that each wait for their previous write share commits too: while one batch is in
  // the worker, the next one gathers.
  const start = store.stats;
  await Promise.all(Array.from({ length: 20 }, async (_, writer) => {
    for (let i = 0; i < 50; i++) await store.messages.append(roomMessage(i, `#w${writer % 4}`));
  }));
  const commits = store.stats.commits - start.commits;
  assert.ok(commits <= 200, `1000 sequential-per-writer appends took ${commits} commits`);
  console.log(`  20 writers × 50 awaited appends: ${commits} commits`);
  const perCall = store.stats.mainThreadMs / store.stats.ops;
  console.log(`  main thread per call: ${(perCall * 1000).toFixed(1)} µs`);
  assert.ok(perCall < 0.1, `the main thread spends ${perCall} ms per call`);
});

/**
 * Starts `work` (what it does synchronously, issuing its calls, is the caller's cost and is not
 * counted) and waits for it while a 1 ms interval probes the event loop: the longest gap between
 * ticks, that is the longest the store held the main thread.
 */
async function longestGap(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  try {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const done = work();
    longest = 0;
    last = performance.now();
    await done;
    // One more tick, so that a block at the very end is seen.
    await new Promise((resolve) => setTimeout(resolve, 2));
  } finally {
    clearInterval(probe);
  }
  return longest;
}

/**
 * The least of three measurements: a garbage collection or a scheduler hiccup can lengthen one,
 * but the store's own blocking would show in every one.
 */
function least(measure: () => number): number {
  return Math.min(measure(), measure(), measure());
}

/** {@linkcode least}, for asynchronous measurements. */
async function leastAsync(measure: () => Promise<number>): Promise<number> {
  return Math.min(await measure(), await measure(), await measure());
}

/** How long `fn` blocks the thread it runs on. */
function blocking(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

Deno.test("the worker keeps the event loop free during big reads and bursts of writes", async () => {
  await using db = await tempDb();
  const ROWS = 60_000;
  const FILES = 200_000;
  const PAGE = 20_000;
  // Two full batches: the main thread's share of a batch is bounded by MAX_BATCH, whatever the burst.
  const BURST = 2 * MAX_BATCH;
  {
    // Seed in SQL, so that this thread allocates nothing (its garbage would show as gaps).
    SqliteDatabase.open(db.path).close();
    const raw = new DatabaseSync(db.path);
    raw.exec(`
      INSERT INTO users (id, name, name_key, password_hash, created) VALUES (1, 'h', 'h', 'h', 0);
      INSERT INTO rooms (id, name, name_key) VALUES (1, '#big', '#big');
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
        INSERT INTO messages (id, room_id, from_name, text, ts, seq)
        SELECT i, 1, 'alice', printf('message %d %.70c', i, '.'), i, i FROM n;
      WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${FILES - 1})
        INSERT INTO files (id, sha256, size, name, type, owner_id, created)
        SELECT 'f' || i, i, i, 'x', 'x/y', 1, i FROM n;
    `);
    raw.close();
  }
  // A read that makes the database work hard for a small answer; a read with a big answer (100
  // times the largest page the server asks for); and a burst of writes.
  const aggregate: Op = { op: "files.bytesOwnedBy", args: [1] };
  const page: Op = { op: "messages.history", args: [{ room: "#big" }, undefined, PAGE] };
  const burst = (room: string): Op[] =>
    Array.from(
      { length: BURST },
      (_, i) => ({ op: "messages.append", args: [roomMessage(i, room)] }),
    );

  // The same work in this thread, for comparison: how long it would hold the event loop.
  const engine = SqliteDatabase.open(db.path, { sync: "full" });
  const inThread = { aggregate: 0, page: 0, burst: 0 };
  try {
    engine.execute([aggregate, page]); // warm the cache, as the worker's warm-up will
    inThread.aggregate = least(() => blocking(() => engine.execute([aggregate])));
    inThread.page = least(() => blocking(() => engine.execute([page])));
    inThread.burst = least(() => blocking(() => engine.execute(burst("#in-thread"))));
  } finally {
    engine.close();
  }

  await using store = await openSqliteStore(db.path, { sync: "full" });
  await store.files.bytesOwnedBy(1);
  await store.messages.history({ room: "#big" }, undefined, PAGE);
  const worker = { aggregate: 0, page: 0, realPage: 0, burst: 0, idle: 0 };
  let bytes = 0;
  worker.aggregate = await leastAsync(() =>
    longestGap(async () => (bytes = await store.files.bytesOwnedBy(1)))
  );
  assert.equal(bytes, (FILES - 1) * FILES / 2);
  let rows = 0;
  worker.page = await leastAsync(() =>
    longestGap(async () => {
      rows = (await store.messages.history({ room: "#big" }, undefined, PAGE)).length;
    })
  );
  assert.equal(rows, PAGE);
  worker.realPage = await longestGap(() => store.messages.history({ room: "#big" }, 5000, 200));
  const before = store.stats.mainThreadMs;
  const issued = performance.now();
  worker.burst = await leastAsync(() =>
    longestGap(() =>
      Promise.all(
        Array.from({ length: BURST }, (_, i) => store.messages.append(roomMessage(i, "#burst"))),
      )
    )
  );
  const burstMainMs = store.stats.mainThreadMs - before;
  const burstTotal = performance.now() - issued;
  worker.idle = await longestGap(() => new Promise((resolve) => setTimeout(resolve, 50)));
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  const gap = (n: number) => `worker: longest event-loop gap ${ms(n)}`;
  console.log([
    `  sum over ${FILES} files: in-thread blocks ${ms(inThread.aggregate)}; ${
      gap(worker.aggregate)
    }`,
    `  history page of ${PAGE}: in-thread blocks ${ms(inThread.page)}; ${gap(worker.page)}`,
    `  history page of 200: ${gap(worker.realPage)}`,
    `  ${BURST} appends, sync FULL: in-thread blocks ${ms(inThread.burst)}; ${gap(worker.burst)}` +
    ` (3 bursts: store code on the main thread ${ms(burstMainMs)} in all, committed after ${
      ms(burstTotal)
    })`,
    `  idle: ${gap(worker.idle)}; main thread per call ${
      (store.stats.mainThreadMs / store.stats.ops * 1000).toFixed(1)
    } µs on average`,
  ].join("\n"));
  assert.ok(worker.aggregate < inThread.aggregate / 2, "the query runs in the worker");
  assert.ok(worker.burst < inThread.burst / 2, "the inserts and the fsync run in the worker");
  // What the main thread still pays for a big answer is decoding it (about half a microsecond a
  // message): less than running the query here, and negligible for a real page.
  assert.ok(worker.page < inThread.page, "the page is read in the worker");
});

/**
 * A stand-in for the store's worker: it answers the `open` request through the real mailbox, then
 * runs `then` on the next request.
 */
function standInWorker(then: string): { worker: Worker; mailbox: Mailbox } {
  const mailbox = newMailbox();
  const source = `
    const { workerData } = require("node:worker_threads");
    const MAILBOX = ${JSON.stringify(MAILBOX)};
    const writeText = ${writeText.toString()};
    const channel = (${mailboxChannel.toString()})(workerData);
    const control = new Int32Array(workerData.control);
    channel.receive();
    channel.send(JSON.stringify({ t: "opened", schemaVersion: 0 }));
    channel.receive();
    ${then}`;
  return { worker: new Worker(source, { eval: true, workerData: mailbox }), mailbox };
}

Deno.test("a worker that fails rejects every pending call and every later one", async () => {
  // A stand-in worker speaking the protocol, that crashes on its first batch.
  const { worker, mailbox } = standInWorker(`throw new Error("boom in the worker");`);
  const store = new SqliteWorkerStore(worker, mailbox);
  await store.open(":memory:", {});
  const pending = [store.accounts.getUser("a"), store.messages.append(roomMessage(1))];
  await new Promise((resolve) => setImmediate(resolve));
  const queued = store.accounts.listUsers(); // waits behind the batch in flight
  for (const call of [...pending, queued]) await assert.rejects(call, /worker failed: .*boom/);
  await assert.rejects(store.memberships.of(1), /worker failed/);
  await store[Symbol.asyncDispose]();
});

Deno.test("a worker that exits rejects its pending calls instead of hanging", async () => {
  const { worker, mailbox } = standInWorker(`process.exit(3);`);
  const store = new SqliteWorkerStore(worker, mailbox);
  await store.open(":memory:", {});
  await assert.rejects(store.accounts.getUser("a"), /worker exited/);
  await assert.rejects(store.accounts.getUser("a"), /worker exited/);
  await store[Symbol.asyncDispose]();
});

Deno.test("a worker's exit that overtakes its last answer is not taken for a crash", async () => {
  // The exit reaches the main thread by another road than the answers: here the worker writes
  // its answer to the close without waking the main thread and ends, so only the exit comes.
  const { worker, mailbox } = standInWorker(`
    Atomics.store(control, MAILBOX.replyBytes, writeText(new TextEncoder(), workerData.replies, '{"t":"closed"}'));
    Atomics.add(control, MAILBOX.replies, 1);`);
  const store = new SqliteWorkerStore(worker, mailbox);
  await store.open(":memory:", {});
  await store[Symbol.asyncDispose]();
  await assert.rejects(store.accounts.listUsers(), /The store is closed/);
});

Deno.test("an argument that cannot cross to the worker fails its batch, not the store", async () => {
  await using store = await openSqliteStore(":memory:");
  const bad = store.accounts.getUser((() => "x") as unknown as string);
  await assert.rejects(bad);
  assert.deepEqual(await store.accounts.listUsers(), []);
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
