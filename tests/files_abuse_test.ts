// Attacks on the HTTP file API of the real server (a subprocess): concurrent uploads against the
// quota, malformed requests of every kind (none may cause a 5xx or a warning in the log), and a
// full disk (a real, tiny tmpfs under the data folder).
import assert from "node:assert/strict";
import { RawClient, request, startServer, tempDir } from "./_helpers.ts";
import type { ServerProcess } from "./_helpers.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const encoder = new TextEncoder();

async function token(port: number, name: string): Promise<string> {
  await using c = await RawClient.json(port);
  const reply = await request(c, { type: "register", name, password: "correct horse" });
  assert.equal(reply.type, "ack", JSON.stringify(reply));
  return String(reply.token);
}

function base(server: ServerProcess): string {
  return `http://127.0.0.1:${server.httpPort}`;
}

function upload(
  server: ServerProcess,
  auth: string,
  body: BodyInit,
  headers: Record<string, string> = {},
  name?: string,
): Promise<Response> {
  const query = name === undefined ? "" : `?name=${encodeURIComponent(name)}`;
  return fetch(`${base(server)}/files${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${auth}`, ...headers },
    body,
  });
}

/** A body of `size` bytes streamed in 16 KiB chunks (no Content-Length: chunked). */
function streamed(size: number, fill: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream({
    async pull(controller) {
      if (left === 0) return controller.close();
      const n = Math.min(16 * KiB, left);
      left -= n;
      controller.enqueue(new Uint8Array(n).fill(fill));
      await new Promise((r) => setTimeout(r, 1)); // let the uploads interleave
    },
  });
}

async function leftovers(dir: string): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir(`${dir}/files/tmp`)) n++;
  return n;
}

/** The log lines at warning level or above. */
function loud(log: string): string[] {
  return log.split("\n").filter((l) => /\[(WRN|ERR|FTL)\]/.test(l));
}

/**
 * Writes `head` (and `body`, if any) on a raw TCP connection to the HTTP port, then, by `end`:
 * half-closes ("eof"), or closes at once ("close"), or just waits. Returns the status of the
 * answer, or 0 when there was none.
 */
async function raw(
  server: ServerProcess,
  head: string,
  body: Uint8Array = new Uint8Array(),
  end: "eof" | "close" | "wait" = "wait",
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
  try {
    await conn.write(encoder.encode(head.replaceAll("\n", "\r\n") + "\r\n"));
    for (let at = 0; at < body.length;) at += await conn.write(body.subarray(at));
    if (end === "close") return 0;
    if (end === "eof") await conn.closeWrite();
    const buf = new Uint8Array(4096);
    let text = "";
    const timer = setTimeout(() => conn.close(), 5000);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
        if (text.includes("\r\n\r\n")) break;
      }
    } catch {
      // closed by the timer
    } finally {
      clearTimeout(timer);
    }
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  } finally {
    try {
      conn.close();
    } catch {
      // closed already
    }
  }
}

Deno.test("files abuse: 8 concurrent uploads never store more than the quota", async () => {
  await using data = await tempDir("parley-quota-");
  await using server = await startServer([
    "--data",
    data.path,
    "--file-quota",
    String(MiB),
    "--upload-burst",
    "100",
  ]);
  const alice = await token(server.port, "alice");
  const size = 300 * KiB;
  const tally = async (responses: Response[]) => {
    let stored = 0;
    const statuses: number[] = [];
    for (const res of responses) {
      statuses.push(res.status);
      const body = await res.json();
      if (res.status === 201) stored += body.size;
      else assert.equal(body.error, "quota_exceeded", JSON.stringify(body));
    }
    return { stored, statuses: statuses.toSorted() };
  };

  // Declared sizes (Content-Length): each reserves its whole size as it starts.
  const declared = await tally(
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => upload(server, alice, new Uint8Array(size).fill(i))),
    ),
  );
  console.log(`8 × 300 KiB declared, 1 MiB quota: ${declared.statuses.join(" ")}`);
  assert.deepEqual(declared.statuses, [201, 201, 201, 413, 413, 413, 413, 413]);
  assert.equal(declared.stored, 3 * size);

  // The room left (124 KiB) is exactly what the quota still takes: one byte more is refused,
  // the room itself fits.
  const room = MiB - declared.stored;
  const over = await upload(server, alice, new Uint8Array(room + 1));
  assert.equal(over.status, 413);
  assert.equal((await over.json()).error, "quota_exceeded");
  const fits = await upload(server, alice, new Uint8Array(room).fill(8));
  assert.equal(fits.status, 201, await fits.text());

  // Streamed (no Content-Length), 8 at once into a fresh account: reserved as bytes arrive.
  const bob = await token(server.port, "bob");
  const chunked = await tally(
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => upload(server, bob, streamed(size, i), {}, `s${i}`)),
    ),
  );
  console.log(
    `8 × 300 KiB streamed, 1 MiB quota: ${chunked.statuses.join(" ")}, ${chunked.stored} B kept`,
  );
  assert.ok(chunked.stored <= MiB, `${chunked.stored} bytes stored, over the quota`);
  assert.ok(chunked.statuses.filter((s) => s === 201).length <= 3);
  // What is left is exactly the quota minus what the 201s said: it fits, one byte more does not.
  const rest = MiB - chunked.stored;
  if (rest > 0) {
    const fill = await upload(server, bob, new Uint8Array(rest).fill(9), {}, "rest");
    assert.equal(fill.status, 201, await fill.text());
  }
  const full = await upload(server, bob, new Uint8Array(1).fill(10), {}, "one more");
  assert.equal(full.status, 413);
  assert.equal((await full.json()).error, "quota_exceeded");
  assert.equal(await leftovers(data.path), 0, "no partial upload is left behind");
});

Deno.test("files abuse: malformed requests get a 4xx and are never logged above debug", async () => {
  await using data = await tempDir("parley-malformed-");
  await using server = await startServer([
    "--data",
    data.path,
    "--log-level",
    "debug",
    "--upload-burst",
    "100",
  ]);
  const alice = await token(server.port, "alice");
  const auth = { authorization: `Bearer ${alice}` };
  const statuses: Record<string, number> = {};
  const note = async (what: string, res: Response | Promise<Response>) => {
    const r = await res;
    await r.body?.cancel();
    statuses[what] = r.status;
  };

  // File names.
  for (const bad of ["%E0%A4%A", "%ED%A0%80", "%", "%zz", "a%FFb"]) {
    await note(`X-File-Name ${bad}`, upload(server, alice, "x", { "x-file-name": bad }));
  }
  const kept = await upload(server, alice, "ok", { "x-file-name": "r%C3%A9sum%C3%A9.txt" });
  assert.equal(kept.status, 201);
  assert.equal((await kept.json()).name, "résumé.txt", "well-formed percent-encoding decodes");

  // A name that, cut to 255 bytes, would end in half a surrogate pair; and a huge one.
  const cut = await upload(server, alice, "x", {}, "a".repeat(252) + "😀.txt");
  assert.equal(cut.status, 201);
  const cutFile = await cut.json();
  assert.ok(String(cutFile.name).isWellFormed(), "no lone surrogate in a stored name");
  await note(
    "download of a cut name",
    fetch(`${base(server)}/files/${cutFile.id}`, { headers: auth }),
  );
  const t0 = performance.now();
  // Nearly the longest request head the server takes (16 KiB).
  const long = await upload(server, alice, "x", {}, "a".repeat(15_000));
  const longMs = performance.now() - t0;
  assert.equal(long.status, 201);
  assert.equal((await long.json()).name, "a".repeat(255));
  console.log(`a 15,000-character name: ${longMs.toFixed(0)} ms`);
  assert.ok(longMs < 250, `a 15,000-character name took ${longMs.toFixed(0)} ms`);
  const longer = await upload(server, alice, "x", {}, "a".repeat(60_000));
  assert.equal(longer.status, 414, "a request line past the head limit is refused whole");
  await longer.body?.cancel();
  const wide = await upload(server, alice, "x", {}, "é".repeat(2000));
  assert.equal(encoder.encode((await wide.json()).name).length, 254, "cut between characters");

  // Authorization.
  for (
    const bad of [
      "",
      "Bearer",
      "Bearer short",
      "Basic YWxpY2U6cGFzcw==",
      `Bearer ${"x".repeat(43)}`,
      `Bearer ${"y".repeat(8000)}`,
    ]
  ) {
    const headers = bad === "" ? {} : { authorization: bad };
    await note(
      `Authorization ${bad.slice(0, 20)}`,
      fetch(`${base(server)}/files`, { method: "POST", headers, body: "x" }),
    );
    await note(
      `GET Authorization ${bad.slice(0, 20)}`,
      fetch(`${base(server)}/files/${cutFile.id}`, { headers }),
    );
  }

  // Ranges.
  for (
    const bad of [
      "bytes=abc",
      "bytes=5-2",
      "bytes=-0",
      "bytes=-",
      "bytes=99999999999999999999999-",
      "bytes=1e3-",
      "items=0-1",
      "bytes=0-1,5-",
      "bytes = 0-1",
    ]
  ) {
    await note(
      `Range ${bad}`,
      fetch(`${base(server)}/files/${cutFile.id}`, { headers: { ...auth, range: bad } }),
    );
  }

  // Bodies: missing, ending early, malformed chunked encoding, cancelled mid-body.
  const head = (extra: string) =>
    `POST /files?name=early HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer ${alice}\n${extra}\n`;
  statuses["body shorter than Content-Length"] = await raw(
    server,
    head("Content-Length: 100000\n"),
    new Uint8Array(5000),
    "eof",
  );
  statuses["malformed chunked encoding"] = await raw(
    server,
    head("Transfer-Encoding: chunked\n"),
    encoder.encode("10\r\n0123456789abcdef\r\nzz\r\n"),
  );
  statuses["bad Content-Length"] = await raw(
    server,
    head("Content-Length: lots\n"),
    new Uint8Array(10),
  );
  await raw(server, head("Content-Length: 100000\n"), new Uint8Array(5000), "close");
  const abort = new AbortController();
  await fetch(`${base(server)}/files`, {
    method: "POST",
    headers: auth,
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(new Uint8Array(64 * KiB));
        setTimeout(() => abort.abort(), 100);
      },
    }),
    signal: abort.signal,
  }).then((r) => r.body?.cancel(), () => {});
  // A download dropped half way.
  const big = await (await upload(server, alice, new Uint8Array(4 * MiB), {}, "big")).json();
  const partial = await fetch(`${base(server)}/files/${big.id}`, { headers: auth });
  const reader = partial.body!.getReader();
  for (let got = 0; got < MiB;) got += (await reader.read()).value?.length ?? MiB;
  await reader.cancel();
  await new Promise((r) => setTimeout(r, 300)); // the server notices the cancelled bodies

  console.log(JSON.stringify(statuses, null, 1));
  for (const [what, status] of Object.entries(statuses)) {
    if (what.startsWith("download") || what === "Range bytes=0-1,5-") {
      assert.ok(status === 200, `${what}: ${status}`); // unsupported multi-range: the whole file
    } else if (what === "body shorter than Content-Length" || what.startsWith("malformed")) {
      assert.ok(status === 0 || (status >= 400 && status < 500), `${what}: ${status}`);
    } else {
      assert.ok(status >= 400 && status < 500, `${what}: ${status}`);
    }
  }
  for (const bad of ["%E0%A4%A", "%ED%A0%80", "%", "%zz", "a%FFb"]) {
    assert.equal(statuses[`X-File-Name ${bad}`], 400);
  }
  assert.equal(statuses["Range bytes=abc"], 416);

  // The server still serves, and logged nothing above debug for any of it.
  const ok = await upload(server, alice, "still fine");
  assert.equal(ok.status, 201);
  await ok.body?.cancel();
  const log = await server.stderr();
  assert.deepEqual(loud(log), []);
  const other = log.split("\n").filter((l) => l !== "" && !/ \[(DBG|INF)\] parley/.test(l));
  assert.deepEqual(other, [], "nothing else on stderr (no stack trace, no runtime error)");
  assert.match(log, /\[DBG\] parley·files: /, "the refusals are logged at debug");
  assert.equal(await leftovers(data.path), 0, "no partial upload is left behind");
});

Deno.test({
  name: "files abuse: a full disk is the server's fault: 507, logged as an error",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using data = await tempDir("parley-enospc-");
    await Deno.mkdir(`${data.path}/files`, { mode: 0o700 });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", `${data.path}/files`],
      stderr: "piped",
    }).output().catch(() => undefined);
    if (mount?.code !== 0) {
      console.log("skipped: cannot mount a tmpfs here (needs root)");
      return;
    }
    try {
      await using server = await startServer(["--data", data.path]);
      const alice = await token(server.port, "alice");
      const res = await upload(server, alice, streamed(MiB, 3));
      assert.equal(res.status, 507);
      assert.equal((await res.json()).error, "insufficient_storage");
      const small = await upload(server, alice, "fits");
      assert.equal(small.status, 201, "the server recovers once there is room");
      await small.body?.cancel();
      const log = await server.stderr();
      assert.equal(loud(log).length, 1, log);
      assert.match(loud(log)[0]!, /\[ERR\] parley·files: .*No space left on device/);
      assert.equal(await leftovers(data.path), 0, "the partial upload was removed");
    } finally {
      await new Deno.Command("umount", { args: [`${data.path}/files`] }).output();
    }
  },
});
