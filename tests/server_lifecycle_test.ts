// End to end: startup output, shutdown on signals, and the accept loop surviving bad peers.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";

Deno.test("server prints 'listening on tcp://HOST:PORT' with the real port", async () => {
  await using server = await startServer();
  assert.equal(server.stdout[0], `listening on tcp://127.0.0.1:${server.port}`);
  assert.ok(server.port > 0);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal}: clients are told, the server exits 0`, async () => {
    await using server = await startServer();
    await using text = await RawClient.text(server.port, "tex");
    await using json = await RawClient.json(server.port, "jay");
    const status = await server.stop(signal);
    assert.equal(status.code, 0);
    assert.equal(
      await text.line((l) => l.startsWith("* Server")),
      "* Server shutting down: the server is shutting down",
    );
    assert.deepEqual(await json.frame((f) => f.type === "shutdown"), {
      type: "shutdown",
      reason: "the server is shutting down",
      permanent: false,
    });
    await text.closed();
    await json.closed();
  });
}

Deno.test("shutdown flushes what was queued before closing", async () => {
  await using server = await startServer(["--flood-rate", "0"]);
  await using sender = await RawClient.json(server.port, "sender");
  await using reader = await RawClient.json(server.port, "reader");
  for (let i = 0; i < 200; i++) {
    sender.send({ type: "send", room: "#general", text: `m${i}`, ref: String(i) });
  }
  await sender.frame((f) => f.ref === "199");
  assert.equal((await server.stop()).code, 0);
  let seen = 0;
  await reader.line((l) => {
    if (l.includes('"type":"message"')) seen++;
    return l.includes('"type":"shutdown"');
  });
  assert.equal(seen, 200);
});

Deno.test("bad peers never stop the accept loop", async () => {
  await using server = await startServer();
  for (let i = 0; i < 20; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    if (i % 2 === 0) await conn.write(new Uint8Array([0xff, 0x0a, 0x7b, 0x0a]));
    conn.close(); // gone before the server writes: broken pipe or reset on its side
  }
  await using alice = await RawClient.json(server.port, "alice");
  await using bob = await RawClient.text(server.port, "bob");
  bob.send("still serving");
  assert.equal((await alice.frame((f) => f.type === "message")).text, "still serving");
});
