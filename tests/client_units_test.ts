// The client's small parts: backoff, the bounded event queue, output formatting, flag parsing,
// the token file, TLS error mapping.
import assert from "node:assert/strict";
import { backoffDelay } from "../src/client/backoff.ts";
import { EventQueue } from "../src/client/_event_queue.ts";
import { tlsError } from "../src/client/_dial.ts";
import { TokenStore } from "../src/client/token_store.ts";
import type { ChatEvent } from "../src/client/events.ts";
import { exchange } from "../src/client/core/frames.ts";
import type { Reply, RequestFrame } from "../src/client/core/frames.ts";
import { clock, Formatter, nameColor, Painter } from "../src/client/terminal/format.ts";
import { parseClientArgs } from "../src/cli/client_cmd.ts";
import { UsageError } from "../src/cli/args.ts";

Deno.test("backoffDelay() doubles its ceiling up to the cap, with full jitter", () => {
  const top = { random: () => 0.999999 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, top)),
    [499, 999, 1999, 3999, 7999, 9999, 9999, 9999],
  );
  assert.equal(backoffDelay(3, { random: () => 0 }), 0);
  assert.equal(backoffDelay(1, { random: () => 0.5, baseMs: 100, capMs: 150 }), 75);
  assert.equal(backoffDelay(10_000, top), 9999, "huge attempt counts do not overflow");
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(2);
    assert.ok(d >= 0 && d < 2000);
  }
  assert.throws(() => backoffDelay(0, { baseMs: -1 }), RangeError);
});

function notice(text: string): ChatEvent {
  return { type: "notice", text };
}

Deno.test("EventQueue keeps the newest events and reports how many it dropped", async () => {
  const q = new EventQueue(3);
  for (let i = 0; i < 5; i++) q.push(notice(String(i)));
  assert.equal(q.size, 3);
  assert.deepEqual((await q.next()).value, { type: "lagged", dropped: 2 });
  for (const n of ["2", "3", "4"]) assert.deepEqual((await q.next()).value, notice(n));
  const waiting = q.next();
  q.push(notice("x")); // handed straight to the waiting reader
  assert.deepEqual((await waiting).value, notice("x"));
  q.push(notice("y"));
  q.end();
  q.push(notice("ignored"));
  assert.deepEqual((await q.next()).value, notice("y"), "buffered events survive end()");
  assert.equal((await q.next()).done, true);
  assert.throws(() => new EventQueue(0), RangeError);
});

Deno.test("EventQueue ends a waiting reader; a second concurrent reader is refused", async () => {
  const q = new EventQueue(10);
  const first = q.next();
  await assert.rejects(q.next(), TypeError);
  q.end();
  assert.equal((await first).done, true);
  // A `break` out of for-await does not end the queue.
  const r = new EventQueue(10);
  r.push(notice("a"));
  r.push(notice("b"));
  for await (const _ of { [Symbol.asyncIterator]: () => r }) break;
  assert.deepEqual((await r.next()).value, notice("b"));
});

Deno.test("EventQueue stays bounded when nobody reads", () => {
  const q = new EventQueue(100);
  for (let i = 0; i < 100_000; i++) q.push(notice(String(i)));
  assert.equal(q.size, 100);
});

const T = new Date(2024, 0, 2, 3, 4, 5).getTime();

Deno.test("Formatter renders events as timestamped text-mode lines", () => {
  const f = new Formatter(false, () => T);
  const text = (e: ChatEvent) => f.event(e).map((l) => (l.error ? "E " : "") + l.text);
  assert.equal(clock(T), "03:04:05");
  assert.deepEqual(
    text({ type: "message", id: 1, room: "#ops", from: "bob", text: "hi", ts: T }),
    ["03:04:05 [#ops] <bob> hi"],
  );
  assert.deepEqual(
    text({ type: "message", id: 1, to: "me", from: "bob", text: "w", ts: T, action: true }),
    ["03:04:05 [dm] * bob w"],
  );
  assert.deepEqual(text({ type: "presence", room: "#ops", name: "bob", event: "joined" }), [
    "03:04:05 * bob joined #ops",
  ]);
  assert.deepEqual(text({ type: "presence", name: "bob", event: "renamed", newName: "rob" }), [
    "03:04:05 * bob is now known as rob",
  ]);
  assert.deepEqual(text({ type: "presence", name: "bob", event: "quit" }), ["03:04:05 * bob quit"]);
  assert.deepEqual(text({ type: "shutdown", reason: "bye", permanent: false }), [
    "03:04:05 * Server shutting down: bye",
  ]);
  assert.deepEqual(text({ type: "error", code: "internal", message: "oops" }), [
    "E 03:04:05 ! oops",
  ]);
  assert.deepEqual(text({ type: "disconnected", reason: "reset", reconnecting: true }), [
    "E 03:04:05 ! Disconnected: reset; reconnecting...",
  ]);
  assert.deepEqual(
    text({
      type: "reconnected",
      name: "guest-1",
      rooms: ["#general"],
      attempts: 2,
      lostName: "al",
      lostRooms: ["#x"],
    }),
    [
      "03:04:05 * Reconnected as guest-1, in #general",
      "E 03:04:05 ! The name al was taken; you are guest-1",
      "E 03:04:05 ! Could not re-join #x",
    ],
  );
  assert.deepEqual(
    text({
      type: "reconnected",
      name: "guest-2",
      rooms: ["#general"],
      attempts: 1,
      lostName: "carol",
      lostSession: "auth_failed",
    }),
    [
      "03:04:05 * Reconnected as guest-2, in #general",
      "E 03:04:05 ! Your session as carol has expired or was revoked; you are guest-2 " +
      "(/login to log in again)",
    ],
  );
  assert.deepEqual(
    text({
      type: "message",
      id: 9,
      room: "#ops",
      from: "bob",
      text: "see",
      ts: T,
      file: { id: "f1", name: "a.pdf", size: 2048, type: "application/pdf", sha256: "x" },
    }),
    ["03:04:05 [#ops] <bob> see [file a.pdf, 2.0 KiB: /get f1]"],
  );
  assert.deepEqual(text({ type: "lagged", dropped: 7 }), [
    "E 03:04:05 ! 7 events were dropped: output could not keep up",
  ]);
});

Deno.test("Formatter renders replies, and own messages once with the server's timestamp", () => {
  const f = new Formatter(false, () => 0);
  const reply = (frame: RequestFrame, r: Record<string, unknown>) =>
    f.reply(exchange(frame, { type: "ack", ...r } as Reply), "me").map((l) => l.text);
  assert.deepEqual(reply({ type: "send", room: "#ops", text: "yo" }, { id: 1, ts: T }), [
    "03:04:05 [#ops] <me> yo",
  ]);
  assert.deepEqual(reply({ type: "send", to: "bob", text: "psst" }, { id: 2, ts: T }), [
    "03:04:05 [dm to bob] <me> psst",
  ]);
  const at = (lines: string[]) => lines.map((l) => l.slice(9));
  assert.deepEqual(
    at(reply({ type: "join", room: "#ops" }, { room: "#Ops", members: ["a", "me"] })),
    [
      "* You joined #Ops; members (2): a, me",
    ],
  );
  assert.deepEqual(at(reply({ type: "rooms" }, { rooms: [{ name: "#a", members: 2 }] })), [
    "* Rooms: #a (2)",
  ]);
  assert.deepEqual(at(reply({ type: "who", room: "#a" }, { room: "#a", members: ["x"] })), [
    "* Members of #a (1): x",
  ]);
  assert.deepEqual(at(reply({ type: "nick", name: "neo" }, { name: "neo" })), [
    "* You are now neo",
  ]);
});

Deno.test("Formatter colors only when asked, and strips control characters from what it shows", () => {
  const plain = new Formatter(false, () => T);
  const colored = new Formatter(true, () => T);
  const evil: ChatEvent = {
    type: "message",
    id: 1,
    room: "#a",
    from: "bob",
    text: "x\x1b[31my\n\u009b",
    ts: T,
  };
  // A newline starts an indented row of its own (nothing else does); a blank last row is dropped.
  assert.equal(plain.event(evil)[0]!.text, "03:04:05 [#a] <bob> x [31my");
  assert.equal(
    plain.event({ ...evil, text: "a\n03:04:05 [#a] <root> fake\x1b" } as ChatEvent)[0]!.text,
    "03:04:05 [#a] <bob> a\n         03:04:05 [#a] <root> fake ",
  );
  const line = colored.event(evil)[0]!.text;
  assert.ok(line.includes("\x1b[36m[#a]\x1b[39m"), "room in cyan");
  assert.ok(
    line.includes(`\x1b[1;${nameColor("bob")}m<bob>\x1b[22;39m`),
    "sender in bold, in its own colour",
  );
  assert.ok(!line.includes("\x1b[31my"), "the sender's escape is neutralized");
  assert.equal(colored.error("bad").text, "\x1b[2m03:04:05\x1b[22m \x1b[31m! bad\x1b[39m");
  assert.equal(colored.info("hi").text, "\x1b[2m03:04:05\x1b[22m \x1b[2m* hi\x1b[22m");
  assert.equal(new Painter(false).paint("dim", "a\tb"), "a b");
});

Deno.test("parseClientArgs() takes HOST [PORT], PORT HOST, and the flags", () => {
  assert.deepEqual(parseClientArgs(["example.org"]), {
    host: "example.org",
    port: 5000,
    color: true,
  });
  assert.deepEqual(parseClientArgs(["127.0.0.1", "6000", "--name", "bob", "--room", "#ops"]), {
    host: "127.0.0.1",
    port: 6000,
    color: true,
    name: "bob",
    room: "#ops",
  });
  assert.deepEqual(parseClientArgs(["6000", "localhost", "--no-color"]), {
    host: "localhost",
    port: 6000,
    color: false,
  });
  assert.equal(parseClientArgs(["--help"]), undefined);
  assert.equal(parseClientArgs(["-h"]), undefined);
  for (
    const bad of [[], ["6000"], ["h", "70000"], ["h", "port"], ["h", "1", "extra"], ["h", "0"]]
  ) {
    assert.throws(() => parseClientArgs(bad), UsageError, JSON.stringify(bad));
  }
  assert.throws(() => parseClientArgs(["h", "--bogus"]), TypeError);
});

Deno.test("parseClientArgs() takes the account and TLS flags; TLS defaults to port 5443", () => {
  assert.deepEqual(parseClientArgs(["h", "--name", "al", "--password-stdin", "--no-token-file"]), {
    host: "h",
    port: 5000,
    color: true,
    name: "al",
    passwordStdin: true,
    noTokenFile: true,
  });
  assert.deepEqual(parseClientArgs(["h", "--tls"]), {
    host: "h",
    port: 5443,
    color: true,
    tls: true,
  });
  assert.deepEqual(parseClientArgs(["h", "6000", "--ca", "a.pem", "--ca", "b.pem"]), {
    host: "h",
    port: 6000,
    color: true,
    tls: true,
    ca: ["a.pem", "b.pem"],
  });
  assert.deepEqual(parseClientArgs(["h", "--insecure"]), {
    host: "h",
    port: 5443,
    color: true,
    tls: true,
    insecure: true,
  });
  assert.throws(() => parseClientArgs(["h", "--password-stdin"]), UsageError, "needs --name");
  assert.throws(() => parseClientArgs(["h", "--insecure", "--ca", "a.pem"]), UsageError);
});

Deno.test("TokenStore keeps tokens per server and account in a 0600 file in a 0700 folder", async () => {
  const base = await Deno.makeTempDir({ prefix: "parley-tokens-" });
  try {
    const store = new TokenStore(`${base}/config/parley`);
    assert.equal(await store.get("h:1", "alice"), undefined, "no file yet");
    await store.set("h:1", "Alice", "t1");
    await store.set("h:2", "alice", "t2");
    await store.set("h:1", "bob", "t3");
    assert.equal(await store.get("h:1", "ALICE"), "t1", "names are case-insensitive");
    assert.equal(await store.get("h:2", "alice"), "t2", "servers are apart");
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(store.dir)).mode! & 0o777, 0o700);
      assert.equal((await Deno.stat(store.path)).mode! & 0o777, 0o600);
    }
    assert.equal(await store.delete("h:1", "alice"), true);
    assert.equal(await store.delete("h:1", "alice"), false);
    assert.equal(await store.get("h:1", "alice"), undefined);
    assert.equal(await store.get("h:1", "bob"), "t3");
    assert.deepEqual(JSON.parse(await Deno.readTextFile(store.path)), {
      version: 1,
      servers: { "h:1": { bob: "t3" }, "h:2": { alice: "t2" } },
    });
    assert.deepEqual([...Deno.readDirSync(store.dir)].map((e) => e.name), ["tokens.json"]);
    await Deno.writeTextFile(store.path, "not json");
    await assert.rejects(() => store.get("h:1", "bob"), SyntaxError);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("TokenStore.defaultDir() prefers XDG_CONFIG_HOME, then HOME/.config", () => {
  const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });
  assert.equal(
    TokenStore.defaultDir(env({ XDG_CONFIG_HOME: "/x", HOME: "/h" })),
    "/x/parley",
  );
  assert.equal(
    TokenStore.defaultDir(env({ XDG_CONFIG_HOME: "", HOME: "/h" })),
    "/h/.config/parley",
  );
  const denied = {
    get: (k: string) => {
      if (k === "XDG_CONFIG_HOME") throw new Deno.errors.NotCapable("no");
      return k === "HOME" ? "/h" : undefined;
    },
  };
  assert.equal(TokenStore.defaultDir(denied), "/h/.config/parley");
  if (Deno.build.os !== "windows") assert.equal(TokenStore.defaultDir(env({})), undefined);
});

Deno.test("tlsError() names the certificate problem in one sentence", () => {
  const cases: [string, string, RegExp][] = [
    ["invalid peer certificate: UnknownIssuer", "unknown_issuer", /not signed by a trusted/],
    [
      'invalid peer certificate: certificate not valid for name "localhost"; certificate is ' +
      'only valid for DnsName("otherhost") or IpAddress(10.0.0.1)',
      "wrong_host",
      /^the server's certificate is not valid for the host name h \(it is for otherhost, 10\.0\.0\.1\)$/,
    ],
    ["invalid peer certificate: NotValidForName", "wrong_host", /host name h$/],
    ["invalid peer certificate: Expired", "expired", /has expired/],
    ["invalid peer certificate: NotValidYet", "not_yet_valid", /not valid yet/],
    ["invalid peer certificate: BadSignature", "other", /not valid: BadSignature$/],
  ];
  for (const [raw, problem, message] of cases) {
    const error = tlsError(new Error(raw), "h");
    assert.equal(error?.problem, problem, raw);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"));
    assert.equal((error.cause as Error).message, raw);
  }
  assert.equal(tlsError(new Error("Connection reset by peer"), "h"), undefined);
});

Deno.test("Formatter renders history pages, offline DMs and your own DMs seen elsewhere", () => {
  const f = new Formatter(false, () => T);
  const text = (e: ChatEvent, me?: string) => f.event(e, me).map((l) => l.text);
  assert.deepEqual(
    text({
      type: "history",
      room: "#ops",
      more: true,
      messages: [
        { type: "message", id: 1, room: "#ops", from: "a", text: "old", ts: T },
        { type: "message", id: 2, room: "#ops", from: "b", text: "x", ts: T, action: true },
      ],
    }),
    [
      "03:04:05 * History of #ops (2 messages, more with /history):",
      "03:04:05 [#ops] <a> old",
      "03:04:05 [#ops] * b x",
    ],
  );
  assert.deepEqual(text({ type: "history", with: "bob", more: false, messages: [] }), [
    "03:04:05 * No messages",
  ]);
  assert.deepEqual(
    text({ type: "message", id: 3, to: "me", from: "bob", text: "hi", ts: T, offline: true }),
    ["03:04:05 [dm] <bob> hi (sent while you were away)"],
  );
  assert.deepEqual(
    text({ type: "message", id: 4, to: "bob", from: "me", text: "yo", ts: T }, "me"),
    ["03:04:05 [dm to bob] <me> yo"],
  );
});
