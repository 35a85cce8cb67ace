/**
 * Server settings and their defaults: the one place each limit's default is written.
 *
 * @module
 */

/** Everything the server can be told. */
export interface ServerConfig {
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
}

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
};
