// A handler that fails (not the client's doing) is logged with the command it was running.
import assert from "node:assert/strict";
import { configure, reset } from "@logtape/logtape";
import type { LogRecord } from "@logtape/logtape";
import { ReplyQueue } from "../src/session/replies.ts";

Deno.test("a failed handler's log line names its command and the peer", async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => void records.push(record) },
    loggers: [
      { category: ["parley"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    const answers: unknown[] = [];
    const queue = new ReplyQueue((_ref, answer) => (answers.push(answer), true), "10.0.0.1:4242");
    queue.respond("1", Promise.reject(new Error("disk on fire")), "join");
    await queue.idle();
    assert.equal(records.length, 1);
    const { properties, level } = records[0]!;
    assert.equal(level, "error");
    assert.equal(properties.command, "join");
    assert.equal(properties.remote, "10.0.0.1:4242");
    assert.match(String(records[0]!.message.join("")), /^The join command from 10\.0\.0\.1:4242/);
    assert.match(String(answers[0]), /Internal error/);
  } finally {
    await reset();
  }
});
