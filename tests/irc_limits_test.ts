/**
 * IRC input as hostile bytes: lines split anywhere (inside UTF-8 sequences too), LF or CRLF,
 * overlong lines and tag sections (417, the connection stays up), invalid UTF-8; and the pure
 * line codec (src/irc/message.ts) at its edges.
 */

import assert from "node:assert/strict";
import {
  formatIrcLine,
  MAX_LINE_BYTES,
  MAX_TAG_BYTES,
  parseIrcLine,
  splitUtf8,
  unescapeTag,
} from "../src/irc/message.ts";
import { RawClient, startServer } from "./_helpers.ts";
import { IrcClient } from "./_irc.ts";

const NAME = ["--server-name", "irc.test"];
const encoder = new TextEncoder();

Deno.test("irc: registration and a message sent one byte at a time, split inside UTF-8, LF and CRLF", async () => {
  await using server = await startServer(NAME);
  await using json = await RawClient.json(server.port, "listener");
  await using c = await IrcClient.connect(server.ircPort);
  const bytes = encoder.encode(
    "CAP LS 302\r\nNICK slow\nUSER slow 0 * :Slow Poke\r\nCAP END\r\n" +
      "PRIVMSG #general :ça va? 😀 ok\r\n",
  );
  for (const byte of bytes) {
    c.sendRaw(new Uint8Array([byte]));
    await c.raw.flushed();
  }
  await c.expect("001");
  const got = await json.frame((f) => f.type === "message" && f.from === "slow");
  assert.equal(got.text, "ça va? 😀 ok");
});

Deno.test("irc: an overlong line or tag section gets 417 and the connection stays up", async () => {
  await using server = await startServer(NAME);
  await using json = await RawClient.json(server.port, "listener");
  await using c = await IrcClient.register(server.ircPort, "longo");
  // 511 bytes without the line ending: over 510.
  const long = "PRIVMSG #general :" + "x".repeat(MAX_LINE_BYTES - 2 - 18 + 1);
  assert.equal(encoder.encode(long).length, 511);
  c.send(long);
  await c.expect("417");
  // 510 exactly is fine.
  c.send(long.slice(0, -1));
  const fine = await json.frame((f) => f.type === "message" && f.from === "longo");
  assert.equal((fine.text as string).length, 510 - 18);
  // Tags up to 8191 bytes are read; more is 417.
  c.send(`@+x=${"a".repeat(MAX_TAG_BYTES - 6)} PRIVMSG #general :tags ok`);
  assert.equal(
    (await json.frame((f) => f.type === "message" && f.from === "longo")).text,
    "tags ok",
  );
  c.send(`@+x=${"a".repeat(MAX_TAG_BYTES)} PRIVMSG #general :too many tags`);
  await c.expect("417");
  // Past the listener's buffer (512 + 8191): discarded as it streams in, then 417.
  c.sendRaw(encoder.encode("PRIVMSG #general :" + "y".repeat(100_000) + "\r\n"));
  await c.expect("417");
  c.send("PING :still here");
  await c.expect("PONG");
  assert.equal(json.pending().filter((l) => l.includes("too many tags")).length, 0);
});

Deno.test("irc: invalid UTF-8 is refused with a notice (FAIL with standard-replies); the connection stays up", async () => {
  await using server = await startServer(NAME);
  await using c = await IrcClient.register(server.ircPort, "bytes", { caps: ["standard-replies"] });
  c.sendRaw(new Uint8Array([...encoder.encode("PRIVMSG #general :bad "), 0xff, 0xfe, 0x0d, 0x0a]));
  const fail = await c.expect("FAIL");
  assert.equal(fail.params[1], "BAD_UTF8");
  await using d = await IrcClient.register(server.ircPort, "bytes2");
  d.sendRaw(new Uint8Array([...encoder.encode("PRIVMSG #general :bad "), 0xc3, 0x0a]));
  await d.expect("NOTICE", (m) => /UTF-8/.test(m.params[1]!));
  d.send("PING :ok");
  await d.expect("PONG");
});

Deno.test("irc: a long message from another dialect is cut into lines that fit 512 bytes", async () => {
  await using server = await startServer(NAME);
  await using c = await IrcClient.register(server.ircPort, "reader", { caps: ["server-time"] });
  await using json = await RawClient.json(server.port, "writer");
  const text = "é".repeat(1500); // 3000 bytes
  json.send({ type: "send", room: "#general", text });
  let joined = "";
  while (joined.length < 1500) {
    const line = await c.line((l) => l.includes(" PRIVMSG #general "));
    const withoutTags = line.replace(/^@\S+ /, "");
    assert.ok(encoder.encode(withoutTags).length + 2 <= MAX_LINE_BYTES, `${withoutTags.length}`);
    joined += (parseIrcLine(line) as { params: string[] }).params[1];
  }
  assert.equal(joined, text);
});

Deno.test("parseIrcLine() and formatIrcLine(): tags, prefixes, trailing, escapes, limits", () => {
  const m = parseIrcLine("@a=1;b;c=x\\sy\\:z\\\\ :src!u@h   PRIVMSG   #c   :hi :there");
  assert.ok(typeof m !== "string");
  assert.deepEqual([...m.tags], [["a", "1"], ["b", ""], ["c", "x y;z\\"]]);
  assert.equal(m.source, "src!u@h");
  assert.deepEqual(m.params, ["#c", "hi :there"]);
  assert.equal((parseIrcLine("nick alice") as { command: string }).command, "NICK");
  assert.deepEqual((parseIrcLine("PRIVMSG #c :") as { params: string[] }).params, ["#c", ""]);
  assert.equal(parseIrcLine(""), "empty");
  assert.equal(parseIrcLine("   "), "empty");
  assert.equal(parseIrcLine("@tags-only"), "empty");
  assert.equal(parseIrcLine("X " + "a".repeat(509)), "too_long");
  assert.ok(typeof parseIrcLine("X " + "a".repeat(508)) !== "string");
  assert.equal(parseIrcLine("@" + "a".repeat(MAX_TAG_BYTES) + " PING x"), "tags_too_long");
  assert.equal(unescapeTag("end\\"), "end");
  assert.equal(
    formatIrcLine({ source: "s", command: "PRIVMSG", params: ["#c", "word"] }),
    ":s PRIVMSG #c :word\r\n",
  );
  assert.equal(formatIrcLine({ command: "JOIN", params: ["#c"] }), "JOIN #c\r\n");
  // A parameter can never end the line early.
  assert.equal(
    formatIrcLine({ command: "NOTICE", params: ["x", "a\r\nQUIT"] }),
    "NOTICE x :a  QUIT\r\n",
  );
  assert.equal(
    formatIrcLine({ tags: [["k", "a b;c\\\r\n"]], command: "TAGMSG", params: ["#c"] }),
    "@k=a\\sb\\:c\\\\\\r\\n TAGMSG #c\r\n",
  );
});

Deno.test("splitUtf8() never cuts a character and keeps every piece within the limit", () => {
  for (const text of ["😀".repeat(50), "a😀b".repeat(40), "word ".repeat(100), "x"]) {
    for (const max of [4, 5, 7, 33]) {
      const pieces = splitUtf8(text, max);
      assert.equal(pieces.join(""), text);
      for (const piece of pieces) {
        assert.ok(encoder.encode(piece).length <= max, `${max}: ${piece}`);
        assert.ok(piece.isWellFormed());
      }
    }
  }
});

Deno.test("irc: a connection that does not finish registering within --first-line-timeout is closed", async () => {
  await using server = await startServer([...NAME, "--first-line-timeout", "1"]);
  await using c = await IrcClient.connect(server.ircPort);
  c.send("NICK lingerer");
  const error = await c.expect("ERROR", () => true, 5000);
  assert.match(error.params[0]!, /Closing link/);
  await c.raw.closed();
  // Registered in time: kept.
  await using d = await IrcClient.register(server.ircPort, "quick");
  await new Promise((r) => setTimeout(r, 1500));
  d.send("PING :alive");
  await d.expect("PONG");
});

Deno.test("irc: WHO on a room too big for the send queue is capped (416) and the asker stays connected", async () => {
  // --max-sendq 8192: WHO lists at most 8192 / 4 / 320 = 6 members. The whole list (60 lines of
  // about 170 bytes) would overflow the send queue and cut the asker off.
  await using server = await startServer([...NAME, "--max-sendq", "8192"]);
  const members: RawClient[] = [];
  try {
    for (let i = 0; i < 59; i++) {
      const m = await RawClient.json(server.port, `m${String(i).padStart(31, "0")}`);
      m.send({ type: "join", room: "#huge", ref: "j" });
      await m.frame((f) => f.ref === "j");
      members.push(m);
    }
    await using c = await IrcClient.register(server.ircPort, "asker");
    c.send("JOIN #huge");
    await c.expect("366", (m) => m.params[1] === "#huge");
    c.send("WHO #huge");
    const lines: string[] = [];
    await c.line((l) => {
      lines.push(l);
      return / 315 /.test(l);
    });
    const who = lines.filter((l) => / 352 /.test(l));
    assert.equal(who.length, 6);
    const cap = lines.find((l) => / 416 /.test(l));
    assert.ok(cap, lines.join("\n"));
    assert.match(cap, /416 asker WHO :Too many matches: 6 of 60 shown/);
    c.send("PING :alive");
    await c.expect("PONG", (m) => m.params.at(-1) === "alive");
  } finally {
    for (const m of members) await m[Symbol.asyncDispose]();
  }
});
