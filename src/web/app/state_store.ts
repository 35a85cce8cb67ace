/**
 * A tiny observable holder for {@linkcode ChatState}: `update` replaces the state with a new
 * object and tells every subscriber; components read it through `useChatState` (app/hooks.ts).
 *
 * @module
 */

import type { ChatState, Conversation } from "./model.ts";

/** Holds the state and notifies subscribers of each change. */
export class StateStore {
  #state: ChatState;
  readonly #listeners = new Set<() => void>();

  constructor(state: ChatState) {
    this.#state = state;
  }

  /** The current state (never mutate it: {@linkcode update} instead). */
  get state(): ChatState {
    return this.#state;
  }

  /** Replaces the state with `change(state)`'s result merged over it. */
  update(change: (state: ChatState) => Partial<ChatState>): void {
    this.#state = { ...this.#state, ...change(this.#state) };
    for (const listener of this.#listeners) listener();
  }

  /** Replaces one conversation (creating it with `create` when missing). */
  conversation(
    key: string,
    change: (conv: Conversation) => Partial<Conversation>,
    create?: () => Conversation,
  ): void {
    const current = this.#state.conversations[key] ?? create?.();
    if (current === undefined) return;
    this.update((s) => ({
      conversations: {
        ...s.conversations,
        [key]: { ...current, ...change(current) },
      },
    }));
  }

  /** Calls `listener` after each change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
