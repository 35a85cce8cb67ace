// End to end: the HTTP side (web client assets, /healthz, /ws) of the real server.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";

type Frame = Record<string, unknown>;

/** A WebSocket test client collecting JSON frames. */
class WsClient implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly frames: Frame[] = [];
  #waiters: (() => void)[] = [];
  #closed = Promise.withResolvers<CloseEvent>();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.onmessage = (e) => {
      this.frames.push(JSON.parse(e.data));
      for (const w of this.#waiters.splice(0)) w();
    };
    socket.onclose = (e) => {
      this.#closed.resolve(e);
      for (const w of this.#waiters.splice(0)) w();
    };
  }

  static async open(port: number, headers?: Record<string, string>): Promise<WsClient> {
    // deno-lint-ignore no-explicit-any
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers } as any);
    const client = new WsClient(socket);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("WebSocket refused"));
    });
    return client;
  }

  send(frame: Frame): void {
    this.socket.send(JSON.stringify(frame));
  }

  async frame(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i !== -1) return this.frames.splice(0, i + 1).at(-1)!;
      if (Date.now() > deadline) throw new Error("Timed out waiting for a frame");
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  closed(): Promise<CloseEvent> {
    return this.#closed.promise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    await this.#closed.promise;
  }
}

Deno.test("http: the page and its assets are served with strict headers and validators", async () => {
  await using server = await startServer();
  assert.match(
    server.stdout.join("\n"),
    new RegExp(`listening on http://127\\.0\\.0\\.1:${server.httpPort}`),
  );
  const base = `http://127.0.0.1:${server.httpPort}`;
  const page = await fetch(`${base}/`);
  const html = await page.text();
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(
    page.headers.get("content-security-policy")!,
    /default-src 'self'; script-src 'self'/,
  );
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  assert.equal(page.headers.get("referrer-policy"), "no-referrer");
  assert.equal(page.headers.get("cache-control"), "no-cache");
  const etag = page.headers.get("etag")!;
  const again = await fetch(`${base}/`, { headers: { "if-none-match": etag } });
  await again.body?.cancel();
  assert.equal(again.status, 304);
  const scripts = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  assert.ok(scripts.some((s) => s.endsWith(".js")) && scripts.some((s) => s.endsWith(".css")));
  assert.doesNotMatch(html, /https?:\/\//, "everything the browser loads comes from parley");
  for (const path of scripts) {
    const res = await fetch(`${base}${path}`);
    await res.arrayBuffer();
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.match(
      res.headers.get("content-type")!,
      /^(text\/javascript|text\/css|image\/svg\+xml|image\/png)/,
    );
  }
  // Compressed for clients that accept it, the same bytes once decoded, its own validator.
  const script = scripts.find((s) => s.endsWith(".js"))!;
  const plain = await fetch(`${base}${script}`, { headers: { "accept-encoding": "identity" } });
  const plainBytes = new Uint8Array(await plain.arrayBuffer());
  assert.equal(plain.headers.get("content-encoding"), null);
  for (const encoding of ["br", "gzip"]) {
    const res = await fetch(`${base}${script}`, { headers: { "accept-encoding": encoding } });
    assert.equal(res.headers.get("content-encoding"), encoding);
    assert.equal(res.headers.get("vary"), "accept-encoding");
    assert.notEqual(res.headers.get("etag"), plain.headers.get("etag"));
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), plainBytes, `${encoding} decodes`);
  }
  const missing = await fetch(`${base}/nope`);
  await missing.body?.cancel();
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("x-content-type-options"), "nosniff");
  const post = await fetch(`${base}/`, { method: "POST" });
  await post.body?.cancel();
  assert.equal(post.status, 405);
});

Deno.test("http: the web app manifest and the service worker, at stable paths", async () => {
  await using server = await startServer();
  const base = `http://127.0.0.1:${server.httpPort}`;
  const html = await (await fetch(`${base}/`)).text();
  assert.match(html, /<link rel="manifest" href="\/manifest\.webmanifest">/);
  assert.match(html, /<meta name="theme-color" content="#[0-9a-f]{6}">/);

  const res = await fetch(`${base}/manifest.webmanifest`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/manifest+json");
  assert.equal(res.headers.get("cache-control"), "no-cache", "revalidated: its path never changes");
  const manifest = await res.json();
  assert.equal(manifest.name, "parley");
  assert.equal(manifest.short_name, "parley");
  assert.equal(manifest.start_url, "/");
  assert.equal(manifest.display, "standalone");
  assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/);
  assert.match(manifest.background_color, /^#[0-9a-f]{6}$/);
  const icons = manifest.icons as { src: string; sizes: string; type: string }[];
  assert.deepEqual(icons.map((i) => [i.sizes, i.type]), [
    ["any", "image/svg+xml"],
    ["192x192", "image/png"],
    ["512x512", "image/png"],
  ]);
  for (const icon of icons) {
    const got = await fetch(new URL(icon.src, base));
    const body = new Uint8Array(await got.arrayBuffer());
    assert.equal(got.status, 200, icon.src);
    assert.equal(got.headers.get("content-type"), icon.type);
    if (icon.type !== "image/png") continue;
    // A PNG of the announced size: the signature, then IHDR's width and height.
    assert.deepEqual([...body.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const view = new DataView(body.buffer);
    assert.equal(`${view.getUint32(16)}x${view.getUint32(20)}`, icon.sizes);
  }

  const sw = await fetch(`${base}/sw.js`);
  const code = await sw.text();
  assert.equal(sw.status, 200);
  assert.equal(sw.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(sw.headers.get("cache-control"), "no-cache");
  assert.match(
    sw.headers.get("content-security-policy")!,
    /worker-src 'self'; manifest-src 'self'/,
  );
  // It keeps the shell by the names this build gives it, in a cache named after their hashes.
  const shell = JSON.parse(JSON.parse(/const SHELL = JSON\.parse\(("[^\n]*")\);/.exec(code)![1]!));
  assert.deepEqual(shell.slice(0, 1), ["/"]);
  for (const path of [...html.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1]!)) {
    assert.ok(shell.includes(path), `${path} is in the shell`);
  }
  assert.ok(
    shell.every((p: string) =>
      p === "/" || p.startsWith("/assets/") || p === "/manifest.webmanifest"
    ),
  );
  assert.match(code, /const VERSION = "[A-Za-z0-9_-]{16}";/);
});

Deno.test("http: /healthz reports status, version, uptime and connections", async () => {
  await using server = await startServer();
  const base = `http://127.0.0.1:${server.httpPort}`;
  await using _c = await RawClient.json(server.port);
  const health = await (await fetch(`${base}/healthz`)).json();
  assert.equal(health.status, "ok");
  assert.match(health.version, /^\d+\.\d+\.\d+/);
  assert.equal(typeof health.uptime, "number");
  assert.equal(health.connections, 1);
  assert.ok(health.rss > 1024 * 1024, "the server's resident memory, in bytes");
});

Deno.test("ws: a WebSocket user and a TCP user converse through the same sessions", async () => {
  await using server = await startServer();
  await using ws = await WsClient.open(server.httpPort);
  ws.send({ type: "hello", proto: 1, ref: "h" });
  const welcome = await ws.frame((f) => f.ref === "h");
  assert.equal(welcome.type, "welcome", "JSON mode from the first frame, no banner");
  ws.send({ type: "nick", name: "webby", ref: "n" });
  await ws.frame((f) => f.ref === "n");
  await using nc = await RawClient.text(server.port, "tex");
  ws.send({ type: "send", room: "#general", text: "hello from the browser", ref: "s" });
  assert.equal((await ws.frame((f) => f.ref === "s")).type, "ack");
  assert.equal(
    await nc.line((l) => l.startsWith("[")),
    "[#general] <webby> hello from the browser",
  );
  nc.send("hello from nc");
  assert.equal((await ws.frame((f) => f.type === "message")).text, "hello from nc");
});

Deno.test("ws: frame size, flood control and per-IP caps apply as on TCP", async () => {
  await using server = await startServer([
    "--max-line",
    "1024",
    "--flood-burst",
    "3",
    "--flood-rate",
    "5",
    "--max-conns-per-ip",
    "1",
    "--limit-loopback",
  ]);
  await using ws = await WsClient.open(server.httpPort);
  for (let i = 0; i < 6; i++) ws.send({ type: "ping", ref: String(i) });
  assert.equal((await ws.frame((f) => f.type === "error")).code, "rate_limited");
  await ws.frame((f) => f.ref === "5");
  const refused = await fetch(`http://127.0.0.1:${server.httpPort}/ws`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.equal(refused.status, 429, "the open WebSocket holds the address's one place");
  assert.match(await refused.text(), /Too many connections from your address/);
  ws.socket.send(JSON.stringify({ type: "send", room: "#general", text: "x".repeat(2000) }));
  assert.equal((await ws.closed()).code, 1009, "a message over --max-line closes with 1009");
});

Deno.test("ws: other sites' origins cannot open /ws unless allowed", async () => {
  await using server = await startServer(["--allow-origin", "https://chat.example"]);
  await assert.rejects(WsClient.open(server.httpPort, { origin: "https://evil.example" }));
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/ws`, {
    headers: {
      origin: "https://evil.example",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.equal(res.status, 403);
  await res.body?.cancel();
  await using same = await WsClient.open(server.httpPort, {
    origin: `http://127.0.0.1:${server.httpPort}`,
  });
  await using listed = await WsClient.open(server.httpPort, { origin: "https://chat.example" });
  same.send({ type: "ping", ref: "p" });
  listed.send({ type: "ping", ref: "p" });
  assert.equal((await same.frame((f) => f.ref === "p")).type, "pong");
  assert.equal((await listed.frame((f) => f.ref === "p")).type, "pong");
});

Deno.test("ws: a browser that stops reading is cut off by the send queue; others keep receiving", async () => {
  await using server = await startServer([
    "--flood-rate",
    "0",
    "--max-sendq",
    "262144",
    "--log-level",
    "debug",
  ]);
  // A WebSocket client that completes the upgrade and then never reads again.
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
  await raw.write(new TextEncoder().encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const head = new Uint8Array(1024);
  const n = await raw.read(head);
  assert.match(new TextDecoder().decode(head.subarray(0, n!)), /^HTTP\/1.1 101/);
  const hello = new TextEncoder().encode(JSON.stringify({ type: "nick", name: "stuck" }));
  const mask = [1, 2, 3, 4];
  const frame = new Uint8Array([
    0x81,
    0x80 | hello.length,
    ...mask,
    ...hello.map((b, i) => b ^ mask[i % 4]!),
  ]);
  await raw.write(frame);
  await using reader = await RawClient.text(server.port, "reader");
  await using sender = await RawClient.json(server.port, "sender");
  await reader.line((l) => l.includes("stuck") || l.includes("sender"));
  const text = "w".repeat(4000);
  const count = 4000;
  for (let i = 0; i < count; i++) {
    sender.send({ type: "send", room: "#general", text: `${i} ${text}` });
  }
  let got = 0;
  let stuckQuit = false;
  await reader.line((l) => {
    if (l.startsWith("[#general] <sender>")) got++;
    if (l === "* stuck quit") stuckQuit = true;
    return got === count;
  }, 30_000);
  assert.ok(stuckQuit, "the stuck browser was disconnected");
  raw.close();
  assert.match(await server.stderr(), /"stuck"\): send queue exceeded 262144 bytes/);
});

Deno.test("http: --no-http opens no HTTP listener", async () => {
  await using server = await startServer(["--no-http"]);
  assert.equal(server.stdout.filter((l) => l.startsWith("listening on http")).length, 0);
  assert.equal(server.httpPort, 0);
});

Deno.test("web assets: src/web/assets.gen.ts is built from the current sources", async () => {
  const build = new URL("../src/web/build.ts", import.meta.url).pathname;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-run", "--allow-env", build, "--check"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
});
