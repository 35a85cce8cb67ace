// File transfer from the client side: the library (ChatClient.upload, sendFile, download) over
// plain HTTP and TLS against the real server, resuming an interrupted download, and the real
// terminal client (`/send`, `/get`) as subprocesses with piped stdin.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ChatClient, FileTransferError } from "../src/client/mod.ts";
import type { ChatClientOptions, ChatEvent } from "../src/client/mod.ts";
import type { MessageFrame } from "../src/protocol/frames.ts";
import { selfSigned } from "../src/cli/cert_cmd.ts";
import { freeName, parseFileCommand, safeFileName } from "../src/client/terminal/file_commands.ts";
import { ClientProcess, startServer, tempDir, tlsServerArgs } from "./_helpers.ts";

const MiB = 1024 * 1024;
const PASSWORD = "correct horse";

/** Writes `size` pseudo-random bytes to `path` in 64 KiB chunks; returns their SHA-256. */
async function writeFile(path: string, size: number, seed = 1): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  let x = seed >>> 0;
  for (let at = 0; at < size; at += 64 * 1024) {
    const chunk = new Uint8Array(Math.min(64 * 1024, size - at));
    for (let i = 0; i < chunk.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      chunk[i] = x >>> 24;
    }
    hash.update(chunk);
    for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
  }
  return hash.digest("hex");
}

/** The SHA-256 of the file at `path`, streamed. */
async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The next message event carrying a file; throws after `ms`. */
async function nextFile(client: ChatClient, ms = 8000): Promise<MessageFrame> {
  const events = client[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("Timed out waiting for a file message")), ms);
    });
    try {
      const result = await Promise.race([events.next(), expired]);
      if (result.done) throw new Error("Events ended before a file message");
      const event: ChatEvent = result.value;
      if (event.type === "message" && event.file !== undefined) return event;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() > deadline) throw new Error("Timed out waiting for a file message");
  }
}

/** Connects and registers `name`, joining `rooms`. */
async function account(
  port: number,
  name: string,
  options: ChatClientOptions,
  ...rooms: string[]
): Promise<ChatClient> {
  const client = await ChatClient.connect(options.tls ? "localhost" : "127.0.0.1", port, options);
  await client.register(name, PASSWORD);
  for (const room of rooms) await client.join(room);
  return client;
}

Deno.test("ChatClient.upload() streams an 8 MiB file; a room member downloads it, hash checked", async () => {
  await using server = await startServer();
  await using dir = await tempDir("parley-client-files-");
  const options = { httpPort: server.httpPort, reconnect: false };
  await using alice = await account(server.port, "alice", options, "#share");
  await using bob = await account(server.port, "bob", options, "#share");
  const source = `${dir.path}/report.bin`;
  const sha256 = await writeFile(source, 8 * MiB);
  const seen: number[] = [];
  const file = await alice.upload(source, { onProgress: (p) => seen.push(p.bytes) });
  assert.deepEqual({ ...file, id: "" }, {
    id: "",
    name: "report.bin",
    size: 8 * MiB,
    type: "application/octet-stream",
    sha256,
  });
  assert.equal(seen.at(-1), 8 * MiB);
  assert.ok(seen.length > 2, "progress is reported as bytes go");
  assert.equal(alice.httpBase, `http://127.0.0.1:${server.httpPort}`);

  await alice.sendFile("#share", file, "see this");
  const message = await nextFile(bob);
  assert.deepEqual([message.from, message.text, message.file], ["alice", "see this", file]);
  assert.deepEqual(bob.fileRef(file.id), file, "the client keeps what messages said");
  const dest = `${dir.path}/copy.bin`;
  const progress: number[] = [];
  const got = await bob.download(file.id, dest, { onProgress: (p) => progress.push(p.bytes) });
  assert.deepEqual(got, { path: dest, size: 8 * MiB, sha256, resumedFrom: 0 });
  assert.equal(await sha256Of(dest), sha256);
  assert.equal(await exists(`${dest}.part`), false);
  assert.equal(progress.at(-1), 8 * MiB);

  // The server's refusals become FileTransferError with its code and sentence.
  await using carol = await account(server.port, "carol", options);
  await assert.rejects(
    () => carol.download(file.id, `${dir.path}/nope.bin`),
    (error: unknown) => {
      assert.ok(error instanceof FileTransferError, String(error));
      assert.deepEqual([error.code, error.status], ["not_found", 404]);
      assert.equal(error.message, `Cannot download ${file.id}: No such file`);
      return true;
    },
  );
  await assert.rejects(
    () => carol.sendFile("#general", file.id),
    (error: unknown) => error instanceof Error && /no file of yours/.test(error.message),
  );
  // A guest has no token: refused before anything is sent.
  await using guest = await ChatClient.connect("127.0.0.1", server.port, options);
  await assert.rejects(
    () => guest.upload(source),
    (error: unknown) => error instanceof FileTransferError && error.code === "login_required",
  );
});

Deno.test("ChatClient files over TLS: verified with caCerts, and insecure (node:https)", async () => {
  await using dir = await tempDir("parley-client-files-tls-");
  const { cert, key } = await selfSigned(["localhost"], 30);
  await Deno.writeTextFile(`${dir.path}/cert.pem`, cert);
  await Deno.writeTextFile(`${dir.path}/key.pem`, key);
  await using server = await startServer(tlsServerArgs(dir.path));
  const tlsPort = server.tlsPort;
  const verified = { tls: true, caCerts: [cert], httpPort: server.httpPort, reconnect: false };
  await using alice = await account(tlsPort, "alice", verified, "#vault");
  await using bob = await account(tlsPort, "bob", verified, "#vault");
  assert.equal(alice.httpBase, `https://localhost:${server.httpPort}`);
  const source = `${dir.path}/secret.bin`;
  const sha256 = await writeFile(source, 8 * MiB, 7);
  const file = await alice.upload(source);
  assert.equal(file.sha256, sha256);
  await alice.sendFile("#vault", file);
  assert.equal((await nextFile(bob)).file?.id, file.id);
  const got = await bob.download(file.id, `${dir.path}/copy.bin`);
  assert.equal(got.sha256, sha256);
  assert.equal(await sha256Of(`${dir.path}/copy.bin`), sha256);

  // insecure: the web port's certificate is not verified either (node:https underneath).
  await using doubter = await ChatClient.connect("localhost", tlsPort, {
    tls: true,
    insecure: true,
    httpPort: server.httpPort,
    reconnect: false,
  });
  await doubter.login("bob", PASSWORD);
  const up = await doubter.upload(new Blob(["hello over unverified TLS"]).stream(), {
    name: "hello.txt",
  });
  assert.deepEqual([up.name, up.type, up.size], ["hello.txt", "text/plain", 25]);
  const insecureCopy = await doubter.download(file.id, `${dir.path}/insecure.bin`);
  assert.equal(insecureCopy.sha256, sha256);
});

Deno.test("ChatClient.download() resumes an interrupted download with Range and checks the hash", async () => {
  await using server = await startServer();
  await using dir = await tempDir("parley-client-files-resume-");
  const options = { httpPort: server.httpPort, reconnect: false };
  await using alice = await account(server.port, "alice", options);
  const source = `${dir.path}/big.bin`;
  const size = 6 * MiB;
  const sha256 = await writeFile(source, size, 3);
  const file = await alice.upload(source);
  const dest = `${dir.path}/copy.bin`;

  // Cut off after about a megabyte: the .part stays.
  const stop = new AbortController();
  await assert.rejects(() =>
    alice.download(file.id, dest, {
      signal: stop.signal,
      onProgress: (p) => p.bytes >= MiB && stop.abort(),
    })
  );
  const kept = (await Deno.stat(`${dest}.part`)).size;
  assert.ok(kept >= MiB && kept < size, `kept ${kept} bytes`);
  assert.equal(await exists(dest), false);
  let first: number | undefined;
  const got = await alice.download(file.id, dest, {
    onProgress: (p) => first ??= p.bytes,
  });
  assert.deepEqual(got, { path: dest, size, sha256, resumedFrom: kept }, "asked for the rest");
  assert.equal(first, kept, "progress starts where the last download stopped");
  assert.equal(await sha256Of(dest), sha256);
  assert.equal(await exists(`${dest}.part`), false);

  // A .part that is not the file's beginning fails the check: it is deleted, and the download
  // starts over once.
  const other = `${dir.path}/other.bin`;
  await writeFile(`${other}.part`, MiB, 99);
  const again = await alice.download(file.id, other);
  assert.deepEqual([again.sha256, again.resumedFrom], [sha256, 0]);
  // A complete .part (the server answers 416) only needs the check.
  const done = `${dir.path}/done.bin`;
  await Deno.copyFile(source, `${done}.part`);
  assert.equal((await alice.download(file.id, done)).resumedFrom, size);
  // resume: false starts over whatever is there.
  await writeFile(`${dir.path}/fresh.bin.part`, MiB, 3);
  const fresh = await alice.download(file.id, `${dir.path}/fresh.bin`, { resume: false });
  assert.equal(fresh.resumedFrom, 0);
  // A wrong expected hash: nothing is kept.
  await assert.rejects(
    () => alice.download(file.id, `${dir.path}/bad.bin`, { sha256: "0".repeat(64) }),
    (error: unknown) => error instanceof FileTransferError && error.code === "hash_mismatch",
  );
  assert.equal(await exists(`${dir.path}/bad.bin`), false);
  assert.equal(await exists(`${dir.path}/bad.bin.part`), false);
});

Deno.test("ChatClient.upload() refusals carry the server's code, status and Retry-After", async () => {
  await using server = await startServer([
    "--max-file-size",
    String(MiB),
    "--upload-burst",
    "2",
    "--upload-interval",
    "60",
  ]);
  await using dir = await tempDir("parley-client-files-limits-");
  const options = { httpPort: server.httpPort, reconnect: false };
  await using zed = await account(server.port, "zed", options);
  const source = `${dir.path}/big.bin`;
  await writeFile(source, 2 * MiB);
  const refused = async (code: string, status: number, message: RegExp) => {
    const error = await zed.upload(source).catch((e) => e);
    assert.ok(error instanceof FileTransferError, String(error));
    assert.deepEqual([error.code, error.status], [code, status]);
    assert.match(error.message, message);
    return error;
  };
  await refused("too_large", 413, /^Cannot upload: File too large: the limit is 1048576 bytes$/);
  await refused("too_large", 413, /File too large/);
  const limited = await refused("rate_limited", 429, /Too many uploads/);
  assert.ok((limited.retryAfter ?? 0) >= 1);
  // Nobody listening on the web port: one clear sentence.
  await using lost = await account(server.port, "lost", { ...options, httpPort: 1 });
  const unreachable = await lost.upload(source).catch((e) => e);
  assert.ok(unreachable instanceof FileTransferError);
  assert.equal(unreachable.code, "unreachable");
  assert.match(
    unreachable.message,
    /^Cannot reach the server's web port at http:\/\/127\.0\.0\.1:1: /,
  );
});

/** The terminal client with `permissions`, run in `cwd` (also its config folder). */
function clientIn(args: string[], permissions: string[], cwd: string): ClientProcess {
  return new ClientProcess(args, {
    permissions,
    cwd,
    env: { XDG_CONFIG_HOME: cwd, NO_COLOR: "1" },
  });
}

Deno.test("client /send and /get: a file goes through the terminal client, hash checked", async () => {
  await using server = await startServer();
  await using dir = await tempDir("parley-client-files-cli-");
  for (const name of ["alice", "bob"]) {
    await using c = await ChatClient.connect("127.0.0.1", server.port, { reconnect: false });
    await c.register(name, PASSWORD);
  }
  const source = `${dir.path}/My Report.bin`;
  const sha256 = await writeFile(source, 3 * MiB, 5);
  const downloads = `${dir.path}/downloads`;
  const elsewhere = `${dir.path}/elsewhere`;
  await Deno.mkdir(downloads);
  await Deno.mkdir(elsewhere);
  const common = [
    "127.0.0.1",
    String(server.port),
    "--http-port",
    String(server.httpPort),
    "--no-token-file",
    "--password-stdin",
  ];
  const broad = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];
  // Bob may write only to downloads/, and runs in elsewhere/.
  const scoped = ["--allow-net", "--allow-read", `--allow-write=${downloads}`, "--allow-env"];
  await using bob = clientIn([...common, "--name", "bob"], scoped, elsewhere);
  await bob.type(PASSWORD, "/join #files");
  await bob.line(/\* You joined #files/);
  await using alice = clientIn([...common, "--name", "alice"], broad, dir.path);
  await alice.type(PASSWORD, "/join #files", `/send #files ${source}`);
  const shown = await bob.line(/\[#files\] <alice> /);
  const m = /\[#files\] <alice> \[file My Report\.bin, 3\.0 MiB: \/get ([A-Za-z0-9_-]{22})\]$/
    .exec(shown);
  assert.ok(m, shown);
  const id = m[1]!;
  const a = await alice.finish();
  assert.equal(a.code, 0, a.stderr);
  const mine = a.stdout.filter((l) => l.includes("My Report.bin"));
  assert.match(mine[0]!, /\* Uploading My Report\.bin \(3\.0 MiB\) to #files$/);
  assert.match(mine[1]!, /\* Uploaded My Report\.bin \(3\.0 MiB\) in [\d.]+ s/);
  assert.match(
    mine[2]!,
    new RegExp(`\\[#files\\] <alice> \\[file My Report\\.bin, 3\\.0 MiB: /get ${id}\\]$`),
  );

  // Not allowed to write to the current folder: one line saying so, no prompt.
  await bob.type(`/get ${id}`);
  await bob.type(`/get ${id} ${downloads}`, `/get ${id} ${downloads}`);
  const b = await bob.finish();
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stderr, /! Cannot save to .*elsewhere: no permission to write there/);
  assert.equal(b.stdout.filter((l) => /\* Saved /.test(l)).length, 2, b.stdout.join("\n"));
  assert.equal(await sha256Of(`${downloads}/My Report.bin`), sha256);
  assert.equal(await sha256Of(`${downloads}/My Report (1).bin`), sha256, "never overwritten");
  assert.deepEqual(
    [...Deno.readDirSync(elsewhere)].map((e) => e.name),
    [],
    "nothing written where it may not",
  );

  // Without PATH: into $XDG_DOWNLOAD_DIR, else ~/Downloads when it exists (and may be written).
  const xdg = `${dir.path}/xdg`;
  const home = `${dir.path}/home`;
  await Deno.mkdir(xdg);
  await Deno.mkdir(`${home}/Downloads`, { recursive: true });
  for (
    const [env, into] of [[{ XDG_DOWNLOAD_DIR: xdg }, xdg], [
      { HOME: home },
      `${home}/Downloads`,
    ]] as const
  ) {
    await using again = new ClientProcess([...common, "--name", "bob"], {
      permissions: ["--allow-net", "--allow-read", `--allow-write=${into}`, "--allow-env"],
      cwd: elsewhere,
      env: { XDG_CONFIG_HOME: elsewhere, NO_COLOR: "1", XDG_DOWNLOAD_DIR: "", ...env },
    });
    await again.type(PASSWORD, `/get ${id}`);
    const r = await again.finish();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stdout.some((l) => l.includes(`* Saved ${into}/My Report.bin`)),
      r.stdout.join("\n"),
    );
    assert.equal(await sha256Of(`${into}/My Report.bin`), sha256);
  }
});

Deno.test("parseFileCommand() reads /send and /get; safeFileName() and freeName() keep files safe", () => {
  const files = new Set(["my notes.txt"]);
  const isFile = (path: string) => files.has(path);
  const parse = (line: string) => parseFileCommand(line, "#general", isFile);
  assert.equal(parse("hello"), undefined);
  assert.equal(parse("/sender x"), undefined);
  assert.deepEqual(parse("/send a.pdf"), { type: "upload", to: "#general", path: "a.pdf" });
  assert.deepEqual(parse("/SEND #ops  a b.pdf "), { type: "upload", to: "#ops", path: "a b.pdf" });
  assert.deepEqual(parse("/send bob a.pdf"), { type: "upload", to: "bob", path: "a.pdf" });
  assert.deepEqual(parse('/send bob "x y.pdf"'), { type: "upload", to: "bob", path: "x y.pdf" });
  assert.deepEqual(parse("/send my notes.txt"), {
    type: "upload",
    to: "#general",
    path: "my notes.txt",
  }, "a whole path that is a file wins over NAME PATH");
  assert.deepEqual(parse("/send ./x.pdf"), { type: "upload", to: "#general", path: "./x.pdf" });
  assert.deepEqual(parse("/get AbC_-1"), { type: "download", id: "AbC_-1" });
  assert.deepEqual(parse("/get AbC '~/my dir/'"), {
    type: "download",
    id: "AbC",
    path: "~/my dir/",
  });
  for (const bad of ["/send", "/send #ops", "/get", "/get ../x", "/get a/b c"]) {
    assert.throws(() => parse(bad), /Usage: \/(send|get)/, bad);
  }
  assert.throws(() => parseFileCommand("/send a.pdf", undefined, isFile), /you are in no room/);

  assert.equal(safeFileName("report.pdf"), "report.pdf");
  assert.equal(safeFileName("../../.ssh/authorized_keys"), "authorized_keys");
  assert.equal(safeFileName("C:\\Windows\\evil.exe"), "evil.exe");
  assert.equal(safeFileName(".bashrc"), "bashrc");
  assert.equal(safeFileName(".."), "download");
  assert.equal(safeFileName("a\nb\x1b[31m<c>:d|e?f*.txt"), "a_b_[31m_c__d_e_f_.txt");
  assert.equal(safeFileName("invoice\u202efdp.exe"), "invoice_fdp.exe", "no bidi override on disk");
  assert.equal(safeFileName("trailing. . "), "trailing");
  const long = safeFileName("é".repeat(300) + ".tar.gz");
  assert.ok(new TextEncoder().encode(long).length <= 200);
  assert.ok(long.endsWith("é.gz"), long);

  const taken = new Set(["a.pdf", "a (1).pdf", "archive.tar.gz", "README"]);
  const has = (n: string) => taken.has(n);
  assert.equal(freeName("b.pdf", has), "b.pdf");
  assert.equal(freeName("a.pdf", has), "a (2).pdf");
  assert.equal(freeName("archive.tar.gz", has), "archive.tar (1).gz");
  assert.equal(freeName("README", has), "README (1)");
});
