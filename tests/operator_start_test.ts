// What an operator runs into starting the server: a data folder in use, unusable or out of
// the permission set's reach, a port in use, and refused permissions in every subcommand.
import assert from "node:assert/strict";
import { MAIN, makeCert, startServer, tempDir, tlsServerArgs } from "./_helpers.ts";
import { SERVER_PERMISSIONS } from "../src/server/config.ts";

const REPO = new URL("..", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Runs `main.ts server … args` to its end (it should refuse to start) with `deno run` flags. */
async function refused(
  args: string[],
  permissions: readonly string[] = SERVER_PERMISSIONS,
  cwd?: string,
): Promise<{ code: number; err: string; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...permissions,
      MAIN,
      "server",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--http-port",
      "0",
      "--irc-port",
      "0",
      ...args,
    ],
    stdin: "null",
    env: { NO_COLOR: "1" },
    ...cwd === undefined ? {} : { cwd },
  }).output();
  return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
}

/** Asserts one line on stderr, no stack trace, that starts `parley server: cannot start: …`. */
function assertOneLine(err: string, expected: RegExp): void {
  const lines = err.split("\n").filter((l) => l !== "" && !l.includes("experimental feature"));
  assert.equal(lines.length, 1, err);
  assert.doesNotMatch(err, /^\s+at /m, "no stack trace");
  assert.match(lines[0]!, expected);
}

Deno.test("a second server on the data folder is refused, naming it and the first's pid", async () => {
  await using dir = await tempDir("parley-lock-");
  await using first = await startServer(["--data", dir.path]);
  const second = await refused(["--data", dir.path]);
  assert.equal(second.code, 1);
  assert.equal(second.out, "", "never listening");
  assertOneLine(
    second.err,
    new RegExp(
      `^parley server: cannot start: ${dir.path} is in use by another parley server ` +
        `\\(pid ${first.child.pid}\\)$`,
    ),
  );
  // A crash leaves the lock file behind, but not the lock: the next server starts.
  assert.equal((await first.stop("SIGKILL")).signal, "SIGKILL");
  await Deno.stat(`${dir.path}/parley.lock`);
  await using after = await startServer(["--data", dir.path]);
  assert.ok(after.port > 0);
});

Deno.test("--data naming a file, or a corrupt database, stops the start with the path", async () => {
  await using dir = await tempDir("parley-data-");
  const file = `${dir.path}/a-file`;
  await Deno.writeTextFile(file, "not a folder\n");
  const onFile = await refused(["--data", file]);
  assert.equal(onFile.code, 1);
  assertOneLine(
    onFile.err,
    new RegExp(`^parley server: cannot start: ${file} is a file, not a folder: --data names`),
  );

  const corrupt = `${dir.path}/corrupt`;
  await Deno.mkdir(corrupt);
  await Deno.writeFile(`${corrupt}/parley.db`, crypto.getRandomValues(new Uint8Array(8192)));
  const onCorrupt = await refused(["--data", corrupt]);
  assert.equal(onCorrupt.code, 1);
  assertOneLine(
    onCorrupt.err,
    new RegExp(
      `^parley server: cannot start: ${corrupt}/parley.db is not a readable parley database ` +
        `\\(file is not a database\\): restore it from a backup, or move it away`,
    ),
  );
});

/**
 * Makes `path` read-only for this user, undone on dispose: mode bits, or for root (whom mode
 * bits do not stop) the immutable attribute; `undefined` when neither can be done here.
 */
async function readOnly(path: string, dir: boolean): Promise<AsyncDisposable | undefined> {
  const uid = decoder.decode((await new Deno.Command("id", { args: ["-u"] }).output()).stdout);
  if (uid.trim() !== "0") {
    const { mode } = await Deno.stat(path);
    await Deno.chmod(path, dir ? 0o500 : 0o400);
    return { [Symbol.asyncDispose]: () => Deno.chmod(path, mode! & 0o777) };
  }
  const chattr = (flag: string) =>
    new Deno.Command("chattr", { args: [flag, path], stderr: "null" }).output()
      .then((o) => o.success, () => false);
  if (!await chattr("+i")) return undefined;
  return { [Symbol.asyncDispose]: async () => void await chattr("-i") };
}

Deno.test("a read-only data folder or database stops the start with the path", async (t) => {
  await using dir = await tempDir("parley-ro-");
  // A database made by a first run.
  const data = `${dir.path}/data`;
  {
    await using server = await startServer(["--data", data]);
    assert.equal((await server.stop()).code, 0);
  }
  const cases = [["database", `${data}/parley.db`], ["data folder", data]] as const;
  for (const [what, path] of cases) {
    await t.step(what, async () => {
      await using _ro = await readOnly(path, what === "data folder");
      if (_ro === undefined) {
        console.warn("skipped: cannot make files read-only here");
        return;
      }
      const result = await refused(["--data", data]);
      assert.equal(result.code, 1);
      assertOneLine(
        result.err,
        new RegExp(
          `^parley server: cannot start: the ${what} ${path} is read-only \\(.+\\): make it ` +
            "writable by the user running parley, or choose another folder with --data$",
        ),
      );
    });
  }
});

Deno.test("a port in use names the port and its flag", async () => {
  await using dir = await tempDir("parley-port-");
  await makeCert(dir.path, "localhost");
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((taken.addr as Deno.NetAddr).port);
  for (
    const [flag, args] of [
      ["--port", ["--port", port]],
      ["--http-port", ["--http-port", port]],
      ["--tls-port", tlsServerArgs(dir.path, Number(port))],
      ["--http-port", [...tlsServerArgs(dir.path), "--http-port", port]],
    ] as const
  ) {
    const result = await refused(["--data", `${dir.path}/data`, ...args]);
    assert.equal(result.code, 1, flag);
    assertOneLine(
      result.err,
      new RegExp(`^parley server: cannot start: port ${port} \\(${flag}\\) is in use`),
    );
    // The data folder was unlocked on the way out: nothing else is refused.
  }
  await using server = await startServer(["--data", `${dir.path}/data`]);
  assert.ok(server.port > 0);
});

Deno.test("deno task server with --data elsewhere prints the command that allows it", async () => {
  await using dir = await tempDir("parley-perm-");
  const data = `${dir.path}/data`;
  // What `deno task server` runs, from the repository (./parley-data is never touched).
  const result = await refused(["--data", data], [`--config=${REPO}/deno.json`, "-P=server"], REPO);
  assert.equal(result.code, 1);
  const lines = result.err.split("\n").filter((l) => l !== "" && !l.includes("experimental"));
  assert.doesNotMatch(result.err, /^\s+at |NotCapable|Requires .* access/m, result.err);
  assert.equal(
    lines[0],
    `parley server: cannot start: this run may not use ${data} ('deno task server' allows ` +
      "./parley-data only); run instead:",
  );
  const command = lines[1]!.trim();
  assert.equal(
    command,
    `deno run --allow-net --allow-env=NO_COLOR,DEBUG --allow-sys=setPriority,hostname,networkInterfaces ` +
      `--allow-read=${data} --allow-write=${data} main.ts server --host 127.0.0.1 --port 0 ` +
      `--http-port 0 --irc-port 0 --data ${data}`,
  );
  await assert.rejects(Deno.stat(data), Deno.errors.NotFound);
  // …and that command does start the server.
  const [_deno, ...rest] = command.split(" ");
  const child = new Deno.Command(Deno.execPath(), {
    args: rest,
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("listening on http")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  child.kill("SIGTERM");
  await reader.cancel();
  assert.equal((await child.status).code, 0);
  assert.match(out, /^listening on tcp:\/\/127\.0\.0\.1:\d+$/m);
});

Deno.test("a refused permission in any subcommand is one line naming what to allow", async () => {
  await using dir = await tempDir("parley-perm-");
  for (
    const [args, expected] of [
      [
        ["user", "list", "--data", `${dir.path}/data`],
        new RegExp(
          `^parley user: this run may not write ${dir.path}/data: run it with ` +
            `--allow-write=${dir.path}/data`,
        ),
      ],
      [
        ["cert", "--out", `${dir.path}/tls`],
        new RegExp(
          `^parley cert: this run may not read ${dir.path}/tls/key.pem: run it with ` +
            `--allow-read=${dir.path}/tls/key.pem`,
        ),
      ],
    ] as const
  ) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--config=${REPO}/deno.json`, "-P=data", MAIN, ...args],
      cwd: REPO,
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const err = decoder.decode(stderr);
    assert.equal(code, 1, err);
    const lines = err.split("\n").filter((l) => l !== "" && !l.includes("experimental"));
    assert.equal(lines.length, 1, err);
    assert.match(lines[0]!, expected);
  }
});
