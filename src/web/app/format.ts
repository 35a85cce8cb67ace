/**
 * Display helpers: times, days, avatar colours, links in message text. No DOM.
 *
 * @module
 */

import { nameKey } from "../../protocol/names.ts";
import { formatSize } from "../../protocol/text_mode.ts";
import { revealHidden } from "../../protocol/unicode.ts";

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

/**
 * The letter on a name's avatar: its first letter (a digit only when it has no letter), so a
 * guest's `guest-1234` shows G, like any other name's first letter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initial } from "./format.ts";
 * assert.equal(initial("guest-1234"), "G");
 * assert.equal(initial("_bob"), "B");
 * assert.equal(initial("42"), "4");
 * ```
 */
export function initial(name: string): string {
  return (/[A-Za-z]/.exec(name)?.[0] ?? name[0] ?? "?").toUpperCase();
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
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { segments } from "./format.ts";
 * assert.deepEqual(segments("see https://x.test."), [
 *   { kind: "text", text: "see " },
 *   { kind: "link", text: "https://x.test", href: "https://x.test" },
 *   { kind: "text", text: "." },
 * ]);
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

/** A piece of a name or a link's text: ordinary text, or one hidden character. */
export type Shown = { kind: "text"; text: string } | {
  kind: "hidden";
  /** The character itself. */
  text: string;
  /** Its code point, `U+202E`. */
  code: string;
};

/**
 * Whether `ch` (one code point) is a bidi control or an invisible character: one that
 * {@linkcode revealHidden} (the server's rule for file names) would replace.
 */
function isHidden(ch: string): boolean {
  return revealHidden(ch) !== ch;
}

function codeOf(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Splits text into ordinary runs and single hidden characters (bidi controls, zero-width and
 * other invisible characters), so a view can show each hidden one as what it is instead of
 * letting it reorder or hide the text around it.
 *
 * @example
 * ```ts
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { revealParts } from "./format.ts";
 * assert.deepEqual(revealParts("invoice\u202efdp.exe"), [
 *   { kind: "text", text: "invoice" },
 *   { kind: "hidden", text: "\u202e", code: "U+202E" },
 *   { kind: "text", text: "fdp.exe" },
 * ]);
 * ```
 */
export function revealParts(text: string): Shown[] {
  const out: Shown[] = [];
  let run = "";
  for (const ch of text) {
    if (!isHidden(ch)) {
      run += ch;
      continue;
    }
    if (run !== "") out.push({ kind: "text", text: run });
    run = "";
    out.push({ kind: "hidden", text: ch, code: codeOf(ch) });
  }
  if (run !== "") out.push({ kind: "text", text: run });
  return out;
}

/**
 * Text with each hidden character written out as `⟨U+202E⟩`: for the places that take a plain
 * string (labels, announcements, notifications).
 *
 * @example
 * ```ts
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { revealText } from "./format.ts";
 * assert.equal(revealText("invoice\u202efdp.exe"), "invoice⟨U+202E⟩fdp.exe");
 * ```
 */
export function revealText(text: string): string {
  return revealParts(text).map((p) => p.kind === "text" ? p.text : `⟨${p.code}⟩`).join("");
}

/** The name a download is saved under: hidden characters as `_`, as the server names files. */
export function saveName(name: string): string {
  return revealHidden(name.toWellFormed());
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
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { progressText } from "./format.ts";
 * assert.equal(progressText(512, 1024), "50% · 512 B of 1.0 KiB");
 * ```
 */
export function progressText(loaded: number, total: number): string {
  const percent = total > 0 ? Math.min(100, Math.floor((loaded / total) * 100)) : 100;
  return `${percent}% · ${formatSize(Math.min(loaded, total))} of ${formatSize(total)}`;
}
