import assert from "node:assert/strict";
import { ByteSink } from "../bench/byte_sink.ts";
import type { BenchConn } from "../bench/conn.ts";
import { DeliveryCounter, SequenceTracker } from "../bench/deliveries.ts";
import { Histogram } from "../bench/histogram.ts";
import { padding, parseStamp, stampText } from "../bench/payload.ts";
import { ircProtocol } from "../bench/protocols/irc.ts";
import { connectPacket, mqttProtocol } from "../bench/protocols/mqtt.ts";
import { parleyProtocol } from "../bench/protocols/parley.ts";
import { checkGoals, emptyReport, toMarkdown } from "../bench/report.ts";
import { Rig } from "../bench/rig.ts";
import { external } from "../bench/servers.ts";
import { startServer } from "./_helpers.ts";

const encoder = new TextEncoder();

Deno.test("Histogram.percentile() is within 0.1 % of the exact percentile", () => {
  const h = new Histogram();
  const values: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const v = Math.floor(Math.exp(Math.random() * 16)); // 1 µs to ~9 s
    values.push(v);
    h.record(v);
  }
  values.sort((a, b) => a - b);
  for (const p of [50, 90, 99, 99.9]) {
    const exact = values[Math.ceil((p / 100) * values.length) - 1]!;
    const got = h.percentile(p);
    assert(got >= exact && got <= exact * 1.001 + 1, `p${p}: ${got} vs ${exact}`);
  }
  assert.deepEqual(h.max, values.at(-1));
  assert.deepEqual(h.count, 10_000);
});

Deno.test("Histogram.add() merges snapshots from other processes exactly", () => {
  const a = new Histogram();
  const b = new Histogram();
  const all = new Histogram();
  for (let i = 0; i < 1000; i++) {
    (i % 2 ? a : b).record(i * 37);
    all.record(i * 37);
  }
  const merged = Histogram.from(JSON.parse(JSON.stringify(a.snapshot())));
  merged.add(b.snapshot());
  assert.deepEqual(merged.count, all.count);
  assert.deepEqual(merged.max, all.max);
  assert.deepEqual(merged.mean, all.mean);
  for (const p of [1, 50, 99, 100]) assert.deepEqual(merged.percentile(p), all.percentile(p));
});

Deno.test("parseStamp() reads the stamp inside a parley, IRC or MQTT frame", () => {
  const text = stampText(1_795_258_667_122_483, 12, 345, 3, padding(80));
  assert(text.length > 70 && text.length <= 80, text);
  const out = { t: 0, sender: 0, seq: 0, step: 0 };
  for (
    const frame of [
      `{"type":"message","id":1,"room":"#r","from":"guest-1","text":"${text}","ts":1}`,
      `:b12!~b12@127.0.0.1 PRIVMSG #r :${text}`,
      text,
    ]
  ) {
    const bytes = encoder.encode(frame);
    assert(parseStamp(bytes, 0, bytes.length, out), frame);
    assert.deepEqual(out, { t: 1_795_258_667_122_483, sender: 12, seq: 345, step: 3 });
  }
  const isupport = encoder.encode(":srv 005 b1 CHANTYPES=#& PREFIX=(ov)@+ :are supported");
  assert(!parseStamp(isupport, 0, isupport.length, out));
});

Deno.test("SequenceTracker.receive() tells fresh, late, duplicate and stale deliveries", () => {
  const counter = new DeliveryCounter();
  counter.reset(2);
  const rx = new SequenceTracker();
  const got = (sender: number, seq: number, step = 2) =>
    rx.receive({ t: 0, sender, seq, step }, 5, counter);
  got(1, 0);
  got(1, 2); // 1 is missing for now
  got(2, 0);
  got(1, 1); // late: reordered
  got(1, 1); // again: duplicate
  got(1, 3, 1); // another step: stale
  const s = counter.stats();
  assert.deepEqual(
    [s.delivered, s.reordered, s.duplicates, s.stale, rx.received],
    [4, 1, 1, 1, 5],
  );
});

/** A stand-in connection that records what a protocol parser reports. */
function fakeConn() {
  const events: string[] = [];
  const written: string[] = [];
  const conn = {
    wantsReplies: true,
    message: (b: Uint8Array, s: number, e: number) =>
      events.push(`message ${new TextDecoder().decode(b.subarray(s, e))}`),
    settle: (ok: boolean, line: string) => events.push(`${ok ? "ok" : "error"} ${line}`),
    text: (b: Uint8Array, s: number, e: number) => new TextDecoder().decode(b.subarray(s, e)),
    write: (b: Uint8Array) => written.push(new TextDecoder().decode(b)),
    writeString: (s: string) => written.push(s),
  };
  return { conn: conn as unknown as BenchConn, events, written };
}

Deno.test("parleyProtocol.consume() classifies lines and keeps a partial one", () => {
  const { conn, events, written } = fakeConn();
  const input = encoder.encode(
    '* Welcome to parley.\n{"type":"presence","room":"#r","name":"x","event":"joined"}\n' +
      '{"type":"ping"}\n{"type":"ack","id":1}\r\n{"type":"error","code":"x"}\n' +
      '{"type":"message","text":"t=1 s=2:3 k=4 x"}\n{"type":"mess',
  );
  const used = parleyProtocol.consume(conn, input, input.length);
  assert.deepEqual(used, input.length - '{"type":"mess'.length);
  assert.deepEqual(events, [
    "ok * Welcome to parley.",
    'ok {"type":"ack","id":1}',
    'error {"type":"error","code":"x"}',
    'message {"type":"message","text":"t=1 s=2:3 k=4 x"}',
  ]);
  assert.deepEqual(written, ['{"type":"pong"}\n']);
});

Deno.test("ircProtocol.consume() settles on end of MOTD and names, answers PING", () => {
  const { conn, events, written } = fakeConn();
  const input = encoder.encode(
    ":s 001 b1 :Welcome\r\n:s 376 b1 :End of MOTD\r\nPING :s\r\n" +
      ":b2!~b2@h JOIN :#r\r\n:s 366 b1 #r :End\r\n:s 433 * b1 :Nickname in use\r\n" +
      ":b2!~b2@h PRIVMSG #r :t=1 s=2:3 k=4 x\r\n",
  );
  assert.deepEqual(ircProtocol.consume(conn, input, input.length), input.length);
  assert.deepEqual(events, [
    "ok :s 376 b1 :End of MOTD",
    "ok :s 366 b1 #r :End",
    "error :s 433 * b1 :Nickname in use",
    "message PRIVMSG #r :t=1 s=2:3 k=4 x",
  ]);
  assert.deepEqual(written, ["PONG :s\r\n"]);
});

Deno.test("mqttProtocol encodes PUBLISH and parses it back, split anywhere", () => {
  const sink = new ByteSink(8);
  mqttProtocol.encodeSend(sink, { room: "#r" }, "t=1 s=2:3 k=4 " + "x".repeat(200));
  mqttProtocol.encodeSend(sink, { to: "b7" }, "t=5 s=6:7 k=8 x");
  const bytes = Uint8Array.of(0x20, 2, 0, 0, ...sink.take(), 0x90, 3, 0, 1, 0x80);
  const { conn, events } = fakeConn();
  const buf = new Uint8Array(bytes.length);
  let len = 0;
  for (const b of bytes) { // one byte at a time: every split point
    buf[len++] = b;
    const used = mqttProtocol.consume(conn, buf, len);
    buf.copyWithin(0, used, len);
    len -= used;
  }
  assert.deepEqual(len, 0);
  assert.deepEqual(events.map((e) => e.slice(0, 24)), [
    "ok CONNACK",
    "message t=1 s=2:3 k=4 xx",
    "message t=5 s=6:7 k=8 x",
    "error SUBACK: refused",
  ]);
  assert.deepEqual([...connectPacket("b1").subarray(0, 2)], [0x10, 14]);
});

Deno.test("bench drives a parley room and counts every delivery once", async () => {
  await using server = await startServer([
    "--flood-rate",
    "0",
    "--history-on-join",
    "0",
    "--sync",
    "normal",
  ]);
  await using rig = await Rig.start(external("parley", server.port, { pid: server.child.pid }), {
    workers: 2,
  });
  const members = 5;
  const clients = Array.from({ length: members }, (_, id) => ({
    id,
    login: { kind: "guest" as const },
    rooms: ["#smoke"],
  }));
  assert.deepEqual(await rig.open(clients), members);
  // 2 senders × 100 messages each = 200 messages, 4 recipients each.
  const senders = [0, 1].map((id) => ({ id, target: { room: "#smoke" }, recipients: members - 1 }));
  const step = await rig.step(senders, 200, {
    step: 1,
    durationMs: 1000,
    size: 64,
    p99LimitMs: 1000,
    drainMs: 2000,
  });
  assert.deepEqual(step.expected, 200 * (members - 1));
  assert.deepEqual(step.delivered, 200 * (members - 1));
  assert.deepEqual([step.loss, step.duplicates, step.reordered, step.errors, step.dead], [
    0,
    0,
    0,
    0,
    0,
  ]);
  assert(step.pass, step.reason);
  assert(step.latency.p50 > 0 && step.latency.max >= step.latency.p99);
  assert(step.serverRss > 0, `server RSS read from /proc: ${JSON.stringify(step)}`);

  const report = emptyReport(
    { cpus: 2, cpuModel: "test", memoryGiB: 1, kernel: "", deno: "", openFiles: "" },
    {},
  );
  report.fanout["5"] = {
    parley: { steps: [step], capacity: step.deliveredPerSec, best: step, driverBound: false },
  };
  report.goals = checkGoals(report);
  const markdown = toMarkdown(report);
  assert(markdown.includes("### Fan-out, room of 5"), markdown);
  assert(markdown.includes("| parley | 800 |"), markdown);
  const json = JSON.parse(JSON.stringify(report));
  assert.deepEqual(json.fanout["5"].parley.steps[0].delivered, 800);
});

Deno.test("bench drives parley's IRC listener with the IRC adapter it uses for ngIRCd", async () => {
  await using server = await startServer([
    "--flood-rate",
    "0",
    "--history-on-join",
    "0",
    "--sync",
    "normal",
  ]);
  const target = external("parley-irc", server.ircPort, { pid: server.child.pid });
  assert.equal(target.protocol, "irc");
  await using rig = await Rig.start(target, { workers: 2 });
  const members = 4;
  const clients = Array.from({ length: members }, (_, id) => ({
    id,
    login: { kind: "guest" as const, nick: `b${id}` },
    rooms: ["#smoke"],
  }));
  // Every IRC guest is put in #general first: the adapter waits for #smoke's end of names.
  assert.deepEqual(await rig.open(clients), members);
  const senders = [0, 1].map((id) => ({ id, target: { room: "#smoke" }, recipients: members - 1 }));
  const step = await rig.step(senders, 100, {
    step: 1,
    durationMs: 1000,
    size: 64,
    p99LimitMs: 1000,
    drainMs: 2000,
  });
  assert.deepEqual(step.delivered, step.expected);
  assert.deepEqual([step.loss, step.duplicates, step.errors, step.dead], [0, 0, 0, 0]);
  assert(step.pass, step.reason);
});

Deno.test("bench: an interrupt stops its servers and removes their temporary folders", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "parley-bench-test-" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../bench/main.ts", import.meta.url).pathname,
        "--servers",
        "parley",
        "--scenarios",
        "idle",
        "--idle",
        "5000", // long enough that the interrupt lands while it runs
        "--no-pin",
        "--quiet",
      ],
      env: { TMPDIR: tmp },
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Wait for a server's data folder with the server up in it (its database exists). A folder
    // may come and go first (a server the bench started and stopped again).
    let up = false;
    for (let i = 0; i < 300 && !up; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const entry of Deno.readDirSync(tmp)) {
        if (!entry.name.startsWith("parley-bench-")) continue;
        try {
          up ||= [...Deno.readDirSync(`${tmp}/${entry.name}`)].length > 0;
        } catch {
          // removed meanwhile
        }
      }
    }
    assert(up, "the bench started a server in its own folder");
    child.kill("SIGINT");
    const status = await child.status;
    assert.equal(status.code, 130);
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bench idle on parley's IRC port: the guests are online, so the broadcast reaches every one", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "parley-bench-irc-idle-" });
  try {
    const json = `${tmp}/report.json`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../bench/main.ts", import.meta.url).pathname,
        "--servers",
        "parley-irc",
        "--scenarios",
        "idle",
        "--idle",
        "60",
        "--no-pin",
        "--quiet",
        "--json",
        json,
      ],
      env: { TMPDIR: tmp },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const report = JSON.parse(await Deno.readTextFile(json));
    assert.equal(report.idle["parley-irc"].connections, 60);
    assert.equal(report.idle["parley-irc"].broadcastDelivered, 60);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
