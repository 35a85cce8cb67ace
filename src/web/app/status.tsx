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
import type { LinkStatus } from "./model.ts";

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

/** The banner shown while the link is down. */
export function StatusBanner({ link }: { link: LinkStatus }) {
  const chat = useChat();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (link.kind !== "waiting") return;
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, [link]);
  if (link.kind === "online" || link.kind === "offline") return null;
  const seconds = link.kind === "waiting" ? Math.max(0, Math.ceil((link.retryAt - now) / 1000)) : 0;
  return (
    <div class="status-banner" data-testid="reconnect-banner">
      <span class="status-dot" aria-hidden="true" />
      {link.kind === "waiting"
        ? (
          <p>
            Disconnected ({link.reason}).{" "}
            <span aria-hidden="true">
              {seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…"}
            </span>
          </p>
        )
        : <p>Connecting to the server…</p>}
      {link.kind === "waiting" && (
        <button
          type="button"
          class="small"
          onClick={() => chat.retryNow()}
        >
          Retry now
        </button>
      )}
    </div>
  );
}
