// What an operator's log collector sees with --log-format json: every stderr line is a JSON
// record (the listening lines and the start's refusal included), and expected conditions carry
// no stack traces.
import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";
import { SERVER_PERMISSIONS } from "../src/server/config.ts";
import { MAIN } from "./_helpers.ts";

/** Every line of `text` parsed as JSON (asserting that each is). */
function records(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l !== "").map((line) => {
    assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);
    return JSON.parse(line);
  });
}

Deno.test("--log-format json: every stderr line is JSON, listening lines included, no stacks", async () => {
  await using server = await startServer([
    "--log-format",
    "json",
    "--log-level",
    "debug",
    "--max-conns-per-ip",
    "2",
    "--limit-loopback",
  ]);
  await using json = await RawClient.json(server.port, "jay");
  json.send("{not json");
  json.send({ type: "join", room: "no spaces allowed" });
  await json.frame((f) => f.type === "error" && f.code !== "bad_frame");
  await using second = await RawClient.connect(server.port);
  await using refused = await RawClient.connect(server.port); // over --max-conns-per-ip
  await refused.closed();
  await second[Symbol.asyncDispose]();
  assert.equal((await server.stop("SIGTERM")).code, 0);
  const err = await server.stderr();
  const logged = records(err);
  const messages = logged.map((r) => String(r.message));
  assert.ok(messages.includes(`listening on tcp://127.0.0.1:${server.port}`), messages.join("\n"));
  assert.ok(messages.includes(`listening on http://127.0.0.1:${server.httpPort}`));
  assert.ok(messages.includes("received SIGTERM, shutting down"));
  assert.ok(messages.some((m) => /^Refused "?127\.0\.0\.1:/.test(m)), "the refusal is logged");
  assert.equal(server.stdout[0], `listening on tcp://127.0.0.1:${server.port}`, "stdout too");
  // A stack inside a JSON record is escaped: `\n    at …`.
  assert.doesNotMatch(err, /\\n\s+at /, "no stack traces");
});

Deno.test("--log-format json: a refused start is a JSON record, without a stack", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((taken.addr as Deno.NetAddr).port);
  const data = await Deno.makeTempDir({ prefix: "parley-logs-" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...SERVER_PERMISSIONS, MAIN, "server", "--host", "127.0.0.1"].concat(
        [
          "--port",
          port,
          "--http-port",
          "0",
          "--irc-port",
          "0",
          "--data",
          data,
          "--log-format",
          "json",
        ],
      ),
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(code, 1);
    assert.equal(new TextDecoder().decode(stdout), "");
    const logged = records(new TextDecoder().decode(stderr));
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.level, "ERROR");
    assert.match(
      String(logged[0]!.message),
      new RegExp(`^parley server: cannot start: port ${port} \\(--port\\) is in use`),
    );
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
