/**
 * The control protocol between the coordinator and its worker processes: one JSON object per
 * line, commands on the worker's stdin, replies (with the command's `id`) on its stdout.
 *
 * @module
 */

import type { DeliveryStats } from "./deliveries.ts";
import type { HistogramSnapshot } from "./histogram.ts";
import type { LoginSpec, SendTarget } from "./conn.ts";

/** The protocols a worker speaks. */
export type ProtocolName = "parley" | "irc" | "mqtt";

/** One client to open: how it logs in and what it joins. */
export interface ClientSpec {
  /** Driver-wide id (also the sender id in stamps). */
  id: number;
  /** How it comes online. */
  login: LoginSpec;
  /** Rooms (topics) to join after logging in. */
  rooms: string[];
}

/** A sender of a `send` command and where its messages go. */
export interface SenderSpec {
  /** The client's id. */
  id: number;
  /** The room or user it sends to. */
  target: SendTarget;
}

/** Every command a worker understands. */
export type Command =
  | { cmd: "init"; protocol: ProtocolName; host: string; port: number; readSize: number }
  | { cmd: "open"; clients: ClientSpec[]; concurrency: number; timeoutMs: number }
  | { cmd: "join"; ids: number[]; room: string; at: number; timeoutMs: number }
  | { cmd: "reset"; step: number }
  | {
    cmd: "send";
    step: number;
    senders: SenderSpec[];
    /** Messages per second from this worker, spread evenly over its senders. */
    rate: number;
    durationMs: number;
    /** Epoch ms at which to start. */
    at: number;
    /** Message text size in bytes. */
    size: number;
  }
  | { cmd: "stats"; detail?: number[] }
  | { cmd: "pause"; ids: number[] }
  | { cmd: "resume"; ids: number[] }
  | {
    cmd: "churn";
    /** Logins to cycle through; a guest nick gets a unique suffix per connection. */
    logins: LoginSpec[];
    concurrency: number;
    durationMs: number;
    /** Stop after this many logins (0: no limit). */
    limit: number;
    at: number;
    timeoutMs: number;
  }
  | { cmd: "close"; ids?: number[] }
  | {
    cmd: "raw";
    ids: number[];
    /** Bytes (UTF-8 text) each client sends; it then waits for the next reply. */
    data: string;
    timeoutMs: number;
  };

/** A command with its request id. */
export type Request = Command & { id: number };

/** The reply to `open`. */
export interface OpenReply {
  opened: number;
  failed: number;
  errors: string[];
  /** `[id, name]` of each opened client. */
  names: [number, string][];
  /** `[id, token]` for parley logins that returned one. */
  tokens: [number, string][];
}

/** The reply to `join`. */
export interface JoinReply {
  ok: number;
  failed: number;
  errors: string[];
  /** When the first join was written and the last reply arrived, epoch µs. */
  firstSentAt: number;
  lastReplyAt: number;
}

/** The reply to `send`. */
export interface SendReply {
  /** `[id, count]`: messages each sender wrote. */
  sent: [number, number][];
  /** How late the scheduler ran, ms. */
  lagMaxMs: number;
  lagP99Ms: number;
  /** Bytes still queued in the driver's write buffers at the end. */
  queuedBytes: number;
}

/** The reply to `stats`. */
export interface StatsReply {
  deliveries: DeliveryStats;
  /** Error replies nobody waited for, and some of them. */
  errors: number;
  errorSamples: string[];
  /** Connections open and ended. */
  open: number;
  dead: number;
  bytesIn: number;
  /** When any connection last received bytes, epoch µs. */
  lastByteAt: number;
  /** For the ids asked that this worker holds: `[id, fresh deliveries (all steps), ended]`. */
  detail: [number, number, boolean][];
}

/** The reply to `churn`. */
export interface ChurnReply {
  count: number;
  failed: number;
  errors: string[];
  /** Connect-to-logged-in time, µs. */
  latency: HistogramSnapshot;
}

/** A worker's answer: the command's id and a result or an error message. */
export type Reply = { id: number; ok: true; result: unknown } | {
  id: number;
  ok: false;
  error: string;
};
