/**
 * A latency histogram in the HDR layout: exact below 2048 µs, then 1024 linear sub-buckets per
 * power of two, so every recorded value is kept to three significant digits (relative error
 * under 0.1 %) from 1 µs to over an hour, in a fixed 29 K-slot array that merges by addition.
 *
 * @module
 */

/** Values below this are counted exactly. */
const LINEAR = 2048;
const HALF = 1024;
/** Powers of two above LINEAR that have slots (up to 2^32 µs, about 71 minutes). */
const MAGNITUDES = 22;
const SLOTS = LINEAR + MAGNITUDES * HALF;
/** The largest value recorded as itself; larger ones are clamped to it. */
const MAX_VALUE = 2 ** 32 - 1;

/** The slot a value (a non-negative integer) falls in. */
function slotOf(value: number): number {
  if (value < LINEAR) return value;
  const shift = 21 - Math.clz32(value); // value >> shift is in [1024, 2048)
  return LINEAR + (shift - 1) * HALF + ((value >>> shift) - HALF);
}

/** The highest value that falls in `slot`. */
function highestIn(slot: number): number {
  if (slot < LINEAR) return slot;
  const rel = slot - LINEAR;
  const shift = Math.floor(rel / HALF) + 1;
  const sub = (rel % HALF) + HALF;
  return (sub + 1) * 2 ** shift - 1;
}

/** A histogram in a form that travels as JSON: its non-zero slots and its exact extremes. */
export interface HistogramSnapshot {
  /** `[slot, count]` for every non-empty slot. */
  slots: [number, number][];
  /** The smallest value recorded. */
  min: number;
  /** The largest value recorded. */
  max: number;
  /** The sum of the values recorded. */
  sum: number;
}

/**
 * Counts values (microseconds) and answers percentiles.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Histogram } from "./histogram.ts";
 * const h = new Histogram();
 * for (let i = 1; i <= 100; i++) h.record(i * 100);
 * assert.equal(h.count, 100);
 * assert.equal(h.max, 10000); // exact
 * assert.equal(h.percentile(50), 5003); // the top of the slot 5000 falls in: within 0.1 %
 * ```
 */
export class Histogram {
  #counts = new Float64Array(SLOTS);
  #count = 0;
  #min = Infinity;
  #max = 0;
  #sum = 0;

  /** How many values were recorded. */
  get count(): number {
    return this.#count;
  }

  /** The largest value recorded (exact), or 0. */
  get max(): number {
    return this.#max;
  }

  /** The smallest value recorded (exact), or 0. */
  get min(): number {
    return this.#count === 0 ? 0 : this.#min;
  }

  /** The mean of the values recorded, or 0. */
  get mean(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count;
  }

  /**
   * Records one value; negatives count as 0, fractions are truncated, values above about 71
   * minutes are clamped.
   *
   * @param value a latency in microseconds
   */
  record(value: number): void {
    const v = value <= 0 ? 0 : value >= MAX_VALUE ? MAX_VALUE : Math.floor(value);
    this.#counts[slotOf(v)]!++;
    this.#count++;
    this.#sum += v;
    if (v > this.#max) this.#max = v;
    if (v < this.#min) this.#min = v;
  }

  /**
   * The value at or below which `p` percent of the recorded values fall (the highest value of
   * the slot reaching that rank, never above the exact maximum), or 0 when empty.
   *
   * @param p a percentile from 0 to 100
   */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.#count));
    let seen = 0;
    for (let slot = 0; slot < SLOTS; slot++) {
      seen += this.#counts[slot]!;
      if (seen >= rank) return Math.min(highestIn(slot), this.#max);
    }
    return this.#max;
  }

  /**
   * Adds another histogram's values to this one.
   *
   * @param other a histogram, or its {@linkcode Histogram.snapshot}
   */
  add(other: Histogram | HistogramSnapshot): void {
    const snap = other instanceof Histogram ? other.snapshot() : other;
    let n = 0;
    for (const [slot, count] of snap.slots) {
      if (slot < 0 || slot >= SLOTS || count <= 0) {
        throw new RangeError(`Cannot add histogram: slot ${slot} count ${count} is out of range`);
      }
      this.#counts[slot]! += count;
      n += count;
    }
    if (n === 0) return;
    this.#count += n;
    this.#sum += snap.sum;
    if (snap.max > this.#max) this.#max = snap.max;
    if (snap.min < this.#min) this.#min = snap.min;
  }

  /** The histogram as plain data, for {@linkcode Histogram.add} in another process. */
  snapshot(): HistogramSnapshot {
    const slots: [number, number][] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      const n = this.#counts[slot]!;
      if (n > 0) slots.push([slot, n]);
    }
    return { slots, min: this.min, max: this.#max, sum: this.#sum };
  }

  /**
   * Builds a histogram from a snapshot.
   *
   * @param snap from {@linkcode Histogram.snapshot}
   */
  static from(snap: HistogramSnapshot): Histogram {
    const h = new Histogram();
    h.add(snap);
    return h;
  }

  /** Forgets every value. */
  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#min = Infinity;
    this.#max = 0;
    this.#sum = 0;
  }
}
