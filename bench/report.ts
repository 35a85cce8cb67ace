/**
 * The benchmark's results as one JSON document and as Markdown tables: per scenario one row
 * per server, the steps of each sweep, and the issue's goals checked against parley's numbers
 * and the peers' from the same run.
 *
 * @module
 */

import type {
  IdleResult,
  JoinStormResult,
  LoginRateResult,
  PasswordBurstResult,
  SlowReaderResult,
  SweepResult,
} from "./scenarios.ts";
import { readProc } from "./proc.ts";
import type { VoiceScenarioResult } from "./voice_scenario.ts";
import { isDriverBound, serverLoad } from "./rig.ts";
import type { StepResult } from "./rig.ts";
import type { ServerKind } from "./servers.ts";

/** The machine a run was measured on. */
export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  deno: string;
  openFiles: string;
}

/** One goal of issue 8, checked. */
export interface Goal {
  /** What is measured. */
  goal: string;
  /** The target, in words. */
  target: string;
  /** What this run measured. */
  measured: string;
  /** Met, missed, or not measured in this run. */
  pass: boolean | undefined;
}

/** Everything one run measured. */
export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  /** The settings and the command line. */
  settings: Record<string, unknown>;
  /** Servers and their versions. */
  servers: { kind: ServerKind; version: string }[];
  /** Fan-out sweeps by room size, then by server. */
  fanout: Record<string, Partial<Record<ServerKind, SweepResult>>>;
  dm: Partial<Record<ServerKind, SweepResult>>;
  idle: Partial<Record<ServerKind, IdleResult>>;
  storm: Partial<Record<ServerKind, JoinStormResult>>;
  login: Partial<Record<ServerKind, LoginRateResult[]>>;
  passwordBurst: PasswordBurstResult | undefined;
  slow: Partial<Record<ServerKind, SlowReaderResult>>;
  /** The voice scenario (parley only); absent when not run (and in reports before it). */
  voice?: VoiceScenarioResult | undefined;
  /** Scenarios that failed to run, with why. */
  failures: { scenario: string; server: ServerKind; error: string }[];
  goals: Goal[];
}

/** An empty report to fill. */
export function emptyReport(machine: Machine, settings: Record<string, unknown>): BenchReport {
  return {
    startedAt: new Date().toISOString(),
    finishedAt: "",
    machine,
    settings,
    servers: [],
    fanout: {},
    dm: {},
    idle: {},
    storm: {},
    login: {},
    passwordBurst: undefined,
    slow: {},
    failures: [],
    goals: [],
  };
}

/** Reads the machine's description from /proc (best effort). */
export async function describeMachine(): Promise<Machine> {
  const read = (path: string) => readProc(path).catch(() => "");
  const cpuinfo = await read("/proc/cpuinfo");
  const meminfo = await read("/proc/meminfo");
  const limits = await read("/proc/self/limits");
  const kb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memoryGiB: Math.round(kb / 1048576),
    kernel: (await read("/proc/sys/kernel/osrelease")).trim(),
    deno: Deno.version.deno,
    openFiles: /Max open files\s+(\d+)/.exec(limits)?.[1] ?? "unknown",
  };
}

const num = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
/** Bytes in MiB with one decimal, without the unit: `1.5`. */
export const mib = (b: number): string => (b / 1048576).toFixed(1);

/** Why a step failed, with `(driver saturated)` when the driver, not the server, was full. */
function reasonOf(s: StepResult): string {
  const base = s.reason.replace(" (driver saturated)", "");
  return s.driverLoad >= 0.85 && serverLoad(s) < 0.85 && base !== ""
    ? `${base} (driver saturated)`
    : base;
}

/** A sweep's capacity, marked `≥ N/s (driver limit)` when the driver set it. */
function capacity(r: SweepResult): string {
  return isDriverBound(r.steps, r.best)
    ? `≥ ${num(r.capacity)}/s (driver limit)`
    : `${num(r.capacity)}/s`;
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The capacity of a sweep relative to the best of `peers`, or undefined without peers. */
function ratioTo(
  results: Partial<Record<ServerKind, SweepResult>>,
  peers: ServerKind[],
): { ratio: number; best: ServerKind } | undefined {
  const parley = results.parley?.capacity;
  let best: ServerKind | undefined;
  for (const p of peers) {
    const c = results[p]?.capacity;
    if (c !== undefined && (best === undefined || c > results[best]!.capacity)) best = p;
  }
  if (parley === undefined || best === undefined) return undefined;
  const c = results[best]!.capacity;
  return { ratio: c > 0 ? parley / c : Infinity, best };
}

/** The step of a sweep at exactly `offered` deliveries/s, if one ran. */
function stepAt(sweep: SweepResult | undefined, offered: number): StepResult | undefined {
  return sweep?.steps.find((s) => s.offered === offered);
}

/**
 * Checks the issue's goals against a report (peers compared: ngircd and mosquitto).
 *
 * @param report a filled report
 * @returns the goals, each met, missed, or not measured
 */
export function checkGoals(report: BenchReport): Goal[] {
  const goals: Goal[] = [];
  for (const size of ["100", "1000"]) {
    const results = report.fanout[size] ?? {};
    const r = ratioTo(results, ["ngircd", "mosquitto"]);
    const parley = results.parley;
    let measured = parley ? `parley ${capacity(parley)} (no peer ran)` : "not run";
    let pass: boolean | undefined;
    if (r !== undefined && parley !== undefined) {
      measured = `parley ${capacity(parley)}, ${r.best} ${capacity(results[r.best]!)}: ×${
        r.ratio.toFixed(2)
      }`;
      pass = r.ratio >= 1.5;
      if (!pass && isDriverBound(parley.steps, parley.best)) {
        // parley reached what the driver can offer: a higher ratio cannot be shown here.
        measured += " (parley reached the driver's limit: not decidable on this machine)";
        pass = undefined;
      }
    }
    goals.push({
      goal: `Fan-out capacity, room of ${size}`,
      target: "≥ 1.5 × the better of ngircd and mosquitto",
      measured,
      pass,
    });
  }
  for (const size of ["100", "1000"]) {
    const step = stepAt(report.fanout[size]?.parley, 100_000);
    let measured = "not run";
    let pass: boolean | undefined;
    if (step !== undefined) {
      measured = `p99 ${ms(step.latency.p99)} ms, loss ${step.loss}`;
      pass = step.latency.p99 <= 10 && step.loss === 0;
      if (!pass && step.driverLoad >= 0.85 && serverLoad(step) < 0.85) {
        measured += ` (driver at ${Math.round(step.driverLoad * 100)} %: not decidable here)`;
        pass = undefined;
      }
    }
    goals.push({
      goal: `p99 at 100k deliveries/s, room of ${size}`,
      target: "≤ 10 ms",
      measured,
      pass,
    });
  }
  const idle = report.idle.parley;
  goals.push({
    goal: "Idle logged-in connections",
    target: "15,000 at ≤ 4 KiB server RSS each",
    measured: idle === undefined
      ? "not run"
      : `${num(idle.connections)} at ${num(idle.bytesPerConnection)} B each`,
    pass: idle === undefined
      ? undefined
      : idle.connections >= 15_000 && idle.bytesPerConnection <= 4096,
  });
  const storm = report.storm.parley;
  goals.push({
    goal: `Join storm of ${storm?.members ?? 1000}`,
    target: "completes in ≤ 1 s",
    measured: storm === undefined
      ? "not run"
      : `last join confirmed after ${ms(storm.lastReplyMs)} ms, traffic settled after ${
        ms(storm.settledMs)
      } ms`,
    pass: storm === undefined ? undefined : storm.settledMs <= 1000 && storm.failed === 0,
  });
  const token = report.login.parley?.find((r) => r.kind === "token login");
  goals.push({
    goal: "Token logins",
    target: "≥ 2,000/s",
    measured: token === undefined ? "not run" : `${num(token.rate)}/s`,
    pass: token === undefined ? undefined : token.rate >= 2000,
  });
  const burst = report.passwordBurst;
  goals.push({
    goal: "Password-login burst vs others' p99",
    target: "p99 ≤ 2 × without the burst",
    measured: burst === undefined
      ? "not run"
      : `${ms(burst.baseline.latency.p99)} ms → ${ms(burst.duringBurst.latency.p99)} ms (×${
        burst.p99Ratio.toFixed(2)
      }) with ${burst.burst.count} logins`,
    pass: burst === undefined ? undefined : burst.p99Ratio <= 2,
  });
  goals.push(voiceGoal(report.voice));
  return goals;
}

/** Issue 19's goal: one speaker heard by 50 listeners, the server on one core, under 1 % loss. */
function voiceGoal(voice: VoiceScenarioResult | undefined): Goal {
  const goal = "Voice: 1 speaker → 50 listeners, server on one core";
  const target = "< 1 % loss";
  if (voice === undefined) return { goal, target, measured: "not run", pass: undefined };
  if (voice.skipped !== undefined) {
    return { goal, target, measured: `skipped: ${voice.skipped}`, pass: undefined };
  }
  const oneCore = voice.serverCpus !== undefined && !/[,-]/.test(voice.serverCpus);
  const step = voice.steps.find((s) => s.listeners === 50 && s.speakers === 1);
  if (step === undefined) {
    const failed = voice.failed.find((f) => f.listeners === 50);
    return {
      goal,
      target,
      measured: failed ? `failed ${failed.errors.length} runs: ${failed.errors.at(-1)}` : "not run",
      pass: failed ? false : undefined,
    };
  }
  const measured =
    `${step.lossPercent.toFixed(2)} % lost (${num(step.received)} of ${num(step.expected)}), p99 ${
      ms(step.p99Ms)
    } ms added, server ${step.serverCpuPercent.toFixed(0)} % of a core` +
    (oneCore ? "" : " (server not pinned to one core: not decidable)");
  return { goal, target, measured, pass: oneCore ? step.lossPercent < 1 : undefined };
}

function voiceTable(voice: VoiceScenarioResult): string {
  if (voice.skipped !== undefined) {
    return `### Voice (parley)

Skipped: ${voice.skipped}.
`;
  }
  const rows = voice.steps.map((s) => [
    `${s.speakers} → ${s.listeners}`,
    num(s.streams),
    `${s.connected} of ${s.speakers + s.listeners}`,
    `${num(s.received)} of ${num(s.expected)}`,
    `${s.lossPercent.toFixed(2)} %`,
    ms(s.p50Ms),
    ms(s.p99Ms),
    ms(s.maxMs),
    `${s.serverCpuPercent.toFixed(1)} %`,
    s.cpuPerStreamPercent.toFixed(2),
    s.cpuPerStreamPercent > 0 ? num(100 / s.cpuPerStreamPercent) : "",
    `${(s.joinMs / 1000).toFixed(1)} s`,
    s.attempts > 1 ? `${s.attempts} (${s.retried.length} stalled)` : "1",
  ]);
  for (const f of voice.failed) {
    rows.push([
      `1 → ${f.listeners}`,
      "",
      "",
      `failed ${f.errors.length} runs: ${(f.errors.at(-1) ?? "").replaceAll("|", "\\|")}`,
      ...Array(9).fill(""),
    ]);
  }
  return `### Voice (parley; server on CPU ${voice.serverCpus ?? "any"}, driver on ${
    voice.driverCpus ?? "any"
  }, ${voice.durationMs / 1000} s each)

${
    table([
      "speaker → listeners",
      "forwarded streams",
      "media connected",
      "packets received",
      "loss",
      "added p50 ms",
      "added p99 ms",
      "max ms",
      "server CPU (of one core)",
      "server CPU % per stream",
      "streams per core (linear)",
      "joins took",
      "runs",
    ], rows)
  }
`;
}

function sweepSummary(title: string, results: Partial<Record<ServerKind, SweepResult>>): string {
  const rows: string[][] = [];
  const parley = results.parley?.capacity ?? 0;
  for (const [kind, r] of Object.entries(results) as [ServerKind, SweepResult][]) {
    const b = r.best;
    rows.push([
      kind,
      capacity(r),
      kind === "parley" || r.capacity === 0 ? "" : `×${(parley / r.capacity).toFixed(2)}`,
      b ? ms(b.latency.p50) : "",
      b ? ms(b.latency.p99) : "",
      b ? ms(b.latency.p999) : "",
      b ? ms(b.latency.max) : "",
      b ? b.cpuPerMillion.toFixed(1) : "",
      b ? mib(b.serverRss) : "",
      ((s) => s ? reasonOf(s) : "")(r.steps.find((s) => !s.pass && s.retriedAs !== "pass")),
    ]);
  }
  return `### ${title}\n\n${
    table([
      "server",
      "capacity (deliveries/s)",
      "parley ÷ server",
      "p50 ms",
      "p99 ms",
      "p99.9 ms",
      "max ms",
      "server CPU s / M deliveries",
      "server RSS MiB",
      "first failure",
    ], rows)
  }\n`;
}

function sweepSteps(results: Partial<Record<ServerKind, SweepResult>>): string {
  const rows: string[][] = [];
  for (const [kind, r] of Object.entries(results) as [ServerKind, SweepResult][]) {
    for (const s of r.steps) {
      rows.push([
        kind,
        num(s.offered),
        num(s.deliveredPerSec),
        num(s.loss),
        `${s.duplicates}/${s.reordered}`,
        ms(s.latency.p50),
        ms(s.latency.p90),
        ms(s.latency.p99),
        ms(s.latency.p999),
        ms(s.latency.max),
        `${s.serverCpu.toFixed(2)} (${Math.round(serverLoad(s) * 100)} %)`,
        s.cpuPerMillion.toFixed(1),
        mib(s.serverRss),
        `${Math.round(s.driverLoad * 100)} %`,
        s.steal.toFixed(2),
        (s.pass ? "pass" : reasonOf(s)) + (s.retriedAs ? ` (again: ${s.retriedAs})` : ""),
      ]);
    }
  }
  return `<details><summary>Every step</summary>\n\n${
    table([
      "server",
      "offered/s",
      "delivered/s",
      "loss",
      "dup/reord",
      "p50",
      "p90",
      "p99",
      "p99.9",
      "max",
      "server CPU s (of one CPU)",
      "CPU s/M",
      "RSS MiB",
      "driver CPU",
      "steal s",
      "result",
    ], rows)
  }\n\n</details>\n`;
}

/**
 * The report as Markdown.
 *
 * @param report a filled report
 */
export function toMarkdown(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push(
    `## Results (${report.startedAt.slice(0, 16).replace("T", " ")} UTC)\n`,
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, ` +
      `Deno ${m.deno}, ${m.openFiles} open files per process. Servers: ${
        report.servers.map((s) => `${s.kind} (${s.version})`).join(", ")
      }.\n`,
  );
  if (report.goals.length > 0) {
    out.push(
      "### Goals\n",
      table(
        ["goal", "target", "measured", "result"],
        report.goals.map((g) => [
          g.goal,
          g.target,
          g.measured,
          g.pass === undefined ? "not measured" : g.pass ? "**met**" : "**missed**",
        ]),
      ),
      "",
    );
  }
  for (const [size, results] of Object.entries(report.fanout)) {
    out.push(
      sweepSummary(`Fan-out, room of ${size}`, results),
      sweepSteps(results),
    );
  }
  if (Object.keys(report.dm).length > 0) {
    out.push(sweepSummary("Direct messages, 500 pairs", report.dm), sweepSteps(report.dm));
  }
  if (Object.keys(report.idle).length > 0) {
    out.push(
      "### Idle connections\n",
      table(
        [
          "server",
          "connections",
          "opened/s",
          "RSS per connection",
          "idle CPU %",
          "broadcast delivered",
          "broadcast p50 ms",
          "last delivery ms",
          "login",
        ],
        (Object.entries(report.idle) as [ServerKind, IdleResult][]).map(([kind, r]) => [
          kind,
          num(r.connections),
          num(r.openRate),
          `${num(r.bytesPerConnection)} B`,
          r.idleCpuPercent.toFixed(1),
          num(r.broadcastDelivered),
          ms(r.broadcastLatency.p50),
          ms(r.broadcastLatency.max),
          r.login,
        ]),
      ),
      "",
    );
  }
  if (Object.keys(report.storm).length > 0) {
    out.push(
      "### Join storm\n",
      table(
        ["server", "members", "last join confirmed ms", "traffic settled ms", "MiB received"],
        (Object.entries(report.storm) as [ServerKind, JoinStormResult][]).map(([kind, r]) => [
          kind,
          num(r.members),
          ms(r.lastReplyMs),
          ms(r.settledMs),
          mib(r.bytes),
        ]),
      ),
      "",
    );
  }
  if (Object.keys(report.login).length > 0) {
    const rows: string[][] = [];
    for (
      const [kind, results] of Object.entries(report.login) as [ServerKind, LoginRateResult[]][]
    ) {
      for (const r of results) {
        rows.push([
          kind,
          r.kind,
          num(r.rate),
          num(r.failed),
          ms(r.latency.p50),
          ms(r.latency.p99),
          r.serverCpuMs.toFixed(2),
          r.driverCpuMs.toFixed(2),
        ]);
      }
    }
    out.push(
      "### Connection + login rate\n",
      table(
        [
          "server",
          "login",
          "per second",
          "failed",
          "p50 ms",
          "p99 ms",
          "server CPU ms/login",
          "driver CPU ms/login",
        ],
        rows,
      ),
      "",
    );
  }
  const burst = report.passwordBurst;
  if (burst !== undefined) {
    out.push(
      "### Password-login burst under load (parley)\n",
      table(
        [
          "room load",
          "p99 without",
          "p99 with burst",
          "ratio",
          "logins",
          "logins/s",
          "login p99 ms",
        ],
        [[
          `${num(burst.load)}/s`,
          `${ms(burst.baseline.latency.p99)} ms`,
          `${ms(burst.duringBurst.latency.p99)} ms`,
          `×${burst.p99Ratio.toFixed(2)}`,
          num(burst.burst.count),
          num(burst.burst.rate),
          ms(burst.burst.latency.p99),
        ]],
      ),
      "",
    );
  }
  if (Object.keys(report.slow).length > 0) {
    out.push(
      "### One slow reader in a busy room\n",
      table(
        [
          "server",
          "room, load",
          "others delivered/s",
          "others loss",
          "others p99 ms: all reading → one slow",
          "slow reader",
          "slow reader got",
          "server peak RSS growth MiB",
        ],
        (Object.entries(report.slow) as [ServerKind, SlowReaderResult][]).map(([kind, r]) => [
          kind,
          `${r.members}, ${num(r.load)}/s of ${r.size} B`,
          num(r.others.deliveredPerSec),
          num(r.others.loss),
          `${ms(r.baseline.latency.p99)} → ${ms(r.others.latency.p99)}`,
          r.slowDisconnected ? "disconnected" : "kept",
          `${num(r.slowReceived)} of ${num(r.slowExpected)}`,
          mib(r.rssGrowth),
        ]),
      ),
      "",
    );
  }
  if (report.voice !== undefined) out.push(voiceTable(report.voice));
  if (report.failures.length > 0) {
    out.push(
      "### Scenarios that did not run\n",
      table(
        ["scenario", "server", "error"],
        report.failures.map((f) => [f.scenario, f.server, f.error.replaceAll("|", "\\|")]),
      ),
      "",
    );
  }
  return out.join("\n");
}
