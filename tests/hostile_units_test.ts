// Unit tests of the pure parts of the hostile-input defences: protocol sniffing, the text
// rules, replay pages and claims, connection caps, the Origin rule.
import assert from "node:assert/strict";
import { httpAnswer, ircAnswer, sniffFirstLine } from "../src/protocol/sniff.ts";
import {
  isBlank,
  neutralizeBidi,
  revealHidden,
  textProblem,
  utf8Length,
} from "../src/protocol/unicode.ts";
import { sanitize } from "../src/protocol/text_mode.ts";
import type { HistoryFrame, MessageFrame } from "../src/protocol/frames.ts";
import { ReplayClaims, replayPages } from "../src/session/replay.ts";
import { json } from "../src/dialects/json.ts";
import { text as textDialect } from "../src/dialects/text.ts";
import { ConnectionLimits } from "../src/server/limits.ts";
import { fromLocalAdmin, originAllowed } from "../src/server/http.ts";

const decoder = new TextDecoder();

Deno.test("sniffFirstLine() knows HTTP request lines and IRC registration, nothing else", () => {
  for (
    const line of [
      "GET / HTTP/1.1",
      "POST /files HTTP/1.0",
      "PRI * HTTP/2.0",
      "M-SEARCH * HTTP/1.1",
    ]
  ) {
    assert.equal(sniffFirstLine(line), "http", line);
  }
  for (
    const line of [
      "CAP LS 302",
      "NICK alice",
      "USER a 0 * :b",
      "PASS secret",
      "PASS",
      "@t=1 CAP LS",
    ]
  ) {
    assert.equal(sniffFirstLine(line), "irc", line);
  }
  for (
    const line of [
      "hello",
      "GET me a coffee",
      "get / http/1.1",
      "nick alice",
      "NICKNAME",
      "/nick alice",
      '{"type":"hello"}',
      "",
    ]
  ) {
    assert.equal(sniffFirstLine(line), undefined, line);
  }
});

Deno.test("httpAnswer() redirects GET to the web port, refuses the rest, never echoes a bad Host", () => {
  const web = { port: 8080, secure: true };
  const get = httpAnswer("GET /x HTTP/1.1", "chat.example:5000", web);
  assert.match(get, /^HTTP\/1\.1 301 Moved Permanently\r\n/);
  assert.match(get, /\r\nlocation: https:\/\/chat\.example:8080\/\r\n/);
  assert.match(get, /\r\nconnection: close\r\n/);
  const [head, body] = get.split("\r\n\r\n");
  assert.equal(
    Number(/content-length: (\d+)/.exec(head!)![1]),
    new TextEncoder().encode(body).length,
  );
  assert.match(httpAnswer("POST / HTTP/1.1", "a:1", web), /^HTTP\/1\.1 400 /);
  const evil = httpAnswer("GET / HTTP/1.1", "evil\r\nset-cookie: x", web);
  assert.match(evil, /^HTTP\/1\.1 400 /, "a Host that is not a host name is not redirected to");
  assert.doesNotMatch(evil, /evil/);
  assert.match(httpAnswer("GET / HTTP/1.1", "a", undefined), /has no web port/);
  assert.ok(httpAnswer("HEAD / HTTP/1.1", "a", web).endsWith("\r\n\r\n"), "HEAD has no body");
  assert.match(ircAnswer(), /^ERROR :Closing link: .*\r\n$/);
  assert.match(ircAnswer(6667), /port 6667/);
});

Deno.test("textProblem() refuses what no store keeps whole; isBlank() sees through invisibles", () => {
  for (const ok of ["plain", "tab\tand\nnewline", "émoji 🎉", "\u202eoverride is text"]) {
    assert.equal(textProblem(ok), undefined, JSON.stringify(ok));
  }
  for (const bad of ["\u0000", "a\rb", "esc\x1b[2J", "del\x7f", "c1\u0085", "\ud800", "x\udfffy"]) {
    assert.notEqual(textProblem(bad), undefined, JSON.stringify(bad));
  }
  for (const blank of ["", " ", "\t\n", "\u200b", "\u3164", "\u2800", "\u202e ", "\ufeff\u00a0"]) {
    assert.equal(isBlank(blank), true, JSON.stringify(blank));
  }
  assert.equal(isBlank(" . "), false);
  assert.equal(neutralizeBidi("a\u2066b\u2069"), "a\ufffdb\ufffd");
  assert.equal(sanitize("x\u202ey\nz"), "x\ufffdy z");
  assert.equal(revealHidden("in\u202evoice\u200b.pdf"), "in_voice_.pdf");
});

Deno.test("utf8Length() counts the bytes TextEncoder writes, lone surrogates as U+FFFD", () => {
  const encoder = new TextEncoder();
  const texts = ["", "ascii", "\u007f\u0080", "é\u07ff\u0800", "€\uffff", "🎉", "a🎉b\u{10ffff}"];
  texts.push("\ud800", "x\udfffy", "\udc00\ud800", "🎉".slice(0, 1) + "z", "end\ud83c");
  for (const text of texts) {
    assert.equal(utf8Length(text), encoder.encode(text).length, JSON.stringify(text));
  }
});

function message(id: number, text: string): MessageFrame {
  return { type: "message", id, room: "#a", from: "bob", text, ts: 0 };
}

function waiting(id: number, text: string): MessageFrame {
  return { type: "message", id, to: "me", from: "bob", text, ts: 0, offline: true };
}

Deno.test("replayPages() splits a large history into frames under the page size, oldest first", () => {
  const messages = Array.from({ length: 50 }, (_, i) => message(i + 1, '"'.repeat(1000)));
  const history: HistoryFrame = { type: "history", room: "#a", messages, more: true };
  const pages = [...replayPages([history], json, 16 * 1024)];
  assert.ok(pages.length >= 6, `${pages.length} pages`);
  const frames = pages.flatMap((p) =>
    decoder.decode(p.bytes).trimEnd().split("\n").map((l) => JSON.parse(l))
  );
  for (const page of pages) assert.ok(page.bytes.length <= 16 * 1024);
  assert.deepEqual(
    frames.flatMap((f) => f.messages.map((m: MessageFrame) => m.id)),
    messages.map((m) => m.id),
  );
  assert.equal(frames[0].more, true, "the oldest page says what the whole said");
  assert.ok(frames.every((f) => f.type === "history" && f.room === "#a" && f.more === true));
});

Deno.test("replayPages() keeps one header in text mode and marks the waiting messages of each page", () => {
  const history: HistoryFrame = {
    type: "history",
    room: "#a",
    messages: [message(1, "one"), message(2, "two")],
    more: false,
  };
  const dms = [3, 4, 5].map((id) => waiting(id, "x".repeat(300)));
  const pages = [...replayPages([history, ...dms], textDialect, 400)];
  const text = pages.map((p) => decoder.decode(p.bytes)).join("");
  assert.equal(text.match(/\* History of #a/g)?.length, 1);
  assert.deepEqual(pages.flatMap((p) => p.waiting), [3, 4, 5]);
  assert.ok(pages.length >= 3, "a page of about 400 bytes holds one 300-byte DM");
});

Deno.test("ReplayClaims counts claims per account and message", () => {
  const claims = new ReplayClaims();
  claims.claim(1, [10, 11]);
  claims.claim(1, [10]);
  assert.equal(claims.has(1, 10), true);
  assert.equal(claims.has(2, 10), false);
  claims.release(1, [10, 11]);
  assert.equal(claims.has(1, 10), true, "another session still replays it");
  assert.equal(claims.has(1, 11), false);
  claims.release(1, [10]);
  assert.equal(claims.has(1, 10), false);
});

Deno.test("ConnectionLimits: total, per IP (loopback exempt unless limited), rate, release once", () => {
  const limits = new ConnectionLimits({
    maxConns: 3,
    maxConnsPerIp: 2,
    connRate: 2,
    connWindowMs: 60_000,
    limitLoopback: false,
  });
  const a = limits.admit("10.0.0.1");
  const b = limits.admit("10.0.0.1");
  assert.ok(!("reason" in a) && !("reason" in b));
  assert.equal((limits.admit("10.0.0.1") as { kind: string }).kind, "per_ip");
  const local = limits.admit("127.0.0.1");
  assert.ok(!("reason" in local), "loopback is exempt from the per-IP cap");
  assert.equal((limits.admit("10.0.0.2") as { kind: string }).kind, "full");
  assert.equal(limits.open, 3);
  a.release();
  a.release();
  assert.equal(limits.open, 2, "release is idempotent");
  assert.equal((limits.admit("10.0.0.1") as { kind: string }).kind, "rate", "2 new in the window");
});

Deno.test("originAllowed() trusts the page's own origin only where DNS cannot be rebound", () => {
  const ws = (origin: string | undefined, host: string) =>
    new Request("http://x/ws", { headers: origin === undefined ? { host } : { origin, host } });
  assert.equal(originAllowed(ws(undefined, "anything"), []), true, "not a browser");
  assert.equal(originAllowed(ws("http://localhost:8080", "localhost:8080"), []), true);
  assert.equal(originAllowed(ws("http://127.0.0.1:8080", "127.0.0.1:8080"), []), true);
  assert.equal(originAllowed(ws("http://[::1]:8080", "[::1]:8080"), []), true);
  assert.equal(originAllowed(ws("http://192.168.1.5:8080", "192.168.1.5:8080"), []), true);
  assert.equal(originAllowed(ws("http://evil.example:8080", "evil.example:8080"), []), false);
  assert.equal(originAllowed(ws("http://127.0.0.1:9999", "127.0.0.1:8080"), []), false);
  assert.equal(
    originAllowed(ws("https://chat.example", "chat.example"), ["https://chat.example"]),
    true,
  );
  assert.equal(originAllowed(ws("null", "127.0.0.1:8080"), []), false);
});

Deno.test("fromLocalAdmin(): loopback without proxy headers only", () => {
  const req = (headers: Record<string, string> = {}) =>
    new Request("http://x/healthz", { headers });
  assert.equal(fromLocalAdmin(req(), "127.0.0.1"), true);
  assert.equal(fromLocalAdmin(req(), "::1"), true);
  assert.equal(fromLocalAdmin(req(), "10.1.1.1"), false);
  assert.equal(fromLocalAdmin(req({ "x-forwarded-for": "1.2.3.4" }), "127.0.0.1"), false);
  assert.equal(fromLocalAdmin(req({ forwarded: "for=1.2.3.4" }), "127.0.0.1"), false);
});
