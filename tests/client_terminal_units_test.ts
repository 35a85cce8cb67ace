/**
 * Unit tests of the terminal client's pure parts: display width, name colours, dedupe,
 * completion.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cursorAfter, displayWidth } from "../src/client/terminal/width.ts";

Deno.test("displayWidth: wide characters and emoji take 2 columns, combining marks 0", () => {
  assert.equal(displayWidth("hello"), 5);
  assert.equal(displayWidth("漢字テスト"), 10);
  assert.equal(displayWidth("한국"), 4);
  assert.equal(displayWidth("ＡＢ"), 4, "fullwidth forms");
  assert.equal(displayWidth("🎉👍"), 4);
  assert.equal(displayWidth("👍🏽"), 2, "a skin tone modifier joins its emoji");
  assert.equal(displayWidth("👩‍👩‍👧"), 2, "a ZWJ sequence is one emoji");
  assert.equal(displayWidth("❤️"), 2, "text symbol with VS16");
  assert.equal(displayWidth("cafe\u0301"), 4);
  assert.equal(displayWidth("\u200b"), 0);
  assert.equal(displayWidth("\x1b[31mred\x1b[39m"), 3);
});

Deno.test("cursorAfter: wraps at the row's end, a wide character that does not fit moves down", () => {
  assert.deepEqual(cursorAfter("", 10), { row: 0, column: 0 });
  assert.deepEqual(cursorAfter("a".repeat(130), 80), { row: 1, column: 50 });
  assert.deepEqual(cursorAfter("a".repeat(80), 80), { row: 1, column: 0 });
  assert.deepEqual(cursorAfter("a".repeat(39) + "漢", 40), { row: 1, column: 2 });
  assert.deepEqual(cursorAfter("漢".repeat(70), 40), { row: 3, column: 20 });
  assert.deepEqual(cursorAfter("a".repeat(130), 200), { row: 0, column: 130 });
});
