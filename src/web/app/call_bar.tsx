/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * Direct calls in the page: the Call button of a direct conversation, and the banner of the call
 * ringing here (Accept, Decline), being placed (Cancel) or under way (Mute, Hang up).
 *
 * @module
 */

import { useEffect, useReducer } from "preact/hooks";
import { useChat, useChatState } from "./hooks.ts";
import type { VoiceClient } from "./voice.ts";
import { voiceOf } from "./voice_bar.tsx";

function useVoice(): VoiceClient {
  const voice = voiceOf(useChat());
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => voice.subscribe(() => bump(undefined)), [voice]);
  return voice;
}

/** The Call button of the direct conversation with `name`. */
export function CallButton({ name }: { name: string }) {
  const voice = useVoice();
  const state = useChatState();
  const busy = voice.view.call !== undefined;
  return (
    <div class="voice-bar call-start">
      <button
        type="button"
        class="voice-button join"
        data-testid="call-start"
        disabled={busy || state.link.kind !== "online"}
        onClick={() => void voice.call(name)}
      >
        Call {name}
      </button>
      {voice.view.callNote !== undefined && (
        <span class="voice-note" data-testid="call-note">{voice.view.callNote}</span>
      )}
    </div>
  );
}

/** The banner of this page's call, if any. */
export function CallBanner() {
  const voice = useVoice();
  const call = voice.view.call;
  if (call === undefined) return null;
  return (
    <section
      class="call-banner"
      role={call.state === "incoming" ? "alert" : "status"}
      data-testid="call-banner"
      data-state={call.state}
    >
      {call.state === "incoming" && (
        <>
          <span>{call.with} is calling you</span>
          <button
            type="button"
            class="voice-button join"
            data-testid="call-accept"
            onClick={() => void voice.acceptCall()}
          >
            Accept
          </button>
          <button
            type="button"
            class="voice-button"
            data-testid="call-decline"
            onClick={() => voice.declineCall()}
          >
            Decline
          </button>
        </>
      )}
      {call.state !== "incoming" && (
        <>
          <span>
            {call.state === "outgoing" ? `Calling ${call.with}…` : `In a call with ${call.with}`}
          </span>
          {call.state === "active" && (
            <button
              type="button"
              class="voice-button"
              aria-pressed={voice.view.muted}
              data-testid="call-mute"
              onClick={() => voice.setMuted(!voice.view.muted)}
            >
              {voice.view.muted ? "Unmute" : "Mute"}
            </button>
          )}
          <button
            type="button"
            class="voice-button leave"
            data-testid="call-hangup"
            onClick={() => voice.hangUp()}
          >
            {call.state === "outgoing" ? "Cancel" : "Hang up"}
          </button>
        </>
      )}
    </section>
  );
}
