/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The messages of one conversation: day separators, grouped senders, notices, pending and
 * failed sends, attached files (images as thumbnails); older pages load when scrolled to the
 * top (or with the button there), and the view sticks to the bottom while the reader is there,
 * even as thumbnails load or the composer grows.
 *
 * @module
 */

import { Component } from "preact";
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { FileRef } from "../../protocol/frames.ts";
import { REACTIONS } from "../../protocol/frames.ts";
import { formatSize } from "../../protocol/text_mode.ts";
import {
  avatarClass,
  clock,
  dayKey,
  dayLabel,
  hasThumbnail,
  initial,
  revealText,
} from "./format.ts";
import { markdown } from "./markdown.ts";
import type { MdNode } from "./markdown.ts";
import { ClipIcon } from "./icons.tsx";
import { FileName, Revealed } from "./reveal.tsx";
import { useChat } from "./hooks.ts";
import { canDelete, canEdit, quoteOf, typingLine } from "./model.ts";
import type { ChatMessage, Conversation, Item, Typist } from "./model.ts";

/** Consecutive messages from one sender within this long share one header. */
const GROUP_MS = 5 * 60_000;
/** Closer than this to the top (px) loads the older page. */
const TOP_SLACK = 120;
/** Closer than this to the bottom (px) counts as "at the bottom". */
const BOTTOM_SLACK = 60;

/** The scrolling list of a conversation's items. */
export function MessageList(
  { conv, me, account, typing, focus }: {
    conv: Conversation;
    me: string;
    account: boolean;
    typing?: readonly Typist[] | undefined;
    /** A message to scroll to (once per new value). */
    focus?: { id: number; seq: number } | undefined;
  },
) {
  const chat = useChat();
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const fromBottom = useRef(0);
  const edges = useRef<{ first: string | undefined; last: string | undefined }>(
    {
      first: undefined,
      last: undefined,
    },
  );
  const [unseenBelow, setUnseenBelow] = useState(false);

  const first = conv.items[0]?.key;
  const last = conv.items.at(-1)?.key;

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el === null) return;
    const prev = edges.current;
    const tail = conv.items.at(-1);
    if (
      atBottom.current ||
      (tail?.kind === "message" && tail.status === "pending")
    ) {
      atBottom.current = true;
      el.scrollTop = el.scrollHeight;
    } else if (prev.first !== first && prev.last === last) {
      // An older page went in above: keep what the reader looks at in place.
      el.scrollTop = el.scrollHeight - el.clientHeight - fromBottom.current;
    } else if (prev.last !== last) {
      setUnseenBelow(true);
    }
    edges.current = { first, last };
    fromBottom.current = el.scrollHeight - el.clientHeight - el.scrollTop;
  }, [first, last, conv.items.length]);

  // Content that grows by itself (a thumbnail loading) or a view that shrinks (the composer
  // showing an upload) keeps a reader who was at the bottom there.
  useEffect(() => {
    const el = scroller.current;
    const inner = el?.firstElementChild;
    if (el === null || inner == null || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(() => {
      if (atBottom.current) el.scrollTop = el.scrollHeight;
    });
    observer.observe(el);
    observer.observe(inner);
    return () => observer.disconnect();
  }, []);

  // A search result opened: show that message (it is in the list by now).
  useEffect(() => {
    if (focus === undefined) return;
    if (scrollToMessage(focus.id)) atBottom.current = false;
  }, [focus?.seq]);

  // A page too short to scroll could never ask for more: fill the view instead.
  useEffect(() => {
    const el = scroller.current;
    if (
      el !== null && el.scrollHeight <= el.clientHeight && conv.more &&
      !conv.loading
    ) {
      chat.loadOlder(conv.key);
    }
  }, [conv.more, conv.loading, conv.items.length]);

  const onScroll = () => {
    const el = scroller.current;
    if (el === null) return;
    fromBottom.current = el.scrollHeight - el.clientHeight - el.scrollTop;
    atBottom.current = fromBottom.current <= BOTTOM_SLACK;
    if (atBottom.current) setUnseenBelow(false);
    if (el.scrollTop < TOP_SLACK && conv.more && !conv.loading) {
      chat.loadOlder(conv.key);
    }
  };

  const toBottom = () => {
    const el = scroller.current;
    if (el !== null) el.scrollTop = el.scrollHeight;
    atBottom.current = true;
    setUnseenBelow(false);
  };

  const label = conv.kind === "room" ? `Messages in ${conv.name}` : `Messages with ${conv.name}`;
  return (
    <div class="messages-wrap">
      <div
        class="messages"
        ref={scroller}
        onScroll={onScroll}
        tabIndex={0}
        role="region"
        aria-label={label}
        data-testid="messages"
      >
        <div class="messages-inner">
          <div class="history-edge">
            {conv.more
              ? (
                <button
                  type="button"
                  class="small"
                  disabled={conv.loading}
                  data-testid="load-older"
                  onClick={() => chat.loadOlder(conv.key)}
                >
                  {conv.loading ? "Loading…" : "Load older messages"}
                </button>
              )
              : conv.items.length > 0 && (
                <p class="history-start">
                  {conv.kind === "room"
                    ? `This is the start of ${conv.name}.`
                    : `This is the start of your conversation with ${conv.name}.`}
                </p>
              )}
          </div>
          {conv.items.length === 0 && (
            <p class="empty">
              {conv.kind === "room"
                ? `No messages in ${conv.name} yet. Say hello!`
                : `No messages with ${conv.name} yet.`}
            </p>
          )}
          <ol class="item-list">{rows(conv, me, account)}</ol>
        </div>
      </div>
      <p class="typing" aria-live="off" data-testid="typing">{typingLine(typing, Date.now())}</p>
      {unseenBelow && (
        <button type="button" class="jump" onClick={toBottom}>
          New messages <span aria-hidden="true">↓</span>
        </button>
      )}
    </div>
  );
}

function rows(conv: Conversation, me: string, account: boolean): ComponentChildren[] {
  const items = conv.items;
  const out: ComponentChildren[] = [];
  let prev: Item | undefined;
  for (const item of items) {
    if (item.kind === "message" && item.id !== undefined && item.id === conv.divider) {
      out.push(
        <li key="new-line" class="new-line" data-testid="new-line">
          <span>New messages</span>
        </li>,
      );
    }
    if (prev === undefined || dayKey(prev.ts) !== dayKey(item.ts)) {
      out.push(
        <li key={`d${item.key}`} class="day">
          <span>{dayLabel(item.ts)}</span>
        </li>,
      );
      prev = undefined;
    }
    if (item.kind === "notice") {
      out.push(
        <li key={item.key} class="notice" data-testid="notice">
          <span>{item.text}</span>{" "}
          <time dateTime={new Date(item.ts).toISOString()}>
            {clock(item.ts)}
          </time>
        </li>,
      );
    } else {
      const grouped = prev?.kind === "message" && prev.from === item.from &&
        !prev.action &&
        !item.action && item.ts - prev.ts < GROUP_MS;
      out.push(
        <MessageRow
          key={item.key}
          convKey={conv.key}
          msg={item}
          grouped={grouped && item.replyTo === undefined}
          quote={item.replyTo === undefined ? undefined : quoteOf(items, item.replyTo)}
          mayEdit={canEdit(item, me, account)}
          mayDelete={canDelete(conv, item, me, account)}
          mayReact={account && item.id !== undefined && !item.deleted}
        />,
      );
    }
    prev = item;
  }
  return out;
}

interface RowProps {
  convKey: string;
  msg: ChatMessage;
  grouped: boolean;
  /** For a reply: the quoted line of the message it answers. */
  quote: string | undefined;
  mayEdit: boolean;
  mayDelete: boolean;
  mayReact: boolean;
}

/** One message; re-renders only when its own item, grouping, quote or permissions change. */
class MessageRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    const p = this.props;
    return next.msg !== p.msg || next.grouped !== p.grouped || next.quote !== p.quote ||
      next.mayEdit !== p.mayEdit || next.mayDelete !== p.mayDelete || next.mayReact !== p.mayReact;
  }

  override render(props: RowProps) {
    return <Row {...props} />;
  }
}

function Row({ convKey, msg, grouped, quote, mayEdit, mayDelete, mayReact }: RowProps) {
  const chat = useChat();
  const [mode, setMode] = useState<"view" | "edit" | "delete" | "react">("view");
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const id = msg.id;
  const time = (
    <time
      dateTime={new Date(msg.ts).toISOString()}
      title={new Date(msg.ts).toLocaleString()}
    >
      {clock(msg.ts)}
    </time>
  );
  const cls = [
    "msg",
    grouped ? "grouped" : "",
    msg.action ? "action" : "",
    msg.mention ? "mention" : "",
    msg.status,
  ].filter(Boolean).join(" ");
  return (
    <li
      class={cls}
      data-testid="message"
      data-from={msg.from}
      data-status={msg.status}
      {...(msg.id === undefined ? {} : { "data-id": String(msg.id) })}
    >
      {grouped
        ? <span class="gutter-time">{time}</span>
        : (
          <span class={`avatar ${avatarClass(msg.from)}`} aria-hidden="true">
            {initial(msg.from)}
          </span>
        )}
      <div class="msg-body">
        {!grouped && !msg.action && (
          <div class="msg-meta">
            <span class="msg-from">{msg.from}</span> {time}
            {msg.offline && <span class="tag">while you were away</span>}
          </div>
        )}
        {grouped && <span class="sr-only">{msg.from}:</span>}
        {quote !== undefined && (
          <button
            type="button"
            class="reply-quote"
            data-testid="reply-quote"
            title="Show the message this answers"
            onClick={() => scrollToMessage(msg.replyTo!)}
          >
            <span aria-hidden="true">↪</span> <bdi>{quote}</bdi>
          </button>
        )}
        {msg.deleted
          ? <p class="msg-text deleted" data-testid="deleted">message deleted</p>
          : mode === "edit" && id !== undefined
          ? (
            <EditBox
              text={msg.text}
              onCancel={() => setMode("view")}
              onSave={async (text) => {
                const why = await chat.edit(convKey, id, text);
                if (why === undefined) setMode("view");
                return why;
              }}
            />
          )
          : (msg.text !== "" || msg.action) && (
            <p class="msg-text">
              {msg.action && <span class="msg-from">{`* ${msg.from} `}</span>}
              <bdi class="msg-content">
                <Text text={msg.text} />
              </bdi>
              {msg.edited !== undefined && (
                <span
                  class="edited"
                  data-testid="edited"
                  title={`Edited ${new Date(msg.edited).toLocaleString()}`}
                >
                  {" "}(edited)
                </span>
              )}
              {msg.action && <>{" "}{time}</>}
            </p>
          )}
        {!msg.deleted && msg.file !== undefined && <FileChip file={msg.file} />}
        {msg.reactions !== undefined && id !== undefined && (
          <ul class="reactions" aria-label="Reactions">
            {Object.entries(msg.reactions).map(([emoji, n]) => {
              const mine = msg.mine?.includes(emoji) === true;
              return (
                <li key={emoji}>
                  <button
                    type="button"
                    class={`reaction${mine ? " mine" : ""}`}
                    aria-pressed={mine ? "true" : "false"}
                    aria-label={`${emoji} ${n}${mine ? ", yours: take back" : ""}`}
                    disabled={!mayReact}
                    data-testid="reaction"
                    data-emoji={emoji}
                    onClick={() => chat.react(convKey, id, emoji)}
                  >
                    {emoji} <span class="count">{n}</span>
                  </button>
                </li>
              );
            })}
          </ul>
        )}
        {mode === "delete" && id !== undefined && (
          <p class="confirm" role="alert" data-testid="delete-confirm">
            Delete this message?{" "}
            <button
              type="button"
              class="small danger"
              data-testid="delete-yes"
              onClick={async () => {
                const why = await chat.remove(convKey, id);
                setProblem(why);
                setMode("view");
              }}
            >
              Delete
            </button>{" "}
            <button
              type="button"
              class="small"
              onClick={() =>
                setMode("view")}
            >
              Cancel
            </button>
          </p>
        )}
        {mode === "react" && id !== undefined && (
          <div class="emoji-picker" role="group" aria-label="React with" data-testid="emoji-picker">
            {REACTIONS.map((emoji) => (
              <button
                type="button"
                key={emoji}
                class="small emoji"
                aria-label={`React with ${emoji}`}
                data-emoji={emoji}
                onClick={() => {
                  setMode("view");
                  chat.react(convKey, id, emoji);
                }}
              >
                {emoji}
              </button>
            ))}
          </div>
        )}
        {problem !== undefined && <p class="form-error" role="alert">{problem}</p>}
        {msg.status === "pending" && <span class="msg-state">Sending…</span>}
        {msg.status === "failed" && <Failed convKey={convKey} msg={msg} />}
      </div>
      {id !== undefined && !msg.deleted && mode !== "edit" && (
        <div class="msg-actions" role="group" aria-label={`Actions on ${msg.from}'s message`}>
          <button
            type="button"
            class="small"
            data-testid="action-reply"
            onClick={() =>
              chat.replyTo(convKey, id)}
          >
            Reply
          </button>
          {mayReact && (
            <button
              type="button"
              class="small"
              aria-expanded={mode === "react" ? "true" : "false"}
              data-testid="action-react"
              onClick={() => setMode(mode === "react" ? "view" : "react")}
            >
              React
            </button>
          )}
          {mayEdit && (
            <button
              type="button"
              class="small"
              data-testid="action-edit"
              onClick={() => {
                setProblem(undefined);
                setMode("edit");
              }}
            >
              Edit
            </button>
          )}
          {mayDelete && (
            <button
              type="button"
              class="small"
              data-testid="action-delete"
              onClick={() => setMode("delete")}
            >
              Delete
            </button>
          )}
        </div>
      )}
    </li>
  );
}

/** Scrolls the open list to message `id` and highlights it briefly; false when not shown. */
export function scrollToMessage(id: number): boolean {
  const el = document.querySelector<HTMLElement>(`[data-testid=message][data-id="${id}"]`);
  if (el === null) return false;
  el.scrollIntoView({ block: "center" });
  el.classList.remove("flash");
  void el.offsetWidth; // restart the animation
  el.classList.add("flash");
  return true;
}

/** Editing a message in place: Enter saves, Escape cancels. */
function EditBox(
  { text, onSave, onCancel }: {
    text: string;
    onSave: (text: string) => Promise<string | undefined>;
    onCancel: () => void;
  },
) {
  const [value, setValue] = useState(text);
  const [error, setError] = useState<string | undefined>(undefined);
  const box = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    box.current?.focus();
  }, []);
  const save = async () => setError(await onSave(value));
  return (
    <div class="edit-box">
      <textarea
        ref={box}
        value={value}
        aria-label="Edit the message"
        data-testid="edit-input"
        onInput={(e) => setValue(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            save();
          } else if (e.key === "Escape") onCancel();
        }}
      />
      <button type="button" class="small primary" data-testid="edit-save" onClick={save}>
        Save
      </button>{" "}
      <button type="button" class="small" onClick={onCancel}>Cancel</button>
      {error !== undefined && <p class="form-error" role="alert">{error}</p>}
    </div>
  );
}

/** An attached file: a thumbnail for images, then its name, size and a download button. */
function FileChip({ file }: { file: FileRef }) {
  const chat = useChat();
  const size = formatSize(file.size);
  return (
    <div class="attachment">
      {hasThumbnail(file) && <Thumbnail file={file} />}
      <div class="file-chip" data-testid="file">
        <ClipIcon />
        <FileName name={file.name} />
        <span class="muted">{size}</span>
        <button
          type="button"
          class="small"
          aria-label={`Download ${revealText(file.name)} (${size})`}
          onClick={() => chat.download(file)}
        >
          Download
        </button>
      </div>
    </div>
  );
}

/**
 * An image shown inline: fetched with the session token when it comes near the view, shown
 * from an object URL that is revoked when the message goes away. Nothing is shown when it
 * cannot be fetched or decoded (guests, an expired file): the download button says why.
 */
function Thumbnail({ file }: { file: FileRef }) {
  const chat = useChat();
  const box = useRef<HTMLDivElement>(null);
  const [url, setUrl] = useState<string | undefined>(undefined);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    let live = true;
    let made: string | undefined;
    const load = () =>
      chat.fileBlob(file).then(
        (blob) => {
          if (!live) return;
          made = URL.createObjectURL(blob);
          setUrl(made);
        },
        () => live && setFailed(true),
      );
    let observer: IntersectionObserver | undefined;
    const el = box.current;
    if (el !== null && typeof IntersectionObserver !== "undefined") {
      observer = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        observer?.disconnect();
        load();
      }, { rootMargin: "400px 0px" });
      observer.observe(el);
    } else load();
    return () => {
      live = false;
      observer?.disconnect();
      if (made !== undefined) URL.revokeObjectURL(made);
    };
  }, [file.id]);

  if (failed) return null;
  return (
    <div class="thumb-box" ref={box}>
      {url === undefined
        ? <span class="thumb-placeholder" aria-hidden="true" />
        : (
          <a href={url} target="_blank" rel="noopener" class="thumb-link" title="Open full size">
            <img
              class="thumb"
              src={url}
              alt={revealText(file.name)}
              data-testid="thumbnail"
              onError={() => setFailed(true)}
            />
          </a>
        )}
    </div>
  );
}

function Failed({ convKey, msg }: { convKey: string; msg: ChatMessage }) {
  const chat = useChat();
  return (
    <span class="msg-state failed" role="alert">
      {msg.error ?? "Not sent"}{" "}
      <button
        type="button"
        class="link"
        onClick={() => chat.retry(convKey, msg.key)}
      >
        Retry
      </button>
    </span>
  );
}

/**
 * Message text with the Markdown subset of {@linkcode markdown} (bold, italic, inline code,
 * code blocks), as Preact text nodes and elements: never HTML. http(s) links become links that
 * open in a new tab. A link's text is isolated left to right with its hidden characters shown,
 * so what it says is where it goes: neither its own bidi controls nor the text before it can
 * reorder it.
 */
function Text({ text }: { text: string }) {
  return <>{nodes(markdown(text))}</>;
}

function nodes(list: readonly MdNode[]): ComponentChildren[] {
  return list.map((n, i) => {
    switch (n.kind) {
      case "text":
        return n.text;
      case "strong":
        return <strong key={i}>{nodes(n.children)}</strong>;
      case "em":
        return <em key={i}>{nodes(n.children)}</em>;
      case "code":
        return <code key={i} class="msg-code">{n.text}</code>;
      case "pre":
        return (
          <pre key={i} class="msg-pre" data-testid="code-block">
            <code>{n.text}</code>
          </pre>
        );
      case "link":
        return (
          <a
            key={i}
            href={n.href}
            target="_blank"
            rel="noopener noreferrer nofollow"
            dir="ltr"
            class="msg-link"
            data-testid="link"
          >
            <Revealed text={n.text} />
          </a>
        );
    }
  });
}
