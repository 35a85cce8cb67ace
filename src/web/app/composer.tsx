/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The message box: Enter sends, Shift+Enter starts a new line; `/me`, `/join`, `/part`,
 * `/msg` and the moderation commands (`/topic`, `/kick`, `/ban`, `/mute`, `/op`, `/mode`,
 * `/wall`, …) work as in the terminal client. Each conversation keeps its own draft. Files come in
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
import type { Conversation, Upload } from "./model.ts";

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
          data-testid="composer"
          onInput={(e) => {
            change(e.currentTarget.value);
            grow(e.currentTarget);
          }}
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
        Enter to send, Shift+Enter for a new line. /me, /join #room, /msg name text, /topic, /kick
        name.{" "}
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
