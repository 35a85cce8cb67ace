/**
 * Which characters a message may hold, and how text is made safe to show: the rules shared by
 * the server (what it stores), text mode (what it sends to terminals), the terminal client and
 * file names.
 *
 * @module
 */

// deno-lint-ignore-file no-control-regex

/**
 * Control characters a message may not contain: C0 controls other than tab and newline, DEL,
 * and C1 controls. They have no meaning in chat, terminals execute some of them, and a NUL
 * would be cut off by some stores and clients.
 */
const FORBIDDEN_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** Explicit bidirectional formatting characters: embeddings, overrides and isolates. */
const BIDI_CHARS = "\u202a-\u202e\u2066-\u2069";

/**
 * Characters that render as nothing: soft hyphen, combining grapheme joiner, zero-width space,
 * joiners, word joiner and the invisible operators, the deprecated format controls, BOM,
 * Mongolian vowel separator, the left-to-right/right-to-left and Arabic marks, and the fillers
 * that impersonate blank text (Hangul fillers, braille blank).
 */
const INVISIBLE_CHARS =
  "\u00ad\u034f\u200b-\u200f\u2060-\u2064\u206a-\u206f\ufeff\u180e\u061c\u115f\u1160\u3164\uffa0\u2800";

const BIDI = new RegExp(`[${BIDI_CHARS}]`, "g");
const HIDDEN = new RegExp(`[${BIDI_CHARS}${INVISIBLE_CHARS}]`, "g");
/** A character that shows: not white space, not hidden. One test, no copy of the text. */
const VISIBLE = new RegExp(`[^\\s${BIDI_CHARS}${INVISIBLE_CHARS}]`);

/**
 * Why `text` cannot be a message, or `undefined` when it can: it must be well-formed UTF-16
 * (no lone surrogates, which no UTF-8 store can keep) and hold no control character but tab
 * and newline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { textProblem } from "./unicode.ts";
 * assert.equal(textProblem("hello\nworld"), undefined);
 * assert.match(textProblem("nul\u0000byte")!, /control character U\+0000/);
 * assert.match(textProblem("\ud800")!, /surrogate/);
 * ```
 */
export function textProblem(text: string): string | undefined {
  const control = FORBIDDEN_CONTROLS.exec(text);
  if (control !== null) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
    return `it contains the control character U+${code}`;
  }
  if (!text.isWellFormed()) return "it contains a lone surrogate (invalid UTF-16)";
  return undefined;
}

/**
 * Whether `text` shows nothing: only white space, invisible characters and bidi controls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isBlank } from "./unicode.ts";
 * assert.equal(isBlank(" \t\n\u200b\u3164"), true);
 * assert.equal(isBlank(" a "), false);
 * ```
 */
export function isBlank(text: string): boolean {
  return !VISIBLE.test(text);
}

/**
 * Replaces every bidi control with U+FFFD, so text shown to a terminal reads in the order it
 * was written (an override cannot make `exe.txt` look like `txt.exe`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { neutralizeBidi } from "./unicode.ts";
 * assert.equal(neutralizeBidi("report\u202eexe.pdf"), "report\ufffdexe.pdf");
 * ```
 */
export function neutralizeBidi(text: string): string {
  return text.replace(BIDI, "\ufffd");
}

/**
 * Replaces bidi controls and invisible characters with `_`: for names that must read as they
 * are (file names).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { revealHidden } from "./unicode.ts";
 * assert.equal(revealHidden("a\u200bb\u202ec"), "a_b_c");
 * ```
 */
export function revealHidden(text: string): string {
  return text.replace(HIDDEN, "_");
}

/**
 * The length of `text` in UTF-8 bytes, as `TextEncoder` writes it (a lone surrogate as U+FFFD,
 * 3 bytes), without encoding it.
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
    } else if (unit <= 0xdbff && unit >= 0xd800 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a surrogate pair: 4 bytes for 2 units
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}
