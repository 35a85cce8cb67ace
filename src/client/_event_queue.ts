/**
 * A bounded queue of events with one consumer: when it is full, the oldest event is dropped and
 * the consumer is told how many it missed, so a caller that never iterates cannot grow memory.
 *
 * @module
 */

import type { ChatEvent } from "./events.ts";

/** The queue behind `for await (const event of client)`. */
export class EventQueue implements AsyncIterator<ChatEvent> {
  readonly #limit: number;
  #items: ChatEvent[] = [];
  #head = 0;
  #dropped = 0;
  #ended = false;
  #waiter: ((result: IteratorResult<ChatEvent>) => void) | undefined;

  /** @param limit the most events held; older ones are dropped beyond it */
  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError("Cannot create an event queue: limit must be >= 1");
    this.#limit = limit;
  }

  /** How many events wait to be read. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Adds an event, dropping the oldest when full; ignored once ended. */
  push(event: ChatEvent): void {
    if (this.#ended) return;
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter({ value: event, done: false });
      return;
    }
    if (this.size >= this.#limit) {
      this.#head++;
      this.#dropped++;
    }
    this.#items.push(event);
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Ends the queue: what is buffered can still be read, then iteration finishes. */
  end(): void {
    this.#ended = true;
    if (this.#waiter !== undefined && this.size === 0) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter({ value: undefined, done: true });
    }
  }

  /** The next event, waiting for one when none is buffered. */
  next(): Promise<IteratorResult<ChatEvent>> {
    if (this.#dropped > 0) {
      const dropped = this.#dropped;
      this.#dropped = 0;
      return Promise.resolve({ value: { type: "lagged", dropped }, done: false });
    }
    if (this.size > 0) {
      const value = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined as unknown as ChatEvent;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) {
      return Promise.reject(new TypeError("Cannot iterate events twice at the same time"));
    }
    return new Promise((resolve) => this.#waiter = resolve);
  }

  /** Stops iterating (a `break` out of `for await`); the queue keeps collecting events. */
  return(): Promise<IteratorResult<ChatEvent>> {
    return Promise.resolve({ value: undefined, done: true });
  }
}
