/**
 * The `voice` scenario of `deno task bench`: one speaker heard by a growing number of listeners
 * through parley's forwarding unit, each count a fresh server and driver ({@linkcode runVoice} in
 * `bench/voice_step.ts`) inside a network namespace with only loopback (`unshare -n`, so root):
 * no media can leave the machine and ICE sees loopback alone. The server is pinned to the
 * server's CPUs and the driver to the driver's. Without `unshare` the scenario is skipped, said
 * so in the report.
 *
 * @module
 */

import type { VoiceResult } from "./voice.ts";
import type { VoiceStepRequest } from "./voice_step.ts";
import { LIVE_WORKERS } from "./pool.ts";

/** One listener count, measured. */
export interface VoiceStep extends VoiceResult {
  /** Runs it took (a run whose joins stalled is run again on a fresh server). */
  attempts: number;
  /** Why the runs before the one measured failed. */
  retried: string[];
  /** The server's CPU per forwarded stream, % of one core. */
  cpuPerStreamPercent: number;
  /** The server's CPU while measuring, % of one core. */
  serverCpuPercent: number;
}

/** The voice scenario's results. */
export interface VoiceScenarioResult {
  /** Why it did not run, when it did not. */
  skipped?: string;
  serverCpus: string | undefined;
  driverCpus: string | undefined;
  durationMs: number;
  steps: VoiceStep[];
  /** Listener counts that failed every attempt, with the errors. */
  failed: { listeners: number; errors: string[] }[];
}

/** Options of {@linkcode voiceScenario}. */
export interface VoiceScenarioOptions {
  /** Listener counts, one step each. */
  listeners: readonly number[];
  /** Measuring time of each step, ms. */
  durationMs: number;
  /** Runs of one step at most (default 3). */
  attempts?: number;
  serverCpus?: string | undefined;
  driverCpus?: string | undefined;
  parleyArgs?: readonly string[];
  denoFlags?: readonly string[];
  log?: (line: string) => void;
}

/** Whether this process may make a network namespace (`unshare -n`: root). */
async function canUnshare(): Promise<boolean> {
  try {
    return (await new Deno.Command("unshare", {
      args: ["-n", "true"],
      stdout: "null",
      stderr: "null",
    })
      .output()).success;
  } catch {
    return false;
  }
}

const STEP = new URL("./voice_step.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Runs one step in a fresh namespace; the step's JSON line, or an error. */
async function runStep(
  request: VoiceStepRequest,
  driverCpus: string | undefined,
  timeoutMs: number,
): Promise<{ ok: boolean; result?: VoiceResult; error?: string; serverLog?: string }> {
  const pin = driverCpus === undefined ? "" : `taskset -c ${driverCpus} `;
  const child = new Deno.Command("unshare", {
    args: [
      "-n",
      "sh",
      "-c",
      // Loopback up; ephemeral ports 50000–60999, apart from the server's voice ports and the
      // listeners' (voice_step.ts), so no socket of one takes a port another is about to bind.
      `ip link set lo up && echo "50000 60999" > /proc/sys/net/ipv4/ip_local_port_range && ` +
      `exec ${pin}"$0" "$@"`,
      Deno.execPath(),
      "run",
      "-A",
      "--config",
      CONFIG,
      STEP,
      JSON.stringify(request),
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  LIVE_WORKERS.add(child);
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  LIVE_WORKERS.delete(child);
  const stdout = new TextDecoder().decode(out.stdout).trim().split("\n");
  const last = stdout[stdout.length - 1] ?? "";
  try {
    return JSON.parse(last);
  } catch {
    const stderr = new TextDecoder().decode(out.stderr).trim().slice(-500);
    return { ok: false, error: `the step exited (${out.code}) without a result: ${stderr}` };
  }
}

/**
 * Runs the voice scenario: 1 speaker → each listener count, a fresh server each.
 *
 * @param options listener counts, duration, pinning, server flags
 */
export async function voiceScenario(options: VoiceScenarioOptions): Promise<VoiceScenarioResult> {
  const log = options.log ?? (() => {});
  const out: VoiceScenarioResult = {
    serverCpus: options.serverCpus,
    driverCpus: options.driverCpus,
    durationMs: options.durationMs,
    steps: [],
    failed: [],
  };
  if (!await canUnshare()) {
    out.skipped = "unshare -n is not permitted (run as root): the voice scenario needs a " +
      "loopback-only network namespace, so that no media leaves the machine";
    log(`  voice skipped: ${out.skipped}`);
    return out;
  }
  const attempts = options.attempts ?? 3;
  for (const listeners of options.listeners) {
    const errors: string[] = [];
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const r = await runStep(
        {
          speakers: 1,
          listeners,
          ms: options.durationMs,
          serverCpus: options.serverCpus,
          parleyArgs: options.parleyArgs ?? [],
          denoFlags: options.denoFlags ?? [],
        },
        options.driverCpus,
        options.durationMs + 60_000 + 1000 * listeners,
      );
      if (r.ok && r.result !== undefined) {
        const v = r.result;
        const step: VoiceStep = {
          ...v,
          attempts: attempt,
          retried: errors,
          serverCpuPercent: v.measuredS > 0 ? 100 * v.serverCpuS / v.measuredS : 0,
          cpuPerStreamPercent: v.measuredS > 0 && v.streams > 0
            ? 100 * v.serverCpuS / v.measuredS / v.streams
            : 0,
        };
        out.steps.push(step);
        log(
          `  voice 1 → ${listeners}: ${v.received}/${v.expected} packets, loss ` +
            `${v.lossPercent.toFixed(2)} %, p50 ${v.p50Ms.toFixed(2)} ms, p99 ${
              v.p99Ms.toFixed(2)
            } ms, server CPU ${step.serverCpuPercent.toFixed(1)} % (attempt ${attempt})`,
        );
        break;
      }
      const why = `${r.error ?? "no result"}${r.serverLog ? `; server: ${r.serverLog}` : ""}`;
      errors.push(why.slice(0, 600));
      log(`  voice 1 → ${listeners}, attempt ${attempt} failed: ${why.slice(0, 300)}`);
    }
    if (!out.steps.some((s) => s.listeners === listeners)) out.failed.push({ listeners, errors });
  }
  return out;
}
