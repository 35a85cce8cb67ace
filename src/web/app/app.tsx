/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The page: the login screen, or the chat screen (sidebar, conversation, members), plus the
 * live region that reads new messages and status changes to screen readers.
 *
 * @module
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { Composer } from "./composer.tsx";
import { useChat, useChatState } from "./hooks.ts";
import { MenuIcon, PeopleIcon } from "./icons.tsx";
import { Login } from "./login.tsx";
import { MemberList } from "./member_list.tsx";
import { MessageList } from "./message_list.tsx";
import { isOnline, sortedConversations, totalUnread } from "./model.ts";
import type { ChatState } from "./model.ts";
import { Sidebar } from "./sidebar.tsx";
import { StatusBanner, StatusPill } from "./status.tsx";

/** The whole app. */
export function App() {
  const state = useChatState();
  const unread = totalUnread(state);
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) parley` : "parley";
  }, [unread]);
  return (
    <>
      {state.screen === "login" ? <Login state={state} /> : <ChatScreen state={state} />}
      <div
        class="sr-only"
        aria-live="polite"
        aria-atomic="true"
        data-testid="announcer"
      >
        {state.announcement}
      </div>
    </>
  );
}

function ChatScreen({ state }: { state: ChatState }) {
  const chat = useChat();
  const [navOpen, setNavOpen] = useState(false);
  const [membersOpen, setMembersOpen] = useState(false);
  const navToggle = useRef<HTMLButtonElement>(null);
  const conv = state.active === undefined ? undefined : state.conversations[state.active];

  // Escape closes an open drawer; Alt+Up/Down moves between conversations.
  useEffect(() => {
    const onKey = (ev: KeyboardEvent) => {
      if (ev.key === "Escape" && (navOpen || membersOpen)) {
        setNavOpen(false);
        setMembersOpen(false);
        navToggle.current?.focus();
      } else if (
        ev.altKey && (ev.key === "ArrowUp" || ev.key === "ArrowDown")
      ) {
        const list = sortedConversations(chat.store.state);
        const at = list.findIndex((c) => c.key === chat.store.state.active);
        const next = list[
          (at + (ev.key === "ArrowUp" ? -1 : 1) + list.length) % list.length
        ];
        if (next !== undefined) {
          ev.preventDefault();
          chat.select(next.key);
        }
      }
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, [navOpen, membersOpen, chat]);

  // Opening the drawer moves focus into it.
  useEffect(() => {
    if (navOpen) {
      document.querySelector<HTMLElement>("#sidebar .conv-button")?.focus();
    }
  }, [navOpen]);

  const subtitle = conv === undefined
    ? ""
    : conv.kind === "room"
    ? `${conv.members.length} ${conv.members.length === 1 ? "member" : "members"}`
    : isOnline(state, conv.name)
    ? "online"
    : "not in any of your rooms";
  const closeDrawers = () => {
    setNavOpen(false);
    setMembersOpen(false);
  };

  return (
    <div
      class={`chat${navOpen ? " nav-open" : ""}${membersOpen ? " members-open" : ""}${
        conv?.kind === "room" ? "" : " no-members"
      }`}
      data-testid="chat"
    >
      <a class="skip-link" href="#composer-input">Skip to the message box</a>
      <Sidebar state={state} onPicked={closeDrawers} />
      <div class="scrim" aria-hidden="true" onClick={closeDrawers} />
      <main class="main" aria-labelledby="conv-title">
        <header class="topbar">
          <button
            ref={navToggle}
            type="button"
            class="icon-button nav-toggle"
            aria-controls="sidebar"
            aria-expanded={navOpen}
            aria-label="Rooms and direct messages"
            data-testid="nav-toggle"
            onClick={() => setNavOpen(!navOpen)}
          >
            <MenuIcon />
            {totalUnread(state) > 0 && <span class="dot-badge" aria-hidden="true" />}
          </button>
          <div class="title-block">
            <h1 id="conv-title" class="conv-title" data-testid="conv-title">
              {conv?.name ?? "parley"}
            </h1>
            <span class="subtitle">{subtitle}</span>
          </div>
          <StatusPill link={state.link} />
          {conv?.kind === "room" && (
            <button
              type="button"
              class="icon-button members-toggle"
              aria-controls="members"
              aria-expanded={membersOpen}
              aria-label={`Members of ${conv.name}`}
              onClick={() => setMembersOpen(!membersOpen)}
            >
              <PeopleIcon />
            </button>
          )}
        </header>
        <StatusBanner link={state.link} />
        {state.toast !== undefined && (
          <p class="toast" role="status" data-testid="toast">{state.toast}</p>
        )}
        {conv !== undefined
          ? <MessageList key={conv.key} conv={conv} />
          : (
            <div class="messages-wrap">
              <p class="empty">
                {state.link.kind === "online"
                  ? "You are in no room: join one from the sidebar."
                  : "Connecting…"}
              </p>
            </div>
          )}
        <Composer conv={conv} online={state.link.kind === "online"} />
      </main>
      {conv?.kind === "room" && <MemberList conv={conv} me={state.me} onPicked={closeDrawers} />}
    </div>
  );
}
