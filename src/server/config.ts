/**
 * Server settings and their defaults: the one place each limit's default is written.
 *
 * @module
 */

import type { AccountsOptions } from "../auth/accounts.ts";

/** Everything the server can be told (the account settings among it). */
export interface ServerConfig extends Omit<AccountsOptions, "exemptLoopback" | "params"> {
  /** Interface to listen on. */
  host: string;
  /** TCP chat port; 0 picks a free one. */
  port: number;
  /** Longest inbound line, in bytes. */
  maxLine: number;
  /** Longest message text, in UTF-8 bytes. */
  maxText: number;
  /** Most bytes waiting for one connection before it is cut off as a slow consumer. */
  maxSendq: number;
  /** Connections in total. */
  maxConns: number;
  /** Concurrent connections from one IP address. */
  maxConnsPerIp: number;
  /** Apply per-IP limits to loopback addresses too. */
  limitLoopback: boolean;
  /** Flood control: lines a connection may send at once. */
  floodBurst: number;
  /** Flood control: lines per second refilled; 0 turns flood control off. */
  floodRate: number;
  /** How long shutdown waits for queued output to flush, in ms. */
  shutdownGraceMs: number;
  /** The data folder (holds parley.db); `:memory:` keeps everything in memory (tests). */
  data: string;
  /** SQLite durability: `full` survives power loss, `normal` survives a crash. */
  sync: "full" | "normal";
  /** Messages replayed when joining a room. */
  historyOnJoin: number;
  /** Rooms with more members than this do not announce joins, leaves, quits and renames. */
  presenceLimit: number;
  /** Only hello, register, login, help, ping and quit work before logging in. */
  requireLogin: boolean;
  /** PEM certificate chain file for TLS; with `tlsKey`, opens the TLS listener. */
  tlsCert: string | undefined;
  /** PEM private key file for TLS. */
  tlsKey: string | undefined;
  /** TLS chat port; 0 picks a free one. */
  tlsPort: number;
  /** Whether to listen for plain TCP chat too (false: TLS only). */
  plain: boolean;
  /** A TLS handshake must finish within this many ms. */
  handshakeTimeoutMs: number;
  /** A connection must send its first line within this many ms. */
  firstLineTimeoutMs: number;
  /** With requireLogin, a connection must log in within this many ms. */
  loginTimeoutMs: number;
  /** JSON mode: the server pings a connection silent for this many ms. */
  pingAfterMs: number;
  /** JSON mode: the server closes a connection silent for this many ms. */
  idleTimeoutMs: number;
  /** New connections per IP allowed at once (loopback exempt unless limitLoopback). */
  connRate: number;
  /** …then `connRate` more per this many ms. */
  connWindowMs: number;
  /** Whether to listen for IRC (its own port, and the hand-off on the chat port). */
  irc: boolean;
  /** IRC port; 0 picks a free one. */
  ircPort: number;
  /** IRC over TLS port (with the TLS certificate); 0 picks a free one. */
  ircTlsPort: number;
  /** The server's IRC name (the source of its IRC lines). */
  serverName: string;
  /** A password every client must give (IRC `PASS`, JSON `hello`'s `serverPassword`). */
  serverPassword: string | undefined;
  /** Whether to serve HTTP (web client, WebSocket, health). */
  http: boolean;
  /** HTTP port (HTTPS when TLS is configured); 0 picks a free one. */
  httpPort: number;
  /** Origins allowed to open `/ws` besides pages served from loopback names and IP addresses. */
  allowOrigins: readonly string[];
  /** An HTTP request's head (request line and headers) must arrive within this many ms. */
  headerTimeoutMs: number;
  /** An HTTP connection kept alive between requests is closed after this many idle ms. */
  keepAliveTimeoutMs: number;
  /** The largest file accepted, in bytes. */
  maxFileSize: number;
  /** The most bytes of files one account may own. */
  fileQuota: number;
  /** Files older than this many ms are deleted; 0 keeps them while messages reference them. */
  fileRetentionMs: number;
  /** Uploads allowed at once per account. */
  uploadBurst: number;
  /** Then one more upload every this many ms. */
  uploadIntervalMs: number;
  /** Voice in every room (`--no-voice` turns it off). */
  voice: boolean;
  /** The UDP ports the forwarding unit binds, `[first, last]` (`--voice-ports`). */
  voicePorts: [number, number];
  /** The address announced in voice candidates instead of the host's (`--voice-public-ip`). */
  voicePublicIp: string | undefined;
  /** Extra local addresses voice offers candidates on (`--voice-host`; 127.0.0.1 on loopback). */
  voiceHosts: readonly string[];
  /** People in one room's voice (`--voice-max-per-room`). */
  voiceMaxPerRoom: number;
  /** Forwarded streams, speaker to listener, in the whole server (`--voice-max-streams`). */
  voiceMaxStreams: number;
  /** How long a direct call rings before it is missed, in ms (`--call-ring`). */
  callRingMs: number;
  /** TURN servers handed to browsers (`--turn-url`, repeatable). */
  turnUrls: readonly string[];
  /** The secret shared with the TURN server (`--turn-secret`; coturn's `static-auth-secret`). */
  turnSecret: string | undefined;
  /** How long TURN credentials are valid, in ms (`--turn-ttl`). */
  turnTtlMs: number;
}

/**
 * The `deno run` permissions for running `main.ts server` as a child process (tests, the
 * benchmark) with its data folder and certificates anywhere; the `server` task narrows them.
 */
export const SERVER_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys=setPriority,hostname,networkInterfaces",
];

/** The defaults: safe for a public server. */
export const DEFAULT_CONFIG: Readonly<ServerConfig> = {
  host: "0.0.0.0",
  port: 5000,
  maxLine: 16 * 1024,
  maxText: 4 * 1024,
  maxSendq: 1024 * 1024,
  maxConns: 10_000,
  maxConnsPerIp: 20,
  limitLoopback: false,
  floodBurst: 30,
  floodRate: 10,
  shutdownGraceMs: 5_000,
  data: "./parley-data",
  sync: "full",
  historyOnJoin: 50,
  presenceLimit: 250,
  requireLogin: false,
  registration: true,
  loginBurst: 5,
  loginIntervalMs: 20_000,
  registerBurst: 5,
  registerIntervalMs: 60_000,
  sessionTtlMs: 30 * 24 * 3600 * 1000,
  // Leave a core for the event loop, so a burst of password logins cannot slow chat.
  hashConcurrency: Math.max(1, (navigator.hardwareConcurrency ?? 2) - 1),
  tlsCert: undefined,
  tlsKey: undefined,
  tlsPort: 5443,
  plain: true,
  handshakeTimeoutMs: 10_000,
  firstLineTimeoutMs: 30_000,
  loginTimeoutMs: 60_000,
  pingAfterMs: 90_000,
  idleTimeoutMs: 150_000,
  connRate: 30,
  connWindowMs: 60_000,
  irc: true,
  ircPort: 6667,
  ircTlsPort: 6697,
  serverName: defaultServerName(),
  serverPassword: undefined,
  http: true,
  httpPort: 8080,
  allowOrigins: [],
  headerTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxFileSize: 100 * 1024 * 1024,
  fileQuota: 1024 * 1024 * 1024,
  fileRetentionMs: 0,
  uploadBurst: 10,
  uploadIntervalMs: 6_000,
  voice: true,
  voicePorts: [40000, 40100],
  voicePublicIp: undefined,
  voiceHosts: [],
  voiceMaxPerRoom: 25,
  voiceMaxStreams: 2000,
  callRingMs: 30_000,
  turnUrls: [],
  turnSecret: undefined,
  turnTtlMs: 86_400_000,
};

/** The host name (the IRC server name by default), or `parley` when it cannot be read. */
function defaultServerName(): string {
  try {
    // Never a permission prompt: without --allow-sys=hostname the name is "parley".
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
      return "parley";
    }
    const name = Deno.hostname();
    return /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(name) ? name : "parley";
  } catch {
    return "parley";
  }
}
