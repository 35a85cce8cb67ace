// Releases. The GitHub workflow cannot run here: its shape is checked (parsed with the `yaml`
// package). What can run here is a bundle of the server (`deno bundle`, offline) started from an
// empty folder with a fresh Deno cache, which proves nothing reads the source tree at run time.
import assert from "node:assert/strict";
import { parse } from "yaml";
import { parseListeningLine } from "../src/server/listening.ts";
import type { ListenAddress } from "../src/server/server.ts";
import { RawClient, request, tempDir } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  strategy?: { matrix?: { include?: Record<string, string>[] } };
  steps: Step[];
  permissions?: Record<string, string>;
}

Deno.test("release: the workflow builds both binaries for five targets on a v* tag, with SHA256SUMS, attached to the release", async () => {
  const workflow = parse(await Deno.readTextFile(`${ROOT}.github/workflows/release.yml`)) as {
    on: { push: { tags: string[] } };
    jobs: Record<string, Job>;
  };
  assert.deepEqual(workflow.on.push.tags, ["v*"]);
  assert.deepEqual(Object.keys(workflow.on), ["push"], "only tags trigger it");

  const build = workflow.jobs.build!;
  const matrix = build.strategy!.matrix!.include!;
  assert.deepEqual(matrix.map((m) => m.target).sort(), [...TARGETS].sort());
  assert.equal(matrix.find((m) => m.target!.includes("windows"))!.ext, ".exe");
  const runs = build.steps.map((s) => s.run ?? "").join("\n");
  // Both binaries, each with its permission set from deno.json (never -A).
  assert.match(runs, /deno compile --target \$\{\{ matrix\.target \}\} -P=server-anywhere\s/);
  assert.match(
    runs,
    /--output dist\/parley-server-\$\{\{ matrix.target \}\}\$\{\{ matrix.ext \}\} main\.ts server/,
  );
  assert.match(runs, /deno compile --target \$\{\{ matrix\.target \}\} -P=client\s/);
  assert.match(
    runs,
    /--output dist\/parley-client-\$\{\{ matrix.target \}\}\$\{\{ matrix.ext \}\} main\.ts client/,
  );
  assert.doesNotMatch(runs, /\s-A\s|--allow-all/);
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  assert.ok(config.permissions["server-anywhere"] && config.permissions.client);
  assert.ok(build.steps.some((s) => s.uses?.startsWith("actions/upload-artifact@")));

  const release = Object.values(workflow.jobs).find((j) => j !== build)!;
  assert.equal(release.needs, "build");
  assert.equal(release.permissions?.contents, "write");
  const steps = release.steps;
  const download = steps.findIndex((s) => s.uses?.startsWith("actions/download-artifact@"));
  const sums = steps.findIndex((s) => /sha256sum parley-\* > SHA256SUMS/.test(s.run ?? ""));
  const upload = steps.findIndex((s) => s.uses?.startsWith("softprops/action-gh-release@"));
  assert.ok(download >= 0 && sums > download && upload > sums, "download, checksum, upload");
  assert.match(steps[sums]!.run!, /-eq 10/, "ten binaries: two for each of five targets");
  const files = String(steps[upload]!.with!.files).split("\n").map((l) => l.trim()).filter(Boolean);
  assert.deepEqual(files, ["dist/parley-*", "dist/SHA256SUMS"]);
});

Deno.test("release: the server bundled with deno bundle runs from an empty folder, with an empty Deno cache", async () => {
  await using dir = await tempDir("parley-bundle-");
  const bundle = `${dir.path}/parley.js`;
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "deno", "--output", bundle, "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(built.success, new TextDecoder().decode(built.stderr));
  const run = `${dir.path}/run`;
  await Deno.mkdir(run);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-net",
      "--allow-read=./data",
      "--allow-write=./data",
      "--allow-env=NO_COLOR",
      "--allow-sys=setPriority",
      bundle,
      "server",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--http-port",
      "0",
      "--irc-port",
      "0",
      "--data",
      "./data",
    ],
    cwd: run,
    env: { DENO_DIR: `${dir.path}/deno-cache`, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).values();
    const addresses: ListenAddress[] = [];
    let buffered = "";
    // Each listener says where it listens when it is up, in no set order (chat, IRC, web).
    const has = (scheme: string) => addresses.some((a) => a.scheme === scheme);
    while (!has("tcp") || !has("http")) {
      const next = await lines.next();
      if (next.done) assert.fail(`the bundle exited: ${await stderr}`);
      buffered += next.value;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const line of parts) {
        const address = parseListeningLine(line);
        if (address !== undefined) addresses.push(address);
      }
    }
    const port = addresses.find((a) => a.scheme === "tcp")!.port;
    const web = addresses.find((a) => a.scheme === "http")!.port;
    // An account (the password hashed in its worker), a message stored (the store on its worker)
    // and delivered, history read back, the web client served from the embedded assets.
    await using alice = await RawClient.json(port);
    const ack = await request(alice, {
      type: "register",
      name: "alice",
      password: "correct horse battery",
    });
    assert.equal(ack.type, "ack", JSON.stringify(ack));
    await using bob = await RawClient.text(port, "bob");
    assert.equal(
      (await request(alice, { type: "send", room: "#general", text: "from a bundle" })).type,
      "ack",
    );
    await bob.line((l) => l === "[#general] <alice> from a bundle");
    const history = await request(alice, { type: "history", room: "#general" });
    assert.equal((history.messages as { text: string }[]).at(-1)?.text, "from a bundle");
    const page = await fetch(`http://127.0.0.1:${web}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // exited already: its status says how
    }
  }
  const status = await child.status;
  const logged = await stderr;
  assert.equal(status.code, 0, logged);
  assert.doesNotMatch(logged, /error|failed/i);
  const entries = [];
  for await (const e of Deno.readDir(run)) entries.push(e.name);
  assert.deepEqual(entries, ["data"], "the bundle wrote only its data folder");
  const data = [];
  for await (const e of Deno.readDir(`${run}/data`)) data.push(e.name);
  assert.ok(data.includes("parley.db"), data.join(", "));
  console.log(`bundle: ${((await Deno.stat(bundle)).size / 2 ** 20).toFixed(2)} MiB`);
});
