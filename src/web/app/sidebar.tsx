/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The sidebar: rooms and direct messages with unread badges, forms to join a room or message
 * someone, and the account footer (notifications, log out).
 *
 * @module
 */

import { useEffect, useState } from "preact/hooks";
import type { MessageFrame, RoomInfo } from "../../protocol/frames.ts";
import { clock } from "./format.ts";
import { useChat } from "./hooks.ts";
import { Logo } from "./icons.tsx";
import { isOnline, sortedConversations } from "./model.ts";
import type { ChatState, Conversation } from "./model.ts";

/** Props of {@linkcode Sidebar}. */
export interface SidebarProps {
  state: ChatState;
  /** Called after a conversation was picked (closes the drawer on a phone). */
  onPicked: () => void;
}

/** The list of conversations and the account footer. */
export function Sidebar({ state, onPicked }: SidebarProps) {
  const chat = useChat();
  const all = sortedConversations(state);
  const rooms = all.filter((c) => c.kind === "room");
  const dms = all.filter((c) => c.kind === "dm");
  const pick = (key: string) => {
    chat.select(key);
    onPicked();
  };

  return (
    <nav id="sidebar" class="sidebar" aria-label="Conversations">
      <div class="brand">
        <Logo /> <span>parley</span>
      </div>
      <div class="sidebar-scroll">
        <SearchForm onDone={onPicked} ask={state.searchAsk} />
        <section aria-labelledby="rooms-heading">
          <h2 id="rooms-heading" class="side-heading">Rooms</h2>
          <ul class="conv-list" data-testid="room-list">
            {rooms.map((c) => (
              <ConvItem
                key={c.key}
                conv={c}
                active={c.key === state.active}
                online={false}
                onPick={pick}
                onClose={() => chat.part(c.name)}
              />
            ))}
          </ul>
          <JoinForm onDone={onPicked} />
        </section>
        <section aria-labelledby="dms-heading">
          <h2 id="dms-heading" class="side-heading">Direct messages</h2>
          {dms.length === 0 && <p class="side-empty">No conversations yet.</p>}
          <ul class="conv-list" data-testid="dm-list">
            {dms.map((c) => (
              <ConvItem
                key={c.key}
                conv={c}
                active={c.key === state.active}
                online={isOnline(state, c.name)}
                onPick={pick}
                onClose={() => chat.closeDm(c.key)}
              />
            ))}
          </ul>
          <DmForm onDone={onPicked} />
        </section>
      </div>
      <footer class="me">
        <div class="me-line">
          <span
            class={`presence-dot${state.link.kind === "online" ? " online" : ""}`}
            aria-hidden="true"
          />
          <span class="me-name" data-testid="me">{state.me}</span>
          {/* Before the server has named us (a kept token, not connected yet): nothing to say. */}
          <span class="me-kind">{state.account || state.me === "" ? "" : "guest"}</span>
        </div>
        <div class="me-actions">
          <button
            type="button"
            class="small"
            aria-pressed={state.notify}
            data-testid="notify-toggle"
            onClick={() => chat.setNotify(!state.notify)}
          >
            Notifications {state.notify ? "on" : "off"}
          </button>
          <button
            type="button"
            class="small"
            data-testid="logout"
            onClick={() => chat.logout()}
          >
            {state.account || state.me === "" ? "Log out" : "Leave"}
          </button>
        </div>
      </footer>
    </nav>
  );
}

interface ConvItemProps {
  conv: Conversation;
  active: boolean;
  online: boolean;
  onPick: (key: string) => void;
  onClose: () => void;
}

function ConvItem({ conv, active, online, onPick, onClose }: ConvItemProps) {
  const label = conv.kind === "room"
    ? `Leave ${conv.name}`
    : `Close the conversation with ${conv.name}`;
  return (
    <li
      class={`conv${conv.unread > 0 ? " has-unread" : ""}${active ? " active" : ""}`}
      data-testid="conversation"
      data-key={conv.key}
    >
      <button
        type="button"
        class="conv-button"
        aria-current={active ? "page" : undefined}
        onClick={() => onPick(conv.key)}
      >
        {conv.kind === "dm" && (
          <span
            class={`presence-dot${online ? " online" : ""}`}
            aria-hidden="true"
          />
        )}
        <span class="conv-name">{conv.name}</span>
        {conv.kind === "dm" && <span class="sr-only">{online ? " (online)" : ""}</span>}
        {conv.unread > 0 && (
          <span
            class={`badge${conv.mentions > 0 || conv.kind === "dm" ? " strong" : ""}`}
            data-testid="unread-badge"
          >
            <span aria-hidden="true">
              {conv.unread > 99 ? "99+" : conv.unread}
            </span>
            <span class="sr-only">
              , {conv.unread} unread{conv.mentions > 0 ? `, ${conv.mentions} mentioning you` : ""}
            </span>
          </span>
        )}
      </button>
      <button
        type="button"
        class="conv-close"
        aria-label={label}
        title={label}
        onClick={onClose}
      >
        <span aria-hidden="true">×</span>
      </button>
    </li>
  );
}

function JoinForm({ onDone }: { onDone: () => void }) {
  const chat = useChat();
  const [room, setRoom] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const [known, setKnown] = useState<RoomInfo[]>([]);
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const name = room.startsWith("#") ? room : `#${room}`;
    const problem = await chat.join(name);
    setError(problem);
    if (problem === undefined) {
      setRoom("");
      onDone();
    }
  };
  return (
    <form class="side-form" onSubmit={submit}>
      <label for="join-room">Join or create a room</label>
      <div class="row">
        <input
          id="join-room"
          placeholder="#room"
          list="room-suggestions"
          autoCapitalize="none"
          spellcheck={false}
          maxLength={65}
          value={room}
          aria-describedby="join-error"
          onFocus={() => chat.listRooms().then(setKnown, () => {})}
          onInput={(e) => setRoom(e.currentTarget.value.trim())}
        />
        <button type="submit" class="small" disabled={room === ""}>Join</button>
      </div>
      <datalist id="room-suggestions">
        {known.map((r) => (
          <option key={r.name} value={r.name}>
            {r.members} {r.members === 1 ? "member" : "members"}
          </option>
        ))}
      </datalist>
      <p id="join-error" class="form-error" role="alert">{error ?? ""}</p>
    </form>
  );
}

function DmForm({ onDone }: { onDone: () => void }) {
  const chat = useChat();
  const [name, setName] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = (ev: Event) => {
    ev.preventDefault();
    const problem = chat.openDm(name.replace(/^@/, ""));
    setError(problem);
    if (problem === undefined) {
      setName("");
      onDone();
    }
  };
  return (
    <form class="side-form" onSubmit={submit}>
      <label for="dm-name">Message someone</label>
      <div class="row">
        <input
          id="dm-name"
          placeholder="name"
          autoCapitalize="none"
          spellcheck={false}
          maxLength={33}
          value={name}
          aria-describedby="dm-error"
          onInput={(e) => setName(e.currentTarget.value.trim())}
        />
        <button type="submit" class="small" disabled={name === ""}>Open</button>
      </div>
      <p id="dm-error" class="form-error" role="alert">{error ?? ""}</p>
    </form>
  );
}

/** The search box and its results: a click opens the message's conversation at the message. */
function SearchForm(
  { onDone, ask }: { onDone: () => void; ask: ChatState["searchAsk"] },
) {
  const chat = useChat();
  const [text, setText] = useState("");
  const [results, setResults] = useState<MessageFrame[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async (words: string, scope: { room?: string; with?: string } = {}) => {
    if (words.trim() === "") return;
    setBusy(true);
    try {
      setResults(await chat.search(words, scope));
      setError(undefined);
    } catch (e) {
      setResults(undefined);
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  // `/search` typed in the composer: the same search, shown here.
  useEffect(() => {
    if (ask === undefined) return;
    setText(ask.text);
    const { text: words, seq: _seq, ...scope } = ask;
    run(words, scope);
  }, [ask?.seq]);
  const submit = (ev: Event) => {
    ev.preventDefault();
    run(text);
  };
  return (
    <section class="search" aria-label="Search messages">
      <form class="side-form" role="search" onSubmit={submit}>
        <label for="search-text">Search messages</label>
        <div class="row">
          <input
            id="search-text"
            type="search"
            placeholder="words"
            value={text}
            aria-describedby="search-error"
            data-testid="search-input"
            onInput={(e) => {
              setText(e.currentTarget.value);
              if (e.currentTarget.value === "") setResults(undefined);
            }}
            onKeyDown={(e) => {
              if (e.key === "Escape") {
                setText("");
                setResults(undefined);
              }
            }}
          />
          <button type="submit" class="small" disabled={text.trim() === "" || busy}>
            Search
          </button>
        </div>
        <p id="search-error" class="form-error" role="alert">{error ?? ""}</p>
      </form>
      {results !== undefined && (
        <div class="search-results" data-testid="search-results">
          <p class="side-empty" role="status">
            {results.length === 0
              ? "No messages found."
              : `${results.length} ${results.length === 1 ? "message" : "messages"}, newest first`}
          </p>
          <ul class="conv-list">
            {results.map((m) => (
              <li key={m.id}>
                <button
                  type="button"
                  class="search-result"
                  data-testid="search-result"
                  data-id={String(m.id)}
                  onClick={() => {
                    chat.openMessage(m);
                    onDone();
                  }}
                >
                  <span class="muted">
                    {m.room ?? (m.to === undefined ? m.from : `${m.from} → ${m.to}`)} {clock(m.ts)}
                  </span>
                  <bdi class="search-text">
                    <b>{m.from}</b>: {m.text}
                  </bdi>
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
