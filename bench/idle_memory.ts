/**
 * What an idle connection costs, by hand (issue 20): starts `main.ts server` (or a bare
 * baseline: `Deno.listen` with one pending read per connection, or a `node:net` server) as a
 * subprocess on loopback, opens guests (`hello`) and then token logins over a pool of accounts,
 * and prints per connection the growth of the server's RSS, its idle CPU by thread, and with
 * `--inspect` the heap used after a forced GC and the heap snapshot's growth by type and
 * retainer. Connections are bounded by `--guests` and `--tokens`; every phase by time. Without
 * `--require-login` (as the idle scenario runs), a token login first arrives as a guest, and with
 * a pool of accounts its presence goes to every session in `#general`: use `--guests 0
 * --require-login` for token sessions alone.
 *
 * ```sh
 * deno run -A bench/idle_memory.ts parley --guests 5000 --tokens 5000 --inspect
 * deno run -A bench/idle_memory.ts bare --guests 10000
 * deno run -A bench/idle_memory.ts node --guests 10000
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

const HELLO = '{"type":"hello","proto":1,"client":"idle"}';
const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The baselines, run as the server process: `--serve bare|node`. */
async function serveBaseline(kind: string): Promise<void> {
  if (kind === "node") {
    const net = await import("node:net");
    const server = net.createServer((socket) => {
      socket.on("data", () => {});
      socket.on("error", () => {});
    });
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      console.log(`listening on tcp://127.0.0.1:${port}`);
    });
    return;
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`listening on tcp://127.0.0.1:${listener.addr.port}`);
  for await (const conn of listener) {
    (async () => {
      const buf = new Uint8Array(512);
      try {
        while ((await conn.read(buf)) !== null) continue;
      } catch {
        // gone
      }
      conn.close();
    })();
  }
}

function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

/** CPU clock ticks (1/100 s) by thread name. */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ticks = Number(fields[11]) + Number(fields[12]);
      out.set(name, (out.get(name) ?? 0) + ticks);
    } catch {
      // the thread ended
    }
  }
  return out;
}

type Counts = Map<string, { n: number; size: number }>;

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
class Inspector {
  readonly #ws: WebSocket;
  #id = 0;
  readonly #pending = new Map<number, (result: Record<string, unknown>) => void>();
  #chunks: string[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.id !== undefined) this.#pending.get(m.id)?.(m.result ?? {});
      else if (m.method === "HeapProfiler.addHeapSnapshotChunk") this.#chunks.push(m.params.chunk);
    };
  }

  static async open(port: number): Promise<Inspector> {
    const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    return new Inspector(ws);
  }

  send(method: string, params: unknown = {}): Promise<Record<string, unknown>> {
    const id = ++this.#id;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve) => this.#pending.set(id, resolve));
  }

  async heapUsed(): Promise<number> {
    await this.send("HeapProfiler.collectGarbage");
    return Number((await this.send("Runtime.getHeapUsage")).usedSize);
  }

  /** A heap snapshot, counted by `type:name <- retainer.edge`. */
  async snapshot(): Promise<Counts> {
    this.#chunks = [];
    await this.send("HeapProfiler.collectGarbage");
    await this.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    const snap = JSON.parse(this.#chunks.join(""));
    this.#chunks = [];
    const meta = snap.snapshot.meta;
    const nf: number = meta.node_fields.length;
    const ef: number = meta.edge_fields.length;
    const [ti, ni, si, eci] = ["type", "name", "self_size", "edge_count"].map((f) =>
      meta.node_fields.indexOf(f)
    ) as [number, number, number, number];
    const [eti, eni, eto] = ["type", "name_or_index", "to_node"].map((f) =>
      meta.edge_fields.indexOf(f)
    ) as [number, number, number];
    const nodeTypes: string[] = meta.node_types[0];
    const edgeTypes: string[] = meta.edge_types[0];
    const nodes: number[] = snap.nodes;
    const edges: number[] = snap.edges;
    const strings: string[] = snap.strings;
    const count = nodes.length / nf;
    const parent = new Int32Array(count).fill(-1);
    const via: string[] = new Array(count);
    for (let i = 0, e = 0; i < count; i++) {
      for (let k = 0; k < nodes[i * nf + eci]!; k++, e += ef) {
        const to = edges[e + eto]! / nf;
        const type = edgeTypes[edges[e + eti]!]!;
        if (type === "weak" || type === "shortcut" || parent[to] !== -1) continue;
        parent[to] = i;
        via[to] = type === "element" || type === "hidden"
          ? `[${type}]`
          : String(strings[edges[e + eni]!]);
      }
    }
    const label = (i: number) => {
      const type = nodeTypes[nodes[i * nf + ti]!]!;
      const name = type.includes("string") ? "" : String(strings[nodes[i * nf + ni]!]).slice(0, 40);
      return `${type}:${name}`;
    };
    const out: Counts = new Map();
    for (let i = 0; i < count; i++) {
      const p = parent[i]!;
      const key = `${label(i)} <- ${p >= 0 ? `${label(p)}.${via[i]}` : "-"}`;
      const entry = out.get(key) ?? { n: 0, size: 0 };
      entry.n++;
      entry.size += nodes[i * nf + si]!;
      out.set(key, entry);
    }
    return out;
  }

  close(): void {
    this.#ws.close();
  }
}

function printGrowth(before: Counts, after: Counts, per: number, top: number): void {
  const rows: [string, number, number][] = [];
  let total = 0;
  let objects = 0;
  for (const [key, { n, size }] of after) {
    const old = before.get(key) ?? { n: 0, size: 0 };
    rows.push([key, (n - old.n) / per, (size - old.size) / per]);
    total += (size - old.size) / per;
    objects += (n - old.n) / per;
  }
  rows.sort((a, b) => b[2] - a[2]);
  console.log(
    `  heap snapshot growth: ${total.toFixed(0)} B in ${objects.toFixed(1)} objects each`,
  );
  for (const [key, n, size] of rows.slice(0, top)) {
    console.log(`    ${size.toFixed(0).padStart(6)} B ${n.toFixed(2).padStart(6)}x ${key}`);
  }
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      serve: { type: "string" },
      guests: { type: "string", default: "5000" },
      tokens: { type: "string", default: "5000" },
      accounts: { type: "string", default: "100" },
      warm: { type: "string", default: "2000" },
      settle: { type: "string", default: "2000" },
      hold: { type: "string", default: "5000" },
      inspect: { type: "boolean", default: false },
      top: { type: "string", default: "30" },
      "require-login": { type: "boolean", default: false },
    },
  });
  if (values.serve !== undefined) return await serveBaseline(values.serve);
  const mode = positionals[0] ?? "parley";
  const root = new URL("..", import.meta.url).pathname;
  const inspectPort = 9300 + Math.floor(Math.random() * 500);
  const inspect = values.inspect ? [`--inspect=127.0.0.1:${inspectPort}`] : [];
  let data: string | undefined;
  let serverArgs: string[];
  if (mode === "parley") {
    data = Deno.makeTempDirSync({ prefix: "parley-idle-" });
    // deno-fmt-ignore
    serverArgs = [`${root}main.ts`, "server", "--no-http", "--no-irc", "--no-voice", "--host",
      "127.0.0.1", "--port", "0", "--data", data, "--sync", "normal", "--flood-rate", "0",
      "--max-conns", "20000", "--max-conns-per-ip", "20000", "--conn-rate", "1000000",
      "--login-burst", "1000000", "--register-burst", "1000000", "--first-line-timeout", "3600",
      "--login-timeout", "3600", "--ping-after", "3600", "--idle-timeout", "7200",
      "--log-level", "warning", ...(values["require-login"] ? ["--require-login"] : [])];
  } else {
    serverArgs = [new URL(import.meta.url).pathname, "--serve", mode];
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...inspect, ...serverArgs],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let port = 0;
  const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
  while (port === 0) {
    const { value, done } = await lines.read();
    if (done) throw new Error("The server exited before listening");
    seen += value;
    port = Number(/listening on tcp:\/\/[^\s]+:(\d+)/.exec(seen)?.[1] ?? 0);
  }
  clearTimeout(deadline);
  (async () => {
    while (!(await lines.read()).done) continue;
  })();
  const inspector = values.inspect ? await Inspector.open(inspectPort) : undefined;
  await inspector?.send("Runtime.runIfWaitingForDebugger");
  const pid = child.pid;
  const conns: Deno.Conn[] = [];

  /** Opens a connection, sends `line`, waits for `replies` lines, then keeps reading. */
  async function open(line: string | undefined, replies: number): Promise<string> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(conn);
    if (line !== undefined) await conn.write(enc.encode(`${line}\n`));
    const buf = new Uint8Array(4096);
    let got = "";
    const until = performance.now() + 30_000;
    while (got.split("\n").length - 1 < replies) {
      if (performance.now() > until) throw new Error("No answer within 30 s");
      const n = await conn.read(buf);
      if (n === null) throw new Error(`Closed after ${got}`);
      got += dec.decode(buf.subarray(0, n));
    }
    (async () => {
      try {
        while ((await conn.read(buf)) !== null) continue;
      } catch {
        // closed
      }
    })();
    return got;
  }

  async function openMany(n: number, line: (i: number) => string | undefined, replies: number) {
    let next = 0;
    const worker = async () => {
      while (next < n) await open(line(next++), replies);
    };
    await Promise.all(Array.from({ length: Math.min(100, n) }, worker));
  }

  try {
    const parley = mode === "parley";
    const tokens: string[] = [];
    const accounts = parley && Number(values.tokens) > 0 ? Number(values.accounts) : 0;
    for (let i = 0; i < accounts; i++) {
      const frame = { type: "register", name: `idle${i}`, password: `idle-password-${i}` };
      const got = await open(JSON.stringify(frame), 2);
      tokens.push(JSON.parse(got.trim().split("\n").at(-1)!).token);
    }
    const warm = conns.length;
    await openMany(Number(values.warm), () => parley ? HELLO : undefined, parley ? 2 : 0);
    for (const conn of conns.splice(warm)) conn.close();
    await sleep(1500);
    const heap0 = await inspector?.heapUsed();
    const snap0 = await inspector?.snapshot();
    const rss0 = rss(pid);
    console.log(`${mode}: RSS at start ${(rss0 / 1048576).toFixed(1)} MiB`);
    const phases: [string, number, (i: number) => string | undefined, number][] = parley
      ? [
        ["guests", Number(values.guests), () => HELLO, 2],
        ["tokens", Number(values.tokens), (i) =>
          JSON.stringify({ type: "login", token: tokens[i % tokens.length] }), 2],
      ]
      : [["connections", Number(values.guests), () => HELLO, 0]];
    let before = rss0;
    let heapBefore = heap0 ?? 0;
    let total = 0;
    for (const [name, n, line, replies] of phases) {
      if (n === 0) continue;
      const t = performance.now();
      await openMany(n, line, replies);
      const openMs = performance.now() - t;
      total += n;
      await sleep(Number(values.settle));
      const ticks0 = threadTicks(pid);
      const hold = Number(values.hold);
      await sleep(hold);
      const ticks1 = threadTicks(pid);
      const threads = [...ticks1].map(([k, v]) =>
        [k, (v - (ticks0.get(k) ?? 0)) / hold * 1000] as const
      )
        .filter(([, pct]) => pct > 0).map(([k, pct]) => `${k} ${pct.toFixed(1)} %`);
      const after = rss(pid);
      let heap = "";
      if (inspector !== undefined) {
        const used = await inspector.heapUsed();
        await sleep(300);
        heap = `; heap after GC +${((used - heapBefore) / n).toFixed(0)} B each, RSS after GC ${
          ((rss(pid) - rss0) / total).toFixed(0)
        } B per connection`;
        heapBefore = used;
      }
      console.log(
        `  ${name}: ${n} in ${openMs.toFixed(0)} ms; RSS +${((after - before) / n).toFixed(0)} B ` +
          `each${heap}; idle CPU: ${threads.join(", ") || "none"}`,
      );
      before = after;
    }
    if (inspector !== undefined && snap0 !== undefined && total > 0) {
      printGrowth(snap0, await inspector.snapshot(), total, Number(values.top));
    }
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // closed
      }
    }
    inspector?.close();
    child.kill("SIGTERM");
    const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
    await child.status;
    clearTimeout(kill);
    if (data !== undefined) Deno.removeSync(data, { recursive: true });
  }
}

if (import.meta.main) {
  await main(Deno.args);
  Deno.exit(0);
}
