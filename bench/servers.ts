/**
 * The servers under test: parley (this repository's `main.ts server`) and the reference peers
 * from Debian (ngircd, InspIRCd, mosquitto), each started as a subprocess on a free loopback
 * port with a configuration written to a temporary folder (flood limits off, connection
 * limits above the benchmark's), optionally pinned to CPUs with `taskset`, and stopped after.
 * Nothing is installed: a peer whose binary is missing is skipped.
 *
 * @module
 */

import type { ProtocolName } from "./control.ts";
import { spawnServer } from "../src/server/listening.ts";

/**
 * The servers the benchmark knows. `parley-irc` is parley driven through its IRC listener with
 * the same IRC adapter as ngIRCd and InspIRCd, so the two compare in one run on the same scenarios.
 */
export type ServerKind = "parley" | "parley-irc" | "ngircd" | "inspircd" | "mosquitto";

/** Every server kind, parley first. */
export const SERVER_KINDS: readonly ServerKind[] = [
  "parley",
  "parley-irc",
  "ngircd",
  "inspircd",
  "mosquitto",
];

/** The protocol each server speaks to the driver. */
export const PROTOCOL_OF: Readonly<Record<ServerKind, ProtocolName>> = {
  parley: "parley",
  "parley-irc": "irc",
  ngircd: "irc",
  inspircd: "irc",
  mosquitto: "mqtt",
};

/** The binary each peer runs as. */
const BINARIES: Readonly<Record<Exclude<ServerKind, "parley" | "parley-irc">, string>> = {
  ngircd: "ngircd",
  inspircd: "inspircd",
  mosquitto: "mosquitto",
};

/** A running server. */
export interface ServerUnderTest extends AsyncDisposable {
  /** Which server. */
  kind: ServerKind;
  /** How to speak to it. */
  protocol: ProtocolName;
  /** Where it listens. */
  host: string;
  port: number;
  /** Its process (for /proc accounting); undefined when it is not ours to watch. */
  pid: number | undefined;
  /** Its version, as it reports it. */
  version: string;
  /** Stops it (SIGTERM, then SIGKILL after 10 s) and removes its temporary folder. */
  stop(): Promise<void>;
}

/** Options for {@linkcode launch}. */
export interface LaunchOptions {
  /** CPU list for `taskset -c`; undefined: not pinned. */
  cpus?: string | undefined;
  /** parley: require login (accounts only, no guests). */
  requireLogin?: boolean;
  /** parley: extra `main.ts server` arguments (they come last and so win). */
  parleyArgs?: readonly string[];
  /** parley: extra `deno run` flags, e.g. `--cpu-prof`, `--v8-flags=--trace-gc`. */
  denoFlags?: readonly string[];
}

/** The path of a peer binary, looking in the sbin folders too (Debian puts daemons there). */
async function which(binary: string): Promise<string> {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    if (dir === "") continue;
    try {
      if ((await Deno.stat(`${dir}/${binary}`)).isFile) return `${dir}/${binary}`;
    } catch {
      // not here
    }
  }
  throw new Deno.errors.NotFound(`Cannot find ${binary}: install it (apt-get install ${binary})`);
}

/** The peers whose binaries are installed. */
export async function installedPeers(): Promise<ServerKind[]> {
  const out: ServerKind[] = [];
  for (const [kind, binary] of Object.entries(BINARIES) as [ServerKind, string][]) {
    if (await which(binary).then(() => true, () => false)) out.push(kind);
  }
  return out;
}

/** A free TCP port on 127.0.0.1 (bound and released; a tiny race is accepted). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits until `port` accepts connections. */
async function waitForPort(port: number, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`Cannot start ${what}: it exited`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`Cannot start ${what}: port ${port} not open within 15 s`);
}

/** The command that runs a server pinned to `cpus` (none when undefined). */
function pinning(cpus: string | undefined): string[] {
  return cpus === undefined ? [] : ["taskset", "-c", cpus];
}

async function versionOf(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return text.split("\n").find((l) => l.trim() !== "")?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The server arguments that lift parley's limits for a benchmark. */
export const PARLEY_BENCH_ARGS: readonly string[] = [
  "--sync",
  "normal",
  "--flood-rate",
  "0",
  "--max-conns",
  "20000",
  "--max-conns-per-ip",
  "20000",
  "--conn-rate",
  "1000000",
  "--history-on-join",
  "0",
  "--login-burst",
  "1000000",
  "--register-burst",
  "1000000",
  "--first-line-timeout",
  "3600",
  "--login-timeout",
  "3600",
  "--ping-after",
  "3600",
  "--idle-timeout",
  "7200",
  "--log-level",
  "warning",
];

async function launchParley(
  options: LaunchOptions,
  kind: "parley" | "parley-irc" = "parley",
): Promise<ServerUnderTest> {
  const data = await tempDir("parley-bench-");
  const args = [
    "--no-http",
    "--data",
    data,
    ...PARLEY_BENCH_ARGS,
    ...(options.requireLogin ? ["--require-login"] : []),
    ...(options.parleyArgs ?? []),
  ];
  const server = await spawnServer(args, {
    prefix: pinning(options.cpus),
    denoFlags: options.denoFlags ?? [],
    onSpawn: tracked,
  }).catch(async (error) => {
    await removeDir(data);
    throw new Error(`Cannot start parley: ${(error as Error).message}`, { cause: error });
  });
  const scheme = kind === "parley" ? "tcp" : "irc";
  const port = server.addresses.find((a) => a.scheme === scheme)!.port;
  return wrap(kind, port, server.child, data, async () => {
    await server.drained;
    await server.stderr;
  }, `${(await import("../src/version.ts")).VERSION}${await gitDescribe()}`);
}

/** ` (git abc1234)`, `+changes` when the server code differs from the commit; empty outside git. */
async function gitDescribe(): Promise<string> {
  const root = new URL("..", import.meta.url).pathname;
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args: ["-C", root, ...args], stdout: "piped" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const head = await git("rev-parse", "--short", "HEAD");
    if (head === undefined) return "";
    const dirty = await git(
      "status",
      "--porcelain",
      "--untracked-files=no",
      "--",
      "src",
      "main.ts",
    );
    return ` (git ${head}${dirty ? "+changes" : ""})`;
  } catch {
    return "";
  }
}

/** Processes of servers started and not yet exited. */
const LIVE_SERVERS: Set<Deno.ChildProcess> = new Set();
/** Temporary folders of servers not yet removed. */
const LIVE_DIRS: Set<string> = new Set();
/** Set by {@linkcode abandonServers}: nothing may start any more. */
let abandoned = false;

/**
 * On an interrupt: kills every server started (and any that starts from now on), waits for them
 * to exit, then removes their temporary folders (a server still starting could otherwise create
 * a file in its folder while it is removed).
 */
export async function abandonServers(): Promise<void> {
  abandoned = true;
  for (const child of LIVE_SERVERS) kill(child);
  await Promise.all([...LIVE_SERVERS].map((child) => child.status));
  for (const dir of LIVE_DIRS) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // gone already
    }
  }
}

function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // exited
  }
}

/** Adds a server process to {@linkcode LIVE_SERVERS} from its start until it exits. */
function tracked(child: Deno.ChildProcess): Deno.ChildProcess {
  LIVE_SERVERS.add(child);
  child.status.then(() => LIVE_SERVERS.delete(child));
  if (abandoned) kill(child);
  return child;
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  if (abandoned) {
    await Deno.remove(dir);
    throw new Error("Interrupted");
  }
  LIVE_DIRS.add(dir);
  return dir;
}

async function removeDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  LIVE_DIRS.delete(dir);
}

function wrap(
  kind: ServerKind,
  port: number,
  child: Deno.ChildProcess,
  dir: string,
  after: () => Promise<void>,
  version: string,
): ServerUnderTest {
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // exited already
      }
      const timer = setTimeout(() => kill(child), 10_000);
      await child.status;
      clearTimeout(timer);
      await after().catch(() => {});
      await removeDir(dir);
    })();
  return {
    kind,
    protocol: PROTOCOL_OF[kind],
    host: "127.0.0.1",
    port,
    pid: child.pid,
    version,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The IRC operator the peers' configurations define (for mass messages to every user). */
export const IRC_OPER = { name: "bench", password: "bench" } as const;

/** The IRC peers' server name: `PRIVMSG $bench.local` (as an operator) reaches every user. */
export const IRC_SERVER_NAME = "bench.local";

function ngircdConf(port: number): string {
  return `[Global]
	Name = bench.local
	Info = parley bench peer
	Listen = 127.0.0.1
	Ports = ${port}
	MotdPhrase = "bench"
[Limits]
	MaxConnections = 0
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxNickLength = 30
	MaxPenaltyTime = 0
	PingTimeout = 3600
	PongTimeout = 3600
[Options]
	DNS = no
	Ident = no
	PAM = no
[Operator]
	Name = ${IRC_OPER.name}
	Password = ${IRC_OPER.password}
`;
}

function inspircdConf(port: number, dir: string): string {
  return `<server name="bench.local" description="parley bench peer" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="${port}" type="clients">
<connect name="bench" allow="*" timeout="60" threshold="1000000" commandrate="1000000000"
  fakelag="no" pingfreq="3600" hardsendq="1048576" softsendq="1048576" recvq="1048576"
  localmax="100000" globalmax="100000" maxconnwarn="no" limit="100000" useident="no"
  resolvehostnames="no" maxchans="1000">
<channels users="1000" opers="1000">
<pid file="${dir}/inspircd.pid">
<performance softlimit="20000" somaxconn="4096" clonesonconnect="no" netbuffersize="65536"
  quietbursts="yes" nouserdns="yes">
<limits maxnick="30" maxchan="64">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${dir}/inspircd.log">
<security maxtargets="20">
<class name="Mass" commands="*" privs="users/mass-message">
<type name="Bench" classes="Mass">
<oper name="${IRC_OPER.name}" password="${IRC_OPER.password}" host="*@*" type="Bench">
<options syntaxhints="no">
`;
}

function mosquittoConf(port: number): string {
  return `listener ${port} 127.0.0.1
allow_anonymous true
max_connections -1
persistence false
log_dest stderr
log_type error
log_type warning
sys_interval 0
set_tcp_nodelay true
`;
}

async function launchPeer(
  kind: Exclude<ServerKind, "parley" | "parley-irc">,
  options: LaunchOptions,
): Promise<ServerUnderTest> {
  const binary = await which(BINARIES[kind]);
  const dir = await tempDir(`parley-bench-${kind}-`);
  const port = freePort();
  const conf = `${dir}/${kind}.conf`;
  let args: string[];
  let version: string;
  switch (kind) {
    case "ngircd":
      await Deno.writeTextFile(conf, ngircdConf(port));
      args = ["-n", "-f", conf];
      version = await versionOf(binary, ["--version"]);
      break;
    case "inspircd":
      await Deno.writeTextFile(conf, inspircdConf(port, dir));
      args = ["--nofork", "--runasroot", "--config", conf];
      version = await versionOf(binary, ["--version"]);
      break;
    case "mosquitto":
      await Deno.writeTextFile(conf, mosquittoConf(port));
      args = ["-c", conf];
      version = (await versionOf(binary, ["-h"])).replace(/ \(.*$/, "");
      break;
  }
  const [cmd, ...full] = [...pinning(options.cpus), binary, ...args];
  const log = await Deno.open(`${dir}/stderr.log`, { write: true, create: true });
  const child = tracked(
    new Deno.Command(cmd!, {
      args: full,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn(),
  );
  const copied = child.stderr.pipeTo(log.writable).catch(() => {});
  try {
    await waitForPort(port, child, kind);
  } catch (error) {
    kill(child);
    await child.status;
    await copied;
    const text = await Deno.readTextFile(`${dir}/stderr.log`).catch(() => "");
    await removeDir(dir);
    throw new Error(`${(error as Error).message}: ${text.slice(-2000)}`, { cause: error });
  }
  return wrap(kind, port, child, dir, () => copied, version);
}

/**
 * Starts a server for one scenario.
 *
 * @param kind which server
 * @param options pinning and parley's flags
 * @throws {Deno.errors.NotFound} when a peer is not installed
 */
export function launch(kind: ServerKind, options: LaunchOptions = {}): Promise<ServerUnderTest> {
  return kind === "parley" || kind === "parley-irc"
    ? launchParley(options, kind)
    : launchPeer(kind, options);
}

/**
 * A server started by someone else (tests, or `--connect`): nothing to stop.
 *
 * @param kind the kind of server
 * @param port its port on `host`
 * @param options its host and process id
 */
export function external(
  kind: ServerKind,
  port: number,
  options: { host?: string; pid?: number } = {},
): ServerUnderTest {
  return {
    kind,
    protocol: PROTOCOL_OF[kind],
    host: options.host ?? "127.0.0.1",
    port,
    pid: options.pid,
    version: "external",
    stop: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
