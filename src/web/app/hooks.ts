/// <reference lib="dom" />
/**
 * Preact glue: the controller in a context, and a hook that re-renders on state changes.
 *
 * @module
 */

import { createContext } from "preact";
import { useContext, useEffect, useReducer } from "preact/hooks";
import type { Chat } from "./chat.ts";
import type { ChatState } from "./model.ts";

/** The controller, for every component. */
export const ChatContext = createContext<Chat | undefined>(undefined);

/** The controller from the context. */
export function useChat(): Chat {
  const chat = useContext(ChatContext);
  if (chat === undefined) {
    throw new Error("Cannot use the chat outside <ChatContext.Provider>");
  }
  return chat;
}

/** The current state; the component re-renders whenever it changes. */
export function useChatState(): ChatState {
  const chat = useChat();
  const [, bump] = useReducer((n: number) => n + 1, 0);
  const seen = chat.store.state;
  useEffect(() => {
    const unsubscribe = chat.store.subscribe(() => bump(undefined));
    // A change between this render and the subscription (effects run after paint) is not lost.
    if (chat.store.state !== seen) bump(undefined);
    return unsubscribe;
  }, [chat]);
  return seen;
}
