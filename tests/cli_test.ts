// The command line: usage, help and mistakes.
import assert from "node:assert/strict";
import { MAIN } from "./_helpers.ts";

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", MAIN, ...args],
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("main.ts --help lists the subcommands", async () => {
  const { code, out } = await run("--help");
  assert.equal(code, 0);
  assert.match(out, /Usage: parley <command>/);
  assert.match(out, /\bserver\b/);
  assert.match(out, /\bclient\b/);
});

Deno.test("main.ts server --help lists every limit with its default", async () => {
  const { code, out } = await run("server", "--help");
  assert.equal(code, 0);
  for (
    const flag of [
      "--host HOST .*0\\.0\\.0\\.0",
      "--port PORT .*5000",
      "--max-line BYTES .*16384",
      "--max-text BYTES .*4096",
      "--max-sendq BYTES .*1048576",
      "--max-conns N .*10000",
      "--max-conns-per-ip N .*20",
      "--flood-burst",
      "--flood-rate",
      "--log-level",
      "--log-format",
    ]
  ) {
    assert.match(out, new RegExp(flag), flag);
  }
});

Deno.test("mistakes on the command line exit 2 with one clear line", async () => {
  const unknownCmd = await run("frobnicate");
  assert.equal(unknownCmd.code, 2);
  assert.match(unknownCmd.err, /unknown command 'frobnicate'/);
  const badFlag = await run("server", "--bogus");
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.err, /--bogus/);
  const badPort = await run("server", "--port", "70000");
  assert.equal(badPort.code, 2);
  assert.match(badPort.err, /--port must be a number from 0 to 65535, got '70000'/);
  const badLevel = await run("server", "--log-level", "loud");
  assert.equal(badLevel.code, 2);
  assert.match(badLevel.err, /--log-level must be one of/);
});

Deno.test("every usage error quotes what was given, one line, exit 2", async () => {
  const cases: [string[], string][] = [
    [["server", "--port", "abc"], "parley server: --port must be a number, got 'abc'"],
    [["server", "--http-port", "8o8o"], "parley server: --http-port must be a number, got '8o8o'"],
    [
      ["server", "--tls-port", "99999"],
      "parley server: --tls-port must be a number from 0 to 65535, got '99999'",
    ],
    [
      ["server", "--idle-timeout", "1.5"],
      "parley server: --idle-timeout must be a number, got '1.5'",
    ],
    [
      ["server", "--sync", "maybe"],
      "parley server: --sync must be one of full, normal, got 'maybe'",
    ],
    [["server", "extra"], "parley server: unexpected argument 'extra'"],
    [["client", "localhost", "abc"], "parley client: PORT must be a number, got 'abc'"],
    [["client", "localhost", "5000", "more"], "parley client: unexpected argument 'more'"],
    [
      ["client", "localhost", "--http-port", "x"],
      "parley client: --http-port must be a number, got 'x'",
    ],
    [["cert", "--days", "soon"], "parley cert: --days must be a number, got 'soon'"],
    [
      ["cert", "--host", "a b"],
      "parley cert: --host must be a DNS name or an IP address, got 'a b'",
    ],
    [["cert", "extra"], "parley cert: unexpected argument 'extra'"],
    [["user", "add", "bob", "extra"], "parley user: unexpected argument 'extra'"],
    [["user", "frob", "bob"], "parley user: Unknown action 'frob'"],
  ];
  for (const [args, message] of cases) {
    const { code, err } = await run(...args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(err.trim().split("\n").length, 1, err);
    assert.ok(
      err.startsWith(`${message}; run 'parley ${args[0]} --help'`),
      `${args.join(" ")}: ${err}`,
    );
  }
});

Deno.test("cert refuses to replace an existing key without --force", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-cert-" });
  try {
    const cert = (...more: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", MAIN, "cert", "--out", dir, ...more],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
    assert.equal((await cert()).code, 0);
    const key = await Deno.readTextFile(`${dir}/key.pem`);
    const again = await cert();
    assert.equal(again.code, 2);
    assert.match(
      new TextDecoder().decode(again.stderr),
      new RegExp(`^parley cert: '${dir}/key.pem' exists: pass --force to replace it`),
    );
    assert.equal(await Deno.readTextFile(`${dir}/key.pem`), key, "the key is untouched");
    assert.equal((await cert("--force")).code, 0);
    assert.notEqual(await Deno.readTextFile(`${dir}/key.pem`), key);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
