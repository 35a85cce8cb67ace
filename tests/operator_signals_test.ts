// What an operator runs into stopping the server: Ctrl-C on `deno task server` (the terminal
// signals the whole process group, and the `deno task` process forwards the signal again),
// and a deliberate second Ctrl-C during the drain.
import assert from "node:assert/strict";
import { MAIN, RawClient, startServer, tempDir } from "./_helpers.ts";
import { parseListeningLine } from "../src/server/listening.ts";

const REPO = new URL("..", import.meta.url).pathname;
const HAVE_SETSID = (() => {
  try {
    return new Deno.Command("setsid", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/**
 * `deno task server …` as the README runs it, but from a temporary folder: a deno.json there
 * with the repository's imports, its `server` permission set (so ./parley-data is the temporary
 * folder's) and a `server` task, run with `setsid` so that it leads its own process group, the
 * way a shell runs a foreground job.
 */
async function taskServer(dir: string): Promise<{
  child: Deno.ChildProcess;
  port: number;
  stdout: string[];
  done: Promise<void>;
}> {
  const repo = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`));
  const config = `${dir}/deno.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      imports: repo.imports,
      permissions: { server: repo.permissions.server },
      tasks: { server: `${Deno.execPath()} run --config ${config} -P=server ${MAIN} server` },
    }),
  );
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "--config", config, "server", "--host", "127.0.0.1"].concat(
      ["--port", "0", "--http-port", "0", "--irc-port", "0"],
    ),
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stdout: string[] = [];
  let rest = "";
  let port = 0;
  while (port === 0) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`deno task server exited: ${stdout.join("\n")}`);
    const parts = (rest + value).split("\n");
    rest = parts.pop()!;
    for (const line of parts) {
      stdout.push(line);
      const address = parseListeningLine(line);
      if (address?.scheme === "tcp") port = address.port;
    }
  }
  const done = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      stdout.push(value);
    }
  })();
  return { child, port, stdout, done };
}

Deno.test({
  name: "Ctrl-C on deno task server tells the client and exits 0, every round",
  ignore: !HAVE_SETSID || Deno.build.os === "windows",
  async fn() {
    const rounds = 4;
    const codes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      await using dir = await tempDir("parley-ctrl-c-");
      const server = await taskServer(dir.path);
      await using client = await RawClient.json(server.port, `op${round}`);
      Deno.kill(-server.child.pid, "SIGINT"); // what the terminal does on Ctrl-C
      const { code } = await server.child.status;
      await server.done;
      codes.push(code);
      assert.deepEqual(await client.frame((f) => f.type === "shutdown"), {
        type: "shutdown",
        reason: "the server is shutting down",
        permanent: false,
      });
    }
    assert.deepEqual(codes, Array(rounds).fill(0));
  },
});

Deno.test("two SIGINTs at once are one Ctrl-C: the drain runs and the server exits 0", async () => {
  for (let round = 0; round < 3; round++) {
    await using server = await startServer();
    await using client = await RawClient.text(server.port, "tex");
    server.child.kill("SIGINT");
    server.child.kill("SIGINT");
    assert.equal((await server.stop()).code, 0);
    assert.equal(
      await client.line((l) => l.startsWith("* Server")),
      "* Server shutting down: the server is shutting down",
    );
  }
});

Deno.test("a second Ctrl-C 500 ms into the drain exits at once, with status 130", async () => {
  // A client that never reads, with megabytes queued for it: the drain would wait for it for
  // the whole grace period (5 s).
  await using server = await startServer(["--flood-rate", "0", "--max-sendq", "67108864"]);
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await stalled.write(new TextEncoder().encode("/rooms\n"));
    await using sender = await RawClient.json(server.port, "sender");
    const text = "x".repeat(4000);
    for (let i = 0; i < 1500; i++) {
      sender.send({ type: "send", room: "#general", text, ref: String(i) });
    }
    await sender.frame((f) => f.ref === "1499", 20_000);
    server.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 500));
    const start = Date.now();
    server.child.kill("SIGINT");
    const status = await server.child.status;
    assert.equal(status.code, 130);
    assert.ok(Date.now() - start < 1500, `exited ${Date.now() - start} ms after the second one`);
    assert.match(await server.stderr(), /received SIGINT again, exiting at once/);
  } finally {
    stalled.close();
  }
});

Deno.test({
  name:
    "deno task server's own permissions carry voice: werift loads with --allow-env=NO_COLOR,DEBUG",
  ignore: !HAVE_SETSID || Deno.build.os === "windows",
  async fn() {
    await using dir = await tempDir("parley-voice-perms-");
    const server = await taskServer(dir.path);
    try {
      await using client = await RawClient.json(server.port, "alice");
      client.send({ type: "join", room: "#ops", ref: "j" });
      await client.frame((f) => f.ref === "j");
      client.send({ type: "voice_join", room: "#ops", ref: "v" });
      assert.equal((await client.frame((f) => f.ref === "v")).type, "ack");
      const offer = await client.frame((f) => f.type === "voice_offer");
      assert.match(String(offer.sdp), /^a=candidate:.* typ host/m);
    } finally {
      Deno.kill(-server.child.pid, "SIGINT");
      await server.child.status;
      await server.done;
    }
  },
});
