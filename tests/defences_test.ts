// End to end: the server's defences against abuse, each against the real subprocess.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";

Deno.test("defences: new connections per IP are limited per window (--limit-loopback)", async () => {
  await using server = await startServer([
    "--limit-loopback",
    "--conn-rate",
    "3",
    "--conn-window",
    "60",
  ]);
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(server.port);
      clients.push(c);
      assert.match(await c.line(), /^\* Welcome/);
      c.send("quit");
      await c.closed();
    }
    const refused = await RawClient.connect(server.port);
    clients.push(refused);
    assert.match(
      await refused.line(),
      /^! Too many new connections from your address: try again in \d+ s$/,
    );
    await refused.closed();
  } finally {
    for (const c of clients) await c[Symbol.asyncDispose]();
  }
});

Deno.test("defences: a connection silent from the start is closed at the first-line deadline", async () => {
  await using server = await startServer(["--first-line-timeout", "1"]);
  await using c = await RawClient.connect(server.port);
  assert.match(await c.line(), /^\* Welcome/);
  assert.equal(await c.line(), "! Closing the connection: no line within 1 s");
  await c.closed();
  await using talker = await RawClient.text(server.port, "talker");
  await new Promise((r) => setTimeout(r, 1500));
  talker.send("/ping");
  assert.equal(await talker.line(), "* pong", "a connection that spoke in time stays");
});

Deno.test("defences: with --require-login a connection must log in before the deadline", async () => {
  await using server = await startServer(["--require-login", "--login-timeout", "1"]);
  await using c = await RawClient.json(server.port);
  const closing = await c.frame((f) => f.type === "error", 5000);
  assert.equal(closing.code, "timeout");
  assert.match(String(closing.message), /not logged in within 1 s/);
  await c.closed();
});

Deno.test("defences: JSON keepalive pings a silent connection and closes it if it stays silent", async () => {
  await using server = await startServer(["--ping-after", "1", "--idle-timeout", "3"]);
  await using lively = await RawClient.json(server.port);
  await using silent = await RawClient.json(server.port);
  await lively.frame((f) => f.type === "ping", 5000);
  lively.send({ type: "pong" });
  assert.deepEqual(await silent.frame((f) => f.type === "ping", 5000), { type: "ping" });
  const closed = await silent.frame((f) => f.type === "error", 5000);
  assert.equal(closed.code, "timeout");
  await silent.closed();
  lively.send({ type: "ping", ref: "still" });
  assert.equal(
    (await lively.frame((f) => f.ref === "still")).type,
    "pong",
    "the pong kept it open",
  );
});

Deno.test("defences: a flooder is told once that its lines are delayed, with retryAfter", async () => {
  await using server = await startServer(["--flood-burst", "3", "--flood-rate", "5"]);
  await using c = await RawClient.json(server.port);
  for (let i = 0; i < 8; i++) c.send({ type: "ping", ref: String(i) });
  const notice = await c.frame((f) => f.type === "error");
  assert.equal(notice.code, "rate_limited");
  assert.ok(Number(notice.retryAfter) >= 1);
  assert.equal(notice.ref, undefined);
  await c.frame((f) => f.ref === "7");
  const errors = c.pending().filter((l) => l.includes('"rate_limited"'));
  assert.deepEqual(errors, [], "told once per episode, not per line");
});
