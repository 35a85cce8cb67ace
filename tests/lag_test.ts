// The event loop is never held by the store: a login storm and large history reads against the
// real server (its SQLite store on its worker), measured by the server's own lag probe and the
// store's account of its time on the main thread, reported on the admin /healthz.
import assert from "node:assert/strict";
import { openSqliteStore } from "../src/store/worker_store.ts";
import { RawClient, startServer, tempDir } from "./_helpers.ts";

interface Health {
  eventLoop: { samples: number; maxMs: number; over5ms: number; over50ms: number };
  store: {
    ops: number;
    commits: number;
    longestMainThreadMs: number;
    mainThreadMs: number;
    slices: number;
    slicesOver5ms: number;
  };
}

const HISTORY = 20_000;
const ACCOUNTS = 20;
const SESSIONS_PER_ACCOUNT = 10;
const READS = 5;

Deno.test("lag: during a login storm and large history reads the store never holds the event loop 5 ms", async () => {
  await using data = await tempDir("parley-lag-");
  {
    // A long #general: every login replays its latest page, every reader pages through it.
    await using store = await openSqliteStore(`${data.path}/parley.db`, { sync: "normal" });
    const text = "a message of about a hundred bytes, repeated to make pages heavy. ".repeat(2);
    for (let i = 0; i < HISTORY; i += 2000) {
      await Promise.all(
        Array.from({ length: 2000 }, (_, j) =>
          store.messages.append({
            room: "#general",
            from: "old",
            text: `${i + j} ${text}`,
            ts: i + j,
          })),
      );
    }
  }
  await using server = await startServer(["--data", data.path, "--history-on-join", "200"]);
  const health = async (): Promise<Health> =>
    await (await fetch(`http://127.0.0.1:${server.httpPort}/healthz`)).json();

  const tokens: string[] = [];
  for (let i = 0; i < ACCOUNTS; i++) {
    await using c = await RawClient.json(server.port);
    c.send({ type: "register", name: `reader${i}`, password: "correct horse battery", ref: "r" });
    const ack = await c.frame((f) => f.ref === "r");
    assert.equal(ack.type, "ack", JSON.stringify(ack));
    tokens.push(String(ack.token));
  }

  // How long the server's main thread waited for a CPU (Linux): the probe's lag counts that too,
  // and on a small machine the load generator competes with the server for the same cores.
  const pid = server.child.pid;
  const waited = () => {
    try {
      return Number(Deno.readTextFileSync(`/proc/${pid}/task/${pid}/schedstat`).split(" ")[1]) /
        1e6;
    } catch {
      return NaN;
    }
  };
  const waitedBefore = waited();
  const before = await health();
  const started = performance.now();
  // The storm: every session logs in by token at once (a store read and writes each, and the
  // latest 200 messages of #general replayed), then pages back through the history.
  const clients = await Promise.all(
    Array.from({ length: ACCOUNTS * SESSIONS_PER_ACCOUNT }, () => RawClient.json(server.port)),
  );
  try {
    await Promise.all(clients.map(async (c, i) => {
      c.send({ type: "login", token: tokens[i % ACCOUNTS], ref: "login" });
      assert.equal((await c.frame((f) => f.ref === "login")).type, "ack");
      let before: number | undefined;
      for (let n = 0; n < READS; n++) {
        c.send({ type: "history", room: "#general", limit: 200, before, ref: `h${n}` });
        const page = await c.frame((f) => f.ref === `h${n}`) as { messages: { id: number }[] };
        assert.equal(page.messages.length, 200);
        before = page.messages[0]!.id;
      }
    }));
  } finally {
    for (const c of clients) await c[Symbol.asyncDispose]();
  }
  const seconds = (performance.now() - started) / 1000;
  const after = await health();
  const waitedMs = waited() - waitedBefore;
  const lag = after.eventLoop;
  console.log(
    `${clients.length} token logins and ${clients.length * READS} history pages of 200 in ` +
      `${seconds.toFixed(1)} s: store ${after.store.ops - before.store.ops} calls, ` +
      `${after.store.commits - before.store.commits} commits, ` +
      `${after.store.slices - before.store.slices} main-thread slices, ` +
      `${after.store.slicesOver5ms - before.store.slicesOver5ms} over 5 ms, longest ` +
      `${after.store.longestMainThreadMs.toFixed(2)} ms; event loop: max lag ${lag.maxMs} ms, ` +
      `${lag.over5ms - before.eventLoop.over5ms} of ${lag.samples - before.eventLoop.samples} ` +
      `probes over 5 ms, ${lag.over50ms - before.eventLoop.over50ms} over 50 ms; the server's ` +
      `main thread waited ${waitedMs.toFixed(0)} ms for a CPU`,
  );
  assert.ok(
    after.store.ops - before.store.ops >= clients.length * (READS + 2),
    "the store was used",
  );
  // A garbage collection can land in any slice of main-thread work, the store's too: allow one
  // in a hundred. Running SQLite on the event loop instead fails this at once (a page of 200
  // rows alone takes milliseconds, a commit with sync FULL one fsync).
  const slices = after.store.slices - before.store.slices;
  const over = after.store.slicesOver5ms - before.store.slicesOver5ms;
  assert.ok(over <= slices / 100, `the store held the event loop over 5 ms ${over} times`);
});
