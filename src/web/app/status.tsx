/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The connection status: a pill in the top bar, and while disconnected a banner with the
 * countdown to the next attempt and a "Retry now" button.
 *
 * @module
 */

import { useEffect, useState } from "preact/hooks";
import { useChat } from "./hooks.ts";
import { bannerText } from "./model.ts";
import type { ChatState, LinkStatus } from "./model.ts";

function words(link: LinkStatus): string {
  switch (link.kind) {
    case "online":
      return "Connected";
    case "connecting":
      return link.attempt === 0 ? "Connecting…" : "Reconnecting…";
    case "waiting":
      return "Reconnecting";
    case "offline":
      return "Offline";
  }
}

/** The status pill (always shown). */
export function StatusPill({ link }: { link: LinkStatus }) {
  return (
    <span
      class={`status-pill ${link.kind}`}
      data-testid="connection-status"
      data-state={link.kind}
    >
      <span class="status-dot" aria-hidden="true" />
      <span class="status-words">{words(link)}</span>
    </span>
  );
}

/** The banner shown while the link is down: why, and when the next attempt is. */
export function StatusBanner({ state }: { state: ChatState }) {
  const chat = useChat();
  const { link, shutdown, savedApp } = state;
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (link.kind !== "waiting") return;
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, [link]);
  const text = bannerText(link, shutdown, savedApp, now);
  if (text === undefined) return null;
  const kind = shutdown?.permanent
    ? "shut-down"
    : shutdown !== undefined
    ? "restarting"
    : savedApp
    ? "saved-app"
    : "lost";
  return (
    <div class="status-banner" data-testid="reconnect-banner" data-kind={kind}>
      <span class="status-dot" aria-hidden="true" />
      <p data-testid="banner-text">{text}</p>
      {(link.kind === "waiting" || shutdown?.permanent) && (
        <button
          type="button"
          class="small"
          onClick={() => chat.retryNow()}
        >
          {shutdown?.permanent ? "Try again" : "Retry now"}
        </button>
      )}
    </div>
  );
}
