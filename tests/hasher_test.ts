// Password hashing at low priority: the worker derives the same bytes as WebCrypto on this
// thread, and in the real server the CPU of a login burst is spent by threads at nice 19
// while the event loop stays at nice 0.
import assert from "node:assert/strict";
import { HASH_NICENESS, LowPriorityHasher } from "../src/auth/hasher.ts";
import { DEFAULT_PARAMS, deriveHere, hashPassword, verifyPassword } from "../src/auth/password.ts";
import { RawClient, request, startServer } from "./_helpers.ts";

Deno.test("the low-priority hasher derives what WebCrypto derives here, and verifies", async () => {
  const hasher = new LowPriorityHasher();
  try {
    assert.equal(await hasher.niced(), true, "setPriority is allowed in the test task");
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const params = { memory: 1024, passes: 1, parallelism: 1 };
    const [here, there] = await Promise.all([
      deriveHere("correct horse", salt, params, 32),
      hasher.derive("correct horse", salt, params, 32),
    ]);
    assert.deepEqual(there, here);
    const phc = await hashPassword("battery staple", params, hasher.derive);
    assert.equal((await verifyPassword(phc, "battery staple", params, deriveHere)).ok, true);
    assert.equal((await verifyPassword(phc, "battery stapler", params, hasher.derive)).ok, false);
  } finally {
    hasher.close();
  }
  await assert.rejects(hasher.derive("x", new Uint8Array(16), DEFAULT_PARAMS, 32), /closed/);
});

/** Every thread of `pid`: its niceness and CPU time in clock ticks (from /proc, via `sh`). */
async function threads(pid: number): Promise<{ tid: number; nice: number; ticks: number }[]> {
  const script = `for t in /proc/${pid}/task/*; do cat "$t/stat"; echo; done`;
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim()).map((line) => {
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = line.slice(line.lastIndexOf(")") + 2).split(" ");
    return { tid: parseInt(line), nice: Number(f[16]), ticks: Number(f[11]) + Number(f[12]) };
  });
}

Deno.test("a burst of registrations hashes on threads at nice 19, not on the event loop", async () => {
  await using server = await startServer();
  const pid = server.child.pid;
  const before = await threads(pid);
  const clients = await Promise.all(Array.from({ length: 6 }, () => RawClient.json(server.port)));
  try {
    const replies = await Promise.all(
      clients.map((c, i) =>
        request(c, { type: "register", name: `user${i}`, password: "correct horse" })
      ),
    );
    for (const reply of replies) assert.equal(reply.type, "ack", JSON.stringify(reply));
  } finally {
    await Promise.all(clients.map((c) => c[Symbol.asyncDispose]()));
  }
  const after = await threads(pid);
  const used = (nice: number) =>
    after.filter((t) => t.nice === nice).reduce(
      (sum, t) => sum + t.ticks - (before.find((b) => b.tid === t.tid)?.ticks ?? 0),
      0,
    );
  assert.equal(after.find((t) => t.tid === pid)?.nice, 0, "the event loop keeps normal priority");
  // Six Argon2id hashes at 19 MiB and 2 passes take well over 100 ms of CPU (10 ticks).
  const low = used(HASH_NICENESS);
  assert.ok(low >= 10, `nice ${HASH_NICENESS} threads used ${low} ticks`);
  assert.ok(low > used(0), `hashing (${low} ticks) outweighs everything at nice 0 (${used(0)})`);
});
