// The client library against the real server (a subprocess on port 0), plus small scripted
// servers for what the real one cannot be made to do on cue (fragmented output, a permanent
// shutdown, a connection that drops while someone takes our name).
import assert from "node:assert/strict";
import {
  ChatClient,
  ConnectionClosedError,
  ServerError,
  SessionRefusedError,
  TlsVerificationError,
} from "../src/client/mod.ts";
import type { ChatClientOptions, ChatEvent } from "../src/client/mod.ts";
import { selfSigned } from "../src/cli/cert_cmd.ts";
import { freePort, RawClient, startServer, tcpProxy, tempDir, tlsServerArgs } from "./_helpers.ts";

const FAST: ChatClientOptions = { backoff: { baseMs: 20, capMs: 200 } };

/**
 * The next event of `type` matching `match`, skipping others (collected in `skipped`); throws
 * after `ms`.
 */
async function next<T extends ChatEvent["type"]>(
  client: ChatClient,
  type: T,
  match: (event: Extract<ChatEvent, { type: T }>) => boolean = () => true,
  ms = 8000,
  skipped: ChatEvent[] = [],
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
      skipped.push(event);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Every remaining event until iteration ends (the client must be closing). */
async function rest(client: ChatClient): Promise<ChatEvent[]> {
  const seen: ChatEvent[] = [];
  for await (const event of client) seen.push(event);
  return seen;
}

Deno.test("ChatClient.connect() says hello; every request resolves on its reply", async () => {
  await using server = await startServer();
  await using client = await ChatClient.connect("127.0.0.1", server.port);
  assert.equal(client.state, "connected");
  assert.match(client.name, /^guest-\d{4,}$/);
  assert.deepEqual(client.joinedRooms, ["#general"]);
  assert.equal(client.server?.server, "parley");
  assert.equal(client.server?.proto, 1);

  assert.equal(await client.nick("alice"), "alice");
  assert.equal(client.name, "alice");
  assert.deepEqual(await client.join("#Ops"), { room: "#Ops", members: ["alice"] });
  assert.deepEqual(client.joinedRooms, ["#general", "#Ops"]);
  assert.deepEqual(await client.who("#ops"), { room: "#Ops", members: ["alice"] });
  assert.deepEqual(await client.rooms(), [
    { name: "#general", members: 1 },
    { name: "#Ops", members: 1 },
  ]);
  const sent = await client.send("#ops", "hello");
  assert.equal(typeof sent.id, "number");
  assert.ok(Math.abs(sent.ts - Date.now()) < 60_000);
  const action = await client.send("#ops", "waves", { action: true });
  assert.ok(action.id > sent.id);
  assert.equal(typeof await client.ping(), "number");
  assert.equal((await client.hello()).name, "alice");
  assert.equal(await client.part("#OPS"), "#Ops");
  assert.deepEqual(client.joinedRooms, ["#general"]);
  // Many requests in flight at once are matched to their own replies.
  const names = await Promise.all(
    Array.from({ length: 20 }, (_, i) => client.who(i % 2 ? "#general" : "#GENERAL")),
  );
  assert.ok(names.every((r) => r.room === "#general" && r.members[0] === "alice"));
});

Deno.test("ChatClient requests reject with a ServerError carrying the server's code", async () => {
  await using server = await startServer();
  await using alice = await ChatClient.connect("127.0.0.1", server.port);
  await using bob = await ChatClient.connect("127.0.0.1", server.port);
  await bob.nick("bob");
  const cases: [() => Promise<unknown>, string][] = [
    [() => alice.nick("bad name"), "invalid_name"],
    [() => alice.nick("BOB"), "name_taken"],
    [() => alice.join("nohash"), "invalid_room"],
    [() => alice.send("#nowhere", "hi"), "no_such_room"],
    [() => alice.send("nobody", "hi"), "no_such_user"],
    [() => alice.send("#general", "   "), "bad_frame"],
    [() => alice.send("#general", "x".repeat(5000)), "text_too_long"],
    [() => alice.who("#nowhere"), "no_such_room"],
    [() => alice.part("#nowhere"), "no_such_room"],
  ];
  for (const [request, code] of cases) {
    await assert.rejects(request, (error: unknown) => {
      assert.ok(error instanceof ServerError, String(error));
      assert.equal(error.code, code);
      assert.ok(error.message.length > 0);
      return true;
    });
  }
  await bob.join("#side");
  await assert.rejects(
    () => alice.send("#side", "hi"),
    (e: unknown) => e instanceof ServerError && e.code === "not_in_room",
  );
  assert.match(alice.name, /^guest-/, "a refused nick leaves the name alone");
  assert.equal(typeof await alice.ping(), "number", "still usable");
});

Deno.test("ChatClient events: messages, DMs, actions, presence, in order", async () => {
  await using server = await startServer();
  await using alice = await ChatClient.connect("127.0.0.1", server.port);
  await alice.nick("alice");
  await using bob = await ChatClient.connect("127.0.0.1", server.port);
  await bob.nick("bob");
  const joined = await next(alice, "presence", (e) => e.event === "joined");
  assert.equal(joined.room, "#general");
  assert.deepEqual(await next(alice, "presence"), {
    type: "presence",
    name: joined.name,
    event: "renamed",
    newName: "bob",
  });
  const sent = await bob.send("#general", "hi alice");
  await bob.send("alice", "psst");
  await bob.send("#general", "waves", { action: true });
  assert.deepEqual(await next(alice, "message"), {
    type: "message",
    id: sent.id,
    room: "#general",
    from: "bob",
    text: "hi alice",
    ts: sent.ts,
  });
  const dm = await next(alice, "message");
  assert.deepEqual([dm.to, dm.room, dm.from, dm.text], ["alice", undefined, "bob", "psst"]);
  const action = await next(alice, "message");
  assert.deepEqual([action.text, action.action], ["waves", true]);
  await bob.quit("bye");
  assert.deepEqual(await next(alice, "presence"), { type: "presence", name: "bob", event: "quit" });
});

Deno.test("ChatClient holds at most maxEvents for a caller that does not read", async () => {
  await using server = await startServer(["--flood-rate", "0"]);
  await using alice = await ChatClient.connect("127.0.0.1", server.port, { maxEvents: 5 });
  await using bob = await ChatClient.connect("127.0.0.1", server.port);
  for (let i = 0; i < 50; i++) await bob.send("#general", `m${i}`);
  await alice.ping(); // the server queued bob's messages to alice before this reply
  const events = alice[Symbol.asyncIterator]();
  const lagged = (await events.next()).value;
  assert.equal(lagged?.type, "lagged");
  assert.ok(lagged?.type === "lagged" && lagged.dropped >= 45, JSON.stringify(lagged));
  const texts = [];
  for (let i = 0; i < 5; i++) {
    const e = (await events.next()).value;
    texts.push(e?.type === "message" ? e.text : e?.type);
  }
  assert.deepEqual(texts, ["m45", "m46", "m47", "m48", "m49"]);
});

Deno.test("ChatClient reassembles frames the server sends in fragments", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const script = (async () => {
    using conn = await listener.accept();
    const write = async (s: string) => void await conn.write(new TextEncoder().encode(s));
    const banner = "* Welcome to parley. Type a message.\n";
    for (const ch of banner) await write(ch); // one byte at a time
    await readLine(conn); // hello
    const welcome = '{"type":"welcome","ref":"1","server":"parley","version":"9","proto":1,' +
      '"name":"guest-1234"}\n';
    await write(welcome.slice(0, 10));
    await write(welcome.slice(10) + '{"type":"notice","text":"caf');
    await conn.write(new Uint8Array([0xc3])); // "é" split across writes
    await conn.write(new Uint8Array([0xa9]));
    await write('"}\r\n{"type":"notice","text":"two"}\n');
    await readLine(conn); // the client's quit
  })();
  await using client = await ChatClient.connect("127.0.0.1", (listener.addr as Deno.NetAddr).port, {
    reconnect: false,
  });
  assert.equal(client.name, "guest-1234");
  assert.deepEqual(await next(client, "notice"), { type: "notice", text: "café" });
  assert.deepEqual(await next(client, "notice"), { type: "notice", text: "two" });
  await client.close();
  await script;
});

Deno.test("ChatClient.connect() rejects when the server refuses or cannot be reached", async () => {
  await using server = await startServer(["--max-conns", "1"]);
  await using holder = await RawClient.text(server.port);
  await assert.rejects(
    () => ChatClient.connect("127.0.0.1", server.port),
    (error: unknown) => {
      assert.ok(error instanceof SessionRefusedError, String(error));
      assert.equal(error.message, "Too many connections: the server is full, try again later");
      return true;
    },
  );
  assert.ok(!holder.ended);
  const closedPort = freePort();
  await assert.rejects(
    () => ChatClient.connect("127.0.0.1", closedPort),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("ChatClient.quit() is acked, ends the events, and never reconnects", async () => {
  await using server = await startServer();
  await using alice = await ChatClient.connect("127.0.0.1", server.port, FAST);
  await alice.nick("alice");
  await using bob = await ChatClient.connect("127.0.0.1", server.port, FAST);
  await bob.nick("bob");
  await bob.quit("see you");
  assert.equal(bob.state, "closed");
  assert.equal(await bob.closed, "quit");
  assert.deepEqual(await rest(bob), []);
  await assert.rejects(() => bob.ping(), ConnectionClosedError);
  await bob.quit(); // idempotent
  await next(alice, "presence", (e) => e.name === "bob" && e.event === "quit");
});

Deno.test("ChatClient.close() and abort reject pending requests with ConnectionClosedError", async () => {
  await using server = await startServer();
  const client = await ChatClient.connect("127.0.0.1", server.port);
  const pending = assert.rejects(client.who("#general"), ConnectionClosedError);
  await client.close();
  await pending;
  assert.equal(client.state, "closed");

  const controller = new AbortController();
  await using aborted = await ChatClient.connect("127.0.0.1", server.port, {
    signal: controller.signal,
  });
  const events = rest(aborted);
  controller.abort();
  assert.deepEqual(await events, []);
  assert.equal(await aborted.closed, "aborted");
  await assert.rejects(() => aborted.ping(), ConnectionClosedError);
  await assert.rejects(
    () => ChatClient.connect("127.0.0.1", server.port, { signal: AbortSignal.abort() }),
  );
});

Deno.test("ChatClient reconnects after the server restarts on the same port", async () => {
  await using first = await startServer();
  const port = first.port;
  await using client = await ChatClient.connect("127.0.0.1", port, FAST);
  await client.nick("alice");
  await client.join("#ops");
  await client.part("#general");
  assert.equal((await first.stop()).code, 0);
  assert.deepEqual(await next(client, "shutdown"), {
    type: "shutdown",
    reason: "the server is shutting down",
    permanent: false,
  });
  assert.equal((await next(client, "disconnected")).reconnecting, true);
  assert.equal(client.state, "reconnecting");
  await assert.rejects(() => client.ping(), ConnectionClosedError);

  await using second = await startServer(["--port", String(port)]);
  const back = await next(client, "reconnected");
  assert.equal(back.name, "alice");
  assert.deepEqual(back.rooms, ["#ops"]);
  assert.equal(back.lostName, undefined);
  assert.ok(back.attempts >= 1);
  assert.equal(client.state, "connected");
  assert.deepEqual(client.joinedRooms, ["#ops"]);

  await using bob = await RawClient.json(second.port, "bob");
  bob.send({ type: "who", room: "#ops", ref: "w" });
  assert.deepEqual((await bob.frame((f) => f.ref === "w")).members, ["alice"]);
  bob.send({ type: "who", room: "#general", ref: "g" });
  assert.deepEqual((await bob.frame((f) => f.ref === "g")).members, ["bob"]);
  bob.send({ type: "send", to: "alice", text: "welcome back", ref: "s" });
  assert.equal((await next(client, "message")).text, "welcome back");
  assert.equal(typeof (await client.send("#ops", "back")).id, "number");
});

Deno.test("ChatClient reports a name taken while it was away, keeps its guest name", async () => {
  await using server = await startServer();
  await using proxy = Proxy.start(server.port);
  await using client = await ChatClient.connect("127.0.0.1", proxy.port, FAST);
  await client.nick("alice");
  await client.join("#ops");
  proxy.hold();
  proxy.dropAll();
  assert.equal((await next(client, "disconnected")).reconnecting, true);
  // Someone takes "alice" as soon as the server has noticed she left.
  await using thief = await RawClient.json(server.port);
  for (let i = 0;; i++) {
    thief.send({ type: "nick", name: "alice", ref: `n${i}` });
    if ((await thief.frame((f) => f.ref === `n${i}`)).type === "ack") break;
    await new Promise((r) => setTimeout(r, 20));
  }
  proxy.release();
  const back = await next(client, "reconnected");
  assert.equal(back.lostName, "alice");
  assert.match(back.name, /^guest-\d+$/);
  assert.deepEqual(back.rooms, ["#general", "#ops"]);
  assert.equal(client.name, back.name);
});

Deno.test("ChatClient does not reconnect after a permanent shutdown or with reconnect: false", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const script = (async () => {
    for (let i = 0; i < 2; i++) {
      using conn = await listener.accept();
      await conn.write(new TextEncoder().encode("* Welcome\n"));
      await readLine(conn);
      const last = i === 0
        ? '{"type":"shutdown","reason":"closing for good","permanent":true}\n'
        : "";
      await conn.write(
        new TextEncoder().encode(
          '{"type":"welcome","ref":"1","server":"x","version":"1","proto":1,"name":"g"}\n' + last,
        ),
      );
    }
  })();
  await using first = await ChatClient.connect("127.0.0.1", port, FAST);
  const events = await rest(first);
  assert.deepEqual(events.map((e) => e.type), ["shutdown", "disconnected"]);
  assert.deepEqual(events[1], {
    type: "disconnected",
    reason: "the server closed the connection",
    reconnecting: false,
  });
  assert.equal(first.state, "closed");

  await using second = await ChatClient.connect("127.0.0.1", port, {
    ...FAST,
    reconnect: false,
  });
  assert.deepEqual(await rest(second), [{
    type: "disconnected",
    reason: "the server closed the connection",
    reconnecting: false,
  }]);
  await script;
});

Deno.test("ChatClient gives up after maxReconnectAttempts", async () => {
  await using server = await startServer();
  await using client = await ChatClient.connect("127.0.0.1", server.port, {
    ...FAST,
    maxReconnectAttempts: 2,
  });
  await server.stop();
  const events = await rest(client);
  assert.deepEqual(events.map((e) => e.type), ["shutdown", "disconnected", "disconnected"]);
  const last = events.at(-1);
  assert.ok(last?.type === "disconnected" && !last.reconnecting);
  assert.match(last.reason, /gave up reconnecting after 2 attempts/);
  assert.equal(client.state, "closed");
});

/** Reads one line from `conn` (test scripts only: byte by byte). */
async function readLine(conn: Deno.Conn): Promise<string> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  for (;;) {
    const n = await conn.read(one);
    if (n === null || one[0] === 10) return new TextDecoder().decode(new Uint8Array(bytes));
    bytes.push(one[0]!);
  }
}

/** A TCP proxy that can drop every connection and hold new ones until released. */
class Proxy implements AsyncDisposable {
  readonly port: number;
  readonly #listener: Deno.Listener;
  readonly #upstream: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #gate: PromiseWithResolvers<void> | undefined;

  private constructor(upstream: number) {
    this.#upstream = upstream;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  static start(upstream: number): Proxy {
    return new Proxy(upstream);
  }

  /** New connections wait (accepted, silent) until {@linkcode release}. */
  hold(): void {
    this.#gate ??= Promise.withResolvers();
  }

  release(): void {
    this.#gate?.resolve();
    this.#gate = undefined;
  }

  /** Closes every proxied connection. */
  dropAll(): void {
    for (const conn of this.#conns) close(conn);
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#conns.add(conn);
        const task = this.#serve(conn).finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    } catch {
      // listener closed
    }
  }

  async #serve(down: Deno.Conn): Promise<void> {
    try {
      await this.#gate?.promise;
      const up = await Deno.connect({ hostname: "127.0.0.1", port: this.#upstream });
      this.#conns.add(up);
      await Promise.all([pipe(down, up), pipe(up, down)]);
    } catch {
      close(down);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.release();
    this.#listener.close();
    await this.#accepting;
    this.dropAll();
    await Promise.all(this.#tasks);
  }
}

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
  } catch {
    // either side closed
  } finally {
    close(from);
    close(to);
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}

Deno.test("ChatClient drops a connection whose server stops answering its pings", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const script = (async () => {
    using conn = await listener.accept();
    await conn.write(new TextEncoder().encode("* Welcome\n"));
    await readLine(conn);
    await conn.write(
      new TextEncoder().encode(
        '{"type":"welcome","ref":"1","server":"x","version":"1","proto":1,"name":"g"}\n',
      ),
    );
    while ((await readLine(conn)) !== "") {
      // swallow the pings, answer nothing
    }
  })();
  await using client = await ChatClient.connect("127.0.0.1", (listener.addr as Deno.NetAddr).port, {
    reconnect: false,
    pingIntervalMs: 50,
  });
  assert.deepEqual(await rest(client), [{
    type: "disconnected",
    reason: "the server stopped answering",
    reconnecting: false,
  }]);
  await script;
});

Deno.test("ChatClient answers the server's pings, so a quiet client stays connected", async () => {
  await using server = await startServer(["--ping-after", "1", "--idle-timeout", "2"]);
  await using client = await ChatClient.connect("127.0.0.1", server.port, { pingIntervalMs: 0 });
  await new Promise((resolve) => setTimeout(resolve, 3500));
  assert.equal(client.state, "connected");
  assert.equal(typeof await client.ping(), "number");
  await client.close();
  assert.ok(!(await rest(client)).some((e) => e.type === "disconnected" || e.type === "error"));
});

Deno.test("ChatClient accounts: register, history, and a token login after a restart", async () => {
  await using data = await tempDir("parley-client-test-");
  await using first = await startServer(["--data", data.path]);
  const port = first.port;
  await using client = await ChatClient.connect("127.0.0.1", port, FAST);
  const login = await client.register("carol", "a long enough password 42");
  assert.equal(login.name, "carol");
  assert.equal(typeof login.token, "string");
  assert.equal(client.token, login.token);
  assert.equal(client.name, "carol");
  await client.join("#ops");
  await client.send("#ops", "first");
  await client.send("#ops", "second");
  const page = await client.history("#ops");
  assert.equal(page.type, "history");
  assert.equal(page.room, "#ops");
  assert.deepEqual(page.messages.map((m) => [m.from, m.text]), [
    ["carol", "first"],
    ["carol", "second"],
  ]);
  await assert.rejects(
    () => client.history("#nowhere"),
    (e: unknown) => e instanceof ServerError,
  );
  await first.stop();
  assert.equal((await next(client, "disconnected")).reconnecting, true);
  await using _second = await startServer(["--data", data.path, "--port", String(port)]);
  const seen: ChatEvent[] = [];
  const back = await next(client, "reconnected", () => true, 8000, seen);
  assert.equal(back.name, "carol");
  assert.equal(back.lostName, undefined);
  assert.deepEqual([...back.rooms].sort(), ["#general", "#ops"]);
  // While restoring, the server replayed recent messages of the rooms joined.
  const replay = seen.find((e) => e.type === "history" && e.room === "#ops");
  assert.ok(replay?.type === "history", JSON.stringify(seen));
  assert.deepEqual(replay.messages.map((m) => m.text), ["first", "second"]);
  await client.logout();
  assert.equal(client.state, "closed");
  assert.equal(await client.closed, "quit");
});

Deno.test("ChatClient re-login on reconnect: a token the new server refuses is reported and dropped", async () => {
  await using first = await startServer();
  const port = first.port;
  await using client = await ChatClient.connect("127.0.0.1", port, FAST);
  await client.register("dora", "a long enough password 42");
  assert.equal(typeof client.token, "string");
  await first.stop();
  // The server comes back with another database: the account and its session are gone.
  await using _second = await startServer(["--port", String(port)]);
  const back = await next(client, "reconnected");
  assert.equal(back.lostName, "dora");
  assert.equal(back.lostSession, "auth_failed");
  assert.match(back.name, /^guest-\d+$/);
  assert.equal(client.token, undefined);
  assert.equal(client.name, back.name);
});

Deno.test("ChatClient login in the first hello, and the token in hello on a reconnect: nobody sees a guest", async () => {
  await using server = await startServer();
  const port = server.port;
  await using setup = await ChatClient.connect("127.0.0.1", port, FAST);
  const { token } = await setup.register("erin", "a long enough password 42");
  await setup.close();
  await using watcher = await RawClient.json(port, "watcher");
  await using client = await ChatClient.connect("127.0.0.1", port, { ...FAST, login: { token } });
  assert.equal(client.helloLogin?.by, "token");
  assert.equal((client.helloLogin?.result as { name: string }).name, "erin");
  assert.equal(client.name, "erin");
  assert.equal(client.token, token);
  assert.deepEqual(client.joinedRooms, ["#general"]);
  const arrived: Record<string, unknown>[] = [];
  await watcher.frame((f) => {
    arrived.push(f);
    return f.type === "presence" && f.name === "erin";
  });
  assert.deepEqual(arrived.filter((f) => String(f.name).startsWith("guest-")), []);
  // A refused login leaves a guest, connected.
  await using guest = await ChatClient.connect("127.0.0.1", port, {
    ...FAST,
    login: { name: "erin", password: "not the password" },
  });
  assert.equal(guest.helloLogin?.by, "password");
  assert.ok(guest.helloLogin?.result instanceof ServerError);
  assert.equal((guest.helloLogin?.result as ServerError).code, "auth_failed");
  assert.match(guest.name, /^guest-\d+$/);
  await guest.close();
  // The connection drops: the client comes back with the token in its hello.
  await client.close();
  await watcher.frame((f) => f.type === "presence" && f.name === "erin" && f.event === "quit");
  await using proxy = tcpProxy(port);
  await using roaming = await ChatClient.connect("127.0.0.1", proxy.port, {
    ...FAST,
    login: { token },
  });
  await watcher.frame((f) => f.type === "presence" && f.name === "erin" && f.event === "joined");
  proxy.drop();
  await watcher.frame((f) => f.type === "presence" && f.name === "erin" && f.event === "quit");
  await next(roaming, "disconnected");
  const back = await next(roaming, "reconnected");
  assert.equal(back.name, "erin");
  assert.equal(back.lostSession, undefined);
  const hellos = proxy.frames("hello");
  assert.equal(hellos.length, 2);
  assert.equal(hellos[1]!.token, token, "the token went in the hello");
  assert.equal(proxy.frames("login").length, 0, "no login after it");
  const after: Record<string, unknown>[] = [];
  await watcher.frame((f) => {
    after.push(f);
    return f.type === "presence" && f.name === "erin" && f.event === "joined";
  });
  assert.deepEqual(
    after.filter((f) => String(f.name).startsWith("guest-")),
    [],
    JSON.stringify(after),
  );
});

/** A folder with cert.pem and key.pem for `hosts`, valid for `days` (negative: expired). */
async function certFolder(hosts: string[], days = 30) {
  const dir = await tempDir("parley-client-tls-");
  const { cert, key } = await selfSigned(hosts, days);
  await Deno.writeTextFile(`${dir.path}/cert.pem`, cert);
  await Deno.writeTextFile(`${dir.path}/key.pem`, key);
  return Object.assign(dir, { cert });
}

Deno.test("ChatClient over TLS: verified with caCerts, chats with a plain-TCP client", async () => {
  await using dir = await certFolder(["localhost"]);
  await using server = await startServer(tlsServerArgs(dir.path));
  await using client = await ChatClient.connect("localhost", server.tlsPort, {
    ...FAST,
    tls: true,
    caCerts: [dir.cert],
  });
  assert.equal(client.tls, true);
  assert.equal(client.insecure, false);
  await client.nick("secure");
  await using plain = await RawClient.json(server.port, "plain");
  await client.send("#general", "over tls");
  const seen = await plain.frame((f) => f.type === "message");
  assert.deepEqual([seen.from, seen.text], ["secure", "over tls"]);
  plain.send({ type: "send", to: "secure", text: "over tcp", ref: "s" });
  assert.equal((await next(client, "message")).text, "over tcp");
});

Deno.test("ChatClient over TLS refuses an unknown CA, a wrong host name, an expired certificate", async () => {
  await using dir = await certFolder(["otherhost"]);
  await using server = await startServer(tlsServerArgs(dir.path));
  const { tlsPort } = server;
  const refused = async (options: ChatClientOptions, problem: string, message: RegExp) => {
    await assert.rejects(
      () => ChatClient.connect("localhost", tlsPort, { ...options, tls: true }),
      (error: unknown) => {
        assert.ok(error instanceof TlsVerificationError, String(error));
        assert.equal(error.problem, problem);
        assert.match(error.message, message);
        return true;
      },
    );
  };
  await refused({}, "unknown_issuer", /not signed by a trusted certificate authority/);
  await refused(
    { caCerts: [dir.cert] },
    "wrong_host",
    /not valid for the host name localhost \(it is for otherhost\)$/,
  );

  await using old = await certFolder(["localhost"], -1);
  await using expired = await startServer(tlsServerArgs(old.path));
  await assert.rejects(
    () => ChatClient.connect("localhost", expired.tlsPort, { tls: true, caCerts: [old.cert] }),
    (error: unknown) => error instanceof TlsVerificationError && error.problem === "expired",
  );
  // insecure skips every check: encrypted, not authenticated.
  await using client = await ChatClient.connect("localhost", expired.tlsPort, {
    tls: true,
    insecure: true,
  });
  assert.equal(client.insecure, true);
  assert.equal(typeof await client.ping(), "number");
  await assert.rejects(
    () => ChatClient.connect("localhost", tlsPort, { insecure: true }),
    TypeError,
    "insecure without tls",
  );
});

Deno.test("ChatClient insecure (node:tls underneath) chats and reconnects after a restart", async () => {
  await using dir = await certFolder(["localhost"]);
  await using first = await startServer(tlsServerArgs(dir.path));
  await using client = await ChatClient.connect("127.0.0.1", first.tlsPort, {
    ...FAST,
    tls: true,
    insecure: true,
  });
  await client.nick("brave");
  await client.join("#ops");
  // Killed, not stopped: the connection just drops (and a TLS server's graceful stop waits for
  // its clients to leave first).
  await first.stop("SIGKILL");
  assert.equal((await next(client, "disconnected")).reconnecting, true);
  await using second = await startServer(tlsServerArgs(dir.path, first.tlsPort));
  const back = await next(client, "reconnected");
  assert.equal(back.name, "brave");
  assert.deepEqual(back.rooms, ["#general", "#ops"]);
  await using plain = await RawClient.json(second.port, "plain");
  // A long message crosses many TLS records: the adapter reassembles them.
  const long = "x".repeat(4000);
  plain.send({ type: "send", to: "brave", text: long, ref: "s" });
  assert.equal((await next(client, "message")).text, long);
  await client.send("plain", "thanks");
  assert.equal((await plain.frame((f) => f.type === "message")).text, "thanks");
});

Deno.test("ChatClient serverPassword: in the first hello and again after a reconnect; missing or wrong is refused", async () => {
  await using server = await startServer(["--server-password", "letmein"]);
  const port = server.port;
  const refused = async (options: ChatClientOptions) => {
    const error = await ChatClient.connect("127.0.0.1", port, { ...FAST, ...options }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof ServerError, String(error));
    assert.equal(error.code, "auth_failed");
    assert.equal(error.need, "serverPassword");
  };
  await refused({});
  await refused({ serverPassword: "letmeout" });
  // A login in the hello does not hide the refusal (no second hello on a closed connection).
  await refused({ serverPassword: "nope", login: { name: "x", password: "y" } });

  await using proxy = tcpProxy(port);
  await using client = await ChatClient.connect("127.0.0.1", proxy.port, {
    ...FAST,
    serverPassword: "letmein",
  });
  await client.join("#pw");
  proxy.drop();
  await next(client, "disconnected");
  await next(client, "reconnected");
  const hellos = proxy.frames("hello");
  assert.equal(hellos.length, 2);
  assert.deepEqual(hellos.map((h) => h.serverPassword), ["letmein", "letmein"]);
  assert.deepEqual(client.joinedRooms.includes("#pw"), true);
  await client.send("#pw", "still here");
});
