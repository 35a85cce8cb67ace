// End to end: file transfer through the real server's HTTP side.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { makeCert, RawClient, request, startServer, tempDir, tlsServerArgs } from "./_helpers.ts";
import type { ServerProcess } from "./_helpers.ts";

type Frame = Record<string, unknown>;
const MiB = 1024 * 1024;

/** Registers `name` over JSON mode; returns the connection and its token. */
async function user(port: number, name: string, ...rooms: string[]) {
  const c = await RawClient.json(port);
  const reply = await request(c, { type: "register", name, password: "correct horse" });
  assert.equal(reply.type, "ack", JSON.stringify(reply));
  for (const room of rooms) await request(c, { type: "join", room });
  return { c, token: String(reply.token) };
}

/** Deterministic pseudo-random bytes, produced in chunks (never all in memory at once). */
function bytes(
  size: number,
  seed = 1,
): { stream: () => ReadableStream<Uint8Array>; sha256: string } {
  const chunk = (i: number) => {
    const out = new Uint8Array(Math.min(64 * 1024, size - i * 64 * 1024));
    let x = (seed * 2654435761 + i) >>> 0;
    for (let j = 0; j < out.length; j++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[j] = x >>> 24;
    }
    return out;
  };
  const hash = createHash("sha256");
  const chunks = Math.ceil(size / (64 * 1024));
  for (let i = 0; i < chunks; i++) hash.update(chunk(i));
  return {
    sha256: hash.digest("hex"),
    stream: () => {
      let i = 0;
      return new ReadableStream({
        pull(controller) {
          if (i < chunks) controller.enqueue(chunk(i++));
          else controller.close();
        },
      });
    },
  };
}

async function upload(
  base: string,
  token: string,
  body: BodyInit,
  name = "report.bin",
  init: RequestInit & { client?: Deno.HttpClient } = {},
): Promise<Response> {
  return await fetch(`${base}/files?name=${encodeURIComponent(name)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
    body,
    ...init,
  });
}

/** The `upload_progress` frames a connection receives before the answer to a ping. */
async function progressBefore(c: RawClient): Promise<string[]> {
  const lines: string[] = [];
  c.send({ type: "ping", ref: "progress-ping" });
  await c.line((l) => {
    lines.push(l);
    return l.includes('"progress-ping"');
  });
  return lines.filter((l) => l.includes("upload_progress"));
}

async function sha256Of(res: Response): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of res.body!) hash.update(chunk);
  return hash.digest("hex");
}

function base(server: ServerProcess, scheme = "http"): string {
  return `${scheme}://127.0.0.1:${server.httpPort}`;
}

async function leftovers(dataDir: string): Promise<{ tmp: number; blobs: number }> {
  let tmp = 0;
  let blobs = 0;
  for await (const _ of Deno.readDir(`${dataDir}/files/tmp`)) tmp++;
  for await (const dir of Deno.readDir(`${dataDir}/files/blobs`)) {
    for await (const _ of Deno.readDir(`${dataDir}/files/blobs/${dir.name}`)) blobs++;
  }
  return { tmp, blobs };
}

Deno.test("files: a multi-megabyte file goes to a room intact; recipients see it in chat", async () => {
  await using server = await startServer();
  const alice = await user(server.port, "alice", "#share");
  const bob = await user(server.port, "bob", "#share");
  await using _a = alice.c;
  await using _b = bob.c;
  await using nc = await RawClient.text(server.port, "tex");
  nc.send("/join #share");
  const data = bytes(8 * MiB);
  const up = await upload(base(server), alice.token, data.stream(), "report.bin");
  assert.equal(up.status, 201);
  const file = await up.json();
  assert.deepEqual({ ...file, id: undefined }, {
    id: undefined,
    name: "report.bin",
    size: 8 * MiB,
    type: "application/octet-stream",
    sha256: data.sha256,
  });
  assert.match(file.id, /^[A-Za-z0-9_-]{22}$/);
  const sent = await request(alice.c, { type: "send", room: "#share", text: "", file: file.id });
  assert.equal(sent.type, "ack");
  const msg = await bob.c.frame((f) => f.type === "message");
  assert.deepEqual(msg.file, file);
  assert.equal(
    await nc.line((l) => l.startsWith("[#share]")),
    `[#share] <alice> [file report.bin, 8.0 MiB: /get ${file.id}]`,
  );
  const down = await fetch(`${base(server)}/files/${file.id}`, {
    headers: { authorization: `Bearer ${bob.token}` },
  });
  assert.equal(down.status, 200);
  assert.equal(down.headers.get("content-length"), String(8 * MiB));
  assert.match(down.headers.get("content-disposition")!, /^attachment; filename="report.bin"/);
  assert.equal(down.headers.get("x-content-type-options"), "nosniff");
  assert.equal(down.headers.get("accept-ranges"), "bytes");
  assert.equal(await sha256Of(down), data.sha256);
  // In history, too.
  const history = await request(bob.c, { type: "history", room: "#share" });
  assert.deepEqual((history.messages as Frame[]).at(-1)!.file, file);
});

Deno.test("files: upload and download over TLS", async () => {
  await using dir = await tempDir("parley-files-tls-");
  const { pem } = await makeCert(dir.path, "localhost");
  await using server = await startServer(tlsServerArgs(dir.path));
  assert.ok(server.stdout.some((l) => l.startsWith("listening on https://")));
  using client = Deno.createHttpClient({ caCerts: [pem] });
  const alice = await user(server.port, "alice", "#tls");
  const bob = await user(server.port, "bob", "#tls");
  await using _a = alice.c;
  await using _b = bob.c;
  const url = `https://localhost:${server.httpPort}`;
  const data = bytes(3 * MiB, 7);
  const up = await upload(url, alice.token, data.stream(), "secret.bin", { client });
  assert.equal(up.status, 201);
  const file = await up.json();
  await request(alice.c, { type: "send", room: "#tls", text: "over tls", file: file.id });
  const down = await fetch(`${url}/files/${file.id}`, {
    headers: { authorization: `Bearer ${bob.token}` },
    client,
  });
  assert.equal(await sha256Of(down), data.sha256);
});

Deno.test("files: an interrupted download resumes with Range", async () => {
  await using server = await startServer();
  const alice = await user(server.port, "alice", "#r");
  await using _a = alice.c;
  const data = bytes(4 * MiB, 3);
  const file = await (await upload(base(server), alice.token, data.stream())).json();
  const auth = { authorization: `Bearer ${alice.token}` };
  // Read about a megabyte, then drop the connection.
  const first = await fetch(`${base(server)}/files/${file.id}`, { headers: auth });
  const reader = first.body!.getReader();
  const parts: Uint8Array[] = [];
  let got = 0;
  while (got < MiB) {
    const { value } = await reader.read();
    parts.push(value!);
    got += value!.length;
  }
  await reader.cancel();
  const rest = await fetch(`${base(server)}/files/${file.id}`, {
    headers: { ...auth, range: `bytes=${got}-` },
  });
  assert.equal(rest.status, 206);
  assert.equal(rest.headers.get("content-range"), `bytes ${got}-${4 * MiB - 1}/${4 * MiB}`);
  assert.equal(rest.headers.get("content-length"), String(4 * MiB - got));
  const hash = createHash("sha256");
  for (const p of parts) hash.update(p);
  for await (const chunk of rest.body!) hash.update(chunk);
  assert.equal(hash.digest("hex"), data.sha256);
  const bad = await fetch(`${base(server)}/files/${file.id}`, {
    headers: { ...auth, range: `bytes=${4 * MiB}-` },
  });
  await bad.body?.cancel();
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.get("content-range"), `bytes */${4 * MiB}`);
  const tail = await fetch(`${base(server)}/files/${file.id}`, {
    headers: { ...auth, range: "bytes=-10" },
  });
  assert.equal((await tail.arrayBuffer()).byteLength, 10);
});

Deno.test("files: one byte over the size limit is refused and leaves nothing behind", async () => {
  await using data = await tempDir("parley-files-limit-");
  await using server = await startServer(["--data", data.path, "--max-file-size", String(MiB)]);
  const alice = await user(server.port, "alice");
  await using _a = alice.c;
  const exact = await upload(base(server), alice.token, bytes(MiB).stream());
  assert.equal(exact.status, 201);
  await exact.body?.cancel();
  // Streamed (no Content-Length): cut off as it arrives.
  const streamed = await upload(base(server), alice.token, bytes(MiB + 1, 2).stream());
  assert.equal(streamed.status, 413);
  assert.equal((await streamed.json()).error, "too_large");
  // Declared: refused before the body is read.
  const declared = await upload(base(server), alice.token, new Uint8Array(MiB + 1));
  assert.equal(declared.status, 413);
  assert.match((await declared.json()).message, /File too large: the limit is 1048576 bytes/);
  assert.deepEqual(await leftovers(data.path), { tmp: 0, blobs: 1 });
});

Deno.test("files: the per-account quota and the upload rate are enforced", async () => {
  await using server = await startServer([
    "--file-quota",
    String(2 * MiB),
    "--upload-burst",
    "3",
    "--upload-interval",
    "60",
  ]);
  const alice = await user(server.port, "alice");
  await using _a = alice.c;
  const one = await upload(base(server), alice.token, bytes(1.5 * MiB).stream());
  assert.equal(one.status, 201);
  await one.body?.cancel();
  const two = await upload(base(server), alice.token, bytes(MiB, 5).stream());
  assert.equal(two.status, 413);
  assert.equal((await two.json()).error, "quota_exceeded");
  const three = await upload(base(server), alice.token, new Uint8Array(10));
  assert.equal(three.status, 201);
  await three.body?.cancel();
  const four = await upload(base(server), alice.token, new Uint8Array(10));
  assert.equal(four.status, 429);
  assert.ok(Number(four.headers.get("retry-after")) >= 1);
  await four.body?.cancel();
});

Deno.test("files: only the room's members or the DM's parties may download; ids do not leak", async () => {
  await using server = await startServer();
  const alice = await user(server.port, "alice", "#team");
  const bob = await user(server.port, "bob", "#team");
  const carol = await user(server.port, "carol");
  await using _a = alice.c;
  await using _b = bob.c;
  await using _c = carol.c;
  const roomFile = await (await upload(base(server), alice.token, new Uint8Array(1000))).json();
  await request(alice.c, { type: "send", room: "#team", text: "team only", file: roomFile.id });
  const dmFile = await (await upload(base(server), alice.token, new Uint8Array(2000))).json();
  await request(alice.c, { type: "send", to: "bob", text: "just you", file: dmFile.id });
  const get = (id: string, token?: string) =>
    fetch(`${base(server)}/files/${id}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  for (const id of [roomFile.id, dmFile.id]) {
    const ok = await get(id, bob.token);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const outsider = await get(id, carol.token);
    assert.equal(outsider.status, 404);
    const nobody = await get(id);
    assert.equal(nobody.status, 401);
    await nobody.body?.cancel();
    const unknown = await get("A".repeat(22), carol.token);
    assert.equal(unknown.status, 404);
    assert.equal(await outsider.text(), await unknown.text(), "same answer: ids cannot be probed");
  }
  // A guest has no token, so cannot upload; nobody can attach someone else's file.
  const guest = await fetch(`${base(server)}/files`, { method: "POST", body: "x" });
  assert.equal(guest.status, 401);
  await guest.body?.cancel();
  const steal = await request(carol.c, {
    type: "send",
    to: "bob",
    text: "mine?",
    file: roomFile.id,
  });
  assert.equal(steal.code, "no_such_file");
});

Deno.test("files: chat flows while a large upload streams in", async () => {
  await using server = await startServer();
  const alice = await user(server.port, "alice");
  await using _a = alice.c;
  await using x = await RawClient.json(server.port, "xavier");
  await using y = await RawClient.json(server.port, "yvonne");
  const data = bytes(32 * MiB, 9);
  let sent = 0;
  const source = data.stream().getReader();
  const slow = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await source.read();
      if (done) return controller.close();
      sent += value.length;
      if (sent % (4 * MiB) === 0) await new Promise((r) => setTimeout(r, 20));
      controller.enqueue(value);
    },
  });
  const uploading = upload(base(server), alice.token, slow);
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    x.send({ type: "send", room: "#general", text: `ping ${i}` });
    await y.frame((f) => f.type === "message" && f.text === `ping ${i}`);
    assert.ok(performance.now() - t0 < 2000, "chat kept flowing");
  }
  const res = await uploading;
  assert.equal(res.status, 201);
  assert.equal((await res.json()).sha256, data.sha256);
});

Deno.test("files: server memory stays flat while a slow receiver downloads a large file", async () => {
  await using server = await startServer();
  const alice = await user(server.port, "alice");
  await using _a = alice.c;
  const size = 96 * MiB;
  const file = await (await upload(base(server), alice.token, bytes(size, 11).stream())).json();
  const rss = async () => (await (await fetch(`${base(server)}/healthz`)).json()).rss as number;
  const before = await rss();
  const res = await fetch(`${base(server)}/files/${file.id}`, {
    headers: { authorization: `Bearer ${alice.token}` },
  });
  const reader = res.body!.getReader();
  let got = 0;
  let peak = before;
  // A slow receiver: a little at a time, with pauses, for a while.
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < 4; j++) {
      const { value } = await reader.read();
      got += value?.length ?? 0;
    }
    await new Promise((r) => setTimeout(r, 25));
    peak = Math.max(peak, await rss());
  }
  await reader.cancel();
  assert.ok(got < size / 2, "the receiver really was slow");
  const growth = peak - before;
  assert.ok(
    growth < 24 * MiB,
    `server RSS grew by ${(growth / MiB).toFixed(1)} MiB for a ${size / MiB} MiB file`,
  );
});

Deno.test("files: a text-mode account gets a signed, expiring link to each file it receives, which curl can fetch", async () => {
  await using server = await startServer();
  await using alice = await RawClient.json(server.port);
  const reg = await request(alice, { type: "register", name: "alice", password: "correct horse" });
  assert.equal(reg.type, "ack", JSON.stringify(reg));
  await using nc = await RawClient.text(server.port);
  nc.send("/register bob correct-horse");
  await nc.line((l) => l.startsWith("* Registered and logged in as bob"));
  const up = await upload(base(server), String(reg.token), "the quarterly numbers", "q3.txt");
  assert.equal(up.status, 201);
  const { id } = await up.json();
  const sent = await request(alice, { type: "send", room: "#general", text: "see", file: id });
  assert.equal(sent.type, "ack", JSON.stringify(sent));
  await nc.line((l) => l.startsWith("[#general] <alice> see [file q3.txt"));
  const line = await nc.line((l) => l.startsWith("* Download (24 h): "));
  const link = line.slice("* Download (24 h): ".length);
  assert.match(
    link,
    new RegExp(`^http://127\\.0\\.0\\.1:${server.httpPort}/files/${id}\\?u=\\d+&e=\\d+&s=`),
  );
  const curl = new Deno.Command("curl", { args: ["-s", "-f", link], stdout: "piped" });
  const got = await curl.output().catch(() => undefined);
  if (got !== undefined) {
    assert.equal(got.code, 0, "curl fetched it");
    assert.equal(new TextDecoder().decode(got.stdout), "the quarterly numbers");
  } else {
    const res = await fetch(link); // no curl here: the same request
    assert.equal(await res.text(), "the quarterly numbers");
  }
  const forged = link.replace(/s=[^&]+$/, "s=AAAA");
  assert.equal(await fetch(forged).then(async (r) => (await r.body?.cancel(), r.status)), 404);
  const expired = link.replace(/e=\d+/, "e=1");
  assert.equal(await fetch(expired).then(async (r) => (await r.body?.cancel(), r.status)), 404);
  // A JSON client gets no link in the message: it sends its token.
  const frame = await alice.frame((f) => f.type === "message", 300).catch(() => undefined);
  assert.equal(frame, undefined, "the sender's own JSON session is not sent its message");
});

Deno.test("files: upload_progress follows the bytes the server received, for the uploading token's sessions only", async () => {
  await using server = await startServer();
  const alice = await user(server.port, "alice");
  await using _a = alice.c;
  // The same token on a second connection (another tab of the page) is told too...
  await using tab = await RawClient.json(server.port);
  assert.equal((await request(tab, { type: "login", token: alice.token })).type, "ack");
  // ...a session of the account with another token (another device) is not.
  await using phone = await RawClient.json(server.port);
  const other = await request(phone, { type: "login", name: "alice", password: "correct horse" });
  assert.notEqual(other.token, alice.token);

  // A body that arrives slowly: 16 chunks of 64 KiB, 40 ms apart, counted as it is handed over.
  const data = bytes(16 * 64 * 1024, 3);
  let sent = 0;
  const source = data.stream().getReader();
  const slow = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await source.read();
      if (done) return controller.close();
      await new Promise((r) => setTimeout(r, 40));
      sent += value.length;
      controller.enqueue(value);
    },
  });
  const res = fetch(`${base(server)}/files?name=slow.bin&upload=up-1`, {
    method: "POST",
    headers: { authorization: `Bearer ${alice.token}` },
    body: slow,
  });
  const seen: number[] = [];
  const started = performance.now();
  for (;;) {
    const f = await alice.c.frame((f) => f.type === "upload_progress");
    assert.equal(f.upload, "up-1");
    assert.equal(f.size, undefined, "a chunked body has no declared size");
    const received = f.received as number;
    assert.ok(received <= sent, `the server's ${received} is never ahead of the ${sent} sent`);
    seen.push(received);
    if (received === 16 * 64 * 1024) break;
  }
  assert.equal((await (await res).json()).sha256, data.sha256);
  assert.ok(seen.length >= 4, `progress came as the body arrived: ${seen.join(", ")}`);
  // At most one a 100 ms (and the last): bounded however small the body's pieces are.
  const took = performance.now() - started;
  assert.ok(seen.length <= took / 100 + 2, `${seen.length} frames in ${Math.round(took)} ms`);
  assert.ok(seen.length < 16, "fewer frames than pieces of the body");
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "received only grows");
  const tabbed = await tab.frame((f) => f.type === "upload_progress" && f.received === sent);
  assert.equal(tabbed.upload, "up-1");

  // A body with a Content-Length: its size comes with each frame.
  const small = new Uint8Array(5000).fill(7);
  const ok = await fetch(`${base(server)}/files?name=small.bin&upload=up-2`, {
    method: "POST",
    headers: { authorization: `Bearer ${alice.token}` },
    body: small,
  });
  assert.equal(ok.status, 201);
  await ok.body?.cancel();
  assert.deepEqual(
    await alice.c.frame((f) => f.type === "upload_progress" && f.upload === "up-2"),
    { type: "upload_progress", upload: "up-2", received: 5000, size: 5000 },
  );

  // Once per count: the end of a body that came in one piece is not reported twice.
  assert.deepEqual(await progressBefore(alice.c), []);
  // The other device heard nothing of either; an upload without an id is not reported.
  assert.deepEqual(await progressBefore(phone), []);
  const quiet = await upload(base(server), alice.token, new Uint8Array(100).fill(1));
  assert.equal(quiet.status, 201);
  await quiet.body?.cancel();
  assert.deepEqual(await progressBefore(alice.c), []);

  // An id outside the rules is refused before anything is stored.
  const bad = await fetch(`${base(server)}/files?name=x.bin&upload=${"x".repeat(65)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${alice.token}` },
    body: new Uint8Array(10),
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, "bad_request");
});
