/**
 * Delivery accounting on the receiving side: latency into a histogram, and per (receiver,
 * sender) sequence tracking that tells fresh deliveries from duplicates and late (reordered)
 * ones. Loss is what the coordinator finds missing: messages sent times recipients, minus fresh
 * deliveries.
 *
 * @module
 */

import { Histogram } from "./histogram.ts";
import type { HistogramSnapshot } from "./histogram.ts";
import type { Stamp } from "./payload.ts";

/** Gaps a receiver remembers (to recognise late arrivals); beyond this, late ones count as dups. */
const MAX_MISSING = 100_000;

/** One worker's counts for the current step. */
export interface DeliveryStats {
  /** The step counted. */
  step: number;
  /** Fresh deliveries (each message once per receiver). */
  delivered: number;
  /** Messages received again by the same receiver. */
  duplicates: number;
  /** Fresh deliveries that arrived after a later message of the same sender. */
  reordered: number;
  /** Messages of another step (arriving after their step was counted). */
  stale: number;
  /** Latency of fresh deliveries, µs. */
  latency: HistogramSnapshot;
  /** When the last fresh delivery arrived, µs since the epoch (0: none). */
  lastAt: number;
}

/**
 * The counts of one worker for one step, shared by all its receivers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeliveryCounter, SequenceTracker } from "./deliveries.ts";
 * const counter = new DeliveryCounter();
 * const rx = new SequenceTracker();
 * for (const seq of [0, 2, 1, 1]) rx.receive({ t: 0, sender: 7, seq, step: 0 }, 10, counter);
 * const s = counter.stats();
 * assert.equal(s.delivered, 3);
 * assert.equal(s.reordered, 1);
 * assert.equal(s.duplicates, 1);
 * ```
 */
export class DeliveryCounter {
  /** The step being counted; messages of other steps are stale. */
  step = 0;
  /** Fresh deliveries. */
  delivered = 0;
  /** Duplicates. */
  duplicates = 0;
  /** Late arrivals. */
  reordered = 0;
  /** Messages of other steps. */
  stale = 0;
  /** Arrival time of the last fresh delivery, µs. */
  lastAt = 0;
  /** Latency of fresh deliveries, µs. */
  readonly latency: Histogram = new Histogram();

  /**
   * Starts counting `step` from zero.
   *
   * @param step the step the next messages belong to
   */
  reset(step: number): void {
    this.step = step;
    this.delivered = 0;
    this.duplicates = 0;
    this.reordered = 0;
    this.stale = 0;
    this.lastAt = 0;
    this.latency.reset();
  }

  /** The counts as plain data. */
  stats(): DeliveryStats {
    return {
      step: this.step,
      delivered: this.delivered,
      duplicates: this.duplicates,
      reordered: this.reordered,
      stale: this.stale,
      latency: this.latency.snapshot(),
      lastAt: this.lastAt,
    };
  }
}

/** One receiver's view of the senders it hears: the next sequence number expected from each. */
export class SequenceTracker {
  readonly #next = new Map<number, number>();
  #missing: Set<number> | undefined;
  /** Fresh deliveries to this receiver, all steps. */
  received = 0;

  /**
   * Accounts for one received message.
   *
   * @param stamp the message's parsed stamp
   * @param now arrival time, µs
   * @param counter where the worker counts
   */
  receive(stamp: Stamp, now: number, counter: DeliveryCounter): void {
    const { sender, seq } = stamp;
    const next = this.#next.get(sender) ?? 0;
    if (seq === next) {
      this.#next.set(sender, next + 1);
    } else if (seq > next) {
      const missing = this.#missing ??= new Set();
      for (let s = next; s < seq && missing.size < MAX_MISSING; s++) missing.add(key(sender, s));
      this.#next.set(sender, seq + 1);
    } else if (this.#missing?.delete(key(sender, seq))) {
      counter.reordered++;
    } else {
      counter.duplicates++;
      return;
    }
    this.received++;
    if (stamp.step !== counter.step) {
      counter.stale++;
      return;
    }
    counter.delivered++;
    counter.lastAt = now;
    counter.latency.record(now - stamp.t);
  }
}

function key(sender: number, seq: number): number {
  return sender * 4_294_967_296 + seq;
}
