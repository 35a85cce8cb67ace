// /metrics: the real server scraped after real traffic, its answer read by a Prometheus
// text-format parser from npm (parse-prometheus-text-format) and checked more strictly here
// (that parser is lenient: it takes unknown types and non-numeric values), and who may read it.
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { ChatServer } from "../src/server/server.ts";
import { httpHandler } from "../src/server/http.ts";
import type { HttpRequestInfo } from "../src/server/http_server.ts";
import type { MetricsEndpoint } from "../src/server/metrics.ts";
import { openSqliteStore } from "../src/store/worker_store.ts";
import { RawClient, request as ask, startServer, tempDir } from "./_helpers.ts";

/** A family as the parser gives it (prom2json's shape). */
interface Family {
  name: string;
  help: string;
  type: string;
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
}
const parse = parsePrometheus as (text: string) => Family[];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Parses a scrape and checks what the lenient parser lets through. */
function families(text: string): Map<string, Family> {
  const parsed = parse(text);
  const byName = new Map<string, Family>();
  for (const f of parsed) {
    assert.match(f.name, NAME);
    assert.ok(!byName.has(f.name), `${f.name} appears once`);
    assert.ok(["COUNTER", "GAUGE", "HISTOGRAM"].includes(f.type), `${f.name}: ${f.type}`);
    assert.ok(f.help.length > 0, `${f.name} has help`);
    if (f.type === "COUNTER") assert.match(f.name, /_total$/);
    for (const m of f.metrics) {
      if (f.type === "HISTOGRAM") {
        // An object's integer-like keys ("1") come first: order the buckets by their bound.
        const buckets = Object.entries(m.buckets!)
          .map(([le, n]) => [le === "+Inf" ? Infinity : Number(le), Number(n)])
          .sort(([a], [b]) => a! - b!);
        assert.equal(buckets.at(-1)![0], Infinity, `${f.name} has a +Inf bucket`);
        const counts = buckets.map(([, n]) => n!);
        counts.forEach((n, i) => assert.ok(i === 0 || n >= counts[i - 1]!, `${f.name} cumulative`));
        assert.equal(Number(m.count), counts.at(-1), `${f.name}: count is the +Inf bucket`);
        assert.ok(Number.isFinite(Number(m.sum)), `${f.name} sum`);
      } else {
        const value = Number(m.value);
        assert.ok(m.value !== "" && Number.isFinite(value), `${f.name} = ${m.value}`);
        if (f.type === "COUNTER") assert.ok(value >= 0);
      }
    }
    byName.set(f.name, f);
  }
  // Every sample line belongs to a family that was declared (no stray lines the parser dropped).
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1] ?? "";
    const family = name.replace(/_(bucket|sum|count)$/, "");
    assert.ok(byName.has(name) || byName.get(family)?.type === "HISTOGRAM", `stray: ${line}`);
  }
  return byName;
}

/** The value of a counter or gauge sample (the one whose labels include `labels`). */
function value(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}) {
  const f = fams.get(name);
  assert.ok(f, `${name} is exposed`);
  const m = f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  assert.ok(m, `${name}${JSON.stringify(labels)} is exposed`);
  return Number(m.value ?? m.count);
}

async function scrape(port: number, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers });
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}

async function metricsOf(port: number): Promise<Map<string, Family>> {
  const res = await scrape(port);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.type, "text/plain; version=0.0.4; charset=utf-8");
  return families(res.text);
}

/** A WebSocket session that completes its upgrade, takes a name, and never reads again. */
async function stuckWebSocket(port: number, name: string): Promise<Deno.TcpConn> {
  const raw = await Deno.connect({ hostname: "127.0.0.1", port });
  await raw.write(new TextEncoder().encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const head = new Uint8Array(1024);
  const n = await raw.read(head);
  assert.match(new TextDecoder().decode(head.subarray(0, n!)), /^HTTP\/1.1 101/);
  const hello = new TextEncoder().encode(JSON.stringify({ type: "nick", name }));
  const mask = [1, 2, 3, 4];
  await raw.write(
    new Uint8Array([0x81, 0x80 | hello.length, ...mask, ...hello.map((b, i) => b ^ mask[i % 4]!)]),
  );
  return raw;
}

Deno.test("metrics: /metrics parses as the Prometheus text format and its counters follow the traffic", async () => {
  await using server = await startServer(["--max-sendq", "262144", "--flood-rate", "0"]);
  const before = await metricsOf(server.httpPort);
  for (const name of ["parley_messages_total", "parley_deliveries_total"]) {
    assert.equal(before.get(name)?.type, "COUNTER");
  }
  assert.equal(before.get("parley_connections")?.type, "GAUGE");
  assert.equal(before.get("parley_store_batch_seconds")?.type, "HISTOGRAM");

  await using alice = await RawClient.json(server.port);
  const registered = await ask(alice, {
    type: "register",
    name: "alice",
    password: "correct horse battery",
  });
  assert.equal(registered.type, "ack", JSON.stringify(registered));
  const token = String(registered.token);
  await using bob = await RawClient.text(server.port, "bob");
  for (let i = 0; i < 5; i++) {
    assert.equal(
      (await ask(alice, { type: "send", room: "#general", text: `hi ${i}` })).type,
      "ack",
    );
  }
  assert.equal((await ask(alice, { type: "send", to: "bob", text: "psst" })).type, "ack");
  await bob.line((l) => l.includes("psst"));
  {
    await using mallory = await RawClient.json(server.port);
    const refused = await ask(mallory, { type: "login", name: "alice", password: "wrong guess!" });
    assert.equal(refused.code, "auth_failed");
  }

  // A slow consumer: a WebSocket that never reads, flooded until its send queue overflows. Each
  // round stays under bob's queue, and bob reads it all before the next.
  const stuck = await stuckWebSocket(server.httpPort, "stuck");
  let cut = 0;
  let sent = 0;
  const text = "w".repeat(2000);
  for (let round = 0; round < 80 && cut === 0; round++) {
    for (let i = 0; i < 100; i++) alice.send({ type: "send", room: "#general", text });
    sent += 100;
    assert.equal(
      (await ask(alice, { type: "send", room: "#general", text: `end ${round}` })).type,
      "ack",
    );
    sent++;
    await bob.line((l) => l.endsWith(`end ${round}`));
    cut = value(await metricsOf(server.httpPort), "parley_send_queue_cutoffs_total");
  }
  stuck.close();
  assert.equal(cut, 1, `the stuck WebSocket was cut off (after ${sent} messages)`);

  const after = await metricsOf(server.httpPort);
  const moved = (name: string, labels: Record<string, string> = {}) =>
    value(after, name, labels) - value(before, name, labels);
  assert.ok(moved("parley_messages_total", { kind: "room" }) >= 5 + sent);
  assert.equal(moved("parley_messages_total", { kind: "direct" }), 1);
  // Every room message reaches bob (and, until it was cut off, the stuck session).
  assert.ok(moved("parley_deliveries_total") >= 5 + sent);
  assert.equal(moved("parley_login_failures_total", { reason: "auth_failed" }), 1);
  assert.ok(moved("parley_connections_opened_total", { transport: "tcp" }) >= 3);
  assert.equal(moved("parley_connections_opened_total", { transport: "ws" }), 1);
  assert.equal(value(after, "parley_connections", { transport: "tcp" }), 2); // alice, bob
  assert.equal(value(after, "parley_sessions", { state: "account" }), 1);
  assert.equal(value(after, "parley_sessions", { state: "guest" }), 1);
  assert.ok(value(after, "parley_rooms") >= 1);
  assert.ok(value(after, "parley_http_responses_total", { code: "200" }) >= 3);
  assert.equal(value(after, "parley_http_responses_total", { code: "101" }), 1);
  assert.ok(moved("parley_store_commits_total") >= 5);
  assert.ok(moved("parley_store_ops_total") >= 5 + sent);
  assert.ok(moved("parley_store_batch_ops") >= 5, "batches observed");
  assert.ok(moved("parley_event_loop_lag_seconds") > 0, "the lag probe ran");
  assert.equal(value(after, "parley_password_hash_queue"), 0);
  assert.ok(value(after, "parley_build_info", { version: "0.1.0" }) === 1);
  const documented = await Deno.readTextFile(new URL("../docs/operations.md", import.meta.url));
  for (const name of after.keys()) {
    assert.ok(documented.includes(`| \`${name}\``), `${name} is documented in docs/operations.md`);
  }
  const batches = after.get("parley_store_batch_ops")!.metrics[0]!;
  console.log(
    `metrics: ${after.size} families; ${sent} flood messages to cut the stuck WebSocket off; ` +
      `${batches.count} commit batches averaging ` +
      `${(Number(batches.sum) / Number(batches.count)).toFixed(1)} ops`,
  );

  // Who may read it: a non-administrator's token, a bad token, a proxied request.
  const user = await scrape(server.httpPort, { authorization: `Bearer ${token}` });
  assert.equal(user.status, 403);
  const bad = await scrape(server.httpPort, { authorization: "Bearer not-a-token" });
  assert.equal(bad.status, 401);
  const proxied = await scrape(server.httpPort, { "x-forwarded-for": "203.0.113.7" });
  assert.equal(proxied.status, 401);
  assert.doesNotMatch(proxied.text, /parley_/);
  const forwarded = await scrape(server.httpPort, { forwarded: "for=203.0.113.7" });
  assert.equal(forwarded.status, 401);
});

Deno.test("metrics: an administrator's bearer token reads /metrics from anywhere; nobody else does from afar", async () => {
  await using data = await tempDir("parley-metrics-");
  const store = await openSqliteStore(`${data.path}/parley.db`);
  // The administrator flag comes with the moderation work; here the store grants it to "root".
  const useSession = store.accounts.useSession;
  store.accounts.useSession = async (...args) => {
    const user = await useSession(...args);
    return user?.name === "root" ? { ...user, admin: true } : user;
  };
  await using server = await ChatServer.start(
    { host: "127.0.0.1", port: 0, httpPort: 0, ircPort: 0, data: data.path },
    { store },
  );
  const chat = server.addresses.find((a) => a.scheme === "tcp")!.port;
  const web = server.addresses.find((a) => a.scheme === "http")!.port;
  const tokens: Record<string, string> = {};
  for (const name of ["root", "carol"]) {
    await using c = await RawClient.json(chat);
    const ack = await ask(c, { type: "register", name, password: "correct horse battery" });
    tokens[name] = String(ack.token);
  }
  const admin = await scrape(web, {
    authorization: `Bearer ${tokens.root}`,
    "x-forwarded-for": "203.0.113.7", // through a proxy: the token is what counts
  });
  assert.equal(admin.status, 200);
  assert.ok(families(admin.text).has("parley_messages_total"));
  assert.equal((await scrape(web, { authorization: `Bearer ${tokens.carol}` })).status, 403);

  // The same handler as seen from another address (the listener here only has loopback).
  const endpoint: MetricsEndpoint = {
    authorize: (token) => Promise.resolve(token === tokens.root ? "admin" : "user"),
    render: () => "# HELP x X.\n# TYPE x gauge\nx 1\n",
  };
  const handler = httpHandler({
    allowOrigins: [],
    originRefused() {},
    maxLine: 4096,
    serve() {},
    health: () => ({}),
    files: undefined,
    metrics: endpoint,
  });
  const info = (hostname: string) =>
    ({
      remoteAddr: { transport: "tcp", hostname, port: 40000 },
      upgradeWebSocket: () => {
        throw new TypeError("not here");
      },
    }) as HttpRequestInfo;
  const get = async (hostname: string, headers: Record<string, string> = {}) =>
    (await handler(new Request("http://chat.example/metrics", { headers }), info(hostname))).status;
  assert.equal(await get("203.0.113.7"), 401);
  assert.equal(await get("203.0.113.7", { authorization: `Bearer ${tokens.carol}` }), 403);
  assert.equal(await get("203.0.113.7", { authorization: `Bearer ${tokens.root}` }), 200);
  assert.equal(await get("203.0.113.7", { authorization: "Basic cm9vdDpyb290" }), 401);
  assert.equal(await get("127.0.0.1"), 200);
  assert.equal(await get("::1"), 200);
  assert.equal(await get("127.0.0.1", { "x-real-ip": "203.0.113.7" }), 401);
});
