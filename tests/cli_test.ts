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
  assert.match(badPort.err, /--port must be an integer from 0 to 65535/);
  const badLevel = await run("server", "--log-level", "loud");
  assert.equal(badLevel.code, 2);
  assert.match(badLevel.err, /--log-level must be one of/);
});
