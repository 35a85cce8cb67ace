// The HTTP/1.1 server (serveHttp) on real sockets: keep-alive, pipelining, streamed bodies,
// 100-continue, smuggling defences, head limits and deadlines; and its pure parsers.
import assert from "node:assert/strict";
import net from "node:net";
import { ChunkedDecoder } from "../src/server/http_body.ts";
import { findHeadEnd, HttpError, interpretHead, parseHead } from "../src/server/http_head.ts";
import { serveHttp } from "../src/server/http_server.ts";
import { NodeByteConn } from "../src/transport/node_byte_conn.ts";
import { RawConn, sleep, startHttp, within } from "./_http_fixtures.ts";

const encoder = new TextEncoder();

/** Answers with the method and path, and the request body's length. */
async function echoPath(req: Request): Promise<Response> {
  const body = req.body === null ? 0 : (await req.arrayBuffer()).byteLength;
  return new Response(`${req.method} ${new URL(req.url).pathname} ${body}`);
}

function get(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${extra}\r\n`;
}

Deno.test("serveHttp: a kept-alive connection serves several requests", async () => {
  const ports = new Set<number>();
  await using server = startHttp((req, info) => {
    ports.add(info.remoteAddr.port);
    return echoPath(req);
  });
  await using client = await RawConn.connect(server.port);
  for (const path of ["/a", "/b", "/c"]) {
    await client.send(get(path));
    const res = await client.response();
    assert.equal(res.status, 200);
    assert.equal(res.text, `GET ${path} 0`);
    assert.equal(res.headers.get("connection"), null);
    assert.equal(res.headers.get("content-length"), String(res.body.length));
  }
  assert.equal(ports.size, 1);
  assert.ok(!client.ended);
});

Deno.test("serveHttp: a client that half-closes after its request still gets the answer", async () => {
  await using server = startHttp(echoPath);
  await using client = await RawConn.connect(server.port);
  await client.send(get("/half"));
  await client.conn.closeWrite();
  assert.equal((await client.response()).text, "GET /half 0");
  assert.ok(await client.closed());
});

Deno.test("serveHttp: pipelined requests are answered in order", async () => {
  await using server = startHttp(async (req) => {
    // The first takes longest: answers must still come in request order.
    if (req.url.endsWith("/slow")) await sleep(100);
    return echoPath(req);
  });
  await using client = await RawConn.connect(server.port);
  const post = "POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello";
  await client.send(get("/slow") + post + get("/last", "Connection: close\r\n"));
  assert.equal((await client.response()).text, "GET /slow 0");
  assert.equal((await client.response()).text, "POST /post 5");
  const last = await client.response();
  assert.equal(last.text, "GET /last 0");
  assert.equal(last.headers.get("connection"), "close");
  assert.ok(await client.closed());
});

Deno.test("serveHttp: a chunked upload of 8 MiB streams to the handler", async () => {
  const firstMiB = Promise.withResolvers<void>();
  let largest = 0;
  await using server = startHttp(async (req) => {
    let total = 0;
    let sum = 0;
    for await (const chunk of req.body!) {
      total += chunk.length;
      largest = Math.max(largest, chunk.length);
      for (const byte of chunk) sum = (sum + byte) % 65521;
      if (total >= 1 << 20) firstMiB.resolve();
    }
    return new Response(`${total} ${sum}`);
  });
  await using client = await RawConn.connect(server.port);
  await client.send(
    "POST /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
  );
  const piece = new Uint8Array(256 * 1024).map((_, i) => i % 251);
  let sum = 0;
  for (const byte of piece) sum = (sum + byte) % 65521;
  const chunk = new Uint8Array([
    ...encoder.encode(`${piece.length.toString(16)};ext=1\r\n`),
    ...piece,
    ...encoder.encode("\r\n"),
  ]);
  for (let i = 0; i < 4; i++) await client.send(chunk); // 1 MiB
  // Streaming: the handler has the first MiB while the rest is not even sent.
  assert.ok(await within(firstMiB.promise, 3000), "the handler got nothing yet");
  for (let i = 0; i < 28; i++) await client.send(chunk);
  await client.send("0\r\nx-trailer: ok\r\n\r\n");
  const res = await client.response();
  assert.equal(res.text, `${32 * piece.length} ${(sum * 32) % 65521}`);
  assert.ok(largest <= 64 * 1024, `a body chunk of ${largest} bytes`);
});

Deno.test("serveHttp: Expect: 100-continue is answered when the handler reads", async () => {
  await using server = startHttp((req) => {
    if (req.url.endsWith("/refuse")) return new Response("no\n", { status: 413 });
    return echoPath(req);
  });
  // Like curl: send the head, wait (up to 1 s) for 100 Continue, then the body.
  await using client = await RawConn.connect(server.port);
  const start = performance.now();
  await client.send(
    "POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
  );
  const interim = await client.response({ timeoutMs: 1000 });
  assert.equal(interim.status, 100);
  assert.ok(performance.now() - start < 500);
  await client.send("hello");
  assert.equal((await client.response()).text, "POST /up 5");

  // A handler that does not read: no 100, the final answer, and the connection closes.
  await client.send(
    "POST /refuse HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000000\r\n" +
      "Expect: 100-continue\r\n\r\n",
  );
  const refused = await client.response();
  assert.equal(refused.status, 413);
  assert.equal(refused.headers.get("connection"), "close");
  assert.ok(await client.closed());
});

const HAVE_CURL = (() => {
  try {
    return new Deno.Command("curl", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!HAVE_CURL) console.log("skipping the curl test: install curl (apt-get install -y curl)");

Deno.test({
  name: "serveHttp: curl's Expect: 100-continue upload does not wait for its timeout",
  ignore: !HAVE_CURL,
}, async () => {
  await using server = startHttp(echoPath);
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeFile(file, new Uint8Array(2 * 1024 * 1024));
    const start = performance.now();
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--expect100-timeout",
        "3",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        `@${file}`,
        `http://127.0.0.1:${server.port}/up`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout), `POST /up ${2 * 1024 * 1024}`);
    assert.ok(performance.now() - start < 2000, "curl waited for its 100-continue timeout");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("serveHttp: ambiguous or malformed requests get 4xx and the connection closes", async () => {
  let called = 0;
  await using server = startHttp(() => {
    called++;
    return new Response("ok");
  });
  const cases: [string, string, number][] = [
    [
      "CL and TE",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
    ],
    [
      "conflicting CLs",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      400,
    ],
    ["CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400],
    ["signed CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400],
    ["TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400],
    [
      "TE twice",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
    ],
    ["TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400],
    ["space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
    ["NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400],
    ["bare CR", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400],
    ["bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400],
    ["no Host", "GET / HTTP/1.1\r\n\r\n", 400],
    ["two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["bad Host", "GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n", 400],
    ["bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["asterisk form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
    ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505],
    ["garbage version", "GET / HTCPCP/1.0\r\nHost: a\r\n\r\n", 400],
    [
      "unknown Expect",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: tea\r\n\r\nx",
      417,
    ],
  ];
  for (const [name, request, status] of cases) {
    await using client = await RawConn.connect(server.port);
    await client.send(request);
    const res = await client.response();
    assert.equal(res.status, status, name);
    assert.equal(res.headers.get("connection"), "close", name);
    assert.ok(await client.closed(), name);
  }
  assert.equal(called, 0);
  assert.equal(server.clientErrors.length, cases.length);
});

Deno.test("serveHttp: malformed chunked bodies fail the body and close the connection", async () => {
  const errors: string[] = [];
  await using server = startHttp(async (req) => {
    try {
      await req.arrayBuffer();
      return new Response("read");
    } catch (error) {
      errors.push((error as Error).message);
      return new Response("bad body", { status: 400 });
    }
  });
  const bodies = [
    "zz\r\nhello\r\n0\r\n\r\n", // not hex
    "5\r\nhelloX\r\n0\r\n\r\n", // data longer than its size
    "5\nhello\r\n0\r\n\r\n", // bare LF
    `5;${"e".repeat(2000)}\r\nhello\r\n0\r\n\r\n`, // extension too long
    "fffffffffffffff\r\n", // too large
    `0\r\n${"x-t: v\r\n".repeat(2000)}\r\n`, // trailers too long
  ];
  for (const body of bodies) {
    await using client = await RawConn.connect(server.port);
    await client.send(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    const res = await client.response();
    assert.equal(res.status, 400, body.slice(0, 20));
    assert.ok(await client.closed(), body.slice(0, 20));
  }
  assert.equal(errors.length, bodies.length);
  assert.ok(errors.every((e) => e.startsWith("Cannot read the request body:")));
});

Deno.test("serveHttp: a 17 KiB head gets 431, a 17 KiB request line 414", async () => {
  await using server = startHttp(() => new Response("ok"));
  {
    await using client = await RawConn.connect(server.port);
    await client.send(get("/", `X-Big: ${"a".repeat(17 * 1024)}\r\n`));
    assert.equal((await client.response()).status, 431);
    assert.ok(await client.closed());
  }
  {
    await using client = await RawConn.connect(server.port);
    await client.send(get(`/${"a".repeat(17 * 1024)}`));
    assert.equal((await client.response()).status, 414);
    assert.ok(await client.closed());
  }
  {
    await using client = await RawConn.connect(server.port);
    await client.send(get("/", "X-A: b\r\n".repeat(101)));
    assert.equal((await client.response()).status, 431);
  }
  {
    // Just under the limits is fine.
    await using client = await RawConn.connect(server.port);
    await client.send(get("/", `X-Big: ${"a".repeat(15 * 1024)}\r\n` + "X-A: b\r\n".repeat(98)));
    assert.equal((await client.response()).status, 200);
  }
});

Deno.test("serveHttp: a slowloris head is cut off at headerTimeoutMs", async () => {
  await using server = startHttp(() => new Response("ok"), { headerTimeoutMs: 1000 });
  await using client = await RawConn.connect(server.port);
  const start = performance.now();
  await client.send("GET / HTTP/1.1\r\nHost: localhost\r\n");
  const trickle = (async () => {
    for (let i = 0; !client.ended && i < 50; i++) {
      await sleep(200);
      await client.send(`X-Line-${i}: ${i}\r\n`).catch(() => {});
    }
  })();
  const res = await client.response({ timeoutMs: 3000 });
  assert.equal(res.status, 408);
  assert.ok(await client.closed(1500));
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 900 && elapsed < 1500, `closed after ${elapsed} ms`);
  await trickle;

  // A connection that sends nothing is closed at the same deadline, without a response.
  await using silent = await RawConn.connect(server.port);
  const quiet = performance.now();
  assert.ok(await silent.closed(1500));
  assert.ok(performance.now() - quiet >= 900);
  assert.equal(silent.buffered.length, 0);
});

Deno.test("serveHttp: an idle kept-alive connection closes after keepAliveTimeoutMs", async () => {
  await using server = startHttp(echoPath, { keepAliveTimeoutMs: 300 });
  await using client = await RawConn.connect(server.port);
  await client.send(get("/"));
  assert.equal((await client.response()).status, 200);
  const start = performance.now();
  assert.ok(await client.closed(1500));
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 250 && elapsed < 1000, `closed after ${elapsed} ms`);
  assert.equal(client.buffered.length, 0); // no 408: no byte of a next request had come
});

Deno.test("serveHttp: a body that stalls for stallTimeoutMs fails and closes", async () => {
  let failure = "";
  await using server = startHttp(async (req) => {
    try {
      await req.arrayBuffer();
    } catch (error) {
      failure = (error as Error).message;
    }
    return new Response("late", { status: 400 });
  }, { stallTimeoutMs: 300 });
  await using client = await RawConn.connect(server.port);
  const start = performance.now();
  await client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
  assert.equal((await client.response()).status, 400);
  assert.ok(await client.closed(1000));
  assert.ok(performance.now() - start < 1000);
  assert.match(failure, /^Cannot read the request body: no body bytes for 300 ms/);
});

Deno.test("serveHttp: a client that stops reading a response is dropped after stallTimeoutMs", async () => {
  let chunks = 0;
  await using server = startHttp(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          chunks++;
          controller.enqueue(new Uint8Array(256 * 1024));
        },
      }),
    ), { stallTimeoutMs: 300 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(encoder.encode(get("/")));
    // Wait for the connection to be accepted before asking whether it settled.
    while (chunks === 0) await sleep(10);
    const done = await within(server.settled(), 3000);
    assert.ok(done, "the server kept writing to a client that reads nothing");
    assert.ok(chunks < 1000, `${chunks} chunks were produced`);
  } finally {
    conn.close();
  }
});

Deno.test("serveHttp: the abort signal closes idle kept-alive connections at once", async () => {
  const stop = new AbortController();
  await using server = startHttp(echoPath, { signal: stop.signal });
  await using idle = await RawConn.connect(server.port);
  await idle.send(get("/"));
  assert.equal((await idle.response()).status, 200);
  const start = performance.now();
  stop.abort();
  assert.ok(await idle.closed(1000));
  assert.ok(performance.now() - start < 500);
});

Deno.test("serveHttp: a handler that throws gets 500 and the connection stays usable", async () => {
  await using server = startHttp((req) => {
    if (req.url.endsWith("/boom")) throw new Error("handler bug");
    return echoPath(req);
  });
  await using client = await RawConn.connect(server.port);
  await client.send(get("/boom"));
  assert.equal((await client.response()).status, 500);
  await client.send(get("/ok"));
  assert.equal((await client.response()).text, "GET /ok 0");
  assert.equal(server.serverErrors.length, 1);
  assert.equal((server.serverErrors[0] as Error).message, "handler bug");
});

Deno.test("serveHttp: HEAD has no body, so the next response follows its head", async () => {
  await using server = startHttp(() =>
    new Response("hello world", { headers: { "content-length": "11" } })
  );
  await using client = await RawConn.connect(server.port);
  await client.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + get("/"));
  const head = await client.response({ head: true });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), "11");
  assert.ok(await client.until(() => client.buffered.length >= 8));
  assert.equal(new TextDecoder().decode(client.buffered.subarray(0, 8)), "HTTP/1.1");
  const res = await client.response();
  assert.equal(res.status, 200);
  assert.equal(res.text, "hello world");
});

Deno.test("serveHttp: streamed responses are chunked for 1.1 and close-delimited for 1.0", async () => {
  const stream = () =>
    new ReadableStream<Uint8Array>({
      async start(controller) {
        for (const part of ["one ", "two ", "three"]) {
          await sleep(20);
          controller.enqueue(encoder.encode(part));
        }
        controller.close();
      },
    });
  await using server = startHttp(() => new Response(stream()));
  {
    await using client = await RawConn.connect(server.port);
    await client.send(get("/"));
    const res = await client.response();
    assert.equal(res.headers.get("transfer-encoding"), "chunked");
    assert.equal(res.text, "one two three");
    await client.send(get("/"));
    assert.equal((await client.response()).text, "one two three");
  }
  {
    await using client = await RawConn.connect(server.port);
    await client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const res = await client.response();
    assert.equal(res.headers.get("transfer-encoding"), null);
    assert.equal(res.headers.get("connection"), "close");
    assert.equal(res.text, "one two three");
  }
});

Deno.test("serveHttp: HTTP/1.0 keep-alive is honoured only when asked for", async () => {
  await using server = startHttp(echoPath);
  {
    await using client = await RawConn.connect(server.port);
    await client.send("GET /x HTTP/1.0\r\n\r\n");
    const res = await client.response();
    assert.equal(res.text, "GET /x 0");
    assert.ok(await client.closed());
  }
  {
    await using client = await RawConn.connect(server.port);
    await client.send("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const res = await client.response();
    assert.equal(res.headers.get("connection"), "keep-alive");
    await client.send("GET /y HTTP/1.0\r\n\r\n");
    assert.equal((await client.response()).text, "GET /y 0");
    assert.ok(await client.closed());
  }
});

Deno.test("serveHttp: an unread body is drained up to 64 KiB, else the connection closes", async () => {
  await using server = startHttp((req) => new Response(new URL(req.url).pathname));
  await using client = await RawConn.connect(server.port);
  const small = "x".repeat(10_000);
  await client.send(`POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: ${small.length}\r\n\r\n`);
  await client.send(small);
  assert.equal((await client.response()).text, "/small");
  await client.send(get("/after"));
  assert.equal((await client.response()).text, "/after");

  await client.send("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
  const res = await client.response();
  assert.equal(res.text, "/big");
  assert.equal(res.headers.get("connection"), "close");
  assert.ok(await client.closed());
});

Deno.test("serveHttp: serves over a node:net socket through NodeByteConn", async () => {
  const tasks: Promise<void>[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const conn = new NodeByteConn(socket);
    tasks.push(serveHttp(conn, { remoteAddr: conn.remoteAddr, secure: true, handler: echoPath }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await using client = await RawConn.connect(port);
    const body = "y".repeat(300_000); // more than the adapter's high-water mark
    await client.send(`POST /n HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`);
    await client.send(body);
    assert.equal((await client.response()).text, `POST /n ${body.length}`);
    // A client that half-closes after its request (like `printf … | nc`) still gets the answer.
    await client.send(get("/m"));
    await client.conn.closeWrite();
    assert.equal((await client.response()).text, "GET /m 0");
    assert.ok(await client.closed());
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await Promise.all(tasks);
  }
});

Deno.test("serveHttp: req.url takes the scheme and the Host, or an absolute-form target", async () => {
  const urls: string[] = [];
  await using server = startHttp((req) => {
    urls.push(req.url);
    return new Response("ok");
  }, { secure: true });
  await using client = await RawConn.connect(server.port);
  await client.send("GET /p?q=1 HTTP/1.1\r\nHost: chat.example:8443\r\n\r\n");
  await client.response();
  await client.send("GET http://other.example/abs?x HTTP/1.1\r\nHost: chat.example\r\n\r\n");
  await client.response();
  assert.deepEqual(urls, ["https://chat.example:8443/p?q=1", "https://other.example/abs?x"]);
});

Deno.test("parseHead and interpretHead: strict fields, framing and keep-alive", () => {
  const parse = (text: string) => parseHead(encoder.encode(text), 100);
  const head = parse(
    "\r\nPOST /x HTTP/1.1\r\nHost: a\r\nX-Pad:  v \t\r\nContent-Length: 007\r\n\r\n",
  );
  assert.equal(head.method, "POST");
  assert.deepEqual(head.fields, [["host", "a"], ["x-pad", "v"], ["content-length", "007"]]);
  const meta = interpretHead(head, "http", "localhost");
  assert.deepEqual(meta.body, { kind: "length", length: 7 });
  assert.equal(meta.keepAlive, true);
  assert.equal(interpretHead(parse("GET / HTTP/1.0\r\n\r\n"), "http", "h").url, "http://h/");
  const status = (text: string) => {
    try {
      interpretHead(parse(text), "http", "h");
      return 0;
    } catch (error) {
      assert.ok(error instanceof HttpError);
      return error.status;
    }
  };
  assert.equal(status("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
  assert.equal(status("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n"), 400);
  assert.equal(status("GET /#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\r\n\r\n"), 0);
  assert.equal(findHeadEnd(encoder.encode("GET / HTTP/1.1\r\n\r\nrest")), 18);
  assert.equal(findHeadEnd(encoder.encode("GET / HTTP/1.1\r\n\r")), -1);
});

Deno.test("ChunkedDecoder: any split of the input decodes alike; garbage only throws HttpError", () => {
  const body = encoder.encode(
    "4\r\nWiki\r\n5;a=b\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\nNEXT",
  );
  const whole = new ChunkedDecoder().decode(body);
  assert.equal(whole.done, true);
  assert.equal(body.length - whole.used, 4);
  const text = (parts: Uint8Array[]) =>
    new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p])));
  assert.equal(text(whole.data), "Wikipedia in\r\n\r\nchunks.");
  for (let cut = 1; cut < body.length; cut++) {
    const decoder = new ChunkedDecoder();
    const a = decoder.decode(body.subarray(0, cut));
    const b = a.done ? { data: [], used: 0 } : decoder.decode(body.subarray(cut));
    assert.equal(text([...a.data, ...b.data]), "Wikipedia in\r\n\r\nchunks.", `cut at ${cut}`);
    assert.equal(a.done ? a.used : cut + b.used, whole.used, `cut at ${cut}`);
  }
  // Fuzz: random bytes (biased towards the grammar) never throw anything but HttpError.
  const alphabet = encoder.encode("0123456789abcdefABCDEF;=\r\n \t:xyz\0\x7f");
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let round = 0; round < 3000; round++) {
    const input = Uint8Array.from(
      { length: 1 + Math.floor(random() * 64) },
      () =>
        random() < 0.9
          ? alphabet[Math.floor(random() * alphabet.length)]!
          : Math.floor(random() * 256),
    );
    try {
      const result = new ChunkedDecoder().decode(input);
      assert.ok(result.used <= input.length);
    } catch (error) {
      assert.ok(error instanceof HttpError, String(error));
      assert.equal(error.status, 400);
    }
  }
});
