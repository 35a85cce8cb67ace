// End to end: every limit of the server, each against the real subprocess.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";

const encoder = new TextEncoder();

Deno.test("limits: an overlong line is refused and the connection stays usable", async () => {
  await using server = await startServer(["--max-line", "1024"]);
  await using text = await RawClient.text(server.port, "tex");
  await using json = await RawClient.json(server.port, "jay");
  text.send("x".repeat(5000));
  assert.equal(await text.line((l) => l.startsWith("!")), "! Line too long: it was discarded");
  text.send("still here");
  assert.equal((await json.frame((f) => f.type === "message")).text, "still here");
  // Streamed in small pieces, it is discarded as it arrives and reported once.
  for (let i = 0; i < 20; i++) json.sendRaw(encoder.encode("y".repeat(200)));
  json.send("");
  const err = await json.frame((f) => f.type === "error");
  assert.equal(err.code, "line_too_long");
  json.send({ type: "ping", ref: "p" });
  assert.equal((await json.frame()).type, "pong");
});

Deno.test("limits: message text over --max-text is refused", async () => {
  await using server = await startServer(["--max-text", "100"]);
  await using c = await RawClient.json(server.port);
  c.send({ type: "send", room: "#general", text: "é".repeat(51), ref: "big" });
  const err = await c.frame((f) => f.ref === "big");
  assert.equal(err.code, "text_too_long");
  c.send({ type: "send", room: "#general", text: "é".repeat(50), ref: "ok" });
  assert.equal((await c.frame((f) => f.ref === "ok")).type, "ack");
});

Deno.test("limits: invalid UTF-8 gets an error, never a crash", async () => {
  await using server = await startServer();
  await using text = await RawClient.text(server.port, "tex");
  await using json = await RawClient.json(server.port, "jay");
  text.sendRaw(new Uint8Array([0x68, 0xff, 0xfe, 0x69, 0x0a]));
  assert.equal(
    await text.line((l) => l.startsWith("!")),
    "! Invalid UTF-8: the line was discarded",
  );
  json.sendRaw(new Uint8Array([0x7b, 0xc3, 0x28, 0x7d, 0x0a]));
  assert.equal((await json.frame((f) => f.type === "error")).code, "bad_utf8");
  text.send("fine");
  assert.equal((await json.frame((f) => f.type === "message")).text, "fine");
});

Deno.test("limits: a client that stops reading is cut off; the others get everything", async () => {
  // The default send queue (1 MiB) holds a full pipeline of maximum-size messages.
  await using server = await startServer(["--flood-rate", "0", "--log-level", "debug"]);
  // The slow consumer: it joins, then never reads again.
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await slow.write(encoder.encode("/nick slowpoke\n"));
  await using reader = await RawClient.text(server.port, "reader");
  await using sender = await RawClient.json(server.port, "sender");
  await reader.line((l) => l.includes("slowpoke") || l.includes("sender"));
  // 5000 x 4 KB = 20 MB: far more than loopback socket buffers plus the 1 MiB send queue.
  const count = 5000;
  const text = "z".repeat(4000);
  for (let i = 0; i < count; i++) {
    sender.send({ type: "send", room: "#general", text: `${i} ${text}` });
  }
  let got = 0;
  let slowQuit = false;
  await reader.line((l) => {
    if (l.startsWith("[#general] <sender> ")) got++;
    if (l === "* slowpoke quit") slowQuit = true;
    return got === count;
  }, 30_000);
  assert.equal(got, count);
  assert.ok(slowQuit, "the slow consumer was disconnected");
  slow.close();
  assert.match(await server.stderr(), /"slowpoke"\): send queue exceeded 1048576 bytes/);
});

Deno.test("limits: a flooder is slowed, loses nothing, and others stay prompt", async () => {
  await using server = await startServer(["--flood-burst", "5", "--flood-rate", "10"]);
  await using flooder = await RawClient.text(server.port, "flooder");
  await using other = await RawClient.text(server.port, "other");
  await using watcher = await RawClient.json(server.port, "watcher");
  const start = Date.now();
  for (let i = 0; i < 15; i++) flooder.send(`flood ${i}`);
  await watcher.frame((f) => f.text === "flood 0");
  other.send("prompt");
  const prompt = await watcher.frame((f) => f.from === "other");
  const otherLatency = Date.now() - start;
  const last = await watcher.frame((f) => f.text === "flood 14", 10_000);
  const floodTime = Date.now() - start;
  assert.equal(prompt.text, "prompt");
  // 15 lines at burst 5 and 10/s: the last comes about a second later...
  assert.ok(floodTime >= 800, `flood took ${floodTime} ms`);
  // ...while the other user's line was not queued behind the flood.
  assert.ok(otherLatency < floodTime, `other took ${otherLatency} ms, flood ${floodTime} ms`);
  assert.equal(last.text, "flood 14");
});

Deno.test("limits: per-IP and total connection caps refuse with one line", async () => {
  await using server = await startServer(["--max-conns-per-ip", "2", "--limit-loopback"]);
  await using a = await RawClient.connect(server.port);
  await using b = await RawClient.connect(server.port);
  await a.line();
  await b.line();
  await using c = await RawClient.connect(server.port);
  assert.equal(await c.line(), "! Too many connections from your address");
  await c.closed();
  await using total = await startServer(["--max-conns", "1"]);
  await using d = await RawClient.connect(total.port);
  await d.line();
  await using e = await RawClient.connect(total.port);
  assert.equal(await e.line(), "! Too many connections: the server is full, try again later");
  await e.closed();
});

Deno.test("limits: loopback is exempt from the per-IP cap unless --limit-loopback", async () => {
  await using server = await startServer(["--max-conns-per-ip", "1"]);
  await using a = await RawClient.connect(server.port);
  await using b = await RawClient.connect(server.port);
  assert.match(await a.line(), /^\* Welcome/);
  assert.match(await b.line(), /^\* Welcome/);
});
