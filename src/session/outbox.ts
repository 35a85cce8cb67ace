/**
 * The per-connection send queue: bounded in bytes, never blocking whoever enqueues, written by
 * one writer that coalesces everything queued into one write; and the {@linkcode FlushScheduler}
 * that lets a server's outboxes write in shared passes, so that a connection receives one write
 * per pass instead of one per message when the server is busy.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { concatBytes } from "../bytes.ts";

/** Options for {@linkcode Outbox}. */
export interface OutboxOptions {
  /** The most bytes that may wait; one more and the outbox overflows. */
  maxBytes: number;
  /** Writes all of `data`; rejects when the connection is gone. */
  write(data: Uint8Array): Promise<void>;
  /** Called once when a push would exceed `maxBytes` (the push is refused). */
  onOverflow(): void;
  /** Called once when a write fails. */
  onError(error: unknown): void;
  /**
   * The server's pass scheduler. Without one, the outbox writes as soon as the microtask queue
   * has run (and, while a write is in flight, gathers pushes for the next one).
   */
  scheduler?: FlushScheduler | undefined;
}

/** When the outbox writes next: not due, at the end of the microtask queue, or in a pass. */
const IDLE = 0;
const SOON = 1;
const PASS = 2;

/**
 * A byte-bounded queue with a single writer. {@linkcode Outbox.push} only appends and
 * schedules a flush, so a broadcast loop never waits for a socket; the writer concatenates
 * whatever has queued (one event or a thousand) into one write, keeps order, and while that
 * write is in flight, new pushes gather for the next one.
 *
 * With a {@linkcode FlushScheduler}, a flush waits for the scheduler's next pass, unless the
 * queue holds `flushBytes` or more, or the outbox's last write outlived its pass (a connection
 * that reads slowly then flushes on its own until it has caught up, so it never holds the others).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Outbox } from "./outbox.ts";
 * const writes: number[] = [];
 * const box = new Outbox({
 *   maxBytes: 1024,
 *   write: (data) => { writes.push(data.length); return Promise.resolve(); },
 *   onOverflow() {},
 *   onError() {},
 * });
 * box.push(new Uint8Array(3));
 * box.push(new Uint8Array(4));
 * await box.drained();
 * assert.deepEqual(writes, [7]); // one write for both pushes
 * ```
 */
export class Outbox {
  readonly #options: OutboxOptions;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #inFlight = 0;
  #writing = false;
  #due = IDLE;
  /** The pass the write in flight belongs to, until it completes or the pass gives up on it. */
  #pass: FlushPass | undefined;
  /** Set when a write outlived its pass; cleared once everything queued is written. */
  #straggling = false;
  #failed = false;
  #waiters: (() => void)[] | undefined;

  /** @param options limits, the write function and the scheduler */
  constructor(options: OutboxOptions) {
    this.#options = options;
  }

  /** Bytes queued or being written. */
  get size(): number {
    return this.#queued + this.#inFlight;
  }

  /** Whether the outbox has failed or overflowed and accepts nothing more. */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * Queues `data`. Returns `false` (and reports overflow once) if it does not fit, or if the
   * outbox has already failed.
   */
  push(data: Uint8Array): boolean {
    if (this.#failed) return false;
    if (this.size + data.length > this.#options.maxBytes) {
      this.#fail();
      this.#options.onOverflow();
      this.#wake();
      return false;
    }
    this.#queue.push(data);
    this.#queued += data.length;
    this.#schedule();
    return true;
  }

  /** Resolves once everything queued so far is written (or the outbox failed). */
  drained(): Promise<void> {
    if (this.#failed || (!this.#writing && this.#queued === 0)) return Promise.resolve();
    return new Promise((resolve) => (this.#waiters ??= []).push(resolve));
  }

  /**
   * Called by the scheduler's pass: writes what is queued, if this outbox is waiting for a pass.
   * Returns whether a write started (the pass then waits for it).
   */
  joinPass(pass: FlushPass): boolean {
    if (this.#due !== PASS) return false;
    this.#due = IDLE;
    return this.#write(pass);
  }

  /** Called by the scheduler when `pass` stops waiting for this outbox's write. */
  leavePass(pass: FlushPass): void {
    if (this.#pass !== pass) return;
    this.#pass = undefined;
    this.#straggling = true;
  }

  #schedule(): void {
    if (this.#writing || this.#due === SOON || this.#queued === 0) return;
    const scheduler = this.#options.scheduler;
    if (scheduler === undefined || this.#straggling || this.#queued >= scheduler.flushBytes) {
      this.#due = SOON;
      queueMicrotask(() => this.#flushSoon());
    } else if (this.#due === IDLE) {
      this.#due = PASS;
      scheduler.add(this);
    }
  }

  #flushSoon(): void {
    if (this.#due !== SOON) return;
    this.#due = IDLE;
    this.#write(undefined);
  }

  #write(pass: FlushPass | undefined): boolean {
    if (this.#failed || this.#writing || this.#queued === 0) return false;
    const parts = this.#queue;
    this.#queue = [];
    this.#inFlight = this.#queued;
    this.#queued = 0;
    this.#writing = true;
    this.#pass = pass;
    const data = parts.length === 1 ? parts[0]! : joined(parts, this.#inFlight, pass);
    let written: Promise<void>;
    try {
      written = this.#options.write(data);
    } catch (error) {
      written = Promise.reject(error);
    }
    written.then(() => this.#written(), (error) => this.#broken(error));
    return true;
  }

  #written(): void {
    this.#writeEnded();
    if (this.#queued > 0 && !this.#failed) {
      this.#schedule();
      return;
    }
    this.#straggling = false;
    this.#wake();
  }

  #broken(error: unknown): void {
    this.#writeEnded();
    if (!this.#failed) {
      this.#fail();
      this.#options.onError(error);
    }
    this.#wake();
  }

  /** Marks the write in flight as ended and tells its pass, if it still belongs to one. */
  #writeEnded(): void {
    this.#writing = false;
    this.#inFlight = 0;
    const pass = this.#pass;
    if (pass === undefined) return;
    this.#pass = undefined;
    pass.scheduler.done(pass);
  }

  /** Accepts nothing more and drops what is queued. */
  #fail(): void {
    this.#failed = true;
    this.#queue = [];
    this.#queued = 0;
  }

  #wake(): void {
    const waiters = this.#waiters;
    if (waiters === undefined) return;
    this.#waiters = undefined;
    for (const resolve of waiters) resolve();
  }
}

/** One pass of a {@linkcode FlushScheduler}: the writes it started and waits for. */
export interface FlushPass {
  readonly scheduler: FlushScheduler;
  /** The outboxes whose writes it started. */
  readonly boxes: Outbox[];
  /** Writes not yet completed. */
  outstanding: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The last queue an outbox of this pass concatenated, and the result, for the next to share. */
  lastParts: Uint8Array[] | undefined;
  lastJoined: Uint8Array | undefined;
}

/** Options for {@linkcode FlushScheduler}. */
export interface FlushSchedulerOptions {
  /** An outbox holding this many bytes writes at once instead of waiting for a pass. */
  flushBytes?: number;
  /** How long a pass waits for its slowest write before going on without it: this base... */
  minStallMs?: number;
  /** ...plus this much per write the pass started... */
  stallPerWriteMs?: number;
  /** ...but never longer than this. */
  maxStallMs?: number;
}

/**
 * Writes a server's outboxes in passes. A pass writes every outbox that has something queued
 * (one write each, whatever queued since its last write); the next pass starts once all of the
 * last pass's writes have completed, so when the server is busy, what arrives during a pass is
 * coalesced into the next one and each connection costs one system call per pass, not one per
 * message. When no pass is running, one starts as soon as the current task's microtasks have run.
 *
 * A write that waits on a full socket (a peer that stopped reading) would hold every pass, so a
 * pass waits at most `minStallMs` plus `stallPerWriteMs` for each of its writes (a pass of a
 * thousand writes takes a thousand system calls), never more than `maxStallMs`, and then goes
 * on; the outboxes it left behind flush on their own until they have written everything queued.
 * (A limit from how long passes usually take would cut big passes short while small ones are
 * frequent: in a room of 1000, four in ten passes gave up on hundreds of healthy writes.)
 */
export class FlushScheduler {
  /** An outbox holding this many bytes writes at once instead of waiting for a pass. */
  readonly flushBytes: number;
  readonly #minStallMs: number;
  readonly #stallPerWriteMs: number;
  readonly #maxStallMs: number;
  #pending: Outbox[] = [];
  #pass: FlushPass | undefined;
  #armed = false;
  readonly #run = () => this.#startPass();

  /** @param options thresholds (defaults: 16 KiB; 5 ms + 0.05 ms per write, at most 50 ms) */
  constructor(options: FlushSchedulerOptions = {}) {
    this.flushBytes = options.flushBytes ?? 16 * 1024;
    this.#minStallMs = options.minStallMs ?? 5;
    this.#stallPerWriteMs = options.stallPerWriteMs ?? 0.05;
    this.#maxStallMs = options.maxStallMs ?? 50;
  }

  /** Puts `box` in the next pass (the outbox calls this once per flush it needs). */
  add(box: Outbox): void {
    this.#pending.push(box);
    this.#arm();
  }

  /** Called by an outbox when a write of `pass` completes (or fails). */
  done(pass: FlushPass): void {
    if (--pass.outstanding > 0 || this.#pass !== pass) return;
    clearTimeout(pass.timer);
    this.#pass = undefined;
    this.#arm(true);
  }

  #arm(afterPass = false): void {
    if (this.#armed || this.#pass !== undefined || this.#pending.length === 0) return;
    this.#armed = true;
    // Idle, a pass starts once the current task's microtasks have run, as soon as a lone
    // outbox would write. After a pass, the next one waits for the rest of this turn's I/O
    // callbacks, so that everything that arrived during the pass goes out together.
    if (afterPass) setImmediate(this.#run);
    else queueMicrotask(this.#run);
  }

  #startPass(): void {
    this.#armed = false;
    const waiting = this.#pending;
    this.#pending = [];
    const pass: FlushPass = {
      scheduler: this,
      boxes: [],
      outstanding: 0,
      timer: undefined,
      lastParts: undefined,
      lastJoined: undefined,
    };
    for (const box of waiting) {
      if (box.joinPass(pass)) pass.boxes.push(box);
    }
    pass.outstanding = pass.boxes.length;
    if (pass.outstanding === 0) return;
    this.#pass = pass;
    const stallMs = Math.min(
      this.#maxStallMs,
      this.#minStallMs + pass.outstanding * this.#stallPerWriteMs,
    );
    pass.timer = setTimeout(() => this.#stalled(pass), stallMs);
  }

  #stalled(pass: FlushPass): void {
    if (this.#pass !== pass) return;
    for (const box of pass.boxes) box.leavePass(pass);
    this.#pass = undefined;
    this.#arm(true);
  }
}

/**
 * `parts` as one buffer. Within a pass, an outbox whose queue holds the same buffers as the
 * last one concatenated (every member of a room receives the same encoded events) shares its
 * result instead of copying again.
 */
function joined(parts: Uint8Array[], total: number, pass: FlushPass | undefined): Uint8Array {
  if (pass === undefined) return concatBytes(parts, total);
  const last = pass.lastParts;
  if (last !== undefined && pass.lastJoined !== undefined && last.length === parts.length) {
    let same = true;
    for (let i = 0; i < parts.length && same; i++) same = last[i] === parts[i];
    if (same) return pass.lastJoined;
  }
  const data = concatBytes(parts, total);
  pass.lastParts = parts;
  pass.lastJoined = data;
  return data;
}
