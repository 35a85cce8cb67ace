/// <reference lib="dom" />
/**
 * The browser features the controller uses beside the WebSocket: desktop notifications and
 * file downloads.
 *
 * @module
 */

import type { FileRef } from "../../protocol/frames.ts";

/** Whether this browser has notifications and they are allowed for the page. */
export function notificationsAllowed(): boolean {
  return "Notification" in globalThis && Notification.permission === "granted";
}

/**
 * Asks the browser's permission to notify (a prompt the first time).
 *
 * @returns why notifications cannot be used, or undefined when they can
 */
export async function requestNotifications(): Promise<string | undefined> {
  if (!("Notification" in globalThis)) return "This browser cannot show notifications";
  const permission = Notification.permission === "granted"
    ? "granted"
    : await Notification.requestPermission();
  return permission === "granted"
    ? undefined
    : "Notifications are blocked: allow them in the browser's site settings";
}

/** Shows a desktop notification; clicking it focuses the tab and calls `onClick`. */
export function notify(title: string, body: string, tag: string, onClick: () => void): void {
  if (!notificationsAllowed()) return;
  try {
    const n = new Notification(title, {
      body: body.length > 200 ? `${body.slice(0, 200)}…` : body,
      tag,
    });
    n.onclick = () => {
      focus();
      onClick();
      n.close();
    };
  } catch {
    // Some platforms only allow notifications from a service worker: nothing to do.
  }
}

/**
 * Downloads an attached file: fetched with the session token (the server checks who may read
 * it), its SHA-256 checked, then saved through a temporary object URL.
 *
 * @throws {Error} when the server refuses or the content does not match its checksum
 */
export async function downloadFile(file: FileRef, token: string): Promise<void> {
  const res = await fetch(`/files/${encodeURIComponent(file.id)}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({})) as { message?: string };
    throw new Error(body.message ?? `HTTP ${res.status}`);
  }
  const blob = await res.blob();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (file.sha256 !== "" && hex !== file.sha256.toLowerCase()) {
    throw new Error("the file arrived damaged (checksum mismatch)");
  }
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = file.name;
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
