/**
 * The server's metrics, for `/metrics` in the Prometheus text exposition format (version
 * 0.0.4). Hot paths only bump integer fields of {@linkcode ServerCounters} (a delivery, a
 * message) or add one observation to a fixed-bucket {@linkcode Histogram} (a commit batch, an
 * event-loop tick); everything else (sessions, rooms, queue depths, memory) is read when
 * scraped. Every metric is described in docs/operations.md.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import type { AccountsStats } from "../auth/accounts.ts";
import type { UserRecord } from "../store/store.ts";

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * A histogram with fixed upper bounds: cumulative counts are computed when rendered, so an
 * observation is a short scan and an increment (no allocation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Histogram } from "./metrics.ts";
 * const h = new Histogram([1, 5]);
 * h.observe(0.5);
 * h.observe(3);
 * h.observe(9);
 * assert.deepEqual(h.cumulative(), [1, 2, 3]);
 * assert.equal(h.count, 3);
 * assert.equal(h.sum, 12.5);
 * ```
 */
export class Histogram {
  /** The upper bounds, ascending (`+Inf` is implied). */
  readonly bounds: readonly number[];
  readonly #counts: Float64Array;
  /** How many observations. */
  count = 0;
  /** Their sum. */
  sum = 0;

  /** @param bounds upper bounds, ascending */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.count++;
    this.sum += value;
  }

  /** The cumulative count at each bound, then the total (the `+Inf` bucket). */
  cumulative(): number[] {
    let running = 0;
    return Array.from(this.#counts, (n) => running += n);
  }
}

/** Integer counters bumped on hot paths; read when `/metrics` is scraped. */
export class ServerCounters {
  /** Chat connections opened, by transport. */
  tcpOpened = 0;
  tlsOpened = 0;
  wsOpened = 0;
  /** Chat connections open now, by transport. */
  tcpOpen = 0;
  tlsOpen = 0;
  wsOpen = 0;
  /** Connections refused by the caps, by reason. */
  refusedFull = 0;
  refusedPerIp = 0;
  refusedRate = 0;
  /** Messages accepted (stored and published), to rooms and to people. */
  roomMessages = 0;
  directMessages = 0;
  /** Lines (and frames) read from clients (not exported: the lag probe's sign of work). */
  lines = 0;
  /** Events queued to a session (a message to a room of ten is ten deliveries, less its sender). */
  deliveries = 0;
  /** Sessions closed because their send queue overflowed (slow consumers). */
  sendQueueCutoffs = 0;
  /** HTTP responses by status code (a handful of distinct codes). */
  readonly httpResponses = new Map<number, number>();
  /** Commit batches: operations per batch, and seconds from posting to the worker to its answer. */
  readonly batchOps = new Histogram([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]);
  readonly batchSeconds = new Histogram([
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
  ]);
  /** How late each event-loop probe timer ran, in seconds. */
  readonly lagSeconds = new Histogram([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1]);

  /** Counts a chat connection opened (`delta` 1) or closed (`delta` -1). */
  connection(kind: "tcp" | "tls" | "ws", delta: 1 | -1): void {
    if (kind === "tcp") {
      this.tcpOpen += delta;
      if (delta > 0) this.tcpOpened++;
    } else if (kind === "tls") {
      this.tlsOpen += delta;
      if (delta > 0) this.tlsOpened++;
    } else {
      this.wsOpen += delta;
      if (delta > 0) this.wsOpened++;
    }
  }

  /** Counts a connection refused by the caps. */
  refused(kind: "full" | "per_ip" | "rate"): void {
    if (kind === "full") this.refusedFull++;
    else if (kind === "per_ip") this.refusedPerIp++;
    else this.refusedRate++;
  }

  /** Counts an HTTP response. */
  httpResponse(status: number): void {
    this.httpResponses.set(status, (this.httpResponses.get(status) ?? 0) + 1);
  }

  /** Records a commit batch of `ops` operations answered `ms` after it was posted. */
  batch(ops: number, ms: number): void {
    this.batchOps.observe(ops);
    this.batchSeconds.observe(ms / 1000);
  }
}

/** What the server reads for a scrape, besides its {@linkcode ServerCounters}. */
export interface ServerSnapshot {
  version: string;
  uptimeSeconds: number;
  startTimeSeconds: number;
  rss: number;
  heap: number;
  /** Sessions with a name (online), and how many of those are logged in to an account. */
  sessionsOnline: number;
  sessionsAccounts: number;
  /** Connections not yet online (before their first line, or turned away). */
  sessionsPending: number;
  rooms: number;
  accounts: AccountsStats;
  lag: { samples: number; maxMs: number; over5ms: number; over50ms: number };
  /** The SQLite worker store's counters (absent for other stores). */
  store: StoreCounters | undefined;
}

/** The worker store's counters (src/store/worker_store.ts StoreStats). */
export interface StoreCounters {
  batches: number;
  commits: number;
  ops: number;
  mainThreadMs: number;
  longestMainThreadMs: number;
  slices: number;
  slicesOver5ms: number;
  workerMs: number;
  queued: number;
  inFlight: number;
}

type Labels = Readonly<Record<string, string>>;

/** Writes metric families in the text exposition format. */
class Exposition {
  #out: string[] = [];

  #head(name: string, type: string, help: string): void {
    this.#out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  /** A family of samples (one without labels, or one per label set). */
  family(
    name: string,
    type: "counter" | "gauge",
    help: string,
    samples: number | readonly [Labels, number][],
  ): this {
    this.#head(name, type, help);
    if (typeof samples === "number") this.#out.push(`${name} ${formatValue(samples)}`);
    else {
      for (const [labels, value] of samples) {
        this.#out.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
      }
    }
    return this;
  }

  histogram(name: string, help: string, h: Histogram, scale = 1): this {
    this.#head(name, "histogram", help);
    const cumulative = h.cumulative();
    h.bounds.forEach((bound, i) => {
      this.#out.push(`${name}_bucket{le="${formatValue(bound * scale)}"} ${cumulative[i]}`);
    });
    this.#out.push(
      `${name}_bucket{le="+Inf"} ${cumulative.at(-1)}`,
      `${name}_sum ${formatValue(h.sum * scale)}`,
      `${name}_count ${h.count}`,
    );
    return this;
  }

  text(): string {
    return this.#out.join("\n") + "\n";
  }
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/**
 * Renders every metric of the server.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderMetrics, ServerCounters } from "./metrics.ts";
 * const counters = new ServerCounters();
 * counters.connection("ws", 1);
 * counters.deliveries += 3;
 * const text = renderMetrics(counters, {
 *   version: "0.1.0", uptimeSeconds: 1, startTimeSeconds: 0, rss: 0, heap: 0,
 *   sessionsOnline: 1, sessionsAccounts: 0, sessionsPending: 0, rooms: 1,
 *   accounts: {
 *     hashRunning: 0, hashWaiting: 0, hashBusy: 0,
 *     loginFailures: { auth_failed: 0, rate_limited: 0, busy: 0 },
 *   },
 *   lag: { samples: 0, maxMs: 0, over5ms: 0, over50ms: 0 },
 *   store: undefined,
 * });
 * assert.match(text, /^parley_connections\{transport="ws"\} 1$/m);
 * assert.match(text, /^# TYPE parley_deliveries_total counter\nparley_deliveries_total 3$/m);
 * ```
 */
export function renderMetrics(c: ServerCounters, s: ServerSnapshot): string {
  const out = new Exposition();
  const byTransport = (tcp: number, tls: number, ws: number): [Labels, number][] => [
    [{ transport: "tcp" }, tcp],
    [{ transport: "tls" }, tls],
    [{ transport: "ws" }, ws],
  ];
  out
    .family("parley_build_info", "gauge", "The running version (always 1).", [[
      { version: s.version },
      1,
    ]])
    .family(
      "parley_start_time_seconds",
      "gauge",
      "When the server started, in seconds since the Unix epoch.",
      s.startTimeSeconds,
    )
    .family("parley_uptime_seconds", "gauge", "Seconds since the server started.", s.uptimeSeconds)
    .family("parley_resident_memory_bytes", "gauge", "The process's resident set size.", s.rss)
    .family("parley_heap_used_bytes", "gauge", "V8 heap in use.", s.heap)
    .family(
      "parley_connections",
      "gauge",
      "Chat connections open now, by transport (ws: WebSocket on the web port).",
      byTransport(c.tcpOpen, c.tlsOpen, c.wsOpen),
    )
    .family(
      "parley_connections_opened_total",
      "counter",
      "Chat connections accepted under the caps, by transport.",
      byTransport(c.tcpOpened, c.tlsOpened, c.wsOpened),
    )
    .family(
      "parley_connections_refused_total",
      "counter",
      "Connections refused by the caps: the server full, too many from one address, or too fast.",
      [
        [{ reason: "full" }, c.refusedFull],
        [{ reason: "per_ip" }, c.refusedPerIp],
        [{ reason: "rate" }, c.refusedRate],
      ],
    )
    .family(
      "parley_sessions",
      "gauge",
      "Chat sessions by state: online as a guest, as an account, or not yet online.",
      [
        [{ state: "guest" }, s.sessionsOnline - s.sessionsAccounts],
        [{ state: "account" }, s.sessionsAccounts],
        [{ state: "pending" }, s.sessionsPending],
      ],
    )
    .family("parley_rooms", "gauge", "Rooms that exist now (permanent ones included).", s.rooms)
    .family("parley_messages_total", "counter", "Messages stored and published, by kind.", [
      [{ kind: "room" }, c.roomMessages],
      [{ kind: "direct" }, c.directMessages],
    ])
    .family(
      "parley_deliveries_total",
      "counter",
      "Events queued to sessions (messages, presence, notices): one per receiving session.",
      c.deliveries,
    )
    .family(
      "parley_send_queue_cutoffs_total",
      "counter",
      "Sessions closed because their send queue exceeded --max-sendq (slow consumers).",
      c.sendQueueCutoffs,
    )
    .family(
      "parley_login_failures_total",
      "counter",
      "Failed logins (password or session token): wrong credentials, throttled, or the hash " +
        "queue full.",
      Object.entries(s.accounts.loginFailures).map(([reason, n]): [Labels, number] => [
        { reason },
        n,
      ]),
    )
    .family(
      "parley_password_hashes_running",
      "gauge",
      "Password hashes running now (at most --hash-concurrency).",
      s.accounts.hashRunning,
    )
    .family(
      "parley_password_hash_queue",
      "gauge",
      "Password hashes waiting for a slot.",
      s.accounts.hashWaiting,
    )
    .family(
      "parley_password_hash_refused_total",
      "counter",
      "Password hashes refused `busy` because the queue was full.",
      s.accounts.hashBusy,
    )
    .family(
      "parley_http_responses_total",
      "counter",
      "HTTP responses on the web port, by status code (101: WebSocket upgrades).",
      [...c.httpResponses].sort(([a], [b]) => a - b).map(([code, n]): [Labels, number] => [
        { code: String(code) },
        n,
      ]),
    )
    .histogram(
      "parley_event_loop_lag_seconds",
      "How late the event loop ran a timer due every 5 ms.",
      c.lagSeconds,
    )
    .family(
      "parley_event_loop_lag_max_seconds",
      "gauge",
      "The latest the probe timer ever ran since start.",
      s.lag.maxMs / 1000,
    );
  const st = s.store;
  if (st !== undefined) {
    out
      .family(
        "parley_store_batches_total",
        "counter",
        "Batches the store's worker ran.",
        st.batches,
      )
      .family("parley_store_commits_total", "counter", "Transactions committed.", st.commits)
      .family("parley_store_ops_total", "counter", "Store operations executed.", st.ops)
      .family(
        "parley_store_worker_seconds_total",
        "counter",
        "Seconds the worker spent executing batches (queries, commits, fsyncs).",
        st.workerMs / 1000,
      )
      .family(
        "parley_store_main_thread_seconds_total",
        "counter",
        "Seconds the main thread spent in the store's code (posting, settling answers).",
        st.mainThreadMs / 1000,
      )
      .family(
        "parley_store_main_thread_slices_total",
        "counter",
        "Times the main thread ran the store's code.",
        st.slices,
      )
      .family(
        "parley_store_main_thread_slices_over_5ms_total",
        "counter",
        "Times the main thread spent over 5 ms in the store's code at once.",
        st.slicesOver5ms,
      )
      .family(
        "parley_store_main_thread_longest_seconds",
        "gauge",
        "The longest the main thread spent in the store's code at once, since start.",
        st.longestMainThreadMs / 1000,
      )
      .family(
        "parley_store_queued_ops",
        "gauge",
        "Operations waiting for the next batch.",
        st.queued,
      )
      .family(
        "parley_store_in_flight_ops",
        "gauge",
        "Operations in the batch the worker is running.",
        st.inFlight,
      );
  }
  out
    .histogram("parley_store_batch_ops", "Operations per commit batch.", c.batchOps)
    .histogram(
      "parley_store_batch_seconds",
      "Seconds from posting a batch to the worker to its answer (execution, commit, fsync).",
      c.batchSeconds,
    );
  return out.text();
}

/** Who a bearer token belongs to, for `/metrics`. */
export type TokenRole = "admin" | "user";

/**
 * Checks a session token for `/metrics`: `admin` for an account with the administrator flag,
 * else `user`.
 *
 * @throws {ChatError} `auth_failed` for an unknown or expired token, `rate_limited`
 */
export async function tokenRole(
  resume: (token: string, ip: string) => Promise<{ user: UserRecord }>,
  token: string,
  ip: string,
): Promise<TokenRole> {
  const { user } = await resume(token, ip);
  return user.admin ? "admin" : "user";
}

/** What `/metrics` needs from the server. */
export interface MetricsEndpoint {
  /** {@linkcode tokenRole} over the server's accounts. */
  authorize(token: string, ip: string): Promise<TokenRole>;
  /** The exposition text. */
  render(): string;
}

/** Whether an error is a refusal to log in (not a failure of the server). */
export function isAuthRefusal(error: unknown): error is ChatError {
  return error instanceof ChatError &&
    (error.code === "auth_failed" || error.code === "rate_limited" || error.code === "busy");
}

/** Wraps an HTTP handler so that each response is counted by status (a throw counts as 500). */
export function countResponses<A extends unknown[]>(
  counters: ServerCounters,
  handler: (req: Request, ...rest: A) => Response | Promise<Response>,
): (req: Request, ...rest: A) => Promise<Response> {
  return async (req, ...rest) => {
    try {
      const res = await handler(req, ...rest);
      counters.httpResponse(res.status);
      return res;
    } catch (error) {
      counters.httpResponse(500);
      throw error;
    }
  };
}
