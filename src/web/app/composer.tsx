/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The message box: Enter sends, Shift+Enter starts a new line; `/me`, `/join`, `/part` and
 * `/msg` work as in the terminal client. Each conversation keeps its own draft.
 *
 * @module
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { useChat } from "./hooks.ts";
import type { Conversation } from "./model.ts";

const drafts = new Map<string, string>();

/** Where CSS cannot size the box to its text (`field-sizing`), grow it by script. */
const cssSizes = typeof CSS !== "undefined" && CSS.supports("field-sizing", "content");
function grow(box: HTMLTextAreaElement): void {
  if (cssSizes) return;
  box.style.height = "auto";
  box.style.height = `${box.scrollHeight + 2}px`;
}

/** Props of {@linkcode Composer}. */
export interface ComposerProps {
  conv: Conversation | undefined;
  online: boolean;
}

/** The composer of the active conversation. */
export function Composer({ conv, online }: ComposerProps) {
  const chat = useChat();
  const key = conv?.key ?? "";
  const [text, setText] = useState(drafts.get(key) ?? "");
  const [error, setError] = useState<string | undefined>(undefined);
  const input = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    setText(drafts.get(key) ?? "");
    setError(undefined);
    // Follow the reader to the new conversation, except on touch screens (keyboard pop-up).
    if (!matchMedia("(pointer: coarse)").matches) input.current?.focus();
  }, [key]);

  const change = (value: string) => {
    setText(value);
    drafts.set(key, value);
    if (error !== undefined) setError(undefined);
  };

  const send = async () => {
    if (text.trim() === "") return;
    const sent = text;
    change("");
    const problem = await chat.submit(sent);
    if (problem !== undefined) {
      // Give the text back so nothing typed is lost.
      if ((drafts.get(key) ?? "") === "") change(sent);
      setError(problem);
    }
    input.current?.focus();
  };

  const onKeyDown = (ev: KeyboardEvent) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send();
    }
  };

  const target = conv === undefined ? "" : conv.kind === "room" ? conv.name : conv.name;
  const placeholder = conv === undefined
    ? "Join a room to start"
    : online
    ? `Message ${target}`
    : `Message ${target} (reconnecting…)`;
  return (
    <form
      class="composer"
      onSubmit={(ev) => {
        ev.preventDefault();
        send();
      }}
    >
      <label for="composer-input" class="sr-only">
        {conv === undefined ? "Message" : `Message ${target}`}
      </label>
      <div class="composer-row">
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
        Enter to send, Shift+Enter for a new line. /me, /join #room, /msg name text.
      </p>
    </form>
  );
}
