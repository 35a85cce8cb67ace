/**
 * The benchmark scenarios, each written once for every protocol: fan-out in a room with a rate
 * sweep, direct-message pairs, idle connections, a join storm, connection + login rate, a
 * burst of password logins under load, and one slow reader in a busy room.
 *
 * @module
 */

import type { LoginSpec, SendTarget } from "./conn.ts";
import type { ChurnReply, ClientSpec, JoinReply } from "./control.ts";
import { Histogram } from "./histogram.ts";
import { mib } from "./report.ts";
import { isDriverBound, latencyOf, nickLogin, Rig } from "./rig.ts";
import type { Latency, StepResult, StepSender } from "./rig.ts";
import { IRC_OPER, IRC_SERVER_NAME, launch } from "./servers.ts";
import type { LaunchOptions, ServerKind, ServerUnderTest } from "./servers.ts";

/** Settings shared by every scenario. */
export interface BenchSettings {
  /** Worker processes for the driver. */
  workers: number;
  /** CPUs of the server and of the driver (`taskset -c` lists); undefined: not pinned. */
  serverCpus?: string | undefined;
  driverCpus?: string | undefined;
  /** How many CPUs the driver may use. */
  driverCores: number;
  /** Sending time of each step, ms. */
  durationMs: number;
  /** Message text size, bytes. */
  size: number;
  /** Senders in a fan-out room. */
  senders: number;
  /** The first step of a sweep, deliveries/s. */
  startRate: number;
  /** The sweep stops above this, deliveries/s. */
  maxRate: number;
  /** Bisection steps between the last passing and the first failing rate. */
  refine: number;
  /** Measure a failing sweep step again this many times (0 or 1). */
  retries: number;
  /** Highest p99 of a passing step, ms. */
  p99LimitMs: number;
  /** Drain timeout: give up after this long without a delivery, ms. */
  drainMs: number;
  /** parley: extra server arguments and deno flags. */
  parleyArgs: readonly string[];
  denoFlags: readonly string[];
  /** Progress lines (to stderr). */
  log: (line: string) => void;
  /** A server to drive instead of launching one (tests, `--connect`). */
  external?: ServerUnderTest | undefined;
}

/** The server, started fresh for a scenario (or the external one). */
async function serverFor(
  kind: ServerKind,
  settings: BenchSettings,
  extra: LaunchOptions = {},
): Promise<ServerUnderTest> {
  if (settings.external !== undefined) {
    return { ...settings.external, stop: () => Promise.resolve() };
  }
  return await launch(kind, {
    cpus: settings.serverCpus,
    parleyArgs: settings.parleyArgs,
    denoFlags: settings.denoFlags,
    ...extra,
  });
}

/**
 * How many clients each worker logs in at once while setting up. ngircd listens with a
 * backlog of 10 (more in flight overflows it and costs SYN retries of a second or more);
 * InspIRCd completes registrations on its once-a-second timer, so it needs many in flight.
 */
export function setupConcurrency(kind: ServerKind): number {
  return kind === "ngircd" ? 4 : kind === "inspircd" ? 1000 : 32;
}

async function rigFor(
  server: ServerUnderTest,
  settings: BenchSettings,
  workers = settings.workers,
  readSize = 16384,
): Promise<Rig> {
  return await Rig.start(server, {
    workers,
    cpus: settings.driverCpus,
    readSize,
    driverCores: settings.driverCores,
    concurrency: setupConcurrency(server.kind),
  });
}

/** How a guest logs in: parley gives names, IRC and MQTT need one. */
function guest(server: ServerUnderTest, id: number): LoginSpec {
  return server.protocol === "parley" ? { kind: "guest" } : nickLogin(id);
}

// ---------------------------------------------------------------------------------------------
// Fan-out and DM sweeps

/** A rate sweep's steps and the capacity it found. */
export interface SweepResult {
  /** Every measured step, in the order run. */
  steps: StepResult[];
  /** The highest delivered rate of a passing step (0: none passed). */
  capacity: number;
  /** The passing step with the highest offered rate. */
  best: StepResult | undefined;
  /** Whether the driver, not the server, set the capacity ({@linkcode isDriverBound}). */
  driverBound: boolean;
}

/** A room or DM layout built on a rig: who sends where. */
interface Layout {
  rig: Rig;
  senders: StepSender[];
  /** Deliveries per message. */
  recipients: number;
}

/**
 * Runs steps at doubling rates until two in a row fail (loss, p99 over the limit, or the driver
 * cannot offer the rate), then bisects between the highest pass and the failure above it
 * `refine` times. A failed step that lost messages or connections rebuilds the layout before
 * the next one.
 */
async function sweep(
  label: string,
  build: () => Promise<Layout>,
  settings: BenchSettings,
): Promise<SweepResult> {
  let layout = await build();
  const steps: StepResult[] = [];
  let stepNo = 1;
  const once = async (offered: number): Promise<StepResult> => {
    const r = await layout.rig.step(layout.senders, offered / layout.recipients, {
      step: stepNo++,
      durationMs: settings.durationMs,
      size: settings.size,
      p99LimitMs: settings.p99LimitMs,
      drainMs: settings.drainMs,
    });
    steps.push(r);
    settings.log(
      `  ${label} ${offered}/s: delivered ${r.deliveredPerSec}/s p99 ${r.latency.p99} ms ` +
        `loss ${r.loss} server CPU ${r.serverCpu.toFixed(2)} s driver ${
          Math.round(r.driverLoad * 100)
        } %${r.steal >= 0.05 ? ` steal ${r.steal.toFixed(2)} s` : ""} ` +
        (r.pass ? "pass" : `FAIL (${r.reason})`),
    );
    if (!r.pass && (r.loss > 0 || r.dead > 0)) {
      await teardown(layout.rig);
      layout = await build();
    }
    return r;
  };
  // A failing step is measured once more: one stall of the (virtual) machine should not decide
  // a server's capacity. Every server gets the same second chance.
  const measure = async (offered: number): Promise<StepResult> => {
    const r = await once(offered);
    if (r.pass || settings.retries === 0) return r;
    const again = await once(offered);
    r.retriedAs = again.pass ? "pass" : again.reason;
    return again.pass ? again : r;
  };
  try {
    // Warm-up (JIT, buffers): not recorded.
    await layout.rig.step(layout.senders, settings.startRate / 2 / layout.recipients, {
      step: stepNo++,
      durationMs: 1000,
      size: settings.size,
      p99LimitMs: settings.p99LimitMs,
      drainMs: settings.drainMs,
    });
    // Double until two rates in a row fail: a server whose p99 hovers near the limit may fail
    // one rate and pass the next.
    let pass: number | undefined;
    let fail: number | undefined;
    let failsInARow = 0;
    for (let rate = settings.startRate; rate <= settings.maxRate && failsInARow < 2; rate *= 2) {
      if ((await measure(rate)).pass) {
        pass = rate;
        fail = undefined;
        failsInARow = 0;
      } else {
        fail ??= rate;
        failsInARow++;
      }
    }
    for (let i = 0; i < settings.refine && fail !== undefined; i++) {
      const rate = Math.round(pass === undefined ? fail / 2 : Math.sqrt(pass * fail));
      if ((await measure(rate)).pass) pass = rate;
      else fail = rate;
    }
  } finally {
    await teardown(layout.rig);
  }
  let best: StepResult | undefined;
  for (const s of steps) if (s.pass && (best === undefined || s.offered > best.offered)) best = s;
  const driverBound = isDriverBound(steps, best);
  return { steps, capacity: best?.deliveredPerSec ?? 0, best, driverBound };
}

async function teardown(rig: Rig): Promise<void> {
  await rig.stop();
  await rig.server.stop();
}

/**
 * Fan-out: `members` in one room, `settings.senders` of them sending, each message delivered to
 * every other member (MQTT: publishers are separate connections and `members - 1` subscribe).
 */
export async function fanout(
  kind: ServerKind,
  members: number,
  settings: BenchSettings,
): Promise<SweepResult> {
  const room = `#fan${members}`;
  const build = async (): Promise<Layout> => {
    const server = await serverFor(kind, settings);
    const rig = await rigFor(server, settings);
    const nSenders = Math.min(settings.senders, members);
    const clients: ClientSpec[] = [];
    const senders: StepSender[] = [];
    if (server.protocol === "mqtt") {
      for (let id = 0; id < members - 1; id++) {
        clients.push({ id, login: guest(server, id), rooms: [room] });
      }
      for (let i = 0; i < nSenders; i++) {
        const id = members + i;
        clients.push({ id, login: guest(server, id), rooms: [] });
        senders.push({ id, target: { room }, recipients: members - 1 });
      }
    } else {
      for (let id = 0; id < members; id++) {
        clients.push({ id, login: guest(server, id), rooms: [room] });
      }
      // Senders spread over the member ids (and so over the workers).
      for (let i = 0; i < nSenders; i++) {
        senders.push({ id: i, target: { room }, recipients: members - 1 });
      }
    }
    const t = performance.now();
    await rig.open(clients);
    settings.log(`  ${kind}: ${clients.length} clients in ${room} in ${ms(t)} ms`);
    return { rig, senders, recipients: members - 1 };
  };
  return await sweep(`${kind} fan-out ${members}`, build, settings);
}

/**
 * Direct messages: `pairs` pairs, both members of a pair sending to the other.
 */
export async function directPairs(
  kind: ServerKind,
  pairs: number,
  settings: BenchSettings,
): Promise<SweepResult> {
  const build = async (): Promise<Layout> => {
    const server = await serverFor(kind, settings);
    const rig = await rigFor(server, settings);
    const clients: ClientSpec[] = [];
    for (let id = 0; id < 2 * pairs; id++) {
      const login = guest(server, id);
      const rooms = server.protocol === "mqtt" ? [`dm/b${id}`] : [];
      clients.push({ id, login, rooms });
    }
    const t = performance.now();
    // Both members of a pair on the same worker.
    await rig.open(clients, (id) => Math.floor(id / 2));
    settings.log(`  ${kind}: ${clients.length} clients in ${ms(t)} ms`);
    const senders: StepSender[] = clients.map(({ id }) => ({
      id,
      target: { to: rig.names.get(id ^ 1)! },
      recipients: 1,
    }));
    return { rig, senders, recipients: 1 };
  };
  return await sweep(`${kind} DM ${pairs} pairs`, build, settings);
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Idle connections

/** What the idle scenario measured. */
export interface IdleResult {
  /** Connections opened and logged in. */
  connections: number;
  /** How long opening them took, ms, and the rate. */
  openMs: number;
  openRate: number;
  /** Server RSS before and after, bytes; the difference per connection. */
  rssBefore: number;
  rssAfter: number;
  bytesPerConnection: number;
  /** Server CPU while idle, percent of one core. */
  idleCpuPercent: number;
  /** One broadcast to all: deliveries, latency (max = time to the last delivery). */
  broadcastDelivered: number;
  broadcastLatency: Latency;
  /** How the clients logged in. */
  login: string;
}

/**
 * Idle connections: open `n` logged-in connections (spread over enough workers for the
 * per-process file limit), hold them, measure the server's RSS per connection and idle CPU,
 * then send one message that all of them receive and time the last delivery.
 *
 * parley runs with `--require-login`, and the clients log in by token over a pool of
 * `accounts` accounts (registering 15,000 Argon2id accounts would take minutes); every session
 * of an account is in the account's rooms, so all are in `#general`, where the broadcast goes.
 * IRC clients only register (NICK/USER): the broadcast is an operator's `PRIVMSG $server`,
 * because seating 15,000 in one channel is quadratic. MQTT clients subscribe to `room/idle`.
 */
export async function idle(
  kind: ServerKind,
  n: number,
  settings: BenchSettings,
  options: { accounts?: number; holdMs?: number } = {},
): Promise<IdleResult> {
  const holdMs = options.holdMs ?? 5000;
  // Only the JSON port logs in (by token); parley's IRC port registers guests as the IRC servers
  // do, and a guest is online (in #general) only without --require-login: with it, none of the
  // IRC connections was online and the broadcast reached none of them.
  const server = await serverFor(kind, settings, { requireLogin: kind === "parley" });
  const workers = Math.max(settings.workers, Math.ceil((n + 1) / 6000));
  const rig = await rigFor(server, settings, workers, 4096);
  try {
    const senderId = n;
    let target: SendTarget;
    let logins: (id: number) => LoginSpec;
    let rooms: string[] = [];
    let login: string;
    if (server.protocol === "parley") {
      target = { room: "#general" };
      const accounts = Math.min(options.accounts ?? 100, n);
      const t = performance.now();
      const tokens = await registerAccounts(rig, "idle", accounts + 1, n + 1);
      settings.log(`  ${kind}: registered ${accounts + 1} accounts in ${ms(t)} ms`);
      logins = (id) => ({
        kind: "token",
        token: id === senderId ? tokens[0]! : tokens[1 + (id % accounts)]!,
      });
      login = `token login over a pool of ${accounts} accounts (--require-login); ` +
        "broadcast to #general";
    } else if (server.kind === "parley-irc") {
      // parley puts every IRC guest in #general, as every guest: a broadcast to it reaches all.
      target = { room: "#general" };
      logins = (id) => nickLogin(id);
      login = "NICK/USER (every guest is in #general); broadcast to #general";
    } else if (server.protocol === "irc") {
      // A channel of n is out of reach (every JOIN goes to every member: ngircd needs minutes
      // for 5,000): an operator's mass message to the server mask reaches every user instead
      // (ngircd echoes it to the sender too, which is not counted).
      target = { to: `$${IRC_SERVER_NAME}` };
      logins = (id) => nickLogin(id);
      login = `NICK/USER, no channel; broadcast: PRIVMSG $${IRC_SERVER_NAME} as an operator`;
    } else {
      target = { room: "#idle" };
      rooms = ["#idle"];
      logins = (id) => nickLogin(id);
      login = "CONNECT, SUBSCRIBE room/idle; broadcast: PUBLISH room/idle";
    }
    // The broadcaster first (MQTT: not subscribed, so it does not receive its own message).
    await rig.open([{ id: senderId, login: logins(senderId), rooms: [] }]);
    if (server.protocol === "irc" && server.kind !== "parley-irc") {
      await rig.perWorker([senderId], (ids) => ({
        cmd: "raw",
        ids,
        data: `OPER ${IRC_OPER.name} ${IRC_OPER.password}\r\n`,
        timeoutMs: 10_000,
      }));
    }
    await sleep(500);
    const before = await rig.serverMemory();
    const clients: ClientSpec[] = [];
    for (let id = 0; id < n; id++) clients.push({ id, login: logins(id), rooms });
    const t = performance.now();
    await rig.open(clients);
    const openMs = ms(t);
    settings.log(`  ${kind}: ${n} idle connections in ${openMs} ms`);
    await sleep(2000);
    const cpu0 = await rig.serverCpu();
    await sleep(holdMs);
    const idleCpu = (await rig.serverCpu()) - cpu0;
    const after = await rig.serverMemory();
    const step = await rig.step([{ id: senderId, target, recipients: n }], 1, {
      step: 1,
      durationMs: 1000,
      size: settings.size,
      p99LimitMs: Infinity,
      drainMs: 10_000,
      exclude: [senderId],
    });
    settings.log(
      `  ${kind}: RSS ${mib(after.rss - before.rss)} MiB for ${n} = ${
        Math.round((after.rss - before.rss) / n)
      } B each; idle CPU ${
        ((idleCpu / holdMs) * 1e5).toFixed(1)
      } %; broadcast ${step.delivered}/${n} last after ${step.latency.max} ms`,
    );
    return {
      connections: n,
      openMs,
      openRate: Math.round(n / (openMs / 1000)),
      rssBefore: before.rss,
      rssAfter: after.rss,
      bytesPerConnection: Math.round((after.rss - before.rss) / n),
      idleCpuPercent: (idleCpu / holdMs) * 1e5,
      broadcastDelivered: step.delivered,
      broadcastLatency: step.latency,
      login,
    };
  } finally {
    await teardown(rig);
  }
}

// ---------------------------------------------------------------------------------------------
// Join storm

/** What the join storm measured. */
export interface JoinStormResult {
  members: number;
  /** From the first join sent to the last join confirmed, ms. */
  lastReplyMs: number;
  /** From the first join sent until the last byte of the storm's traffic arrived, ms. */
  settledMs: number;
  /** Bytes the clients received during the storm (presence traffic). */
  bytes: number;
  failed: number;
}

/**
 * A join storm: `members` connected clients join one room at the same moment.
 */
export async function joinStorm(
  kind: ServerKind,
  members: number,
  settings: BenchSettings,
): Promise<JoinStormResult> {
  const server = await serverFor(kind, settings);
  const rig = await rigFor(server, settings);
  try {
    const clients: ClientSpec[] = [];
    for (let id = 0; id < members; id++) clients.push({ id, login: guest(server, id), rooms: [] });
    await rig.open(clients);
    await sleep(1000);
    const bytes0 = (await rig.pool.all<{ bytesIn: number }>(() => ({ cmd: "stats" })))
      .reduce((n, r) => n + (r?.bytesIn ?? 0), 0);
    const at = performance.timeOrigin + performance.now() + 200;
    const replies = await rig.perWorker<JoinReply>(
      clients.map((c) => c.id),
      (ids) => ({ cmd: "join", ids, room: "#storm", at, timeoutMs: 120_000 }),
    );
    const first = Math.min(...replies.map((r) => r.firstSentAt));
    const lastReply = Math.max(...replies.map((r) => r.lastReplyAt));
    // Settled: no bytes for 1 s.
    let stats = await rig.stats();
    for (;;) {
      await sleep(250);
      const next = await rig.stats();
      if (next.lastByteAt === stats.lastByteAt && Date.now() - next.lastByteAt / 1000 > 1000) break;
      stats = next;
    }
    const bytes1 = (await rig.pool.all<{ bytesIn: number }>(() => ({ cmd: "stats" })))
      .reduce((n, r) => n + (r?.bytesIn ?? 0), 0);
    const result = {
      members,
      lastReplyMs: Math.round((lastReply - first) / 100) / 10,
      settledMs: Math.round((Math.max(stats.lastByteAt, lastReply) - first) / 100) / 10,
      bytes: bytes1 - bytes0,
      failed: replies.reduce((n, r) => n + r.failed, 0),
    };
    settings.log(
      `  ${kind}: join storm of ${members}: last reply ${result.lastReplyMs} ms, settled ${result.settledMs} ms, ${
        mib(result.bytes)
      } MiB`,
    );
    return result;
  } finally {
    await teardown(rig);
  }
}

// ---------------------------------------------------------------------------------------------
// Connection + login rate

/** What a login-rate run measured. */
export interface LoginRateResult {
  /** What a "login" was. */
  kind: string;
  /** Completed logins per second. */
  rate: number;
  count: number;
  failed: number;
  /** Connect-to-logged-in latency. */
  latency: Latency;
  /** Server and driver CPU per login, ms. */
  serverCpuMs: number;
  driverCpuMs: number;
  errors: string[];
}

async function churn(
  rig: Rig,
  logins: LoginSpec[],
  concurrency: number,
  durationMs: number,
  limit = 0,
): Promise<LoginRateResult> {
  const at = performance.timeOrigin + performance.now() + 100;
  const t = performance.now();
  const cpu0 = await rig.serverCpu();
  const driver0 = await rig.pool.cpuSeconds();
  const replies = await rig.pool.all<ChurnReply>((i) => ({
    cmd: "churn",
    logins: logins.map((l) =>
      l.kind === "guest" && l.nick !== undefined ? { ...l, nick: `${l.nick}w${i}n` } : l
    ),
    concurrency,
    durationMs,
    limit: limit === 0 ? 0 : Math.ceil(limit / rig.pool.size),
    at,
    timeoutMs: 60_000,
  }));
  const elapsed = Math.max(durationMs, performance.now() - t - 100);
  const serverCpu = (await rig.serverCpu()) - cpu0;
  const driverCpu = (await rig.pool.cpuSeconds()) - driver0;
  const latency = new Histogram();
  let count = 0;
  let failed = 0;
  const errors: string[] = [];
  for (const r of replies) {
    if (r === undefined) continue;
    count += r.count;
    failed += r.failed;
    errors.push(...r.errors);
    latency.add(r.latency);
  }
  return {
    kind: "",
    rate: Math.round(count / (elapsed / 1000)),
    count,
    failed,
    latency: latencyOf(latency),
    serverCpuMs: count > 0 ? (serverCpu / count) * 1000 : 0,
    driverCpuMs: count > 0 ? (driverCpu / count) * 1000 : 0,
    errors: errors.slice(0, 3),
  };
}

/** Registers `n` parley accounts `prefix0…` and returns their tokens (connections closed). */
async function registerAccounts(rig: Rig, prefix: string, n: number, firstId: number) {
  const specs: ClientSpec[] = [];
  for (let i = 0; i < n; i++) {
    specs.push({
      id: firstId + i,
      login: { kind: "register", name: `${prefix}${i}`, password: `bench-password-${i}` },
      rooms: [],
    });
  }
  // The server queues at most 64 password hashes and refuses more with `busy`.
  await rig.open(specs, undefined, Math.max(1, Math.floor(48 / rig.pool.size)));
  const tokens = specs.map((s) => rig.tokens.get(s.id)!);
  await rig.perWorker(specs.map((s) => s.id), (ids) => ({ cmd: "close", ids }));
  return tokens;
}

/**
 * Connection + login rate: `concurrency` loops per worker that connect, log in and close, for
 * `durationMs`. parley (with `--require-login`): by token, then by password (Argon2id);
 * IRC: NICK/USER to the end of the MOTD; MQTT: CONNECT to CONNACK.
 */
export async function loginRate(
  kind: ServerKind,
  settings: BenchSettings,
  options: { concurrency?: number; durationMs?: number; accounts?: number } = {},
): Promise<LoginRateResult[]> {
  const concurrency = options.concurrency ?? 32;
  const durationMs = options.durationMs ?? settings.durationMs;
  const server = await serverFor(kind, settings, { requireLogin: true });
  const rig = await rigFor(server, settings);
  try {
    const out: LoginRateResult[] = [];
    if (server.protocol === "parley") {
      const n = options.accounts ?? 50;
      const tokens = await registerAccounts(rig, "login", n, 1_000_000);
      const byToken = await churn(
        rig,
        tokens.map((token) => ({ kind: "token", token })),
        concurrency,
        durationMs,
      );
      out.push({ ...byToken, kind: "token login" });
      const byPassword = await churn(
        rig,
        tokens.map((_, i) => ({
          kind: "password",
          name: `login${i}`,
          password: `bench-password-${i}`,
        })),
        concurrency,
        durationMs,
      );
      out.push({ ...byPassword, kind: "password login" });
    } else {
      const r = await churn(rig, [nickLogin(0, "c")], concurrency, durationMs);
      out.push({ ...r, kind: server.protocol === "irc" ? "NICK/USER" : "CONNECT" });
    }
    for (const r of out) {
      settings.log(
        `  ${kind}: ${r.kind}: ${r.rate}/s (${r.count} ok, ${r.failed} failed), p99 ${r.latency.p99} ms`,
      );
    }
    return out;
  } finally {
    await teardown(rig);
  }
}

// ---------------------------------------------------------------------------------------------
// Password-login burst under load

/** What the password burst measured. */
export interface PasswordBurstResult {
  /** The background load, deliveries/s, and its p99 without and with the burst. */
  load: number;
  baseline: StepResult;
  duringBurst: StepResult;
  /** p99 with the burst / p99 without. */
  p99Ratio: number;
  /** The burst: logins, rate and latency. */
  burst: LoginRateResult;
}

/**
 * A burst of `logins` password logins at once while a room of 100 carries `load`
 * deliveries/s: the room's p99 with the burst against without (parley only: the peers have no
 * password logins).
 */
export async function passwordBurst(
  settings: BenchSettings,
  options: { load?: number; logins?: number; members?: number } = {},
): Promise<PasswordBurstResult> {
  const load = options.load ?? 20_000;
  // The server queues at most 64 password hashes (2 running): a burst that fits.
  const logins = options.logins ?? 60;
  const members = options.members ?? 100;
  const server = await serverFor("parley", settings);
  const rig = await rigFor(server, settings);
  try {
    await registerAccounts(rig, "burst", logins, 1_000_000);
    const room = "#load";
    const clients: ClientSpec[] = [];
    for (let id = 0; id < members; id++) {
      clients.push({ id, login: { kind: "guest" }, rooms: [room] });
    }
    await rig.open(clients);
    const senders: StepSender[] = [];
    for (let i = 0; i < Math.min(settings.senders, members); i++) {
      senders.push({ id: i, target: { room }, recipients: members - 1 });
    }
    const step = (n: number) => ({
      step: n,
      durationMs: settings.durationMs,
      size: settings.size,
      p99LimitMs: settings.p99LimitMs,
      drainMs: settings.drainMs,
    });
    await rig.step(senders, load / 2 / (members - 1), { ...step(1), durationMs: 1000 });
    const baseline = await rig.step(senders, load / (members - 1), step(2));
    const specs: LoginSpec[] = Array.from({ length: logins }, (_, i) => ({
      kind: "password",
      name: `burst${i}`,
      password: `bench-password-${i}`,
    }));
    const [duringBurst, burst] = await Promise.all([
      rig.step(senders, load / (members - 1), step(3)),
      sleep(200).then(() =>
        churn(rig, specs, Math.ceil(logins / rig.pool.size), settings.durationMs, logins)
      ),
    ]);
    const p99Ratio = baseline.latency.p99 > 0 ? duringBurst.latency.p99 / baseline.latency.p99 : 0;
    settings.log(
      `  parley: ${load}/s p99 ${baseline.latency.p99} ms, with ${burst.count} password logins ${duringBurst.latency.p99} ms (×${
        p99Ratio.toFixed(2)
      })`,
    );
    return { load, baseline, duringBurst, p99Ratio, burst: { ...burst, kind: "password login" } };
  } finally {
    await teardown(rig);
  }
}

// ---------------------------------------------------------------------------------------------
// One slow reader

/** What the slow-reader scenario measured. */
export interface SlowReaderResult {
  /** The room's size, load (deliveries/s) and message size. */
  members: number;
  load: number;
  size: number;
  /** The same load with every member reading. */
  baseline: StepResult;
  /** The others' step while one member reads nothing (its deliveries excluded). */
  others: StepResult;
  /** Whether the server disconnected the slow reader. */
  slowDisconnected: boolean;
  /** Of what was sent to it, how much the slow reader got once it read again. */
  slowReceived: number;
  slowExpected: number;
  /** Server peak RSS growth during the slow step, bytes. */
  rssGrowth: number;
}

/**
 * One slow reader: a room of `members` carries `load` deliveries/s of `size`-byte messages,
 * first with everyone reading (the baseline), then while one member reads nothing for
 * `durationMs`: the others' latency and loss against the baseline, and what the server did
 * with the slow one (cut it off, or buffer for it). The defaults send the slow reader about
 * 1 MB/s, so kernel socket buffers (several MB on loopback) fill within seconds and the
 * server's own queueing decides.
 */
export async function slowReader(
  kind: ServerKind,
  settings: BenchSettings,
  options: { load?: number; members?: number; size?: number; durationMs?: number } = {},
): Promise<SlowReaderResult> {
  const members = options.members ?? 20;
  const load = options.load ?? 2500 * (members - 1);
  // IRC lines are at most 512 bytes: 400 bytes of text fit every protocol.
  const size = options.size ?? 400;
  const durationMs = options.durationMs ?? Math.max(12_000, settings.durationMs);
  const server = await serverFor(kind, settings);
  const rig = await rigFor(server, settings);
  try {
    const room = "#slow";
    const clients: ClientSpec[] = [];
    const senders: StepSender[] = [];
    const nSenders = Math.min(settings.senders, members - 1);
    const receivers = server.protocol === "mqtt" ? members - 1 : members;
    for (let id = 0; id < receivers; id++) {
      clients.push({ id, login: guest(server, id), rooms: [room] });
    }
    for (let i = 0; i < nSenders; i++) {
      const id = server.protocol === "mqtt" ? members + i : i;
      if (server.protocol === "mqtt") clients.push({ id, login: guest(server, id), rooms: [] });
      senders.push({ id, target: { room }, recipients: members - 1 });
    }
    await rig.open(clients);
    const slow = receivers - 1;
    const sendRate = load / (members - 1);
    const step = (n: number, ms: number) => ({
      step: n,
      durationMs: ms,
      size,
      p99LimitMs: settings.p99LimitMs,
      drainMs: settings.drainMs,
    });
    await rig.step(senders, sendRate / 2, step(1, 1000));
    const baseline = await rig.step(senders, sendRate, step(2, settings.durationMs));
    const mem0 = await rig.serverMemory();
    const r0 = (await rig.stats([slow])).detail.get(slow)!.received;
    await rig.perWorker([slow], (ids) => ({ cmd: "pause", ids }));
    const others = await rig.step(
      senders.map((s) => ({ ...s, recipients: members - 2 })),
      sendRate,
      { ...step(3, durationMs), exclude: [slow] },
    );
    const mem1 = await rig.serverMemory();
    const before = (await rig.stats([slow])).detail.get(slow)!;
    await rig.perWorker([slow], (ids) => ({ cmd: "resume", ids }));
    // Let it read what the server kept for it.
    let got = before.received;
    for (let quiet = 0; quiet < 4;) {
      await sleep(250);
      const now = (await rig.stats([slow])).detail.get(slow)!;
      quiet = now.received === got ? quiet + 1 : 0;
      got = now.received;
    }
    const after = (await rig.stats([slow])).detail.get(slow)!;
    const sent = Math.round(others.expected / (members - 2));
    const result: SlowReaderResult = {
      members,
      load,
      size,
      baseline,
      others,
      slowDisconnected: after.ended,
      slowReceived: after.received - r0,
      slowExpected: sent,
      rssGrowth: Math.max(0, mem1.hwm - mem0.rss),
    };
    settings.log(
      `  ${kind}: slow reader: others p99 ${baseline.latency.p99} → ${others.latency.p99} ms, loss ${others.loss}; slow one ${
        after.ended ? "disconnected" : "kept"
      }, got ${result.slowReceived}/${sent}; server RSS +${mib(result.rssGrowth)} MiB`,
    );
    return result;
  } finally {
    await teardown(rig);
  }
}
