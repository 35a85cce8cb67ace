// A store whose message commits can be held, to force the orders the exactly-once rules for
// direct messages must survive: any backend can be wrapped.
import type { MessageStore, NewMessage, Placed, Store } from "../src/store/store.ts";

/** How appends are held: not committed at all, or committed with the sender not told yet. */
export type Hold = "commit" | "answer" | undefined;

/** A wrapper around `store` whose `messages.append` can be held. */
export class HeldStore implements Store {
  readonly accounts: Store["accounts"];
  readonly memberships: Store["memberships"];
  readonly files: Store["files"];
  readonly moderation: Store["moderation"];
  readonly messages: MessageStore;
  readonly #inner: Store;
  #hold: Hold;
  #waiting: (() => void)[] = [];

  constructor(inner: Store) {
    this.#inner = inner;
    this.accounts = inner.accounts;
    this.memberships = inner.memberships;
    this.files = inner.files;
    this.moderation = inner.moderation;
    const m = inner.messages;
    this.messages = {
      append: (message) => this.#append(message),
      history: (...args) => m.history(...args),
      historyAfter: (...args) => m.historyAfter(...args),
      pendingFor: (...args) => m.pendingFor(...args),
      removePending: (...args) => m.removePending(...args),
      takePending: (...args) => m.takePending(...args),
      addPending: (...args) => m.addPending(...args),
      get: (...args) => m.get(...args),
      edit: (...args) => m.edit(...args),
      remove: (...args) => m.remove(...args),
      react: (...args) => m.react(...args),
      search: (...args) => m.search(...args),
      index: (...args) => m.index(...args),
      markRead: (...args) => m.markRead(...args),
      unread: (...args) => m.unread(...args),
    };
  }

  /** Holds the appends from now on: `commit` delays the write, `answer` its result. */
  hold(how: Exclude<Hold, undefined>): void {
    this.#hold = how;
  }

  /** Lets everything held go, in order. */
  release(): void {
    this.#hold = undefined;
    for (const go of this.#waiting.splice(0)) go();
  }

  async #append(message: NewMessage): Promise<Placed> {
    const hold = this.#hold;
    const wait = () => new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (hold === "commit") await wait();
    const placed = await this.#inner.messages.append(message);
    if (hold === "answer") await wait();
    return placed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#inner[Symbol.asyncDispose]();
  }
}
