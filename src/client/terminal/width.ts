/**
 * How many terminal columns text takes: East Asian wide and fullwidth characters and emoji
 * take 2, combining marks and other zero-width characters 0, the rest 1. Counted per grapheme
 * cluster (what a terminal draws in one place), ANSI style sequences skipped.
 *
 * @module
 */

/** ANSI CSI and OSC sequences (styles, cursor moves): they take no columns. */
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

const ZERO = /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}\u200b\u1160-\u11ff]/u;
const EMOJI = /\p{Emoji_Presentation}|\p{Extended_Pictographic}\ufe0f|\p{Regional_Indicator}/u;

/** Code point ranges East Asian Width W or F (the main blocks). */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x231a, 0x231b],
  [0x2329, 0x232a],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x16fe0, 0x16fe4],
  [0x17000, 0x18cff],
  [0x1b000, 0x1b2ff],
  [0x1f300, 0x1f64f],
  [0x1f900, 0x1f9ff],
  [0x20000, 0x3fffd],
];

const segmenter = new Intl.Segmenter();

/** The columns one grapheme cluster takes. */
function clusterWidth(cluster: string): number {
  if (EMOJI.test(cluster)) return 2;
  const cp = cluster.codePointAt(0)!;
  if (ZERO.test(cluster)) {
    // A cluster starting with a zero-width character can still carry a visible one after it.
    return [...cluster].some((c) => !ZERO.test(c)) ? 1 : 0;
  }
  for (const [lo, hi] of WIDE) {
    if (cp < lo) break;
    if (cp <= hi) return 2;
  }
  return 1;
}

/**
 * The display width of `text`, in terminal columns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { displayWidth } from "./width.ts";
 * assert.equal(displayWidth("abc"), 3);
 * assert.equal(displayWidth("漢字"), 4);
 * assert.equal(displayWidth("🎉"), 2);
 * assert.equal(displayWidth("cafe\u0301"), 4);
 * assert.equal(displayWidth("\x1b[1mx\x1b[22m"), 1);
 * ```
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of segmenter.segment(text.replace(ANSI, ""))) {
    width += clusterWidth(segment);
  }
  return width;
}

/**
 * Where the cursor is after `text` is written from the start of a row `columns` wide: the row
 * (0 for the first) and the column. A wide character that does not fit at the end of a row
 * goes to the next one, as terminals do; text that exactly fills a row leaves the cursor at
 * the start of the next (as the line editor forces).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cursorAfter } from "./width.ts";
 * assert.deepEqual(cursorAfter("abcde", 4), { row: 1, column: 1 });
 * assert.deepEqual(cursorAfter("abcd", 4), { row: 1, column: 0 });
 * assert.deepEqual(cursorAfter("abc漢", 4), { row: 1, column: 2 });
 * ```
 */
export function cursorAfter(text: string, columns: number): { row: number; column: number } {
  const cols = Math.max(1, columns);
  let row = 0;
  let column = 0;
  for (const { segment } of segmenter.segment(text.replace(ANSI, ""))) {
    const w = Math.min(clusterWidth(segment), cols);
    if (column + w > cols) {
      row++;
      column = 0;
    }
    column += w;
    if (column === cols) {
      row++;
      column = 0;
    }
  }
  return { row, column };
}
