/**
 * One step of the voice scenario, run by {@linkcode voiceScenario} inside a network namespace
 * that has only loopback: starts parley (pinned to the server's CPUs, with voice on ports
 * 40000–40999), runs {@linkcode runVoice} against it from this process, and prints one JSON line:
 * `{"ok":true,"result":…}` or `{"ok":false,"error":…,"stall":…,"serverLog":…}`. Not for running
 * by hand outside a namespace: its media would use the machine's interfaces.
 *
 * ```
 * unshare -n sh -c 'ip link set lo up && exec deno run -A bench/voice_step.ts {"listeners":10,"ms":10000}'
 * ```
 *
 * @module
 */

import { spawnServer } from "../src/server/listening.ts";
import { PARLEY_BENCH_ARGS } from "./servers.ts";
import { runVoice, VoiceStall } from "./voice.ts";

/** What {@linkcode voiceScenario} asks of a step. */
export interface VoiceStepRequest {
  speakers: number;
  listeners: number;
  ms: number;
  /** `taskset -c` list for the server; undefined: not pinned. */
  serverCpus?: string | undefined;
  parleyArgs?: readonly string[];
  denoFlags?: readonly string[];
}

/** The server's voice ports: above 20000–39999 (the listeners') and below 50000–60999 (the
 * namespace's ephemeral ports, {@linkcode voiceScenario} sets them). */
export const SERVER_VOICE_PORTS = "40000-40999";

if (import.meta.main) {
  const request = JSON.parse(Deno.args[0]!) as VoiceStepRequest;
  const participants = request.speakers + request.listeners;
  const data = await Deno.makeTempDir({ prefix: "parley-bench-voice-" });
  let out: Record<string, unknown>;
  const server = await spawnServer([
    "--http-port",
    "0",
    "--data",
    data,
    ...PARLEY_BENCH_ARGS,
    "--voice-ports",
    SERVER_VOICE_PORTS,
    "--voice-max-per-room",
    String(participants),
    "--voice-max-streams",
    String(participants * participants),
    // An answer has an m-line per participant (~600 bytes each): past about 25 participants it
    // is longer than the default 16 KiB a WebSocket message may be.
    "--max-line",
    "65536",
    ...(request.parleyArgs ?? []),
  ], {
    prefix: request.serverCpus === undefined ? [] : ["taskset", "-c", request.serverCpus],
    denoFlags: request.denoFlags ?? [],
  });
  try {
    const port = server.addresses.find((a) => a.scheme === "http")!.port;
    const result = await runVoice(`ws://127.0.0.1:${port}/ws`, {
      speakers: request.speakers,
      listeners: request.listeners,
      ms: request.ms,
      serverPid: server.child.pid,
      log: (line) => console.error(line),
    });
    out = { ok: true, result };
  } catch (error) {
    out = { ok: false, error: String(error), stall: error instanceof VoiceStall };
  }
  server.child.kill("SIGTERM");
  const timer = setTimeout(() => server.child.kill("SIGKILL"), 10_000);
  await server.child.status;
  clearTimeout(timer);
  const log = (await server.stderr).trim();
  if (log !== "") out.serverLog = log.slice(-2000);
  await Deno.remove(data, { recursive: true }).catch(() => {});
  console.log(JSON.stringify(out));
  Deno.exit(0);
}
