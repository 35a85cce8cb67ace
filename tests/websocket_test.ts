// WebSocket (RFC 6455) over serveHttp on real sockets: interop with Deno's client, the message
// and queue limits, protocol errors, ping/pong, closing; and the pure frame decoder, fuzzed.
import assert from "node:assert/strict";
import type { HttpServeOptions } from "../src/server/http_server.ts";
import type { WebSocketLimits } from "../src/transport/websocket.ts";
import type { Connection } from "../src/transport/connection.ts";
import {
  encodeClose,
  encodeFrame,
  FrameDecoder,
  frameHeaderLength,
  Opcode,
  writeFrameHeader,
} from "../src/protocol/websocket_frames.ts";
import type { FrameEvent } from "../src/protocol/websocket_frames.ts";
import { RawConn, RawWs, startHttp } from "./_http_fixtures.ts";

const encoder = new TextEncoder();
const LIMITS: WebSocketLimits = { maxMessage: 64 * 1024, maxInbound: 256 * 1024 };

/**
 * A handler that upgrades `/ws` and gives each connection to `session` (by default: echo each
 * line back, then its upper case).
 */
function wsHandler(
  session: (conn: Connection) => Promise<void> = echo,
  limits: WebSocketLimits = LIMITS,
): HttpServeOptions["handler"] {
  return (_req, info) => {
    try {
      const { connection, response } = info.upgradeWebSocket(limits);
      assert.equal(response.status, 101);
      void session(connection);
      response.headers.set("x-frame-options", "DENY");
      return response;
    } catch (error) {
      return new Response(`${(error as Error).message}\n`, { status: 400 });
    }
  };
}

async function echo(conn: Connection): Promise<void> {
  for await (const event of conn.messages()) {
    const line = "line" in event ? event.line : `error ${event.error}`;
    try {
      await conn.write(encoder.encode(`${line}\n${line.toUpperCase()}\n`));
    } catch {
      break;
    }
  }
  conn.close();
}

Deno.test("WebSocket: Deno's own client round-trips text frames", async () => {
  await using server = startHttp(wsHandler());
  const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
  const received: string[] = [];
  const closed = Promise.withResolvers<CloseEvent>();
  const got = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => received.length >= n ? resolve() : setTimeout(check, 5);
      check();
    });
  socket.onmessage = (e) => received.push(e.data);
  socket.onclose = (e) => closed.resolve(e);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  assert.equal(socket.extensions, ""); // no permessage-deflate
  socket.send("hello");
  socket.send("héllo wörld ✓");
  socket.send(new TextEncoder().encode("binary text")); // binary frames are read as UTF-8
  socket.send("x".repeat(60_000));
  await got(8);
  assert.deepEqual(received.slice(0, 6), [
    "hello",
    "HELLO",
    "héllo wörld ✓",
    "HÉLLO WÖRLD ✓",
    "binary text",
    "BINARY TEXT",
  ]);
  assert.equal(received[6], "x".repeat(60_000));
  socket.close(1000, "bye");
  const event = await closed.promise;
  assert.equal(event.code, 1000);
});

Deno.test("WebSocket: a 100 MiB fragmented message is closed with 1009 early", async () => {
  const maxMessage = 1024 * 1024;
  let read = 0; // what the server read from its socket
  let readAtEnd = -1;
  let served = 0;
  await using server = startHttp(
    wsHandler(async (conn) => {
      for await (const _ of conn.messages()) served++;
      readAtEnd = read;
      conn.close();
    }, { maxMessage, maxInbound: 4 * maxMessage }),
    {
      wrap: (conn) => ({
        read: async (p) => {
          const n = await conn.read(p);
          read += n ?? 0;
          return n;
        },
        write: (p) => conn.write(p),
        closeWrite: () => conn.closeWrite(),
        close: () => conn.close(),
      }),
    },
  );
  const rssBefore = Deno.memoryUsage().rss;
  await using ws = await RawWs.open(server.port);
  const fragment = 64 * 1024;
  const mask = new Uint8Array([1, 2, 3, 4]);
  const payload = new Uint8Array(fragment).fill(0x61);
  const first = encodeFrame(Opcode.text, payload, { fin: false, mask });
  const rest = encodeFrame(Opcode.continuation, payload, { fin: false, mask });
  const total = 100 * 1024 * 1024;
  let sent = 0;
  let closeSeenAt = -1;
  const closing = ws.closeFrame(10_000).then((frame) => {
    closeSeenAt = sent;
    return frame;
  });
  try {
    for (let i = 0; sent < total && closeSeenAt === -1; i++) {
      await ws.raw.send(i === 0 ? first : rest);
      sent += fragment;
    }
  } catch {
    // reset once the server gave up: fine, as long as its close frame came first
  }
  const frame = await closing;
  assert.equal(frame.code, 1009);
  assert.equal(served, 0);
  assert.ok(closeSeenAt < total / 4, `the close came after ${closeSeenAt} bytes were sent`);
  assert.ok(readAtEnd >= maxMessage, `the server read ${readAtEnd} bytes`);
  assert.ok(readAtEnd <= maxMessage + 256 * 1024, `the server read ${readAtEnd} bytes`);
  const grown = Deno.memoryUsage().rss - rssBefore;
  assert.ok(grown < 40 * 1024 * 1024, `memory grew by ${grown} bytes`);
});

Deno.test("WebSocket: protocol violations close with 1002", async () => {
  await using server = startHttp(wsHandler());
  const violations: [string, Uint8Array][] = [
    ["unmasked frame", encodeFrame(Opcode.text, encoder.encode("hi"))],
    ["reserved bit", withFirstByte(0xc1)],
    ["unknown opcode", withFirstByte(0x83)],
    ["fragmented ping", withFirstByte(0x09)],
    ["long ping", encodeFrame(Opcode.ping, new Uint8Array(126), { mask: new Uint8Array(4) })],
    [
      "orphan continuation",
      encodeFrame(Opcode.continuation, encoder.encode("x"), { mask: new Uint8Array(4) }),
    ],
  ];
  for (const [name, frame] of violations) {
    await using ws = await RawWs.open(server.port);
    await ws.raw.send(frame);
    const close = await ws.closeFrame();
    assert.equal(close.code, 1002, name);
    assert.ok(await ws.raw.closed(), name);
  }
});

/** A masked one-byte text frame with its first byte replaced. */
function withFirstByte(b0: number): Uint8Array {
  const frame = encodeFrame(Opcode.text, encoder.encode("x"), { mask: new Uint8Array(4) });
  frame[0] = b0;
  return frame;
}

Deno.test("WebSocket: invalid UTF-8 in a text message closes with 1007", async () => {
  await using server = startHttp(wsHandler());
  await using ws = await RawWs.open(server.port);
  await ws.text("fine");
  assert.deepEqual(await ws.next(), { type: "message", binary: false, text: "fine" });
  await ws.send(Opcode.text, new Uint8Array([0x68, 0xc3]), false); // "h" and half an "é"
  await ws.send(Opcode.continuation, new Uint8Array([0x28])); // not a continuation byte
  assert.equal((await ws.closeFrame()).code, 1007);
});

Deno.test("WebSocket: a binary message that is not UTF-8 yields bad_utf8, not a close", async () => {
  await using server = startHttp(wsHandler());
  await using ws = await RawWs.open(server.port);
  await ws.send(Opcode.binary, new Uint8Array([0xff, 0xfe]));
  assert.deepEqual(await ws.next(), { type: "message", binary: false, text: "error bad_utf8" });
});

Deno.test("WebSocket: a ping gets a pong with its payload", async () => {
  await using server = startHttp(wsHandler());
  await using ws = await RawWs.open(server.port);
  await ws.send(Opcode.ping, "are you there?");
  const pong = await ws.next();
  assert.equal(pong?.type, "pong");
  assert.equal(
    new TextDecoder().decode((pong as { payload: Uint8Array }).payload),
    "are you there?",
  );
});

Deno.test("WebSocket: a fragmented message within the limit is delivered whole", async () => {
  await using server = startHttp(wsHandler());
  await using ws = await RawWs.open(server.port);
  const bytes = encoder.encode("fragments of ✓ one message");
  await ws.send(Opcode.text, bytes.subarray(0, 13), false); // splits the "✓"
  await ws.send(Opcode.ping, "between");
  await ws.send(Opcode.continuation, bytes.subarray(13, 20), false);
  await ws.send(Opcode.continuation, bytes.subarray(20));
  assert.equal((await ws.next())?.type, "pong");
  assert.deepEqual(await ws.next(), {
    type: "message",
    binary: false,
    text: "fragments of ✓ one message",
  });
  await ws.next(); // its upper case
  // Exactly maxMessage in fragments passes; one byte more is refused.
  const half = new Uint8Array(LIMITS.maxMessage / 2).fill(0x62);
  await ws.send(Opcode.text, half, false);
  await ws.send(Opcode.continuation, half);
  const whole = await ws.next();
  assert.equal(whole?.type === "message" && whole.text?.length, LIMITS.maxMessage);
  await ws.next(); // its upper case
  await ws.send(Opcode.text, half, false);
  await ws.send(Opcode.continuation, new Uint8Array(half.length + 1));
  assert.equal((await ws.closeFrame()).code, 1009);
});

Deno.test("WebSocket: a client that floods past maxInbound is closed with 1008", async () => {
  let read = 0;
  const reading = Promise.withResolvers<void>();
  await using server = startHttp(
    wsHandler(async (conn) => {
      await reading.promise; // a session that does not read yet
      for await (const _ of conn.messages()) read++;
      conn.close();
    }, { maxMessage: 1024, maxInbound: 10 * 1024 }),
  );
  await using ws = await RawWs.open(server.port);
  const line = "z".repeat(1000);
  for (let i = 0; i < 20; i++) await ws.text(line);
  const close = await ws.closeFrame();
  assert.equal(close.code, 1008);
  assert.equal(close.reason, "flooding");
  reading.resolve();
  assert.ok(await ws.raw.closed());
  assert.ok(read <= 10, `${read} messages were queued`);

  // Empty messages count too: they cannot pile up for free.
  await using empty = await RawWs.open(server.port);
  for (let i = 0; i < 1000 && !empty.raw.ended; i++) await empty.text("");
  assert.equal((await empty.closeFrame()).code, 1008);
});

Deno.test("WebSocket: a silent peer is pinged, then closed", async () => {
  await using server = startHttp(wsHandler(echo, { ...LIMITS, pingAfterMs: 200 }));
  await using ws = await RawWs.open(server.port);
  const start = performance.now();
  const ping = await ws.next(1000);
  assert.equal(ping?.type, "ping");
  assert.ok(performance.now() - start >= 150);
  // Answering resets the clock: no close while it keeps answering.
  await ws.send(Opcode.pong, new Uint8Array(0));
  assert.equal((await ws.next(1000))?.type, "ping");
  const close = await ws.closeFrame(1000);
  assert.equal(close.code, 1001);
  assert.ok(performance.now() - start >= 500);
  assert.ok(await ws.raw.closed());
});

Deno.test("WebSocket: close() runs the closing handshake", async () => {
  await using server = startHttp(wsHandler(async (conn) => {
    for await (const event of conn.messages()) {
      if ("line" in event && event.line === "quit") {
        await conn.write(encoder.encode("bye\n"));
        conn.close();
      }
    }
  }));
  await using ws = await RawWs.open(server.port);
  await ws.text("quit");
  assert.deepEqual(await ws.next(), { type: "message", binary: false, text: "bye" });
  const close = await ws.closeFrame();
  assert.equal(close.code, 1000);
  assert.ok(!ws.raw.ended); // the server waits for our answer
  await ws.raw.send(encodeClose(1000, "", { mask: new Uint8Array([9, 9, 9, 9]) }));
  assert.ok(await ws.raw.closed(500));
});

Deno.test("WebSocket: the peer's close is answered with the same code", async () => {
  await using server = startHttp(wsHandler());
  await using ws = await RawWs.open(server.port);
  await ws.raw.send(encodeClose(4001, "done", { mask: new Uint8Array([1, 1, 1, 1]) }));
  assert.equal((await ws.closeFrame()).code, 4001);
  assert.ok(await ws.raw.closed());
});

Deno.test("WebSocket: write() waits while the peer does not read", async () => {
  const stuck = Promise.withResolvers<number>();
  const line = encoder.encode("w".repeat(64 * 1024 - 1) + "\n");
  const most = 2000;
  await using server = startHttp(wsHandler(async (conn) => {
    let written = 0;
    for (let i = 0; i < most; i++) {
      const timer = Promise.withResolvers<"stuck">();
      const id = setTimeout(() => timer.resolve("stuck"), 300);
      const result = await Promise.race([conn.write(line).then(() => "ok" as const), timer.promise])
        .catch(() => "failed" as const);
      clearTimeout(id);
      if (result !== "ok") break;
      written += line.length;
    }
    stuck.resolve(written);
    conn.close();
  }));
  // A client that upgrades and then never reads.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(encoder.encode(
      `GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    const written = await stuck.promise;
    assert.ok(written < most * line.length, "every write resolved although nothing was read");
  } finally {
    conn.close();
  }
});

Deno.test("WebSocket: upgradeWebSocket refuses an invalid upgrade request", async () => {
  await using server = startHttp(wsHandler());
  const cases: [string, string][] = [
    ["no key", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"],
    [
      "bad key",
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\n" +
      "Sec-WebSocket-Version: 13\r\n",
    ],
    [
      "version 8",
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 8\r\n",
    ],
    [
      "no Connection: upgrade",
      "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\n",
    ],
  ];
  for (const [name, fields] of cases) {
    await using raw = await RawConn.connect(server.port);
    await raw.send(`GET /ws HTTP/1.1\r\nHost: a\r\n${fields}\r\n`);
    const res = await raw.response();
    assert.equal(res.status, 400, name);
    assert.match(res.text, /^Cannot upgrade to a WebSocket: /, name);
  }
});

Deno.test("WebSocket: frames sent right behind the upgrade request are not lost", async () => {
  await using server = startHttp(wsHandler());
  await using raw = await RawConn.connect(server.port);
  const frame = encodeFrame(Opcode.text, encoder.encode("early"), { mask: new Uint8Array(4) });
  const head = encoder.encode(
    `GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await raw.send(new Uint8Array([...head, ...frame]));
  const res = await raw.response({ head: true });
  assert.equal(res.status, 101);
  assert.equal(res.headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  assert.equal(res.headers.get("sec-websocket-extensions"), null);
  const decoder = new FrameDecoder({ maxMessage: 1024, masked: false });
  assert.ok(await raw.until(() => raw.buffered.length >= 7));
  assert.deepEqual([...decoder.push(raw.take(7))], [{
    type: "message",
    binary: false,
    text: "early",
  }]);
});

Deno.test("FrameDecoder: any split decodes alike; fuzzed input only yields events", () => {
  const mask = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
  const long = new Uint8Array(70_000).fill(0x41);
  const stream = new Uint8Array([
    ...encodeFrame(Opcode.text, encoder.encode("héllo"), { mask }),
    ...encodeFrame(Opcode.binary, encoder.encode("bin"), { mask, fin: false }),
    ...encodeFrame(Opcode.ping, encoder.encode("p"), { mask }),
    ...encodeFrame(Opcode.continuation, encoder.encode("ary"), { mask }),
    ...encodeFrame(Opcode.text, long, { mask }),
    ...encodeFrame(Opcode.text, new Uint8Array(300).fill(0x42), { mask }),
    ...encodeClose(1000, "done", { mask }),
    ...encodeFrame(Opcode.text, encoder.encode("ignored"), { mask }),
  ]);
  const summary = (events: FrameEvent[]) =>
    events.map((e) =>
      e.type === "message"
        ? `m:${e.binary}:${e.text?.length}:${e.text?.slice(0, 5)}`
        : e.type === "close"
        ? `c:${e.code}:${e.reason}`
        : e.type
    );
  const expected = [
    "m:false:5:héllo",
    "ping",
    "m:true:6:binar",
    "m:false:70000:AAAAA",
    "m:false:300:BBBBB",
    "c:1000:done",
  ];
  const decodeIn = (cuts: number[]) => {
    const decoder = new FrameDecoder({ maxMessage: 100_000, masked: true });
    const events: FrameEvent[] = [];
    let at = 0;
    for (const cut of [...cuts, stream.length]) {
      events.push(...decoder.push(stream.slice(at, cut)));
      at = cut;
    }
    return summary(events);
  };
  assert.deepEqual(decodeIn([]), expected);
  for (let cut = 1; cut < 64; cut++) assert.deepEqual(decodeIn([cut]), expected, `cut at ${cut}`);
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let round = 0; round < 200; round++) {
    const cuts = Array.from({ length: 5 }, () => Math.floor(random() * stream.length)).sort((
      a,
      b,
    ) => a - b);
    assert.deepEqual(decodeIn(cuts), expected);
  }
  // The limit holds for a message of many small fragments, from the header that crosses it.
  const decoder = new FrameDecoder({ maxMessage: 10, masked: true });
  const frag = (op: number) => encodeFrame(op, encoder.encode("abcd"), { mask, fin: false });
  const events = [...decoder.push(new Uint8Array([...frag(Opcode.text), ...frag(0), ...frag(0)]))];
  assert.deepEqual(events, [{ type: "error", code: 1009, reason: "message too big" }]);
  // Non-minimal lengths and oversized 64-bit lengths are refused from the header alone.
  const header = new Uint8Array(14);
  const n = writeFrameHeader(header, 0, Opcode.text, 1 << 20, { mask });
  assert.equal(n, frameHeaderLength(1 << 20, true));
  assert.equal(
    ([...new FrameDecoder({ maxMessage: 1 << 19, masked: true }).push(header.subarray(0, n))][
      0
    ] as { code: number }).code,
    1009,
  );
  const nonMinimal = new Uint8Array([0x81, 0xfe, 0x00, 0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5]);
  assert.equal(
    ([...new FrameDecoder({ maxMessage: 100, masked: true }).push(nonMinimal)][0] as {
      code: number;
    }).code,
    1002,
  );
  // Fuzz: random bytes never throw, and nothing comes after an error or a close.
  for (let round = 0; round < 2000; round++) {
    const input = Uint8Array.from(
      { length: 1 + Math.floor(random() * 48) },
      () => Math.floor(random() * 256),
    );
    const fuzzed = new FrameDecoder({ maxMessage: 64, masked: random() < 0.5 });
    const out = [...fuzzed.push(input), ...fuzzed.push(input.slice())];
    const end = out.findIndex((e) => e.type === "error" || e.type === "close");
    assert.ok(end === -1 || end === out.length - 1);
  }
});
