import assert from "node:assert/strict";
import { type LineEvent, LineSplitter } from "../src/protocol/line_splitter.ts";

const encoder = new TextEncoder();

/** Feeds every chunk in order and returns all events, checking the buffer bound after each. */
function feed(splitter: LineSplitter, maxLine: number, ...chunks: Uint8Array[]): LineEvent[] {
  const events: LineEvent[] = [];
  for (const chunk of chunks) {
    events.push(...splitter.push(chunk));
    assert.ok(
      splitter.buffered <= maxLine + 1,
      `buffered ${splitter.buffered} exceeds maxLine + 1 = ${maxLine + 1}`,
    );
  }
  return events;
}

/** Splits bytes into one chunk per byte. */
function bytewise(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (byte) => Uint8Array.of(byte));
}

/** Splits bytes into chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

Deno.test("LineSplitter constructor rejects a maxLine below 1", () => {
  assert.throws(() => new LineSplitter(0), RangeError);
  assert.throws(() => new LineSplitter(Number.NaN), RangeError);
});

Deno.test("LineSplitter.push() reassembles several lines fed one byte at a time", () => {
  const splitter = new LineSplitter(64);
  const events = feed(splitter, 64, ...bytewise(encoder.encode("alpha\nbeta\r\ngamma\n")));
  assert.deepEqual(events, [{ line: "alpha" }, { line: "beta" }, { line: "gamma" }]);
  assert.equal(splitter.buffered, 0);
});

Deno.test("LineSplitter.push() holds an unfinished line until its newline arrives", () => {
  const splitter = new LineSplitter(64);
  assert.deepEqual(feed(splitter, 64, encoder.encode("one\ntw")), [{ line: "one" }]);
  assert.equal(splitter.buffered, 2);
  assert.deepEqual(feed(splitter, 64, encoder.encode("o\n")), [{ line: "two" }]);
  assert.equal(splitter.buffered, 0);
});

Deno.test("LineSplitter.push() accepts both CRLF and LF endings", () => {
  const splitter = new LineSplitter(64);
  const events = feed(splitter, 64, encoder.encode("a\r\nb\nc\r\n"));
  assert.deepEqual(events, [{ line: "a" }, { line: "b" }, { line: "c" }]);
});

Deno.test("LineSplitter.push() drops a CR split from its LF across chunks", () => {
  const splitter = new LineSplitter(64);
  const events = feed(splitter, 64, encoder.encode("hello\r"), encoder.encode("\n"));
  assert.deepEqual(events, [{ line: "hello" }]);
});

Deno.test("LineSplitter.push() keeps a CR that is not right before the LF", () => {
  const splitter = new LineSplitter(64);
  assert.deepEqual(feed(splitter, 64, encoder.encode("a\rb\n")), [{ line: "a\rb" }]);
});

Deno.test("LineSplitter.push() reassembles a character split across chunks at every offset", () => {
  for (const char of ["é", "€", "😀"]) {
    const text = `x${char}y`;
    const bytes = encoder.encode(`${text}\n`);
    const charBytes = encoder.encode(char).length;
    for (let cut = 1; cut <= charBytes + 1; cut++) {
      const splitter = new LineSplitter(64);
      const events = feed(splitter, 64, bytes.subarray(0, cut), bytes.subarray(cut));
      assert.deepEqual(events, [{ line: text }], `${char} cut at byte ${cut}`);
    }
  }
});

Deno.test("LineSplitter.push() reassembles multi-byte characters fed one byte at a time", () => {
  const text = "café costs 5€ 😀";
  const splitter = new LineSplitter(64);
  const events = feed(splitter, 64, ...bytewise(encoder.encode(`${text}\r\n${text}\n`)));
  assert.deepEqual(events, [{ line: text }, { line: text }]);
});

Deno.test("LineSplitter.push() reports invalid UTF-8 as bad_utf8 and parses the next line", () => {
  const cases: [string, number[]][] = [
    ["stray bytes", [0xff, 0xfe]],
    ["lone continuation byte", [0x61, 0x80, 0x62]],
    ["truncated €", [0xe2, 0x82]],
    ["overlong '/'", [0xc0, 0xaf]],
    ["encoded surrogate", [0xed, 0xa0, 0x80]],
  ];
  for (const [label, bad] of cases) {
    const splitter = new LineSplitter(64);
    const events = feed(
      splitter,
      64,
      Uint8Array.of(...bad, 0x0a),
      encoder.encode("ok\n"),
    );
    assert.deepEqual(events, [{ error: "bad_utf8" }, { line: "ok" }], label);
  }
});

Deno.test("LineSplitter.push() reports a bad line split across chunks and then recovers", () => {
  const splitter = new LineSplitter(64);
  const events = feed(
    splitter,
    64,
    Uint8Array.of(0x61, 0xe2),
    Uint8Array.of(0x82),
    encoder.encode("\r\nfine €\n"),
  );
  assert.deepEqual(events, [{ error: "bad_utf8" }, { line: "fine €" }]);
});

Deno.test("LineSplitter.push() reports an overlong line in one chunk exactly once", () => {
  const splitter = new LineSplitter(8);
  const events = feed(splitter, 8, encoder.encode(`${"x".repeat(100)}\nok\n`));
  assert.deepEqual(events, [{ error: "line_too_long" }, { line: "ok" }]);
});

Deno.test("LineSplitter.push() reports an overlong line in many small chunks exactly once", () => {
  for (const size of [1, 2, 3, 7, 9, 50]) {
    const splitter = new LineSplitter(8);
    const events = feed(
      splitter,
      8,
      ...chunked(encoder.encode(`${"x".repeat(100)}\r\nok\n`), size),
    );
    assert.deepEqual(events, [{ error: "line_too_long" }, { line: "ok" }], `chunks of ${size}`);
  }
});

Deno.test("LineSplitter.buffered stays within maxLine + 1 while an overlong line streams in", () => {
  const maxLine = 16;
  const splitter = new LineSplitter(maxLine);
  const events: LineEvent[] = [];
  // Bytewise, then in larger chunks, then one huge chunk with no newline.
  events.push(...feed(splitter, maxLine, ...bytewise(encoder.encode("y".repeat(40)))));
  events.push(...feed(splitter, maxLine, ...chunked(encoder.encode("y".repeat(400)), 13)));
  events.push(...feed(splitter, maxLine, new Uint8Array(1 << 20).fill(0x79)));
  assert.equal(events.length, 0);
  assert.ok(splitter.buffered <= maxLine + 1);
  events.push(...feed(splitter, maxLine, encoder.encode("\nnext\n")));
  assert.deepEqual(events, [{ error: "line_too_long" }, { line: "next" }]);
  assert.equal(splitter.buffered, 0);
});

Deno.test("LineSplitter.push() counts maxLine in bytes, not characters", () => {
  const splitter = new LineSplitter(7);
  const events = feed(splitter, 7, encoder.encode("éééé\néé€\n"));
  assert.deepEqual(events, [{ error: "line_too_long" }, { line: "éé€" }]);
});

Deno.test("LineSplitter.push() accepts a line of exactly maxLine bytes", () => {
  const line = "12345678";
  assert.deepEqual(feed(new LineSplitter(8), 8, encoder.encode(`${line}\n`)), [{ line }]);
  assert.deepEqual(feed(new LineSplitter(8), 8, ...bytewise(encoder.encode(`${line}\n`))), [
    { line },
  ]);
});

Deno.test("LineSplitter.push() refuses a line of maxLine + 1 bytes", () => {
  const line = "123456789";
  assert.deepEqual(feed(new LineSplitter(8), 8, encoder.encode(`${line}\n`)), [
    { error: "line_too_long" },
  ]);
  assert.deepEqual(feed(new LineSplitter(8), 8, ...bytewise(encoder.encode(`${line}\n`))), [
    { error: "line_too_long" },
  ]);
});

Deno.test("LineSplitter.push() accepts a line of maxLine bytes followed by CR", () => {
  const line = "12345678";
  const bytes = encoder.encode(`${line}\r\n`);
  assert.deepEqual(feed(new LineSplitter(8), 8, bytes), [{ line }]);
  assert.deepEqual(feed(new LineSplitter(8), 8, ...bytewise(bytes)), [{ line }]);
  assert.deepEqual(feed(new LineSplitter(8), 8, bytes.subarray(0, 9), bytes.subarray(9)), [
    { line },
  ]);
});

Deno.test("LineSplitter.push() yields empty lines as empty strings", () => {
  const splitter = new LineSplitter(8);
  const events = feed(splitter, 8, encoder.encode("\n\r\n\n"));
  assert.deepEqual(events, [{ line: "" }, { line: "" }, { line: "" }]);
  assert.deepEqual(feed(splitter, 8, ...bytewise(encoder.encode("\r\n\n"))), [
    { line: "" },
    { line: "" },
  ]);
});

Deno.test("LineSplitter.push() lets the caller reuse its chunk buffer", () => {
  const splitter = new LineSplitter(64);
  const buffer = new Uint8Array(4);
  const events: LineEvent[] = [];
  for (const piece of ["ab", "cd", "\n"]) {
    buffer.fill(0);
    const bytes = encoder.encode(piece);
    buffer.set(bytes);
    events.push(...splitter.push(buffer.subarray(0, bytes.length)));
  }
  assert.deepEqual(events, [{ line: "abcd" }]);
});
