/**
 * A rig: one server under test and the worker processes driving it, with the client registry
 * (which worker holds which client) and the measured step: offer a fixed rate for a while,
 * wait for the deliveries to drain, and account for them (latency percentiles, loss,
 * duplicates, reordering, server CPU and memory from /proc).
 *
 * @module
 */

import type { LoginSpec, SendTarget } from "./conn.ts";
import type { ClientSpec, Command, OpenReply, SendReply, StatsReply } from "./control.ts";
import { Histogram } from "./histogram.ts";
import { WorkerPool } from "./pool.ts";
import { cpuSeconds, memory, stolenSeconds } from "./proc.ts";
import type { ServerUnderTest } from "./servers.ts";

/** Latency percentiles of a step, milliseconds. */
export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** What one measured step found. */
export interface StepResult {
  /** Offered deliveries per second (send rate × recipients). */
  offered: number;
  /** Messages per second the driver actually sent. */
  sendRate: number;
  /** Deliveries expected (messages sent × recipients). */
  expected: number;
  /** Fresh deliveries received. */
  delivered: number;
  /** Delivered per second of sending. */
  deliveredPerSec: number;
  /** Expected minus delivered. */
  loss: number;
  duplicates: number;
  reordered: number;
  latency: Latency;
  /** Server CPU seconds during the step (sending and draining). */
  serverCpu: number;
  /** Server CPU seconds per million deliveries. */
  cpuPerMillion: number;
  /** Server resident memory after the step, bytes. */
  serverRss: number;
  /** Driver (all workers) CPU seconds during the step. */
  driverCpu: number;
  /** Wall time of the step (sending and draining), seconds. */
  wall: number;
  /** Driver CPU use as a share of the CPUs it may use (near 1: the driver is the limit). */
  driverLoad: number;
  /** CPU time the hypervisor stole during the step, seconds (all CPUs). */
  steal: number;
  /** The driver's scheduling lag, p99 and max, ms. */
  lagP99Ms: number;
  lagMaxMs: number;
  /** Error replies (refused sends). */
  errors: number;
  errorSamples: string[];
  /** Client connections that ended during the step. */
  dead: number;
  /** Whether the step meets the capacity criteria, and if not why. */
  pass: boolean;
  reason: string;
  /** Set on a failed sweep step that was measured again: how the repeat went. */
  retriedAs?: string;
}

/** One sender of a step. */
export interface StepSender {
  /** Client id. */
  id: number;
  /** Where it sends. */
  target: SendTarget;
  /** How many clients receive each of its messages. */
  recipients: number;
}

/** Options of a {@linkcode Rig}. */
export interface RigOptions {
  /** Worker processes. */
  workers: number;
  /** CPUs for the workers (`taskset -c`). */
  cpus?: string | undefined;
  /** Read buffer per connection, bytes. @default 16384 */
  readSize?: number;
  /** Timeout of one setup request (login, join), ms. @default 60000 */
  timeoutMs?: number;
  /** Connections each worker opens at once. @default 8 */
  concurrency?: number;
  /** CPUs the workers may use (for {@linkcode StepResult.driverLoad}). @default 1 */
  driverCores?: number;
}

/** Pass criteria and drain of a step. */
export interface StepOptions {
  /** Step number (stamped into the messages). */
  step: number;
  /** Sending time, ms. */
  durationMs: number;
  /** Message text size, bytes. */
  size: number;
  /** Highest p99 (ms) that still passes. */
  p99LimitMs: number;
  /** Give up draining after this long without a new delivery, ms. */
  drainMs: number;
  /** Client ids excluded from the delivery count (a paused slow reader). */
  exclude?: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Latency percentiles of a histogram of µs, in ms. */
export function latencyOf(h: Histogram): Latency {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    p50: ms(h.percentile(50)),
    p90: ms(h.percentile(90)),
    p99: ms(h.percentile(99)),
    p999: ms(h.percentile(99.9)),
    max: ms(h.max),
    mean: ms(h.mean),
  };
}

/** A server, its workers, and the clients they hold. */
export class Rig implements AsyncDisposable {
  /** The server under test. */
  readonly server: ServerUnderTest;
  /** The workers. */
  readonly pool: WorkerPool;
  /** Client id → worker index. */
  readonly workerOf: Map<number, number> = new Map();
  /** Client id → the name the server gave it. */
  readonly names: Map<number, string> = new Map();
  /** Client id → session token (parley logins). */
  readonly tokens: Map<number, string> = new Map();
  readonly #options: RigOptions;

  private constructor(server: ServerUnderTest, pool: WorkerPool, options: RigOptions) {
    this.server = server;
    this.pool = pool;
    this.#options = options;
  }

  /**
   * Spawns the workers for `server`.
   *
   * @param server the server to drive
   * @param options workers and their settings
   */
  static async start(server: ServerUnderTest, options: RigOptions): Promise<Rig> {
    const pool = await WorkerPool.spawn({
      workers: options.workers,
      host: server.host,
      cpus: options.cpus,
    });
    await pool.all(() => ({
      cmd: "init",
      protocol: server.protocol,
      host: server.host,
      port: server.port,
      readSize: options.readSize ?? 16384,
    }));
    return new Rig(server, pool, options);
  }

  /** Server CPU seconds so far (0 when the server is not ours to watch). */
  serverCpu(): Promise<number> {
    return this.server.pid === undefined
      ? Promise.resolve(0)
      : cpuSeconds(this.server.pid).catch(() => 0);
  }

  /** Server resident memory, bytes (0 when unknown). */
  async serverMemory(): Promise<{ rss: number; hwm: number }> {
    if (this.server.pid === undefined) return { rss: 0, hwm: 0 };
    return await memory(this.server.pid).catch(() => ({ rss: 0, hwm: 0 }));
  }

  /**
   * Opens clients, each on worker `worker(id)`, `concurrency` at once per worker.
   *
   * @returns how many opened
   * @throws {Error} when any failed (with the first errors)
   */
  async open(
    clients: ClientSpec[],
    worker: (id: number) => number = (id) => id % this.pool.size,
    concurrency: number = this.#options.concurrency ?? 8,
  ): Promise<number> {
    const byWorker: ClientSpec[][] = Array.from({ length: this.pool.size }, () => []);
    for (const c of clients) {
      const w = worker(c.id) % this.pool.size;
      byWorker[w]!.push(c);
      this.workerOf.set(c.id, w);
    }
    const replies = await this.pool.all<OpenReply>((i) =>
      byWorker[i]!.length === 0 ? undefined : {
        cmd: "open",
        clients: byWorker[i]!,
        concurrency,
        timeoutMs: this.#options.timeoutMs ?? 60_000,
      }
    );
    let opened = 0;
    const errors: string[] = [];
    for (const r of replies) {
      if (r === undefined) continue;
      opened += r.opened;
      errors.push(...r.errors);
      for (const [id, name] of r.names) this.names.set(id, name);
      for (const [id, token] of r.tokens) this.tokens.set(id, token);
    }
    if (opened < clients.length) {
      throw new Error(
        `Cannot open clients: ${clients.length - opened} of ${clients.length} failed: ${
          errors.join("; ")
        }`,
      );
    }
    return opened;
  }

  /** Sends a command to the workers holding `ids` (each gets its own ids). */
  async perWorker<T>(ids: number[], make: (ids: number[]) => Command): Promise<T[]> {
    const byWorker: number[][] = Array.from({ length: this.pool.size }, () => []);
    for (const id of ids) byWorker[this.workerOf.get(id) ?? 0]!.push(id);
    const out = await this.pool.all<T>((i) =>
      byWorker[i]!.length === 0 ? undefined : make(byWorker[i]!)
    );
    return out.filter((r): r is Awaited<T> => r !== undefined) as T[];
  }

  /** Every worker's stats, merged; `detail` for some clients. */
  async stats(detail: number[] = []): Promise<{
    delivered: number;
    duplicates: number;
    reordered: number;
    stale: number;
    latency: Histogram;
    errors: number;
    errorSamples: string[];
    dead: number;
    open: number;
    lastByteAt: number;
    lastAt: number;
    detail: Map<number, { received: number; ended: boolean }>;
  }> {
    const replies = await this.pool.all<StatsReply>(() => ({ cmd: "stats", detail }));
    const out = {
      delivered: 0,
      duplicates: 0,
      reordered: 0,
      stale: 0,
      latency: new Histogram(),
      errors: 0,
      errorSamples: [] as string[],
      dead: 0,
      open: 0,
      lastByteAt: 0,
      lastAt: 0,
      detail: new Map<number, { received: number; ended: boolean }>(),
    };
    for (const r of replies) {
      if (r === undefined) continue;
      const d = r.deliveries;
      out.delivered += d.delivered;
      out.duplicates += d.duplicates;
      out.reordered += d.reordered;
      out.stale += d.stale;
      out.latency.add(d.latency);
      out.errors += r.errors;
      out.errorSamples.push(...r.errorSamples);
      out.dead += r.dead;
      out.open += r.open;
      out.lastByteAt = Math.max(out.lastByteAt, r.lastByteAt);
      out.lastAt = Math.max(out.lastAt, d.lastAt);
      for (const [id, received, ended] of r.detail) out.detail.set(id, { received, ended });
    }
    return out;
  }

  /**
   * Offers `sendRate` messages per second, spread evenly over `senders`, for the step's
   * duration; waits for the deliveries to drain; accounts for them.
   *
   * @param senders who sends where, and to how many recipients
   * @param sendRate messages per second in total
   * @param options step number, duration, pass criteria
   */
  async step(senders: StepSender[], sendRate: number, options: StepOptions): Promise<StepResult> {
    const exclude = options.exclude ?? [];
    const cpu0 = await this.serverCpu();
    const driver0 = await this.pool.cpuSeconds();
    const wall0 = performance.now();
    const steal0 = await stolenSeconds();
    const before = await this.stats(exclude);
    const excluded0 = [...before.detail.values()].reduce((n, d) => n + d.received, 0);
    await this.pool.all(() => ({ cmd: "reset", step: options.step }));
    const bySender = new Map(senders.map((s) => [s.id, s]));
    const at = performance.timeOrigin + performance.now() + 100;
    const ids = senders.map((s) => s.id);
    const replies = await this.perWorker<SendReply>(ids, (mine) => ({
      cmd: "send",
      step: options.step,
      senders: mine.map((id) => ({ id, target: bySender.get(id)!.target })),
      rate: (sendRate * mine.length) / senders.length,
      durationMs: options.durationMs,
      at,
      size: options.size,
    }));
    let expected = 0;
    let sent = 0;
    let lagP99Ms = 0;
    let lagMaxMs = 0;
    for (const r of replies) {
      for (const [id, n] of r.sent) {
        sent += n;
        expected += n * bySender.get(id)!.recipients;
      }
      lagP99Ms = Math.max(lagP99Ms, r.lagP99Ms);
      lagMaxMs = Math.max(lagMaxMs, r.lagMaxMs);
    }
    // Drain: until everything arrived, or nothing new arrived for drainMs.
    const fresh = (st: typeof before) =>
      st.delivered - ([...st.detail.values()].reduce((n, d) => n + d.received, 0) - excluded0);
    let stats = await this.stats(exclude);
    let last = fresh(stats);
    let lastChange = performance.now();
    while (last < expected && performance.now() - lastChange < options.drainMs) {
      await sleep(50);
      stats = await this.stats(exclude);
      if (fresh(stats) !== last) {
        last = fresh(stats);
        lastChange = performance.now();
      }
    }
    const delivered = fresh(stats);
    const serverCpu = (await this.serverCpu()) - cpu0;
    const driverCpu = (await this.pool.cpuSeconds()) - driver0;
    const wall = (performance.now() - wall0) / 1000;
    const steal = (await stolenSeconds()) - steal0;
    const driverLoad = driverCpu / wall / (this.#options.driverCores ?? 1);
    const { rss } = await this.serverMemory();
    const seconds = options.durationMs / 1000;
    const recipients = senders.reduce((n, s) => n + s.recipients, 0) / Math.max(1, senders.length);
    const latency = latencyOf(stats.latency);
    const loss = Math.max(0, expected - delivered);
    const dead = stats.dead - before.dead;
    let reason = "";
    if (loss > 0) reason = `loss ${loss}`;
    else if (latency.p99 > options.p99LimitMs) reason = `p99 ${latency.p99} ms`;
    else if (sent < 0.97 * sendRate * seconds - this.pool.size) {
      reason = "driver could not offer the rate";
    } else if (dead > 0) reason = `${dead} connections closed`;
    if (reason !== "" && driverLoad >= 0.85 && serverCpu / wall < 0.85) {
      reason += " (driver saturated)";
    }
    return {
      offered: Math.round(sendRate * recipients),
      sendRate: Math.round(sent / seconds),
      expected,
      delivered,
      deliveredPerSec: Math.round(delivered / seconds),
      loss,
      duplicates: stats.duplicates,
      reordered: stats.reordered,
      latency,
      serverCpu,
      cpuPerMillion: delivered > 0 ? (serverCpu / delivered) * 1e6 : 0,
      serverRss: rss,
      driverCpu,
      wall,
      driverLoad,
      steal,
      lagP99Ms,
      lagMaxMs,
      errors: stats.errors,
      errorSamples: stats.errorSamples.slice(0, 3),
      dead,
      pass: reason === "",
      reason,
    };
  }

  /** Stops the workers (closing their connections); the server is the caller's. */
  async stop(): Promise<void> {
    await this.pool.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A step's server CPU use as a share of one CPU (the server is pinned to one). */
export function serverLoad(step: StepResult): number {
  return step.wall > 0 ? step.serverCpu / step.wall : 0;
}

/**
 * Whether the driver, not the server, set a sweep's capacity: at the lowest failing rate above
 * the best passing step, the driver used 85 % or more of its CPUs while the server used less.
 *
 * @param steps the sweep's steps
 * @param best its best passing step
 */
export function isDriverBound(steps: StepResult[], best: StepResult | undefined): boolean {
  const above = steps.filter((s) => !s.pass && s.offered > (best?.offered ?? 0));
  if (above.length === 0) return false;
  const lowest = Math.min(...above.map((s) => s.offered));
  return above.filter((s) => s.offered === lowest).every((s) =>
    s.driverLoad >= 0.85 && serverLoad(s) < 0.85
  );
}

/** The login of client `id` for a protocol where guests need a nick. */
export function nickLogin(id: number, prefix = "b"): LoginSpec {
  return { kind: "guest", nick: `${prefix}${id}` };
}
