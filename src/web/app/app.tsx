/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The page: the login screen, or the chat screen (sidebar, conversation, members), plus the
 * live region that reads new messages and status changes to screen readers. Files dropped on
 * the conversation are attached to it.
 *
 * @module
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { GUEST_FILES } from "./chat.ts";
import { Composer } from "./composer.tsx";
import type { Attach } from "./composer.tsx";
import { useChat, useChatState } from "./hooks.ts";
import { MenuIcon, PeopleIcon } from "./icons.tsx";
import { Login } from "./login.tsx";
import { MemberList } from "./member_list.tsx";
import { MessageList } from "./message_list.tsx";
import { canModerate, isOnline, modeBadges, sortedConversations, totalUnread } from "./model.ts";
import type { ChatState, Conversation } from "./model.ts";
import { Sidebar } from "./sidebar.tsx";
import { StatusBanner, StatusPill } from "./status.tsx";
import { VoiceBar, VoiceLink } from "./voice_bar.tsx";
import { CallBanner, CallButton } from "./call_bar.tsx";

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
  const attach = useRef<Attach | null>(null);
  const [dropping, setDropping] = useState(false);
  const dragDepth = useRef(0);

  // A file dropped anywhere but on the conversation must not replace the page with itself.
  useEffect(() => {
    const guard = (ev: DragEvent) => {
      if (!carriesFiles(ev) || ev.defaultPrevented) return;
      ev.preventDefault();
      if (ev.dataTransfer !== null) ev.dataTransfer.dropEffect = "none";
    };
    addEventListener("dragover", guard);
    addEventListener("drop", guard);
    return () => {
      removeEventListener("dragover", guard);
      removeEventListener("drop", guard);
    };
  }, []);

  const dropTarget = conv === undefined ? {} : {
    onDragEnter: (ev: DragEvent) => {
      if (!carriesFiles(ev)) return;
      ev.preventDefault();
      dragDepth.current++;
      setDropping(true);
    },
    onDragOver: (ev: DragEvent) => {
      if (!carriesFiles(ev)) return;
      ev.preventDefault();
      if (ev.dataTransfer !== null) ev.dataTransfer.dropEffect = state.account ? "copy" : "none";
    },
    onDragLeave: (ev: DragEvent) => {
      if (!carriesFiles(ev)) return;
      dragDepth.current = Math.max(0, dragDepth.current - 1);
      if (dragDepth.current === 0) setDropping(false);
    },
    onDrop: (ev: DragEvent) => {
      if (!carriesFiles(ev)) return;
      ev.preventDefault();
      dragDepth.current = 0;
      setDropping(false);
      attach.current?.([...(ev.dataTransfer?.files ?? [])]);
    },
  };

  // Escape closes an open drawer; Alt+Up/Down moves between conversations. The listener reads
  // whether a drawer is open from a ref set at render: an Escape pressed just after a drawer
  // opened, before the effects ran again, must close it too.
  const drawers = useRef({ navOpen, membersOpen });
  drawers.current = { navOpen, membersOpen };
  useEffect(() => {
    const onKey = (ev: KeyboardEvent) => {
      if (ev.key === "Escape" && (drawers.current.navOpen || drawers.current.membersOpen)) {
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
  }, [chat]);

  // A search typed as /search shows in the sidebar: on a phone, open the drawer to show it.
  useEffect(() => {
    if (state.searchAsk !== undefined && matchMedia("(max-width: 720px)").matches) {
      setNavOpen(true);
    }
  }, [state.searchAsk?.seq]);

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
      <main class="main" aria-labelledby="conv-title" {...dropTarget}>
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
            {conv?.kind === "room" &&
              modeBadges(conv.modes).map((b) => (
                <span key={b} class="mode-badge" data-testid="mode-badge">{b}</span>
              ))}
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
        {conv?.kind === "room" && <RoomTopic key={conv.key} conv={conv} me={state.me} />}
        {conv?.kind === "room" && <VoiceBar room={conv.name} />}
        {conv?.kind === "dm" && <CallButton name={conv.name} />}
        <CallBanner />
        <VoiceLink />
        <StatusBanner state={state} />
        {state.toast !== undefined && (
          <p class="toast" role="status" data-testid="toast">{state.toast}</p>
        )}
        {conv !== undefined
          ? (
            <MessageList
              key={conv.key}
              conv={conv}
              me={state.me}
              account={state.account}
              typing={state.typing[conv.key]}
              focus={state.focus?.convKey === conv.key ? state.focus : undefined}
            />
          )
          : (
            <div class="messages-wrap">
              <p class="empty">
                {state.link.kind === "online"
                  ? "You are in no room: join one from the sidebar."
                  : "Connecting…"}
              </p>
            </div>
          )}
        <Composer
          conv={conv}
          online={state.link.kind === "online"}
          account={state.account}
          uploads={state.uploads}
          attachRef={attach}
          replying={conv !== undefined && state.replying?.convKey === conv.key
            ? state.replying.id
            : undefined}
        />
        {dropping && conv !== undefined && (
          <div class="drop-zone" aria-hidden="true" data-testid="drop-zone">
            <p>{state.account ? `Drop files to send them to ${conv.name}` : GUEST_FILES}</p>
          </div>
        )}
      </main>
      {conv?.kind === "room" && <MemberList conv={conv} me={state.me} onPicked={closeDrawers} />}
    </div>
  );
}

/**
 * A room's topic under its header; an operator (or the owner, or an administrator) may edit it
 * there (Enter saves, Escape cancels, an empty topic clears it).
 */
function RoomTopic({ conv, me }: { conv: Conversation; me: string }) {
  const chat = useChat();
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(conv.topic);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const box = useRef<HTMLInputElement>(null);
  const edit = useRef<HTMLButtonElement>(null);
  const may = canModerate(conv, me);
  useEffect(() => {
    if (editing) box.current?.focus();
  }, [editing]);
  if (!editing && conv.topic === "" && !may) return null;

  const stop = () => {
    setEditing(false);
    setError(undefined);
    // After the render that brings the edit button back.
    setTimeout(() => edit.current?.focus());
  };
  const save = async () => {
    setBusy(true);
    const problem = await chat.setTopic(conv.key, text);
    setBusy(false);
    if (problem === undefined) stop();
    else setError(problem);
  };

  if (editing) {
    return (
      <form
        class="topic-bar editing"
        data-testid="topic-form"
        onSubmit={(ev) => {
          ev.preventDefault();
          save();
        }}
        onKeyDown={(ev) => {
          if (ev.key !== "Escape") return;
          ev.preventDefault();
          ev.stopPropagation();
          stop();
        }}
      >
        <label for="topic-input" class="sr-only">Topic of {conv.name}</label>
        <input
          ref={box}
          id="topic-input"
          type="text"
          maxLength={300}
          autocomplete="off"
          placeholder="No topic (leave empty to clear it)"
          value={text}
          aria-invalid={error !== undefined}
          aria-describedby="topic-error"
          data-testid="topic-input"
          onInput={(ev) => setText((ev.target as HTMLInputElement).value)}
        />
        <button type="submit" class="primary compact" disabled={busy} data-testid="topic-save">
          Save
        </button>
        <button type="button" class="small" onClick={stop}>Cancel</button>
        <p id="topic-error" class="form-error" role="alert">{error ?? ""}</p>
      </form>
    );
  }
  return (
    <div class="topic-bar">
      <p class={`topic${conv.topic === "" ? " muted" : ""}`} data-testid="topic">
        {conv.topic === "" ? "No topic" : conv.topic}
      </p>
      {may && (
        <button
          ref={edit}
          type="button"
          class="small"
          aria-label={`Edit the topic of ${conv.name}`}
          data-testid="topic-edit"
          onClick={() => {
            setText(conv.topic);
            setEditing(true);
          }}
        >
          Edit topic
        </button>
      )}
    </div>
  );
}

/** Whether a drag carries files (not text or a link being dragged about). */
function carriesFiles(ev: DragEvent): boolean {
  return ev.dataTransfer?.types.includes("Files") ?? false;
}
