/**
 * Group commit: messages appended within one tick are written in one transaction, and each
 * append settles only after that transaction has committed.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { NewMessage, Store } from "./store.ts";

interface Waiting {
  message: NewMessage;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Batches appends. With `synchronous = FULL`, one commit costs an fsync; sharing it among every
 * message that arrived in the same tick keeps throughput up without acknowledging anything
 * before it is durable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CommitQueue } from "./commit_queue.ts";
 * import { SqliteStore } from "./sqlite_store.ts";
 * using store = SqliteStore.open(":memory:");
 * const queue = new CommitQueue(store);
 * await queue.append({ id: 1, room: "#general", from: "alice", text: "hi", ts: 0 });
 * assert.equal(store.lastMessageId(), 1);
 * ```
 */
export class CommitQueue {
  readonly #store: Store;
  readonly #maxBatch: number;
  #waiting: Waiting[] = [];
  #scheduled = false;

  /**
   * @param store where to write
   * @param maxBatch the most messages in one transaction
   */
  constructor(store: Store, maxBatch = 2000) {
    this.#store = store;
    this.#maxBatch = maxBatch;
  }

  /** Queues a message; resolves once it is committed, rejects if the commit failed. */
  append(message: NewMessage): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiting.push({ message, resolve, reject });
    if (this.#waiting.length >= this.#maxBatch) this.flush();
    else if (!this.#scheduled) {
      // setImmediate runs after this turn's I/O callbacks (so everything that arrived together
      // shares the commit) without setTimeout's millisecond-scale floor.
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
    return promise;
  }

  /** Commits everything queued now. */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#waiting;
    if (batch.length === 0) return;
    this.#waiting = [];
    try {
      this.#store.appendMessages(batch.map((w) => w.message));
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    for (const w of batch) w.resolve();
  }
}
