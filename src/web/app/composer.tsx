/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The message box: Enter sends, Shift+Enter starts a new line; every slash command of the
 * server's text mode works (commands.ts), with a completion popup for commands, `@names` and
 * `#rooms` (↑/↓ move, Tab or Enter accepts, Escape closes). Each conversation keeps its own draft. Files come in
 * through the attach button, a pasted image, or a drop on the conversation (app.tsx); their
 * uploads show here with a progress bar until they are sent.
 *
 * @module
 */

import type { RefObject } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { GUEST_FILES } from "./chat.ts";
import { progressText, revealText } from "./format.ts";
import { useChat } from "./hooks.ts";
import { ClipIcon } from "./icons.tsx";
import { parseComposer, quoteOf } from "./model.ts";
import { FileName } from "./reveal.tsx";
import type { ChatState, Conversation, Upload } from "./model.ts";
import type { RoomInfo } from "../../protocol/frames.ts";
import { nameKey } from "../../protocol/names.ts";
import { accept, completionAt } from "./commands.ts";

/** Names to suggest: the open room's members and everyone with a direct conversation. */
function suggestedNames(state: ChatState, conv: Conversation): string[] {
  const names = [
    ...(conv.kind === "room" ? conv.members : []),
    ...Object.values(state.conversations).filter((c) => c.kind === "dm").map((c) => c.name),
  ];
  return names.filter((n) => nameKey(n) !== nameKey(state.me));
}

/** Where CSS cannot size the box to its text (`field-sizing`), grow it by script. */
const cssSizes = typeof CSS !== "undefined" && CSS.supports("field-sizing", "content");
function grow(box: HTMLTextAreaElement): void {
  if (cssSizes) return;
  box.style.height = "auto";
  box.style.height = `${box.scrollHeight + 2}px`;
}

/** Attaches files to the open conversation (the composer's text goes with the first). */
export type Attach = (files: File[]) => void;

/** Props of {@linkcode Composer}. */
export interface ComposerProps {
  conv: Conversation | undefined;
  online: boolean;
  /** Whether the user has an account (guests cannot send files). */
  account: boolean;
  /** Every upload under way or failed; the composer shows those of `conv`. */
  uploads: readonly Upload[];
  /** Set by the composer, for files dropped elsewhere on the conversation. */
  attachRef?: RefObject<Attach | null>;
  /** The id of the message being answered, if any. */
  replying?: number | undefined;
}

/** The composer of the active conversation. */
export function Composer(
  { conv, online, account, uploads, attachRef, replying }: ComposerProps,
) {
  const chat = useChat();
  const key = conv?.key ?? "";
  const [text, setText] = useState(chat.draft(key));
  const [error, setError] = useState<string | undefined>(undefined);
  const input = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const keyRef = useRef(key);
  keyRef.current = key;

  useEffect(() => {
    setText(chat.draft(key));
    setError(undefined);
    // Follow the reader to the new conversation, except on touch screens (keyboard pop-up).
    if (!matchMedia("(pointer: coarse)").matches) input.current?.focus();
  }, [key]);

  // Text given back by the controller (a cancelled upload's).
  useEffect(
    () =>
      chat.onDraftChange((changed) => {
        if (changed === keyRef.current) setText(chat.draft(changed));
      }),
    [chat],
  );

  // Answering a message: the box is where the answer goes.
  useEffect(() => {
    if (replying !== undefined) input.current?.focus();
  }, [replying]);

  // The completion popup: commands after "/", @names, #rooms (see commands.ts).
  const [cursor, setCursor] = useState(0);
  const [selected, setSelected] = useState(0);
  const [closedAt, setClosedAt] = useState<string | undefined>(undefined);
  const [serverRooms, setServerRooms] = useState<RoomInfo[] | undefined>(undefined);
  const state = chat.store.state;
  const completion = conv === undefined || closedAt === text
    ? undefined
    : completionAt(text, cursor, {
      names: suggestedNames(state, conv),
      rooms: [
        ...Object.values(state.conversations).filter((c) => c.kind === "room").map((c) => ({
          name: c.name,
          members: c.members.length,
        })),
        ...(serverRooms ?? []),
      ],
    });
  const wantsRooms = completion === undefined &&
    /(^|\s)#\S*$|^\/(join|part|leave|who|names|history|topic|mode) \S*$/i
      .test(text.slice(0, cursor));
  useEffect(() => {
    // The server's room list, asked for once a room is being typed (and again a minute later).
    if (!wantsRooms && completion?.items[0]?.label.startsWith("#") !== true) return;
    if (serverRooms !== undefined || !online) return;
    chat.listRooms().then((rooms) => {
      setServerRooms(rooms);
      setTimeout(() => setServerRooms(undefined), 60_000);
    }, () => {});
  }, [wantsRooms, completion?.items[0]?.label, online]);
  const open = completion !== undefined;
  const active = open ? Math.min(selected, completion.items.length - 1) : 0;
  const take = (index: number) => {
    if (completion === undefined) return;
    const item = completion.items[index];
    if (item === undefined) return;
    const next = accept(text, completion, item);
    // The box takes the text and the cursor at once, not at the next frame: keys typed right
    // after accepting (a fast typist, a loaded machine) land after the completed word.
    const box = input.current;
    if (box !== null) {
      box.value = next.text;
      box.focus();
      box.setSelectionRange(next.cursor, next.cursor);
      grow(box);
    }
    change(next.text);
    setCursor(next.cursor);
    setSelected(0);
  };

  const change = (value: string) => {
    setText(value);
    chat.setDraft(key, value);
    if (value !== "") chat.typing(key, value);
    if (error !== undefined) setError(undefined);
  };

  const send = async () => {
    if (text.trim() === "") return;
    const sent = text;
    const from = key;
    change("");
    const problem = await chat.submit(sent);
    if (problem !== undefined) {
      // Give the text back so nothing typed is lost.
      if (chat.draft(from) === "") {
        chat.setDraft(from, sent);
        if (keyRef.current === from) setText(sent);
      }
      if (keyRef.current === from) setError(problem);
    }
    input.current?.focus();
  };

  const attach: Attach = (files) => {
    if (files.length === 0 || conv === undefined) return;
    if (!account) return setError(GUEST_FILES);
    // What is typed goes with the file, unless it is a command (that stays in the box).
    const cmd = text.trim() === "" ? undefined : parseComposer(text);
    const caption = cmd?.kind === "say" ? cmd : undefined;
    const problem = chat.attach(conv.key, files, caption?.text ?? "", caption?.action ?? false);
    if (problem !== undefined) setError(problem);
    else if (caption !== undefined) change("");
    else setError(undefined);
    input.current?.focus();
  };
  if (attachRef !== undefined) attachRef.current = attach;

  const onKeyDown = (ev: KeyboardEvent) => {
    if (open && !ev.isComposing) {
      const n = completion.items.length;
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        setSelected((active + (ev.key === "ArrowDown" ? 1 : n - 1)) % n);
        return;
      }
      if (ev.key === "Tab" || (ev.key === "Enter" && !ev.shiftKey)) {
        ev.preventDefault();
        take(active);
        return;
      }
      if (ev.key === "Escape") {
        ev.preventDefault();
        ev.stopPropagation();
        setClosedAt(text);
        return;
      }
    }
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send();
    } else if (ev.key === "Escape" && replying !== undefined) {
      chat.replyTo(key, undefined);
    }
  };

  const onPaste = (ev: ClipboardEvent) => {
    const data = ev.clipboardData;
    const files = [...(data?.files ?? [])];
    // Text (even text that office programs also copy as a picture) pastes as usual.
    if (files.length === 0 || data?.types.includes("text/plain")) return;
    ev.preventDefault();
    attach(files);
  };

  const target = conv === undefined ? "" : conv.name;
  const placeholder = conv === undefined
    ? "Join a room to start"
    : online
    ? `Message ${target}`
    : `Message ${target} (reconnecting…)`;
  const mine = uploads.filter((u) => u.convKey === key);
  return (
    <form
      class="composer"
      onSubmit={(ev) => {
        ev.preventDefault();
        send();
      }}
    >
      {mine.length > 0 && (
        <ul class="uploads" aria-label="Uploads" data-testid="uploads">
          {mine.map((u) => <UploadRow key={u.key} upload={u} />)}
        </ul>
      )}
      {replying !== undefined && conv !== undefined && (
        <p class="replying" data-testid="replying">
          <span>
            Replying to <bdi>{quoteOf(conv.items, replying)}</bdi>
          </span>
          <button
            type="button"
            class="small"
            aria-label="Cancel the reply"
            data-testid="reply-cancel"
            onClick={() => chat.replyTo(key, undefined)}
          >
            ×
          </button>
        </p>
      )}
      <label for="composer-input" class="sr-only">
        {conv === undefined ? "Message" : `Message ${target}`}
      </label>
      {open && (
        <ul
          id="composer-suggestions"
          class="suggestions"
          role="listbox"
          aria-label="Suggestions"
          data-testid="suggestions"
        >
          {completion.items.map((item, i) => (
            <li
              key={item.label}
              id={`suggestion-${i}`}
              role="option"
              aria-selected={i === active}
              class={`suggestion${i === active ? " active" : ""}`}
              data-testid="suggestion"
              onMouseDown={(ev) => {
                ev.preventDefault(); // keep the focus in the box
                take(i);
              }}
            >
              <span class="suggestion-label">{item.label}</span>
              {item.detail !== "" && <span class="suggestion-detail">{item.detail}</span>}
            </li>
          ))}
        </ul>
      )}
      <div class="composer-row">
        <button
          type="button"
          class="attach"
          aria-label="Attach files"
          title={account ? "Attach files (or drop them on the conversation)" : GUEST_FILES}
          disabled={conv === undefined}
          {...(account ? {} : { "aria-disabled": "true", "aria-describedby": "attach-why" })}
          data-testid="attach"
          onClick={() => account ? picker.current?.click() : setError(GUEST_FILES)}
        >
          <ClipIcon />
        </button>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          tabIndex={-1}
          data-testid="file-input"
          onChange={(e) => {
            const files = [...(e.currentTarget.files ?? [])];
            e.currentTarget.value = ""; // the same file can be picked again
            attach(files);
          }}
        />
        <textarea
          id="composer-input"
          ref={input}
          rows={1}
          value={text}
          placeholder={placeholder}
          disabled={conv === undefined}
          aria-describedby="composer-hint composer-error"
          aria-autocomplete="list"
          aria-controls={open ? "composer-suggestions" : undefined}
          aria-activedescendant={open ? `suggestion-${active}` : undefined}
          data-testid="composer"
          onInput={(e) => {
            change(e.currentTarget.value);
            setCursor(e.currentTarget.selectionStart ?? e.currentTarget.value.length);
            setSelected(0);
            grow(e.currentTarget);
          }}
          onKeyUp={(e) => {
            if (
              e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End"
            ) {
              setCursor(e.currentTarget.selectionStart ?? 0);
            }
          }}
          onClick={(e) => setCursor(e.currentTarget.selectionStart ?? 0)}
          onBlur={() => setClosedAt(text)}
          onFocus={() => setClosedAt(undefined)}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
        />
        <button
          type="submit"
          class="primary send"
          disabled={conv === undefined || !online || text.trim() === ""}
          data-testid="send"
        >
          Send
        </button>
      </div>
      <p
        id="composer-error"
        class="form-error"
        role="alert"
        data-testid="composer-error"
      >
        {error ?? ""}
      </p>
      <p id="composer-hint" class="hint composer-hint">
        Enter to send, Shift+Enter for a new line, / for commands (/help lists them), @ for names, #
        for rooms.{" "}
        <span id="attach-why">
          {account ? "Drop or paste files to attach them." : GUEST_FILES + "."}
        </span>
      </p>
    </form>
  );
}

/** One upload: its progress and Cancel, or why it failed with Retry and Dismiss. */
function UploadRow({ upload: u }: { upload: Upload }) {
  const chat = useChat();
  const progressId = `progress-${u.key}`;
  return (
    <li class={`upload ${u.status}`} data-testid="upload" data-status={u.status}>
      <ClipIcon />
      <FileName name={u.name} />
      {u.status === "uploading"
        ? (
          <>
            <span class="muted upload-numbers" id={progressId} data-testid="upload-progress">
              {progressText(u.loaded, u.size)}
            </span>
            <button
              type="button"
              class="small"
              aria-label={`Cancel uploading ${revealText(u.name)}`}
              data-testid="upload-cancel"
              onClick={() => chat.cancelUpload(u.key)}
            >
              Cancel
            </button>
            <progress
              class="upload-bar"
              max={Math.max(u.size, 1)}
              value={u.loaded}
              aria-label={`Uploading ${revealText(u.name)}`}
              aria-describedby={progressId}
            />
          </>
        )
        : (
          <>
            <span class="upload-actions">
              <button
                type="button"
                class="small"
                aria-label={`Try uploading ${revealText(u.name)} again`}
                onClick={() => chat.retryUpload(u.key)}
              >
                Retry
              </button>
              <button
                type="button"
                class="small"
                aria-label={`Dismiss ${revealText(u.name)}`}
                onClick={() => chat.cancelUpload(u.key)}
              >
                Dismiss
              </button>
            </span>
            <p class="upload-error" role="alert" data-testid="upload-error">
              Cannot upload <FileName name={u.name} inline />: {u.error ?? "it failed"}
            </p>
          </>
        )}
    </li>
  );
}
