/**
 * A driver worker process: holds a share of the client connections and runs the commands of
 * the coordinator (control.ts) against them. Run as `deno run --allow-net worker.ts`; it talks
 * JSON lines on stdin/stdout and logs nothing.
 *
 * @module
 */

import { ByteSink } from "./byte_sink.ts";
import { BenchConn } from "./conn.ts";
import type { LoginSpec, Protocol, SharedCounters } from "./conn.ts";
import type {
  ChurnReply,
  ClientSpec,
  Command,
  JoinReply,
  OpenReply,
  ProtocolName,
  Reply,
  Request,
  SendReply,
  StatsReply,
} from "./control.ts";
import { DeliveryCounter } from "./deliveries.ts";
import { Histogram } from "./histogram.ts";
import { nowMicros, padding, stampText } from "./payload.ts";
import { ircProtocol } from "./protocols/irc.ts";
import { mqttProtocol } from "./protocols/mqtt.ts";
import { parleyProtocol } from "./protocols/parley.ts";

/** The protocol implementations by name. */
export const PROTOCOLS: Readonly<Record<ProtocolName, Protocol>> = {
  parley: parleyProtocol,
  irc: ircProtocol,
  mqtt: mqttProtocol,
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Milliseconds on the performance clock at which epoch-ms `at` falls. */
function perfAt(at: number): number {
  return at - performance.timeOrigin;
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(lanes);
}

/**
 * The state and command handlers of one worker (usable in-process too, e.g. by tests).
 */
export class Worker {
  #protocol: Protocol = parleyProtocol;
  #host = "127.0.0.1";
  #port = 0;
  #readSize = 16384;
  readonly #conns = new Map<number, BenchConn>();
  readonly #seqs = new Map<number, number>();
  readonly #shared: SharedCounters = {
    deliveries: new DeliveryCounter(),
    errors: 0,
    errorSamples: [],
    bytesIn: 0,
  };

  /**
   * Runs one command.
   *
   * @returns the command's result (JSON-serialisable)
   */
  async run(command: Command): Promise<unknown> {
    switch (command.cmd) {
      case "init":
        this.#protocol = PROTOCOLS[command.protocol];
        this.#host = command.host;
        this.#port = command.port;
        this.#readSize = command.readSize;
        return {};
      case "open":
        return await this.#open(command.clients, command.concurrency, command.timeoutMs);
      case "join":
        return await this.#join(command.ids, command.room, command.at, command.timeoutMs);
      case "reset":
        this.#shared.deliveries.reset(command.step);
        this.#shared.errors = 0;
        this.#shared.errorSamples = [];
        return {};
      case "send":
        return await this.#send(command);
      case "stats":
        return this.#stats(command.detail ?? []);
      case "pause":
        for (const id of command.ids) this.#conns.get(id)?.pause();
        return {};
      case "resume":
        for (const id of command.ids) this.#conns.get(id)?.resume();
        return {};
      case "churn":
        return await this.#churn(command);
      case "raw": {
        const errors: string[] = [];
        await Promise.all(command.ids.map(async (id) => {
          try {
            const conn = this.#conns.get(id);
            if (conn === undefined) throw new Error("not open");
            await conn.request(command.data, command.timeoutMs);
          } catch (error) {
            errors.push(`client ${id}: ${String(error)}`);
          }
        }));
        if (errors.length > 0) throw new Error(errors.slice(0, 3).join("; "));
        return {};
      }
      case "close": {
        const ids = command.ids ?? [...this.#conns.keys()];
        await Promise.all(ids.map((id) => this.#conns.get(id)?.close()));
        for (const id of ids) this.#conns.delete(id);
        return {};
      }
    }
  }

  async #connect(id: number): Promise<BenchConn> {
    return await BenchConn.connect(id, this.#protocol, this.#shared, {
      host: this.#host,
      port: this.#port,
      readSize: this.#readSize,
    });
  }

  async #open(clients: ClientSpec[], concurrency: number, timeoutMs: number): Promise<OpenReply> {
    const reply: OpenReply = { opened: 0, failed: 0, errors: [], names: [], tokens: [] };
    await eachLimited(clients, concurrency, async (spec) => {
      let conn: BenchConn | undefined;
      try {
        conn = await this.#connect(spec.id);
        const { name, token } = await this.#protocol.login(conn, spec.login, timeoutMs);
        conn.name = name;
        for (const room of spec.rooms) await this.#protocol.join(conn, room, timeoutMs);
        conn.queueReplies = false;
        this.#conns.set(spec.id, conn);
        reply.opened++;
        reply.names.push([spec.id, name]);
        if (token !== undefined) reply.tokens.push([spec.id, token]);
      } catch (error) {
        reply.failed++;
        if (reply.errors.length < 5) reply.errors.push(`client ${spec.id}: ${String(error)}`);
        await conn?.close();
      }
    });
    return reply;
  }

  async #join(ids: number[], room: string, at: number, timeoutMs: number): Promise<JoinReply> {
    const reply: JoinReply = { ok: 0, failed: 0, errors: [], firstSentAt: 0, lastReplyAt: 0 };
    await sleep(perfAt(at) - performance.now());
    reply.firstSentAt = nowMicros();
    await Promise.all(ids.map(async (id) => {
      const conn = this.#conns.get(id);
      try {
        if (conn === undefined) throw new Error("not open");
        await this.#protocol.join(conn, room, timeoutMs);
        reply.ok++;
        reply.lastReplyAt = Math.max(reply.lastReplyAt, conn.now);
      } catch (error) {
        reply.failed++;
        if (reply.errors.length < 5) reply.errors.push(`client ${id}: ${String(error)}`);
      }
    }));
    return reply;
  }

  async #send(command: Extract<Command, { cmd: "send" }>): Promise<SendReply> {
    const pad = padding(command.size);
    const senders = command.senders.flatMap((s) => {
      const conn = this.#conns.get(s.id);
      return conn === undefined ? [] : [{ conn, target: s.target, sink: new ByteSink(), sent: 0 }];
    });
    const lag = new Histogram();
    const reply: SendReply = { sent: [], lagMaxMs: 0, lagP99Ms: 0, queuedBytes: 0 };
    if (senders.length > 0 && command.rate > 0) {
      const total = Math.floor((command.rate * command.durationMs) / 1000);
      const interval = 1000 / command.rate;
      const t0 = perfAt(command.at);
      const dirty = new Set<(typeof senders)[number]>();
      let k = 0;
      await sleep(t0 - performance.now());
      while (k < total) {
        const now = performance.now();
        const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
        if (due > k) {
          lag.record((now - (t0 + k * interval)) * 1000);
          const t = nowMicros();
          for (; k < due; k++) {
            const s = senders[k % senders.length]!;
            const seq = this.#seqs.get(s.conn.id) ?? 0;
            this.#seqs.set(s.conn.id, seq + 1);
            this.#protocol.encodeSend(
              s.sink,
              s.target,
              stampText(t, s.conn.id, seq, command.step, pad),
            );
            s.sent++;
            dirty.add(s);
          }
          for (const s of dirty) s.conn.write(s.sink.take());
          dirty.clear();
        }
        if (k < total) await sleep(t0 + k * interval - performance.now());
      }
    }
    reply.sent = senders.map((s) => [s.conn.id, s.sent]);
    reply.lagMaxMs = lag.max / 1000;
    reply.lagP99Ms = lag.percentile(99) / 1000;
    for (const s of senders) reply.queuedBytes += s.conn.queued;
    return reply;
  }

  #stats(detail: number[]): StatsReply {
    let dead = 0;
    let lastByteAt = 0;
    for (const conn of this.#conns.values()) {
      if (conn.ended) dead++;
      if (conn.lastByteAt > lastByteAt) lastByteAt = conn.lastByteAt;
    }
    return {
      deliveries: this.#shared.deliveries.stats(),
      errors: this.#shared.errors,
      errorSamples: this.#shared.errorSamples,
      open: this.#conns.size - dead,
      dead,
      bytesIn: this.#shared.bytesIn,
      lastByteAt,
      // Only the clients this worker holds: the coordinator merges the workers' answers.
      detail: detail.flatMap((id): [number, number, boolean][] => {
        const conn = this.#conns.get(id);
        return conn === undefined ? [] : [[id, conn.tracker.received, conn.ended]];
      }),
    };
  }

  async #churn(command: Extract<Command, { cmd: "churn" }>): Promise<ChurnReply> {
    const reply: ChurnReply = {
      count: 0,
      failed: 0,
      errors: [],
      latency: new Histogram().snapshot(),
    };
    const latency = new Histogram();
    const start = perfAt(command.at);
    const end = start + command.durationMs;
    let next = 0;
    let serial = 0;
    await sleep(start - performance.now());
    const lane = async () => {
      while (performance.now() < end && (command.limit === 0 || next < command.limit)) {
        let login: LoginSpec = command.logins[next++ % command.logins.length]!;
        if (login.kind === "guest" && login.nick !== undefined) {
          login = { kind: "guest", nick: `${login.nick}${serial++}` };
        }
        const t = performance.now();
        let conn: BenchConn | undefined;
        try {
          conn = await this.#connect(-1);
          await this.#protocol.login(conn, login, command.timeoutMs);
          latency.record((performance.now() - t) * 1000);
          reply.count++;
        } catch (error) {
          reply.failed++;
          if (reply.errors.length < 5) reply.errors.push(String(error));
        } finally {
          await conn?.close();
        }
      }
    };
    await Promise.all(Array.from({ length: command.concurrency }, lane));
    reply.latency = latency.snapshot();
    return reply;
  }
}

/** Serves commands from stdin until it closes. */
async function serve(): Promise<void> {
  const worker = new Worker();
  const encoder = new TextEncoder();
  let out = Promise.resolve();
  const answer = (reply: Reply) => {
    const bytes = encoder.encode(JSON.stringify(reply) + "\n");
    out = out.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
    });
  };
  let rest = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      if (line === "") continue;
      const request = JSON.parse(line) as Request;
      worker.run(request).then(
        (result) => answer({ id: request.id, ok: true, result }),
        (error) => answer({ id: request.id, ok: false, error: String(error) }),
      );
    }
  }
  await worker.run({ cmd: "close" });
  await out;
}

if (import.meta.main) await serve();
