/**
 * The per-connection send queue: bounded in bytes, never blocking whoever enqueues, written by
 * one writer that coalesces everything queued into one write.
 *
 * @module
 */

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
}

/**
 * A byte-bounded queue with a single writer. {@linkcode Outbox.push} only appends and
 * schedules a flush on the microtask queue, so a broadcast loop never waits for a socket; the
 * writer concatenates whatever has queued (one event or a thousand) into one write, keeps order,
 * and while that write is in flight, new pushes gather for the next one.
 *
 * @example
 * ```ts
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
 * console.assert(writes.length === 1 && writes[0] === 7);
 * ```
 */
export class Outbox {
  readonly #options: OutboxOptions;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #inFlight = 0;
  #writing = false;
  #failed = false;
  #waiters: (() => void)[] = [];

  /** @param options limits and the write function */
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
      this.#failed = true;
      this.#queue = [];
      this.#queued = 0;
      this.#options.onOverflow();
      this.#wake();
      return false;
    }
    this.#queue.push(data);
    this.#queued += data.length;
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => void this.#drain());
    }
    return true;
  }

  /** Resolves once everything queued so far is written (or the outbox failed). */
  drained(): Promise<void> {
    if (!this.#writing || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#failed) {
        const parts = this.#queue;
        this.#queue = [];
        this.#inFlight = this.#queued;
        this.#queued = 0;
        await this.#options.write(parts.length === 1 ? parts[0]! : concat(parts, this.#inFlight));
        this.#inFlight = 0;
      }
    } catch (error) {
      this.#inFlight = 0;
      if (!this.#failed) {
        this.#failed = true;
        this.#queue = [];
        this.#queued = 0;
        this.#options.onError(error);
      }
    } finally {
      this.#writing = false;
      this.#wake();
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
