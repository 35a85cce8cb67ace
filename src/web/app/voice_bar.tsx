/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The voice bar under a room's header: Join voice, or (in it) Leave, Mute, Deafen and
 * push-to-talk with its key; and who is in the room's voice, each with a speaking dot and, for
 * the others, a volume slider.
 *
 * @module
 */

import { useEffect, useReducer } from "preact/hooks";
import type { Chat } from "./chat.ts";
import { useChat, useChatState } from "./hooks.ts";
import { VoiceClient } from "./voice.ts";

const clients = new WeakMap<Chat, VoiceClient>();

/** The page's voice controller (one per chat). */
export function voiceOf(chat: Chat): VoiceClient {
  let client = clients.get(chat);
  if (client === undefined) {
    client = new VoiceClient(chat.voicePort, () => chat.store.state.me);
    clients.set(chat, client);
  }
  return client;
}

/** A key's name as people say it (`Backquote` → `` ` ``, `KeyV` → `V`). */
function keyLabel(code: string): string {
  if (code === "Backquote") return "`";
  if (code.startsWith("Key")) return code.slice(3);
  if (code.startsWith("Digit")) return code.slice(5);
  return code;
}

/**
 * Follows a link to a room's voice (`/#voice=%23ops`, as `/voice` prints it): once online, joins
 * and shows the room, whose bar then offers Join voice (the browser asks for the microphone only
 * after that click). Also ends this page's media when the chat connection drops (the server
 * ended the session's voice with it).
 */
export function VoiceLink() {
  const chat = useChat();
  const state = useChatState();
  const online = state.link.kind === "online";
  useEffect(() => {
    if (!online) voiceOf(chat).disconnected();
  }, [online]);
  useEffect(() => {
    const m = /^#voice=(.+)$/.exec(location.hash);
    if (!online || m === null) return;
    history.replaceState(null, "", location.pathname + location.search);
    void chat.join(decodeURIComponent(m[1]!));
  }, [online]);
  return null;
}

/** The voice bar of room `room`. */
export function VoiceBar({ room }: { room: string }) {
  const chat = useChat();
  const state = useChatState();
  const voice = voiceOf(chat);
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => voice.subscribe(() => bump(undefined)), [voice]);
  const online = state.link.kind === "online";
  useEffect(() => {
    if (online) void voice.refresh(room);
  }, [room, online]);
  const view = voice.view;
  const here = view.room?.toLowerCase() === room.toLowerCase();
  const people = view.participants[room.toLowerCase()] ?? [];
  const speaking = new Set(view.speaking);

  return (
    <section class="voice-bar" aria-label={`Voice in ${room}`} data-testid="voice-bar">
      <div class="voice-controls">
        {here
          ? (
            <>
              <button
                type="button"
                class="voice-button leave"
                data-testid="voice-leave"
                onClick={() => void voice.leave()}
              >
                Leave voice
              </button>
              <button
                type="button"
                class="voice-button"
                aria-pressed={view.muted}
                data-testid="voice-mute"
                onClick={() => voice.setMuted(!view.muted)}
              >
                {view.muted ? "Unmute" : "Mute"}
              </button>
              <button
                type="button"
                class="voice-button"
                aria-pressed={view.deafened}
                data-testid="voice-deafen"
                onClick={() => voice.setDeafened(!view.deafened)}
              >
                {view.deafened ? "Undeafen" : "Deafen"}
              </button>
              <label class="voice-ptt">
                <input
                  type="checkbox"
                  checked={view.pushToTalk}
                  data-testid="voice-ptt"
                  onChange={(ev) => voice.setPushToTalk(ev.currentTarget.checked)}
                />
                Push to talk
              </label>
              {view.pushToTalk && (
                <button
                  type="button"
                  class="voice-button key"
                  data-testid="voice-ptt-key"
                  title="Press to pick another key"
                  onKeyDown={(ev) => {
                    if (ev.code === "Tab" || ev.code === "Escape") return;
                    ev.preventDefault();
                    voice.setPushToTalk(true, ev.code);
                  }}
                >
                  Hold {keyLabel(view.pttKey)}
                </button>
              )}
              {view.joining && <span class="voice-note">Connecting…</span>}
            </>
          )
          : (
            <button
              type="button"
              class="voice-button join"
              data-testid="voice-join"
              disabled={!online}
              onClick={() => void voice.join(room)}
            >
              Join voice
            </button>
          )}
      </div>
      {people.length > 0 && (
        <ul class="voice-people" aria-label={`In voice in ${room}`}>
          {people.map((p) => (
            <li
              key={p.name}
              class={`voice-person${speaking.has(p.name) ? " speaking" : ""}`}
              data-testid="voice-person"
              data-name={p.name}
              data-speaking={speaking.has(p.name) ? "true" : "false"}
            >
              <span class="voice-dot" aria-hidden="true" />
              <span class="voice-name">{p.name}</span>
              {(p.muted || p.deafened) && (
                <span class="voice-state">
                  {[
                    p.silenced ? "muted by an operator" : p.muted ? "muted" : "",
                    p.deafened ? "deafened" : "",
                  ]
                    .filter((s) => s !== "").join(", ")}
                </span>
              )}
              {speaking.has(p.name) && <span class="sr-only">speaking</span>}
              {here && p.name !== state.me && (
                <input
                  type="range"
                  min={0}
                  max={100}
                  value={Math.round((view.volumes[p.name] ?? 1) * 100)}
                  aria-label={`Volume of ${p.name}`}
                  data-testid="voice-volume"
                  onInput={(ev) => voice.setVolume(p.name, Number(ev.currentTarget.value) / 100)}
                />
              )}
            </li>
          ))}
        </ul>
      )}
      {view.error !== undefined && (
        <p class="voice-error" role="alert" data-testid="voice-error">{view.error}</p>
      )}
    </section>
  );
}
