import assert from "node:assert/strict";
import { FlushScheduler, type FlushSchedulerOptions, Outbox } from "../src/session/outbox.ts";

/** Lets every queued microtask (and the outbox's flush) run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** An outbox whose writes stay in flight until the test resolves or rejects them. */
function manualOutbox(maxBytes = 1024, scheduler?: FlushScheduler) {
  const writes: number[][] = [];
  const buffers: Uint8Array[] = [];
  const pending: PromiseWithResolvers<void>[] = [];
  const overflows: number[] = [];
  const errors: unknown[] = [];
  const box = new Outbox({
    maxBytes,
    write(data) {
      writes.push(Array.from(data));
      buffers.push(data);
      const deferred = Promise.withResolvers<void>();
      pending.push(deferred);
      return deferred.promise;
    },
    onOverflow: () => overflows.push(1),
    onError: (error) => errors.push(error),
    scheduler,
  });
  return { box, writes, buffers, pending, overflows, errors };
}

/** An outbox whose writes complete at once. */
function instantOutbox(maxBytes = 1024) {
  const writes: number[][] = [];
  const overflows: number[] = [];
  const errors: unknown[] = [];
  const box = new Outbox({
    maxBytes,
    write(data) {
      writes.push(Array.from(data));
      return Promise.resolve();
    },
    onOverflow: () => overflows.push(1),
    onError: (error) => errors.push(error),
  });
  return { box, writes, overflows, errors };
}

Deno.test("Outbox.push() coalesces pushes from one synchronous run into one ordered write", async () => {
  const { box, writes, overflows, errors } = instantOutbox();
  assert.equal(box.push(Uint8Array.of(1, 2)), true);
  assert.equal(box.push(Uint8Array.of(3)), true);
  assert.equal(box.push(Uint8Array.of(4, 5, 6)), true);
  assert.deepEqual(writes, [], "push must not write synchronously");
  assert.equal(box.size, 6);
  await box.drained();
  assert.deepEqual(writes, [[1, 2, 3, 4, 5, 6]]);
  assert.equal(box.size, 0);
  assert.deepEqual(overflows, []);
  assert.deepEqual(errors, []);
});

Deno.test("Outbox.push() gathers pushes made during a write into the next write", async () => {
  const { box, writes, pending } = manualOutbox();
  box.push(Uint8Array.of(1));
  await settle();
  assert.deepEqual(writes, [[1]]);

  box.push(Uint8Array.of(2));
  box.push(Uint8Array.of(3, 4));
  await settle();
  assert.deepEqual(writes, [[1]], "no second write while the first is in flight");
  assert.equal(box.size, 4, "size counts in-flight and queued bytes");

  pending[0]!.resolve();
  await settle();
  assert.deepEqual(writes, [[1], [2, 3, 4]]);

  box.push(Uint8Array.of(5));
  pending[1]!.resolve();
  await settle();
  assert.deepEqual(writes, [[1], [2, 3, 4], [5]]);
  pending[2]!.resolve();
  await box.drained();
  assert.equal(box.size, 0);
});

Deno.test("Outbox.push() accepts exactly maxBytes and overflows once beyond it", async () => {
  const { box, overflows, errors } = instantOutbox(10);
  assert.equal(box.push(new Uint8Array(4)), true);
  assert.equal(box.push(new Uint8Array(6)), true);
  assert.equal(box.failed, false);
  assert.equal(box.push(new Uint8Array(1)), false);
  assert.equal(box.failed, true);
  assert.equal(overflows.length, 1);
  assert.equal(box.push(new Uint8Array(1)), false);
  assert.equal(box.push(new Uint8Array(0)), false);
  assert.equal(overflows.length, 1, "onOverflow is called exactly once");
  await box.drained();
  assert.deepEqual(errors, []);
});

Deno.test("Outbox.push() counts bytes in flight towards maxBytes", async () => {
  const { box, writes, pending, overflows } = manualOutbox(10);
  box.push(new Uint8Array(8));
  await settle();
  assert.equal(writes.length, 1);
  assert.equal(box.push(new Uint8Array(2)), true);
  assert.equal(box.push(new Uint8Array(1)), false);
  assert.equal(overflows.length, 1);
  pending[0]!.resolve();
  await box.drained();
  assert.equal(box.push(new Uint8Array(1)), false);
  assert.equal(overflows.length, 1);
});

Deno.test("Outbox.push() refuses a single chunk larger than maxBytes", () => {
  const { box, overflows } = instantOutbox(10);
  assert.equal(box.push(new Uint8Array(11)), false);
  assert.equal(overflows.length, 1);
  assert.equal(box.failed, true);
});

Deno.test("Outbox calls onError once when a write rejects and refuses later pushes", async () => {
  const failure = new Error("connection reset");
  const errors: unknown[] = [];
  let writeCalls = 0;
  const box = new Outbox({
    maxBytes: 1024,
    write() {
      writeCalls++;
      return Promise.reject(failure);
    },
    onOverflow: () => assert.fail("no overflow expected"),
    onError: (error) => errors.push(error),
  });
  assert.equal(box.push(Uint8Array.of(1)), true);
  await box.drained();
  assert.deepEqual(errors, [failure]);
  assert.equal(box.failed, true);
  assert.equal(box.push(Uint8Array.of(2)), false);
  assert.equal(box.push(Uint8Array.of(3)), false);
  await box.drained();
  await settle();
  assert.equal(errors.length, 1, "onError is called exactly once");
  assert.equal(writeCalls, 1);
});

Deno.test("Outbox drops what queued behind a write that rejects", async () => {
  const { box, writes, pending, errors, overflows } = manualOutbox();
  box.push(Uint8Array.of(1));
  await settle();
  box.push(Uint8Array.of(2));
  const failure = new Error("broken pipe");
  pending[0]!.reject(failure);
  await box.drained();
  await settle();
  assert.deepEqual(writes, [[1]]);
  assert.deepEqual(errors, [failure]);
  assert.deepEqual(overflows, []);
  assert.equal(box.push(Uint8Array.of(3)), false);
});

Deno.test("Outbox.drained() resolves only after everything queued is written", async () => {
  const { box, writes, pending } = manualOutbox();
  box.push(Uint8Array.of(1));
  await settle();
  box.push(Uint8Array.of(2));
  let done = false;
  const drained = box.drained().then(() => {
    done = true;
  });

  await settle();
  assert.equal(done, false, "first write still in flight");
  pending[0]!.resolve();
  await settle();
  assert.deepEqual(writes, [[1], [2]]);
  assert.equal(done, false, "second write still in flight");
  pending[1]!.resolve();
  await drained;
  assert.equal(done, true);
  assert.equal(box.size, 0);
});

Deno.test("Outbox.drained() resolves at once when nothing is pending", async () => {
  const { box } = instantOutbox();
  let done = false;
  await box.drained().then(() => {
    done = true;
  });
  assert.equal(done, true);
});

Deno.test("Outbox.drained() resolves when the outbox overflows during a write", async () => {
  const { box, pending, overflows } = manualOutbox(4);
  box.push(new Uint8Array(4));
  await settle();
  let done = false;
  const drained = box.drained().then(() => {
    done = true;
  });
  await settle();
  assert.equal(done, false);
  box.push(new Uint8Array(1));
  assert.equal(overflows.length, 1);
  await drained;
  assert.equal(done, true);
  pending[0]!.resolve();
});

Deno.test("FlushScheduler writes outboxes in passes; what queues during a pass goes in the next", async () => {
  const scheduler = new FlushScheduler({ minStallMs: 5000, maxStallMs: 5000 });
  const a = manualOutbox(1024, scheduler);
  const b = manualOutbox(1024, scheduler);
  a.box.push(Uint8Array.of(1));
  b.box.push(Uint8Array.of(2));
  a.box.push(Uint8Array.of(3));
  assert.deepEqual([a.writes, b.writes], [[], []], "push must not write synchronously");
  await settle();
  assert.deepEqual([a.writes, b.writes], [[[1, 3]], [[2]]]);

  // a's write completes, b's does not: the pass is still running, so a's next bytes wait.
  a.pending[0]!.resolve();
  a.box.push(Uint8Array.of(4));
  b.box.push(Uint8Array.of(5));
  a.box.push(Uint8Array.of(6));
  await settle();
  assert.deepEqual(a.writes, [[1, 3]], "a waits for the pass that b's write holds");

  b.pending[0]!.resolve();
  await settle();
  assert.deepEqual([a.writes, b.writes], [[[1, 3], [4, 6]], [[2], [5]]]);
  a.pending[1]!.resolve();
  b.pending[1]!.resolve();
  await Promise.all([a.box.drained(), b.box.drained()]);
  assert.equal(a.box.size + b.box.size, 0);
});

/** Two outboxes of one scheduler after a first pass in which only `free`'s write completed. */
async function heldPass(options: FlushSchedulerOptions) {
  const scheduler = new FlushScheduler(options);
  const free = manualOutbox(1024, scheduler);
  const held = manualOutbox(1024, scheduler);
  free.box.push(Uint8Array.of(1));
  held.box.push(Uint8Array.of(9));
  await settle();
  free.pending[0]!.resolve();
  return { free, held };
}

Deno.test("FlushScheduler goes on without a stuck write, which then flushes on its own", async () => {
  const { free: healthy, held: stuck } = await heldPass({ minStallMs: 30, maxStallMs: 30 });
  healthy.box.push(Uint8Array.of(2));
  await settle();
  assert.deepEqual(healthy.writes, [[1]], "the pass still waits for the stuck write");
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(healthy.writes, [[1], [2]], "the next pass started after the stall time");

  // The stuck outbox now writes as soon as its write completes, although a pass is running.
  stuck.box.push(Uint8Array.of(8));
  stuck.pending[0]!.resolve();
  await settle();
  assert.deepEqual(stuck.writes, [[9], [8]]);
  assert.equal(healthy.pending.length, 2, "the healthy outbox's pass is still in flight");
  stuck.pending[1]!.resolve();
  healthy.pending[1]!.resolve();
  await Promise.all([stuck.box.drained(), healthy.box.drained()]);
});

Deno.test("FlushScheduler: an outbox holding flushBytes writes without waiting for a pass", async () => {
  const { free: big, held: holder } = await heldPass({
    flushBytes: 4,
    minStallMs: 5000,
    maxStallMs: 5000,
  });
  big.box.push(Uint8Array.of(3));
  await settle();
  assert.deepEqual(big.writes, [[1]], "a small queue waits for the pass");
  big.box.push(Uint8Array.of(4, 5, 6));
  await settle();
  assert.deepEqual(big.writes, [[1], [3, 4, 5, 6]], "four bytes go at once");
  big.pending[1]!.resolve();
  holder.pending[0]!.resolve();
  await Promise.all([big.box.drained(), holder.box.drained()]);
});

/**
 * A pass of 40 writes of which only the first completed; that outbox then queued more, which
 * waits for the pass.
 */
async function passOf40(options: FlushSchedulerOptions) {
  const scheduler = new FlushScheduler(options);
  const boxes = Array.from({ length: 40 }, () => manualOutbox(1024, scheduler));
  for (const { box } of boxes) box.push(Uint8Array.of(1));
  await settle();
  const free = boxes[0]!;
  free.pending[0]!.resolve();
  free.box.push(Uint8Array.of(2));
  const release = () => {
    for (const { pending } of boxes) for (const write of pending) write.resolve();
  };
  return { free, release };
}

Deno.test("FlushScheduler: a pass of many writes waits longer for its slowest before going on", async () => {
  // 10 ms plus 4 ms per write: a pass of 40 writes waits up to 170 ms, one of a single write 14.
  const { free, release } = await passOf40({
    minStallMs: 10,
    stallPerWriteMs: 4,
    maxStallMs: 10_000,
  });
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(free.writes, [[1]], "39 writes in flight still hold the pass after 60 ms");
  await new Promise((resolve) => setTimeout(resolve, 250));
  assert.deepEqual(free.writes, [[1], [2]], "the pass gave up on them after 170 ms");
  release();
});

Deno.test("FlushScheduler: a pass waits no longer than maxStallMs", async () => {
  const { free, release } = await passOf40({ minStallMs: 10, stallPerWriteMs: 4, maxStallMs: 20 });
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.deepEqual(free.writes, [[1], [2]]);
  release();
});

Deno.test("FlushScheduler: outboxes of one pass that queued the same buffers share one write buffer", async () => {
  const scheduler = new FlushScheduler();
  const [a, b, c] = [1, 2, 3].map(() => manualOutbox(1024, scheduler));
  const first = Uint8Array.of(1, 2);
  const second = Uint8Array.of(3);
  for (const { box } of [a!, b!]) {
    box.push(first);
    box.push(second);
  }
  c!.box.push(first);
  c!.box.push(Uint8Array.of(3));
  await settle();
  assert.deepEqual([a!.writes, b!.writes, c!.writes], [[[1, 2, 3]], [[1, 2, 3]], [[1, 2, 3]]]);
  assert.equal(a!.buffers[0], b!.buffers[0], "the same parts are concatenated once");
  assert.notEqual(c!.buffers[0], a!.buffers[0], "other parts (equal bytes) are not shared");
  for (const { pending } of [a!, b!, c!]) pending[0]!.resolve();
});
