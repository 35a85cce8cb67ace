/**
 * `parley server`: parse flags, start the server, print where it listens, stop cleanly on
 * SIGINT/SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { getLogger } from "@logtape/logtape";
import { closeLogging, LOG_FORMATS, LOG_LEVELS, setupLogging } from "../log.ts";
import type { LoggingOptions } from "../log.ts";
import { DEFAULT_CONFIG } from "../server/config.ts";
import type { ServerConfig } from "../server/config.ts";
import { listeningLine } from "../server/listening.ts";
import { ChatServer } from "../server/server.ts";
import { choiceFlag, intFlag, quote, UsageError } from "./args.ts";

const d = DEFAULT_CONFIG;
const log = getLogger(["parley", "server"]);

/** `server --help`. */
export const SERVER_USAGE = `Usage: parley server [options]

Starts the chat server. Text mode for nc and humans, JSON lines for clients, on one port.

Listening:
  --host HOST              interface to listen on (default ${d.host})
  --port PORT              TCP chat port; 0 picks a free one (default ${d.port})

IRC (the same rooms, accounts and history for IRC clients; see docs/irc.md):
  --irc-port PORT          IRC port; 0 picks a free one (default ${d.ircPort})
  --irc-tls-port PORT      IRC over TLS, with --tls-cert and --tls-key (default ${d.ircTlsPort})
  --no-irc                 no IRC listeners, no /irc (an IRC client on the chat port is turned away)
  --server-name NAME       the IRC server name (default the host name, here ${d.serverName})
  --server-password PW     a password every client must give: IRC PASS, or JSON hello's
                           serverPassword (default none)

Web (the browser client, WebSocket at /ws, IRC over WebSocket at /irc, /healthz, HTTPS with TLS):
  --http-port PORT         HTTP port (default ${d.httpPort})
  --no-http                no HTTP listener
  --allow-origin ORIGIN    an origin allowed to open /ws and /irc, e.g. https://chat.example
                           (repeatable; pages from loopback names and IP addresses need none)
  --header-timeout SECS    an HTTP request's headers must arrive within SECS (default ${
  d.headerTimeoutMs / 1000
})
  --keepalive-timeout SECS close an HTTP connection idle between requests for SECS (default ${
  d.keepAliveTimeoutMs / 1000
})

Files (over HTTP: POST /files, GET /files/ID; stored under the data folder):
  --max-file-size BYTES    the largest file accepted (default ${d.maxFileSize})
  --file-quota BYTES       the most bytes of files one account may own (default ${d.fileQuota})
  --file-retention DAYS    delete files older than DAYS; 0 keeps them (default 0)
  --upload-burst N         uploads at once per account (default ${d.uploadBurst})
  --upload-interval SECS   then one more every SECS (default ${d.uploadIntervalMs / 1000})

Voice (WebRTC through parley's forwarding unit; docs/voice.md):
  --no-voice               no voice
  --voice-ports FIRST-LAST UDP ports for media (default ${d.voicePorts.join("-")})
  --voice-public-ip IP     the address announced to browsers (behind a 1:1 NAT)
  --voice-host IP          also offer media on this local address (repeatable; 127.0.0.1 is
                           added when --host is loopback)
  --voice-max-per-room N   people in one room's voice (default ${d.voiceMaxPerRoom})
  --voice-max-streams N    forwarded streams, speaker to listener, in all (default ${d.voiceMaxStreams})
  --turn-url URL           a TURN server for browsers behind strict NAT, e.g.
                           turn:turn.example:3478?transport=udp (repeatable; needs --turn-secret)
  --turn-secret SECRET     the secret shared with the TURN server (coturn: static-auth-secret)
  --turn-ttl SECS          how long the TURN credentials handed out are valid (default ${
  d.turnTtlMs / 1000
})
  --call-ring SECS         a direct call rings this long, then it is missed (default ${
  d.callRingMs / 1000
})

TLS (a separate port: Deno has no server-side STARTTLS):
  --tls-cert FILE          PEM certificate chain; with --tls-key opens the TLS listener
  --tls-key FILE           PEM private key (re-read with the certificate on SIGHUP)
  --tls-port PORT          TLS chat port (default ${d.tlsPort})
  --no-plain               TLS only: no plain TCP listener
  --handshake-timeout SECS a TLS handshake must finish within SECS (default ${
  d.handshakeTimeoutMs / 1000
})

Storage:
  --data DIR               data folder, holds parley.db; created with mode 0700 (default ${d.data})
  --sync full|normal       full: acknowledged messages survive power loss; normal: a crash (default ${d.sync})
  --history-on-join N      messages replayed when joining a room; 0 for none (default ${d.historyOnJoin})
  --presence-limit N       rooms with more members do not announce joins, leaves, quits and renames (default ${d.presenceLimit})

Accounts:
  --require-login          only hello, register, login, help, ping and quit before logging in
  --no-registration        clients cannot register; accounts come from 'parley user add'
  --login-burst N          failed logins allowed at once, per IP and per account (default ${d.loginBurst})
  --login-interval SECS    then one more failed login every SECS (default ${
  d.loginIntervalMs / 1000
})
  --register-burst N       registrations at once per IP (default ${d.registerBurst})
  --register-interval SECS then one more every SECS (default ${d.registerIntervalMs / 1000})
  --session-ttl DAYS       unused session tokens expire after DAYS (default ${
  d.sessionTtlMs / 86_400_000
})
  --hash-concurrency N     password hashes computed at once (default ${d.hashConcurrency})

Limits:
  --max-line BYTES         longest inbound line (default ${d.maxLine})
  --max-text BYTES         longest message text (default ${d.maxText})
  --max-sendq BYTES        queued output per connection before it is cut off (default ${d.maxSendq})
  --max-conns N            connections in total (default ${d.maxConns})
  --max-conns-per-ip N     concurrent connections per IP address (default ${d.maxConnsPerIp})
  --limit-loopback         apply per-IP limits to loopback too (default: loopback is exempt)
  --flood-burst N          lines a connection may send at once (default ${d.floodBurst})
  --flood-rate N           lines per second after the burst; 0 turns it off (default ${d.floodRate})
  --conn-rate N            new connections per IP per window (default ${d.connRate})
  --conn-window SECS       the window of --conn-rate (default ${d.connWindowMs / 1000})
  --first-line-timeout SECS  close a connection that sent no line within SECS (default ${
  d.firstLineTimeoutMs / 1000
})
  --login-timeout SECS     with --require-login, close one not logged in within SECS (default ${
  d.loginTimeoutMs / 1000
})
  --ping-after SECS        JSON mode: ping a connection silent for SECS (default ${
  d.pingAfterMs / 1000
})
  --idle-timeout SECS      JSON mode: close a connection silent for SECS (default ${
  d.idleTimeoutMs / 1000
})

Logging (on stderr):
  --log-level LEVEL        ${LOG_LEVELS.join("|")} (default info)
  --log-format FORMAT      ${LOG_FORMATS.join("|")} (default text)

  -h, --help               show this help

On start it prints one line per listener: listening on tcp://HOST:PORT (also tls://, irc://,
ircs://, http:// or https://)
SIGINT or SIGTERM: stop accepting, tell clients, flush (5 s at most), exit 0. A second one
during that (200 ms or more after the first) exits at once: 130 for SIGINT, 143 for SIGTERM.`;

/** What `server` flags say: the server's config and the logging options. */
export interface ServerArgs {
  config: ServerConfig;
  logging: LoggingOptions;
}

/** Parses `server` flags; `undefined` when help was asked for. */
export function parseServerArgs(args: string[]): ServerArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      "max-line": { type: "string" },
      "max-text": { type: "string" },
      "max-sendq": { type: "string" },
      "max-conns": { type: "string" },
      "max-conns-per-ip": { type: "string" },
      "limit-loopback": { type: "boolean" },
      "flood-burst": { type: "string" },
      "flood-rate": { type: "string" },
      "http-port": { type: "string" },
      "no-http": { type: "boolean" },
      "irc-port": { type: "string" },
      "irc-tls-port": { type: "string" },
      "no-irc": { type: "boolean" },
      "server-name": { type: "string" },
      "server-password": { type: "string" },
      "allow-origin": { type: "string", multiple: true },
      "header-timeout": { type: "string" },
      "keepalive-timeout": { type: "string" },
      "max-file-size": { type: "string" },
      "file-quota": { type: "string" },
      "file-retention": { type: "string" },
      "upload-burst": { type: "string" },
      "upload-interval": { type: "string" },
      "no-voice": { type: "boolean" },
      "voice-ports": { type: "string" },
      "voice-public-ip": { type: "string" },
      "voice-host": { type: "string", multiple: true },
      "voice-max-per-room": { type: "string" },
      "voice-max-streams": { type: "string" },
      "call-ring": { type: "string" },
      "turn-url": { type: "string", multiple: true },
      "turn-secret": { type: "string" },
      "turn-ttl": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-port": { type: "string" },
      "no-plain": { type: "boolean" },
      "handshake-timeout": { type: "string" },
      "conn-rate": { type: "string" },
      "conn-window": { type: "string" },
      "first-line-timeout": { type: "string" },
      "login-timeout": { type: "string" },
      "ping-after": { type: "string" },
      "idle-timeout": { type: "string" },
      data: { type: "string" },
      sync: { type: "string" },
      "history-on-join": { type: "string" },
      "presence-limit": { type: "string" },
      "require-login": { type: "boolean" },
      "no-registration": { type: "boolean" },
      "login-burst": { type: "string" },
      "login-interval": { type: "string" },
      "register-burst": { type: "string" },
      "register-interval": { type: "string" },
      "session-ttl": { type: "string" },
      "hash-concurrency": { type: "string" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${quote(positionals[0]!)}`);
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    host: values.host ?? d.host,
    port: intFlag(values.port, "port", d.port, 0, 65535),
    maxLine: intFlag(values["max-line"], "max-line", d.maxLine, 64, 16 * 1024 * 1024),
    maxText: intFlag(values["max-text"], "max-text", d.maxText, 1, 16 * 1024 * 1024),
    maxSendq: intFlag(values["max-sendq"], "max-sendq", d.maxSendq, 1024),
    maxConns: intFlag(values["max-conns"], "max-conns", d.maxConns, 1),
    maxConnsPerIp: intFlag(values["max-conns-per-ip"], "max-conns-per-ip", d.maxConnsPerIp, 1),
    limitLoopback: values["limit-loopback"] ?? d.limitLoopback,
    floodBurst: intFlag(values["flood-burst"], "flood-burst", d.floodBurst, 1),
    floodRate: intFlag(values["flood-rate"], "flood-rate", d.floodRate, 0),
    data: values.data ?? d.data,
    sync: choiceFlag(values.sync, "sync", ["full", "normal"] as const, d.sync),
    historyOnJoin: intFlag(values["history-on-join"], "history-on-join", d.historyOnJoin, 0, 200),
    presenceLimit: intFlag(values["presence-limit"], "presence-limit", d.presenceLimit, 0),
    requireLogin: values["require-login"] ?? d.requireLogin,
    registration: !(values["no-registration"] ?? !d.registration),
    loginBurst: intFlag(values["login-burst"], "login-burst", d.loginBurst, 1),
    loginIntervalMs: seconds(values, "login-interval", d.loginIntervalMs),
    registerBurst: intFlag(values["register-burst"], "register-burst", d.registerBurst, 1),
    registerIntervalMs: seconds(values, "register-interval", d.registerIntervalMs),
    sessionTtlMs: 86_400_000 *
      intFlag(values["session-ttl"], "session-ttl", d.sessionTtlMs / 86_400_000, 1),
    http: !(values["no-http"] ?? !d.http),
    httpPort: intFlag(values["http-port"], "http-port", d.httpPort, 0, 65535),
    allowOrigins: values["allow-origin"] ?? d.allowOrigins,
    irc: !(values["no-irc"] ?? !d.irc),
    ircPort: intFlag(values["irc-port"], "irc-port", d.ircPort, 0, 65535),
    ircTlsPort: intFlag(values["irc-tls-port"], "irc-tls-port", d.ircTlsPort, 0, 65535),
    serverName: serverName(values["server-name"]),
    serverPassword: values["server-password"] === "" ? undefined : values["server-password"],
    headerTimeoutMs: seconds(values, "header-timeout", d.headerTimeoutMs),
    keepAliveTimeoutMs: seconds(values, "keepalive-timeout", d.keepAliveTimeoutMs),
    maxFileSize: intFlag(values["max-file-size"], "max-file-size", d.maxFileSize, 1),
    fileQuota: intFlag(values["file-quota"], "file-quota", d.fileQuota, 1),
    fileRetentionMs: 86_400_000 * intFlag(values["file-retention"], "file-retention", 0, 0, 36500),
    uploadBurst: intFlag(values["upload-burst"], "upload-burst", d.uploadBurst, 1),
    uploadIntervalMs: seconds(values, "upload-interval", d.uploadIntervalMs),
    voice: !(values["no-voice"] ?? !d.voice),
    voicePorts: portRange(values["voice-ports"], d.voicePorts),
    voicePublicIp: ipFlag(values["voice-public-ip"], "voice-public-ip"),
    voiceHosts: (values["voice-host"] ?? []).map((ip) => ipFlag(ip, "voice-host")!),
    voiceMaxPerRoom: intFlag(
      values["voice-max-per-room"],
      "voice-max-per-room",
      d.voiceMaxPerRoom,
      2,
      1000,
    ),
    callRingMs: seconds(values, "call-ring", d.callRingMs),
    turnUrls: turnUrls(values["turn-url"], values["turn-secret"]),
    turnSecret: values["turn-secret"],
    turnTtlMs: seconds(values, "turn-ttl", d.turnTtlMs),
    voiceMaxStreams: intFlag(
      values["voice-max-streams"],
      "voice-max-streams",
      d.voiceMaxStreams,
      2,
    ),
    tlsCert: values["tls-cert"],
    tlsKey: values["tls-key"],
    tlsPort: intFlag(values["tls-port"], "tls-port", d.tlsPort, 0, 65535),
    plain: !(values["no-plain"] ?? !d.plain),
    handshakeTimeoutMs: seconds(values, "handshake-timeout", d.handshakeTimeoutMs),
    connRate: intFlag(values["conn-rate"], "conn-rate", d.connRate, 1),
    connWindowMs: seconds(values, "conn-window", d.connWindowMs),
    firstLineTimeoutMs: seconds(values, "first-line-timeout", d.firstLineTimeoutMs),
    loginTimeoutMs: seconds(values, "login-timeout", d.loginTimeoutMs),
    pingAfterMs: seconds(values, "ping-after", d.pingAfterMs),
    idleTimeoutMs: seconds(values, "idle-timeout", d.idleTimeoutMs),
    hashConcurrency: intFlag(
      values["hash-concurrency"],
      "hash-concurrency",
      d.hashConcurrency,
      1,
      64,
    ),
  };
  const logging: LoggingOptions = {
    level: choiceFlag(values["log-level"], "log-level", LOG_LEVELS, "info"),
    format: choiceFlag(values["log-format"], "log-format", LOG_FORMATS, "text"),
  };
  return { config, logging };
}

/** `--server-name`: a host-name-like word (IRC puts it in every server line). */
function serverName(value: string | undefined): string {
  if (value === undefined) return d.serverName;
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(value)) {
    throw new UsageError(
      `--server-name must be letters, digits, '.' and '-' (at most 63), got ${quote(value)}`,
    );
  }
  return value;
}

/** Reads `--voice-ports FIRST-LAST` (two different ports, FIRST below LAST). */
function portRange(value: string | undefined, fallback: [number, number]): [number, number] {
  if (value === undefined) return fallback;
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(value);
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (m === null || first < 1024 || last > 65535 || first >= last) {
    throw new UsageError(`--voice-ports must be FIRST-LAST, 1024 <= FIRST < LAST <= 65535`);
  }
  return [first, last];
}

/** Reads `--turn-url` (each `turn:` or `turns:`), which needs `--turn-secret`. */
function turnUrls(urls: string[] | undefined, secret: string | undefined): string[] {
  if (urls === undefined) return [];
  if (secret === undefined) throw new UsageError("--turn-url needs --turn-secret");
  for (const url of urls) {
    if (!/^turns?:[^\s]{1,250}$/.test(url)) {
      throw new UsageError(
        `--turn-url must be turn:HOST:PORT or turns:HOST:PORT, not ${quote(url)}`,
      );
    }
  }
  return urls;
}

/** Reads an IPv4 address flag. */
function ipFlag(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new UsageError(`--${name} must be an IPv4 address`);
  }
  return value;
}

/** Reads a flag given in whole seconds (at least 1) as milliseconds. */
function seconds(
  values: Record<string, string | boolean | string[] | undefined>,
  name: string,
  fallbackMs: number,
): number {
  const value = values[name];
  if (Array.isArray(value)) throw new UsageError(`--${name} takes one value`);
  return 1000 * intFlag(typeof value === "string" ? value : undefined, name, fallbackMs / 1000, 1);
}

/** Runs `parley server`; resolves to the exit code. */
export async function serverMain(args: string[]): Promise<number> {
  const parsed = parseServerArgs(args);
  if (parsed === undefined) {
    console.log(SERVER_USAGE);
    return 0;
  }
  const { config, logging } = parsed;
  await setupLogging(logging);
  // With --log-format json, stderr carries JSON lines only: what the server says about its
  // start and stop goes there as records too (the listening lines also stay on stdout).
  const json = logging.format === "json";
  const cannotStart = async (reason: string) => {
    if (json) log.error(literal(`parley server: cannot start: ${reason}`), { reason });
    else console.error(`parley server: cannot start: ${reason}`);
    await closeLogging();
    return 1;
  };
  const refused = permissionHint(config, args);
  if (refused !== undefined) return await cannotStart(refused);
  let server: ChatServer;
  try {
    server = await ChatServer.start(config);
  } catch (error) {
    return await cannotStart(error instanceof Error ? error.message : String(error));
  }
  // The signals are handled before the listening lines say the server is up: a script that
  // stops it as soon as it listens gets a clean stop, not the default action.
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGHUP", () => server.reloadTls());
  const stopped = stopSignal(async (again) => {
    const message = `received ${again} again, exiting at once`;
    if (!json) return console.error(message);
    log.warn(literal(message), { signal: again });
    await Promise.race([closeLogging(), new Promise((r) => setTimeout(r, 200))]);
  });
  for (const address of server.addresses) {
    const line = listeningLine(address);
    console.log(line);
    if (json) log.info(literal(line), { ...address });
  }
  const signal = await stopped;
  console.log(`received ${signal}, shutting down`);
  if (json) log.info(literal(`received ${signal}, shutting down`), { signal });
  await server.shutdown();
  await closeLogging();
  return 0;
}

/**
 * Two signals this close together are one: Ctrl-C on `deno task server` reaches the server
 * twice, once from the terminal (which signals the whole process group) and once forwarded by
 * the `deno task` process.
 */
export const SAME_SIGNAL_MS = 200;

/**
 * Resolves with the first SIGINT or SIGTERM. The listeners stay for the rest of the process:
 * removing them would restore the default action, and the duplicate of the same Ctrl-C would
 * kill the server mid-drain with status 130. A later signal (a deliberate second Ctrl-C)
 * exits at once with 128 + its number (130 for SIGINT, 143 for SIGTERM), once `again` has said so.
 */
function stopSignal(again: (signal: Deno.Signal) => unknown): Promise<Deno.Signal> {
  const { promise, resolve } = Promise.withResolvers<Deno.Signal>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let first: number | undefined;
  for (const signal of signals) {
    Deno.addSignalListener(signal, () => {
      const now = performance.now();
      if (first === undefined) {
        first = now;
        resolve(signal);
      } else if (now - first > SAME_SIGNAL_MS) {
        void Promise.resolve(again(signal)).finally(() => {
          Deno.exit(signal === "SIGINT" ? 130 : 143);
        });
      }
    });
  }
  return promise;
}

/**
 * When this run may not read and write the data folder or read the certificate (`deno task
 * server` allows ./parley-data only), says so with the `deno run` command that allows them;
 * `undefined` when it may.
 */
export function permissionHint(config: ServerConfig, args: readonly string[]): string | undefined {
  const reads = [config.tlsCert, config.tlsKey].filter((p) => p !== undefined);
  const data = config.data === ":memory:" ? [] : [config.data];
  const denied = [
    ...data.flatMap((path) => [{ name: "read", path }, { name: "write", path }] as const),
    ...reads.map((path) => ({ name: "read", path }) as const),
  ].filter((descriptor) => Deno.permissions.querySync(descriptor).state !== "granted");
  if (denied.length === 0) return undefined;
  const what = [...new Set(denied.map((d) => d.path))].join(" and ");
  const command = [
    "deno",
    "run",
    "--allow-net",
    "--allow-env=NO_COLOR,DEBUG",
    "--allow-sys=setPriority,hostname,networkInterfaces",
    `--allow-read=${[...data, ...reads].join(",")}`,
    ...data.length > 0 ? [`--allow-write=${data.join(",")}`] : [],
    "main.ts",
    "server",
    ...args,
  ].map(shellQuote).join(" ");
  return `this run may not use ${what} ('deno task server' allows ./parley-data only); ` +
    `run instead:\n  ${command}`;
}

/** `word` as a POSIX shell word: as is when it is safe, else in single quotes. */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** `text` as a logtape message template that renders as itself (its braces escaped). */
function literal(text: string): string {
  return text.replaceAll("{", "{{").replaceAll("}", "}}");
}
