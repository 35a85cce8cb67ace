/**
 * The `listening on …` lines `main.ts server` prints on stdout once its listeners accept, and
 * starting it as a child process that waits for them (the tests, the benchmark).
 *
 * @module
 */

import { SERVER_PERMISSIONS } from "./config.ts";
import type { ListenAddress } from "./server.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const LISTENING_RE = /^listening on (tcp|tls|ircs?|https?):\/\/(.+):(\d+)$/;

/** The line printed for a listener: `listening on tcp://127.0.0.1:5000`. */
export function listeningLine(address: ListenAddress): string {
  return `listening on ${address.scheme}://${address.hostname}:${address.port}`;
}

/** The address a {@linkcode listeningLine} names; undefined for any other line. */
export function parseListeningLine(line: string): ListenAddress | undefined {
  const m = LISTENING_RE.exec(line);
  if (m === null) return undefined;
  return { scheme: m[1] as ListenAddress["scheme"], hostname: m[2]!, port: Number(m[3]) };
}

/**
 * How many listeners `main.ts server …args` opens: chat (unless `--no-plain`), TLS, IRC (and
 * IRC over TLS) unless `--no-irc`, web.
 */
function listenerCount(args: readonly string[]): number {
  const tls = args.includes("--tls-cert") ? 1 : 0;
  const irc = args.includes("--no-irc") ? 0 : 1 + tls;
  return (args.includes("--no-plain") ? 0 : 1) + tls + irc + (args.includes("--no-http") ? 0 : 1);
}

/** Options for {@linkcode spawnServer}. */
export interface SpawnServerOptions {
  /**
   * A command to run the server through, which must exec it so its pid stays the server's
   * (`taskset -c 0-3`, `prlimit --nofile=128:128`).
   */
  prefix?: readonly string[];
  /** `deno run` flags besides the permissions, e.g. `--cpu-prof`. */
  denoFlags?: readonly string[];
  /** Called with the child as soon as it is spawned, before it listens. */
  onSpawn?: (child: Deno.ChildProcess) => void;
}

/** A `main.ts server` child process whose listeners all accept. */
export interface ServerChild {
  /** The process. */
  child: Deno.ChildProcess;
  /** Every listener's address, in the order printed. */
  addresses: ListenAddress[];
  /** Every stdout line so far (the listening lines first); more arrive until it exits. */
  stdout: string[];
  /** Settles once stdout has ended. */
  drained: Promise<void>;
  /** Everything the server wrote on stderr, once it has exited. */
  stderr: Promise<string>;
}

/**
 * Spawns `main.ts server --host 127.0.0.1 --port 0 --irc-port 0 --irc-tls-port 0 …args` (later
 * flags win: tests never collide on IRC's 6667 and 6697) with the
 * {@linkcode SERVER_PERMISSIONS} and `NO_COLOR`, and waits until it printed a listening line
 * for each listener its flags open.
 *
 * @throws {Error} when the server exits before that, with what it wrote on stderr
 */
export async function spawnServer(
  args: readonly string[],
  options: SpawnServerOptions = {},
): Promise<ServerChild> {
  const [command, ...before] = [...(options.prefix ?? []), Deno.execPath()];
  const child = new Deno.Command(command!, {
    args: [
      ...before,
      "run",
      ...SERVER_PERMISSIONS,
      ...(options.denoFlags ?? []),
      MAIN,
      "server",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--irc-port",
      "0",
      "--irc-tls-port",
      "0",
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  options.onSpawn?.(child);
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    .getReader();
  const stdout: string[] = [];
  const addresses: ListenAddress[] = [];
  const expected = listenerCount(args);
  while (addresses.length < expected) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`The server exited before listening: ${await stderr}`);
    stdout.push(value);
    const address = parseListeningLine(value);
    if (address !== undefined) addresses.push(address);
  }
  const drained = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      stdout.push(value);
    }
  })();
  return { child, addresses, stdout, drained, stderr };
}

/** Splits a text stream into lines. */
function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) controller.enqueue(part);
    },
    flush(controller) {
      if (rest !== "") controller.enqueue(rest);
    },
  });
}
