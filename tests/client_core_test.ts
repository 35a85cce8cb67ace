// The client core (src/client/core/) that the terminal client and the web app share: request
// and reply matching, timeouts, keepalive, the backoff bounds, the reconnect loop and the
// restore step against a scripted in-memory peer (for exact order and timing), then the same
// core over TCP and over a WebSocket against the real server, across a restart.
import assert from "node:assert/strict";
import {
  BACKOFF_DEFAULTS,
  backoffDelay,
  channelPair,
  ConnectionClosedError,
  Peer,
  Reconnector,
  RequestTimeoutError,
  restore,
  ServerError,
  WebSocketChannel,
} from "../src/client/core/mod.ts";
import type { FrameChannel, ReconnectState, ServerEvent } from "../src/client/core/mod.ts";
import { openPeer } from "../src/client/_tcp_channel.ts";
import { RawClient, startServer } from "./_helpers.ts";

type Frame = { type: string; ref?: string; [field: string]: unknown };

/** A scripted server end: records what arrives and answers with `answer` (nothing if undefined). */
function scripted(
  end: FrameChannel,
  answer: (frame: Frame) => Record<string, unknown> | undefined,
): Frame[] {
  const seen: Frame[] = [];
  end.receive((value) => {
    const frame = value as Frame;
    seen.push(frame);
    const reply = answer(frame);
    if (reply !== undefined) end.send({ ...reply, ref: frame.ref });
  });
  return seen;
}

const WELCOME = { type: "welcome", server: "x", version: "1", proto: 1, name: "guest-1" };

Deno.test("core Peer: replies matched by ref even out of order; errors typed; events and pings", async () => {
  const [client, server] = channelPair();
  const held: Frame[] = [];
  server.receive((value) => {
    const frame = value as Frame;
    if (frame.type === "pong") return void held.push(frame);
    held.push(frame);
    if (held.length < 3) return;
    // Answer the three requests last first, with an event and a ping in between.
    server.send({ type: "ack", ref: held[2]!.ref, room: "#b", members: ["b"] });
    server.send({ type: "notice", text: "hi" });
    server.send({ type: "ping" });
    server.send({
      type: "error",
      ref: held[1]!.ref,
      code: "rate_limited",
      message: "slow",
      retryAfter: 2,
    });
    server.send({ type: "ack", ref: held[0]!.ref, room: "#a", members: ["a"] });
    server.send({ type: "ack", ref: "nobody", name: "stale" }); // answers nothing: dropped
  });
  const events: ServerEvent[] = [];
  const peer = new Peer(client, { onEvent: (e) => events.push(e), pingIntervalMs: 0 });
  const a = peer.request({ type: "join", room: "#a" });
  const b = peer.request({ type: "nick", name: "bo" }).then(() => undefined, (e) => e);
  const c = peer.request({ type: "join", room: "#b" });
  assert.deepEqual((await a).members, ["a"]);
  assert.deepEqual((await c).members, ["b"]);
  const error = await b;
  assert.ok(error instanceof ServerError);
  assert.equal(error.code, "rate_limited");
  assert.equal(error.retryAfter, 2);
  assert.deepEqual(events, [{ type: "notice", text: "hi" }]);
  assert.equal(new Set(held.slice(0, 3).map((f) => f.ref)).size, 3, "fresh refs");
  for (let i = 0; i < 50 && held.length < 4; i++) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(held[3], { type: "pong" }, "the server's ping is answered");
  peer.close("done");
  assert.equal(await peer.closed, "done");
  await assert.rejects(() => peer.request({ type: "ping" }), ConnectionClosedError);
});

Deno.test("core Peer: a request without a reply times out and drops the connection", async () => {
  const [client, server] = channelPair();
  const seen = scripted(server, () => undefined);
  const peer = new Peer(client, { requestTimeoutMs: 50, pingIntervalMs: 0 });
  const waiting = peer.request({ type: "rooms" }, { timeoutMs: 0 }); // this one waits for ever
  const start = performance.now();
  const error = await peer.request({ type: "who", room: "#a" }).then(() => undefined, (e) => e);
  const took = performance.now() - start;
  assert.ok(error instanceof RequestTimeoutError, String(error));
  assert.ok(error instanceof ConnectionClosedError, "a timeout is a kind of connection loss");
  assert.ok(took >= 45 && took < 2000, `timed out after ${took} ms`);
  assert.match(await peer.closed, /No reply from the server within 50 ms/);
  await assert.rejects(waiting, ConnectionClosedError, "what else waited fails with it");
  assert.equal(await server.closed, "the other end closed the connection");
  assert.deepEqual(seen.map((f) => f.type), ["rooms", "who"]);
});

Deno.test("core Peer: keepalive pings an idle connection and drops it when nothing answers", async () => {
  const [client, server] = channelPair();
  const seen = scripted(server, () => undefined);
  const peer = new Peer(client, { pingIntervalMs: 40 });
  assert.equal(await peer.closed, "the server stopped answering");
  assert.deepEqual(seen.map((f) => f.type), ["ping"]);

  // A server that answers stays connected.
  const [c2, s2] = channelPair();
  scripted(s2, (f) => f.type === "ping" ? { type: "pong" } : undefined);
  const alive = new Peer(c2, { pingIntervalMs: 40 });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(alive.ended, false);
  alive.close();
});

Deno.test("core backoffDelay: full jitter between 0 and min(cap, base·2^n); defaults 500/10000", () => {
  assert.deepEqual(BACKOFF_DEFAULTS, { baseMs: 500, capMs: 10_000 });
  const top = () => 0.999999;
  for (let n = 0; n < 12; n++) {
    const ceiling = Math.min(10_000, 500 * 2 ** n);
    assert.equal(backoffDelay(n, { random: () => 0 }), 0);
    assert.equal(backoffDelay(n, { random: top }), ceiling - 1);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(n);
      assert.ok(Number.isInteger(d) && d >= 0 && d < ceiling, `${n}: ${d}`);
    }
  }
  assert.equal(backoffDelay(2, { baseMs: 10, capMs: 25, random: top }), 24);
  assert.throws(() => backoffDelay(0, { capMs: Number.NaN }), RangeError);
});

Deno.test("core Reconnector: backoff between attempts, maxAttempts, abort, retryNow", async () => {
  const states: ReconnectState[] = [];
  const signal = new AbortController().signal;
  const failing = new Reconnector({ baseMs: 40, capMs: 40, random: () => 0.999, maxAttempts: 3 });
  const times: number[] = [];
  const start = performance.now();
  const gaveUp = await failing.run(() => {
    times.push(performance.now() - start);
    return Promise.reject(new Error("refused"));
  }, { signal, immediate: true, reason: "lost", onState: (s) => states.push(s) });
  assert.deepEqual(gaveUp, {
    ok: false,
    aborted: false,
    attempts: 3,
    reason: "gave up reconnecting after 3 attempts (refused)",
  });
  assert.ok(times[0]! < 30, "immediate: the first attempt does not wait");
  assert.ok(times[1]! - times[0]! >= 35 && times[2]! - times[1]! >= 35, String(times));
  assert.deepEqual(states.map((s) => `${s.kind}${s.attempt}`), [
    "connecting1",
    "waiting2",
    "connecting2",
    "waiting3",
    "connecting3",
  ]);
  const waiting = states[1]!;
  assert.ok(waiting.kind === "waiting" && waiting.reason === "refused" && waiting.delayMs === 39);

  // A long wait ends at once with retryNow(), or with an abort.
  const slow = new Reconnector({ baseMs: 60_000, capMs: 60_000, random: () => 0.5 });
  const t0 = performance.now();
  const quick = slow.run(() => Promise.resolve("up"), {
    signal,
    onState: (s) => s.kind === "waiting" && setTimeout(() => slow.retryNow(), 10),
  });
  assert.deepEqual(await quick, { ok: true, value: "up", attempts: 1 });
  assert.ok(performance.now() - t0 < 5000);
  const abort = new AbortController();
  const stopped = slow.run(() => Promise.resolve("never"), { signal: abort.signal });
  setTimeout(() => abort.abort(), 10);
  assert.deepEqual(await stopped, { ok: false, aborted: true, attempts: 0, reason: "aborted" });
});

Deno.test("core restore: hello, token login, joins, part #general, pipelined in that order", async () => {
  const [client, server] = channelPair();
  const seen = scripted(server, (f) => {
    switch (f.type) {
      case "hello":
        return WELCOME;
      case "login":
        return { type: "ack", name: "al", token: "t1", rooms: ["#general", "#Ops"], unread: [] };
      case "join":
        return f.room === "#secret"
          ? { type: "error", code: "forbidden", message: "no" }
          : { type: "ack", room: String(f.room).replace("#dev", "#Dev"), members: ["al"] };
      case "part":
        return { type: "ack", room: "#general" };
    }
    return undefined;
  });
  const peer = new Peer(client, { pingIntervalMs: 0 });
  const logins: string[] = [];
  const done = await restore(peer, {
    hello: { type: "hello", client: "test" },
    token: "t1",
    name: "al",
    rooms: ["#ops", "#dev", "#secret"],
    onLogin: (ack) => logins.push(ack.token),
  });
  assert.deepEqual(seen.map((f) => `${f.type} ${f.room ?? f.token ?? ""}`.trim()), [
    "hello",
    "login t1",
    "join #ops",
    "join #dev",
    "join #secret",
    "part #general",
  ]);
  // Sent before any reply came back: refs 1..6 in order, one burst.
  assert.deepEqual(seen.map((f) => f.ref), ["1", "2", "3", "4", "5", "6"]);
  assert.deepEqual(logins, ["t1"]);
  assert.equal(done.name, "al");
  assert.deepEqual(done.rooms, ["#Ops", "#Dev"]);
  assert.deepEqual(done.lostRooms.map((l) => [l.room, l.error.code]), [["#secret", "forbidden"]]);
  assert.equal(done.lostSession, undefined);
  assert.equal(done.login?.token, "t1");
  peer.close();
});

Deno.test("core restore: a refused token is reported (a guest now); a guest keeps its name via nick", async () => {
  const [client, server] = channelPair();
  const seen = scripted(
    server,
    (f) =>
      f.type === "hello"
        ? WELCOME
        : f.type === "login"
        ? { type: "error", code: "auth_failed", message: "expired" }
        : f.type === "nick"
        ? { type: "ack", name: f.name }
        : undefined,
  );
  const peer = new Peer(client, { pingIntervalMs: 0 });
  const refused = await restore(peer, { hello: { type: "hello" }, token: "old", name: "al" });
  assert.equal(refused.lostSession, "auth_failed");
  assert.equal(refused.lostName, "al");
  assert.equal(refused.name, "guest-1");
  assert.deepEqual(refused.rooms, ["#general"]);
  assert.ok(refused.identityError instanceof ServerError);

  const guest = await restore(peer, { hello: { type: "hello" }, name: "zed", rooms: ["#general"] });
  assert.equal(guest.name, "zed");
  assert.equal(guest.lostName, undefined);
  assert.deepEqual(seen.slice(2).map((f) => f.type), ["hello", "nick"], "no join, no part");
  peer.close();
});

Deno.test("core over TCP against the real server: typed replies, ServerError codes", async () => {
  await using server = await startServer();
  const { peer, greeted } = await openPeer(
    { hostname: "127.0.0.1", port: server.port, tls: false },
    {
      hello: { type: "hello", client: "core-test", proto: 1 },
      maxLine: 1 << 20,
      timeoutMs: 5000,
      signal: new AbortController().signal,
      pingIntervalMs: 0,
    },
  );
  try {
    const welcome = await greeted;
    assert.equal(welcome.server, "parley");
    assert.equal(typeof welcome.limits.maxText, "number");
    assert.equal((await peer.request({ type: "nick", name: "tcpcore" })).name, "tcpcore");
    const joined = await peer.request({ type: "join", room: "#core" });
    assert.deepEqual([joined.room, joined.members], ["#core", ["tcpcore"]]);
    const sent = await peer.request({ type: "send", room: "#core", text: "hi" });
    assert.ok(Number.isInteger(sent.id) && sent.ts > 0);
    const page = await peer.request({ type: "history", room: "#core" });
    assert.deepEqual(page.messages.map((m) => m.text), ["hi"]);
    assert.equal((await peer.request({ type: "ping" })).type, "pong");
    await assert.rejects(
      () => peer.request({ type: "part", room: "#nowhere" }),
      (e) => e instanceof ServerError && e.code === "no_such_room",
    );
  } finally {
    peer.close();
    await peer.closed;
  }
});

Deno.test("core over a WebSocket against the real server: reconnect and restore after a restart", async () => {
  const first = await startServer();
  const { port, httpPort } = first;
  const url = `ws://127.0.0.1:${httpPort}/ws`;
  const events: ServerEvent[] = [];
  const open = async () =>
    new Peer(await WebSocketChannel.open(url, { timeoutMs: 5000 }), {
      onEvent: (e) => events.push(e),
      pingIntervalMs: 0,
    });
  let peer = await open();
  const hello = { type: "hello", client: "core-ws-test", proto: 1 } as const;
  const start = await restore(peer, { hello, name: "wsal", rooms: ["#ws"] });
  assert.equal(start.name, "wsal");
  assert.deepEqual(start.rooms, ["#ws"]);
  assert.deepEqual(start.joined.map((j) => j.members), [["wsal"]]);

  await first.stop();
  await first[Symbol.asyncDispose]();
  assert.ok((await peer.closed).length > 0);
  await assert.rejects(() => peer.request({ type: "ping" }), ConnectionClosedError);

  const reconnector = new Reconnector({ baseMs: 50, capMs: 200 });
  const abort = new AbortController();
  const states: string[] = [];
  let second: Awaited<ReturnType<typeof startServer>> | undefined;
  const restarting = new Promise<void>((resolve) =>
    setTimeout(async () => {
      second = await startServer(["--port", String(port), "--http-port", String(httpPort)]);
      resolve();
    }, 300)
  );
  try {
    const result = await reconnector.run(async () => {
      const next = await open();
      try {
        return { next, done: await restore(next, { hello, name: "wsal", rooms: ["#ws"] }) };
      } catch (error) {
        next.close();
        throw error;
      }
    }, { signal: abort.signal, reason: "restart", onState: (s) => states.push(s.kind) });
    await restarting;
    assert.ok(result.ok, "reconnected");
    assert.ok(result.attempts >= 2, `failed while the server was down (${result.attempts})`);
    assert.deepEqual(states.slice(0, 2), ["waiting", "connecting"]);
    peer = result.value.next;
    assert.equal(result.value.done.name, "wsal");
    assert.deepEqual(result.value.done.rooms, ["#ws"]);

    await using watcher = await RawClient.json(second!.port, "watcher");
    watcher.send({ type: "join", room: "#ws", ref: "j" });
    assert.deepEqual((await watcher.frame((f) => f.ref === "j")).members, ["watcher", "wsal"]);
    watcher.send({ type: "send", room: "#ws", text: "welcome back", ref: "s" });
    await watcher.frame((f) => f.ref === "s");
    for (let i = 0; i < 100 && !events.some((e) => e.type === "message"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const message = events.find((e) => e.type === "message");
    assert.equal(message?.type === "message" ? message.text : undefined, "welcome back");
  } finally {
    abort.abort();
    peer.close();
    await restarting;
    await second?.[Symbol.asyncDispose]();
  }
});

Deno.test("core is platform-neutral: no Deno or DOM APIs in src/client/core/", async () => {
  const dir = new URL("../src/client/core/", import.meta.url);
  let files = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".ts")) continue;
    files++;
    const code = (await Deno.readTextFile(new URL(entry.name, dir)))
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "");
    for (const api of [/\bDeno\./, /\bdocument\b/, /\bwindow\b/, /\blocation\b/, /node:/]) {
      assert.ok(!api.test(code), `${entry.name} uses ${api}`);
    }
    for (const [, from] of code.matchAll(/from "([^"]+)"/g)) {
      assert.ok(
        from!.startsWith("./") || from!.startsWith("../../protocol/"),
        `${entry.name}: ${from}`,
      );
    }
  }
  assert.ok(files >= 8);
});
