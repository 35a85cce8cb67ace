// Brute force against the failed-login throttle, all at once: the real server as a subprocess,
// real sockets from many loopback source addresses (node:net can bind a local address, which
// Deno.connect cannot). Every `auth_failed` reply was a real password-hash check and every
// `rate_limited` one was not, so counting the replies counts the checks.
import assert from "node:assert/strict";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { RawClient, request, startServer } from "./_helpers.ts";

type Frame = Record<string, unknown>;

/** A JSON-mode client over node:net, from the source address `localAddress`. */
class NetClient {
  readonly #socket: Socket;
  readonly #lines: string[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    let rest = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      this.#lines.push(...parts);
      this.#wake?.();
    });
    const end = () => {
      this.#ended = true;
      this.#wake?.();
    };
    socket.on("close", end);
    socket.on("error", end);
  }

  /** Connects from `localAddress`, reads the banner and says hello in JSON. */
  static async open(port: number, localAddress: string): Promise<NetClient> {
    const socket = connect({ host: "127.0.0.1", port, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const c = new NetClient(socket);
    await c.#line(() => true); // the banner
    c.send({ type: "hello", proto: 1, ref: "hello" });
    await c.frame((f) => f.type === "welcome");
    return c;
  }

  send(frame: Frame): void {
    this.#socket.write(JSON.stringify(frame) + "\n");
  }

  async #line(match: (line: string) => boolean, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#lines.length > 0) {
        const line = this.#lines.shift()!;
        if (match(line)) return line;
      }
      if (this.#ended) throw new Error("Connection ended before the expected line");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("Timed out waiting for a line");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  async frame(match: (f: Frame) => boolean): Promise<Frame> {
    return JSON.parse(await this.#line((l) => l.startsWith("{") && match(JSON.parse(l))));
  }

  /** Sends `frame` with a fresh ref; resolves with the reply to it. */
  request(frame: Frame): Promise<Frame> {
    const ref = crypto.randomUUID();
    this.send({ ...frame, ref });
    return this.frame((f) => f.ref === ref);
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** How many replies carry each error code (`ack` for successes). */
function tally(replies: Frame[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const key = r.type === "error" ? String(r.code) : String(r.type);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

const PASSWORD = "the owner's long password";

Deno.test("brute force: 50 concurrent wrong passwords from one IP get at most the burst of hash checks", async () => {
  await using server = await startServer(["--login-burst", "5", "--login-interval", "60"]);
  // The owner registers from an address of their own, which makes it a known one.
  const owner = await NetClient.open(server.port, "127.0.0.250");
  assert.equal(
    (await owner.request({ type: "register", name: "alice", password: PASSWORD })).type,
    "ack",
  );
  owner.close();

  const attackers = await Promise.all(
    Array.from({ length: 50 }, () => NetClient.open(server.port, "127.0.0.1")),
  );
  try {
    const replies = await Promise.all(
      attackers.map((c, i) =>
        c.request({ type: "login", name: "alice", password: `guess-${i}-x` })
      ),
    );
    const counts = tally(replies);
    console.log(`50 concurrent wrong passwords from one IP: ${JSON.stringify(counts)}`);
    assert.deepEqual(Object.keys(counts).toSorted(), ["auth_failed", "rate_limited"]);
    assert.ok(counts.auth_failed! <= 6, `${counts.auth_failed} real hash checks, the burst is 5`);
    assert.ok(
      replies.every((r) => r.code === "auth_failed" || Number(r.retryAfter) >= 1),
      "every rate_limited reply says when to retry",
    );
  } finally {
    for (const c of attackers) c.close();
  }

  // The real owner, from the address they used before, is not locked out.
  const back = await NetClient.open(server.port, "127.0.0.250");
  const login = await back.request({ type: "login", name: "alice", password: PASSWORD });
  assert.equal(login.type, "ack", JSON.stringify(login));
  back.close();
});

Deno.test("brute force: 1,000 concurrent guesses at one account from 200 addresses get at most the burst", async () => {
  await using server = await startServer(["--login-burst", "5", "--login-interval", "60"]);
  {
    await using owner = await RawClient.json(server.port); // from 127.0.0.1
    const reg = await request(owner, { type: "register", name: "bob", password: PASSWORD });
    assert.equal(reg.type, "ack");
  }
  const addresses = Array.from({ length: 200 }, (_, i) => `127.0.0.${i + 2}`);
  const attackers = await Promise.all(
    addresses.flatMap((address) =>
      Array.from({ length: 5 }, () => NetClient.open(server.port, address))
    ),
  );
  try {
    assert.equal(attackers.length, 1000);
    const t0 = performance.now();
    const replies = await Promise.all(
      attackers.map((c, i) => c.request({ type: "login", name: "bob", password: `guess-${i}-x` })),
    );
    const counts = tally(replies);
    console.log(
      `1,000 concurrent guesses from 200 IPs: ${JSON.stringify(counts)} in ${
        Math.round(performance.now() - t0)
      } ms`,
    );
    assert.deepEqual(Object.keys(counts).toSorted(), ["auth_failed", "rate_limited"]);
    assert.ok(counts.auth_failed! <= 6, `${counts.auth_failed} real hash checks, the burst is 5`);
  } finally {
    for (const c of attackers) c.close();
  }
  // The owner, from the address they registered from, logs in at once.
  await using owner = await RawClient.json(server.port);
  const login = await request(owner, { type: "login", name: "bob", password: PASSWORD });
  assert.equal(login.type, "ack", JSON.stringify(login));
});

Deno.test("brute force: concurrent wrong old passwords in passwd get at most the burst of hash checks", async () => {
  await using server = await startServer(["--login-burst", "5", "--login-interval", "60"]);
  const first = await NetClient.open(server.port, "127.0.0.1");
  const reg = await first.request({ type: "register", name: "carol", password: PASSWORD });
  assert.equal(reg.type, "ack");
  // 30 sessions of the same account (a session runs one passwd at a time), logged in by token.
  const sessions = [first];
  for (let i = 0; i < 29; i++) {
    const c = await NetClient.open(server.port, "127.0.0.1");
    assert.equal((await c.request({ type: "login", token: reg.token })).type, "ack");
    sessions.push(c);
  }
  try {
    const replies = await Promise.all(
      sessions.map((c, i) =>
        c.request({ type: "passwd", old: `guess-${i}-x`, new: "a brand new password" })
      ),
    );
    const counts = tally(replies);
    console.log(`30 concurrent wrong passwd: ${JSON.stringify(counts)}`);
    assert.deepEqual(Object.keys(counts).toSorted(), ["auth_failed", "rate_limited"]);
    assert.ok(counts.auth_failed! <= 6, `${counts.auth_failed} real hash checks, the burst is 5`);
  } finally {
    for (const c of sessions) c.close();
  }
  // The password did not change.
  const again = await NetClient.open(server.port, "127.0.0.9");
  assert.equal(
    (await again.request({ type: "login", name: "carol", password: PASSWORD })).type,
    "ack",
  );
  again.close();
});
