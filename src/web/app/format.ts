/**
 * Display helpers: times, days, avatar colours, links in message text. No DOM.
 *
 * @module
 */

import { nameKey } from "../../protocol/names.ts";

/** `HH:MM` in local time. */
export function clock(ts: number): string {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** The local calendar day of `ts`, as a key (`2026-05-01`). */
export function dayKey(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${
    String(d.getDate()).padStart(2, "0")
  }`;
}

/** "Today", "Yesterday", or the date written out. */
export function dayLabel(ts: number, now: number = Date.now()): string {
  if (dayKey(ts) === dayKey(now)) return "Today";
  if (dayKey(ts) === dayKey(now - 86_400_000)) return "Yesterday";
  return new Date(ts).toLocaleDateString(undefined, {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}

/** One of eight avatar colour classes, the same for a name in any case. */
export function avatarClass(name: string): string {
  let h = 0;
  for (const ch of nameKey(name)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `avatar-c${h % 8}`;
}

/** The letter on a name's avatar. */
export function initial(name: string): string {
  return (name.replace(/^guest-/, "")[0] ?? "?").toUpperCase();
}

/** A piece of message text: plain, or a web link. */
export type Segment = { kind: "text"; text: string } | {
  kind: "link";
  text: string;
  href: string;
};

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

/**
 * Splits text into plain parts and `http(s)` links (trailing punctuation stays text), so the
 * view can render links as elements and everything else as text nodes.
 *
 * @example
 * ```ts
 * import { segments } from "./format.ts";
 * console.assert(segments("see https://x.test.").length === 3);
 * ```
 */
export function segments(text: string): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    const trail = /[.,;:!?)\]]+$/.exec(url);
    if (trail !== null) url = url.slice(0, -trail[0].length);
    if (m.index > at) out.push({ kind: "text", text: text.slice(at, m.index) });
    out.push({ kind: "link", text: url, href: url });
    at = m.index + url.length;
  }
  if (at < text.length) out.push({ kind: "text", text: text.slice(at) });
  return out;
}

/** A byte count for people: `512 B`, `2.0 KiB`, `1.5 MiB`, `3.2 GiB`. */
export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let n = bytes / 1024;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n.toFixed(1)} ${units[unit]}`;
}

/** The image types shown inline as thumbnails (what every browser decodes; never SVG). */
export const THUMBNAIL_TYPES: ReadonlySet<string> = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
]);

/** The largest image fetched for a thumbnail; bigger ones only offer the download. */
export const THUMBNAIL_MAX_BYTES = 10 * 1024 * 1024;

/** Whether an attached file is shown inline as a thumbnail. */
export function hasThumbnail(file: { type: string; size: number }): boolean {
  return THUMBNAIL_TYPES.has(file.type.toLowerCase()) && file.size <= THUMBNAIL_MAX_BYTES;
}

/**
 * An upload's progress for people: `45% · 1.2 MiB of 2.6 MiB`.
 *
 * @example
 * ```ts
 * import { progressText } from "./format.ts";
 * console.assert(progressText(512, 1024) === "50% · 512 B of 1.0 KiB");
 * ```
 */
export function progressText(loaded: number, total: number): string {
  const percent = total > 0 ? Math.min(100, Math.floor((loaded / total) * 100)) : 100;
  return `${percent}% · ${fileSize(Math.min(loaded, total))} of ${fileSize(total)}`;
}
