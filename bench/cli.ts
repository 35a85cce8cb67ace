/**
 * `parley bench`: runs the scenarios against parley and, with `--compare`, against every
 * installed peer in the same run, then prints the Markdown report (and writes JSON).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cpuCount } from "./proc.ts";
import { checkGoals, describeMachine, emptyReport, toMarkdown } from "./report.ts";
import type { BenchReport } from "./report.ts";
import {
  directPairs,
  fanout,
  idle,
  joinStorm,
  loginRate,
  passwordBurst,
  slowReader,
} from "./scenarios.ts";
import type { BenchSettings } from "./scenarios.ts";
import { LIVE_WORKERS } from "./pool.ts";
import { abandonServers, external, installedPeers, launch, SERVER_KINDS } from "./servers.ts";
import { voiceScenario } from "./voice_scenario.ts";
import type { ServerKind } from "./servers.ts";

/** Every scenario, in the order they run. */
export const SCENARIOS = [
  "fanout100",
  "fanout1000",
  "dm",
  "idle",
  "storm",
  "login",
  "burst",
  "slow",
  "voice",
] as const;

/** A scenario's name. */
export type Scenario = (typeof SCENARIOS)[number];

/**
 * The scenarios run when --scenarios is not given: all but voice, which needs root (a network
 * namespace) and adds about 1.5 minutes, more when a step is retried.
 */
export const DEFAULT_SCENARIOS: readonly Scenario[] = SCENARIOS.filter((s) => s !== "voice");

const USAGE = `Usage: deno task bench [options]   (or: deno run -P=bench bench/main.ts)

Drives servers with many client connections from worker processes at fixed offered rates and
reports deliveries/s, latency percentiles (HDR histogram), loss, duplicates, reordering, server
CPU (from /proc) per million deliveries and server RSS, as Markdown (stdout) and JSON.

What to measure:
  --compare              parley and every installed peer (ngircd, inspircd, mosquitto)
  --servers LIST         comma-separated: parley, parley-irc (parley's IRC port), ngircd,
                         inspircd, mosquitto (default parley)
  --scenarios LIST       comma-separated (default all but voice): ${SCENARIOS.join(", ")}
  --connect HOST:PORT    drive a running server instead of starting one (with --protocol)
  --protocol NAME        parley, irc or mqtt (for --connect; default parley)

Rates and sizes:
  --duration SECS        sending time of each step (default 2)
  --start RATE           first step of a sweep, deliveries/s (default 12500; then doubling)
  --max-rate RATE        stop a sweep above this (default 3200000)
  --refine N             bisection steps after the first failure (default 2)
  --retries N            measure a failing step again (0 or 1; default 1)
  --p99-limit MS         a step passes with no loss and p99 at most this (default 50)
  --drain MS             stop waiting for deliveries after this long without one (default 1500)
  --senders N            senders in a fan-out room (default 10)
  --size BYTES           message text size (default 64)
  --pairs N              DM pairs (default 500)
  --idle N               idle connections (default 15000)
  --storm N              join-storm members (default 1000)
  --voice-listeners LIST listener counts of the voice scenario, one speaker each
                         (default 10,25,50; parley only, as root: it runs in a loopback-only
                         network namespace)
  --voice-duration SECS  measuring time of each voice step (default 10)

Driver and server:
  --workers N            driver worker processes (default: CPUs of the driver; idle adds more)
  --pin                  pin the server to CPU 0 and the driver to the others with taskset
                         (the default on 2 or more CPUs: unpinned, the scheduler makes the
                         driver and server stall each other and latency is noise)
  --no-pin               do not pin
  --server-cpus LIST     taskset CPU list for the server
  --driver-cpus LIST     taskset CPU list for the driver
  --parley-arg ARG       an extra 'parley server' argument (repeatable; they come last)
  --deno-flag FLAG       an extra 'deno run' flag for the parley server (repeatable)
  --profile DIR          CPU profile of the parley server (--cpu-prof into DIR)

Output:
  --json FILE            write the JSON report
  --md FILE              write the Markdown report
  --render FILE          print the Markdown of a saved JSON report (nothing is run)
  --quiet                no progress lines on stderr
  -h, --help             show this help

The peers are never installed by this tool: apt-get install ngircd mosquitto inspircd.`;

function list(value: string | undefined, all: readonly string[], name: string): string[] {
  if (value === undefined) return [];
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const item of items) {
    if (!all.includes(item)) {
      throw new TypeError(`--${name} must list ${all.join(", ")}, not ${item}`);
    }
  }
  return items;
}

function int(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    throw new TypeError(`--${name} must be a number of at least ${min}, not ${value}`);
  }
  return n;
}

/**
 * Runs `parley bench` with `args`.
 *
 * @param args the command-line arguments after `bench`
 * @returns the exit code: 0 when everything ran, 1 when a scenario failed to run, 2 on usage
 */
export async function benchMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        compare: { type: "boolean" },
        servers: { type: "string" },
        scenarios: { type: "string" },
        connect: { type: "string" },
        protocol: { type: "string" },
        duration: { type: "string" },
        start: { type: "string" },
        "max-rate": { type: "string" },
        refine: { type: "string" },
        retries: { type: "string" },
        "p99-limit": { type: "string" },
        drain: { type: "string" },
        senders: { type: "string" },
        size: { type: "string" },
        pairs: { type: "string" },
        idle: { type: "string" },
        storm: { type: "string" },
        "voice-listeners": { type: "string" },
        "voice-duration": { type: "string" },
        workers: { type: "string" },
        pin: { type: "boolean" },
        "no-pin": { type: "boolean" },
        "server-cpus": { type: "string" },
        "driver-cpus": { type: "string" },
        "parley-arg": { type: "string", multiple: true },
        "deno-flag": { type: "string", multiple: true },
        profile: { type: "string" },
        json: { type: "string" },
        md: { type: "string" },
        render: { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`parley bench: ${(error as Error).message}; run 'deno task bench --help'`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.render !== undefined) {
    // Re-render a saved JSON report with this version's tables and goal checks.
    const saved = JSON.parse(await Deno.readTextFile(values.render)) as BenchReport;
    saved.goals = checkGoals(saved);
    console.log(toMarkdown(saved));
    return 0;
  }
  let report: BenchReport;
  // Leave no server, worker or temporary folder behind. The run goes on (and fails) while the
  // servers exit, so it waits for this at its end: the exit code is the interrupt's.
  let interruption: Promise<never> | undefined;
  const interrupted = () => {
    interruption ??= (async () => {
      for (const child of LIVE_WORKERS) {
        try {
          child.kill("SIGKILL");
        } catch {
          // exited
        }
      }
      await abandonServers();
      Deno.exit(130);
    })();
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  try {
    report = await run(values);
  } catch (error) {
    if (error instanceof TypeError) {
      console.error(`parley bench: ${error.message}; run 'deno task bench --help'`);
      return 2;
    }
    throw error;
  } finally {
    await interruption;
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
  }
  const markdown = toMarkdown(report);
  console.log(markdown);
  if (values.json !== undefined) {
    await Deno.writeTextFile(values.json, JSON.stringify(report, null, 2) + "\n");
  }
  if (values.md !== undefined) await Deno.writeTextFile(values.md, markdown + "\n");
  return report.failures.length > 0 ? 1 : 0;
}

async function hasTaskset(): Promise<boolean> {
  try {
    return (await new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

async function run(values: Values): Promise<BenchReport> {
  const str = (k: string) => values[k] as string | undefined;
  const log = values.quiet ? () => {} : (line: string) => console.error(line);
  let servers = list(str("servers"), SERVER_KINDS, "servers") as ServerKind[];
  if (values.compare) {
    servers = ["parley", "parley-irc", ...await installedPeers()];
    const missing = SERVER_KINDS.filter((k) => !servers.includes(k));
    if (missing.length > 0) log(`not installed, skipped: ${missing.join(", ")}`);
  }
  if (servers.length === 0) servers = ["parley"];
  let scenarios = list(str("scenarios"), SCENARIOS, "scenarios") as Scenario[];
  if (scenarios.length === 0) scenarios = [...DEFAULT_SCENARIOS];

  const cpus = cpuCount();
  let serverCpus = str("server-cpus");
  let driverCpus = str("driver-cpus");
  const pin = values["no-pin"] ? false : (values.pin ?? true);
  if (
    pin && cpus >= 2 && serverCpus === undefined && driverCpus === undefined &&
    await hasTaskset()
  ) {
    serverCpus ??= "0";
    driverCpus ??= cpus === 2 ? "1" : `1-${cpus - 1}`;
  }
  const driverCount = driverCpus === undefined ? cpus : driverCpus.split(",").reduce((n, part) => {
    const [a, b] = part.split("-").map(Number);
    return n + (b === undefined ? 1 : b - a! + 1);
  }, 0);
  const denoFlags = [...(values["deno-flag"] as string[] | undefined ?? [])];
  if (str("profile") !== undefined) {
    denoFlags.push("--cpu-prof", `--cpu-prof-dir=${str("profile")}`);
  }

  let ext;
  const connect = str("connect");
  if (connect !== undefined) {
    const m = /^(.+):(\d+)$/.exec(connect);
    if (!m) throw new TypeError(`--connect must be HOST:PORT, not ${connect}`);
    const protocol = str("protocol") ?? "parley";
    const kind = ({ parley: "parley", irc: "ngircd", mqtt: "mosquitto" } as const)[
      protocol as "parley" | "irc" | "mqtt"
    ];
    if (kind === undefined) throw new TypeError(`--protocol must be parley, irc or mqtt`);
    ext = external(kind, Number(m[2]), { host: m[1]! });
    servers = [kind];
  }

  const settings: BenchSettings = {
    workers: Math.max(1, int(str("workers"), "workers", driverCount)),
    driverCores: driverCount,
    serverCpus,
    driverCpus,
    durationMs: int(str("duration"), "duration", 2) * 1000,
    size: int(str("size"), "size", 64, 48),
    senders: int(str("senders"), "senders", 10),
    startRate: int(str("start"), "start", 12_500),
    maxRate: int(str("max-rate"), "max-rate", 3_200_000),
    refine: int(str("refine"), "refine", 2, 0),
    retries: Math.min(1, int(str("retries"), "retries", 1, 0)),
    p99LimitMs: int(str("p99-limit"), "p99-limit", 50),
    drainMs: int(str("drain"), "drain", 1500, 100),
    parleyArgs: values["parley-arg"] as string[] | undefined ?? [],
    denoFlags,
    log,
    external: ext,
  };
  const pairs = int(str("pairs"), "pairs", 500);
  const idleN = int(str("idle"), "idle", 15_000);
  const stormN = int(str("storm"), "storm", 1000, 2);
  const voiceListeners = (str("voice-listeners") ?? "10,25,50").split(",").map((n) =>
    int(n.trim(), "voice-listeners", 1)
  );
  const voiceMs = int(str("voice-duration"), "voice-duration", 10) * 1000;

  const { log: _log, external: _ext, ...shown } = settings;
  const report = emptyReport(await describeMachine(), {
    ...shown,
    servers,
    scenarios,
    pairs,
    idle: idleN,
    storm: stormN,
    voiceListeners,
    voiceDurationMs: voiceMs,
    args: Deno.args,
  });
  for (const kind of servers) {
    if (ext !== undefined) {
      report.servers.push({ kind, version: "external" });
      continue;
    }
    try {
      const s = await launch(kind, { cpus: serverCpus });
      report.servers.push({ kind, version: s.version });
      await s.stop();
    } catch (error) {
      report.failures.push({ scenario: "start", server: kind, error: String(error) });
    }
  }
  const runnable = servers.filter((k) => !report.failures.some((f) => f.server === k));
  const attempt = async (scenario: string, kind: ServerKind, fn: () => Promise<void>) => {
    log(`${scenario} on ${kind}`);
    try {
      await fn();
    } catch (error) {
      log(`  ${scenario} on ${kind} failed: ${(error as Error).stack ?? error}`);
      report.failures.push({ scenario, server: kind, error: String(error).slice(0, 500) });
    }
  };
  for (const scenario of scenarios) {
    for (const kind of runnable) {
      switch (scenario) {
        case "fanout100":
        case "fanout1000": {
          const size = scenario === "fanout100" ? 100 : 1000;
          await attempt(scenario, kind, async () => {
            (report.fanout[String(size)] ??= {})[kind] = await fanout(kind, size, settings);
          });
          break;
        }
        case "dm":
          await attempt(scenario, kind, async () => {
            report.dm[kind] = await directPairs(kind, pairs, settings);
          });
          break;
        case "idle":
          await attempt(scenario, kind, async () => {
            report.idle[kind] = await idle(kind, idleN, settings);
          });
          break;
        case "storm":
          await attempt(scenario, kind, async () => {
            report.storm[kind] = await joinStorm(kind, stormN, settings);
          });
          break;
        case "login":
          await attempt(scenario, kind, async () => {
            report.login[kind] = await loginRate(kind, settings);
          });
          break;
        case "burst":
          if (kind === "parley") {
            await attempt(scenario, kind, async () => {
              report.passwordBurst = await passwordBurst(settings);
            });
          }
          break;
        case "slow":
          await attempt(scenario, kind, async () => {
            report.slow[kind] = await slowReader(kind, settings);
          });
          break;
        case "voice":
          // Only parley has voice; --connect drives a server whose media this cannot pin.
          if (kind === "parley" && ext === undefined) {
            await attempt(scenario, kind, async () => {
              report.voice = await voiceScenario({
                listeners: voiceListeners,
                durationMs: voiceMs,
                serverCpus,
                driverCpus,
                parleyArgs: settings.parleyArgs,
                denoFlags,
                log,
              });
            });
          }
          break;
      }
    }
  }
  report.goals = checkGoals(report);
  report.finishedAt = new Date().toISOString();
  return report;
}
