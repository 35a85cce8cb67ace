import assert from "node:assert/strict";
import type { ServerFrame } from "../src/protocol/frames.ts";
import { formatTextEvent, parseTextLine, sanitize } from "../src/protocol/text_mode.ts";
import { throwsChatError } from "./_helpers.ts";

Deno.test("parseTextLine() turns /nick into a nick frame", () => {
  assert.deepEqual(parseTextLine("/nick alice", undefined), { type: "nick", name: "alice" });
  assert.deepEqual(parseTextLine("/NICK  bob  ", "#general"), { type: "nick", name: "bob" });
});

Deno.test("parseTextLine() turns /join into a join frame with or without '#'", () => {
  assert.deepEqual(parseTextLine("/join #ops", undefined), { type: "join", room: "#ops" });
  assert.deepEqual(parseTextLine("/join ops", undefined), { type: "join", room: "#ops" });
});

Deno.test("parseTextLine() turns /part into a part frame for the named or current room", () => {
  assert.deepEqual(parseTextLine("/part #ops", "#general"), { type: "part", room: "#ops" });
  assert.deepEqual(parseTextLine("/part ops", "#general"), { type: "part", room: "#ops" });
  assert.deepEqual(parseTextLine("/part", "#general"), { type: "part", room: "#general" });
  assert.deepEqual(parseTextLine("/leave", "#dev"), { type: "part", room: "#dev" });
});

Deno.test("parseTextLine() refuses a bare /part with no current room", () => {
  throwsChatError(() => parseTextLine("/part", undefined), "no_current_room");
});

Deno.test("parseTextLine() turns /msg into a direct send", () => {
  assert.deepEqual(parseTextLine("/msg bob hi there", "#general"), {
    type: "send",
    to: "bob",
    text: "hi there",
  });
  assert.deepEqual(parseTextLine("/msg bob   spaced  out", undefined), {
    type: "send",
    to: "bob",
    text: "spaced  out",
  });
  assert.deepEqual(parseTextLine("/dm carol yo", undefined), {
    type: "send",
    to: "carol",
    text: "yo",
  });
});

Deno.test("parseTextLine() turns /me into an action to the current room", () => {
  assert.deepEqual(parseTextLine("/me waves hello", "#general"), {
    type: "send",
    room: "#general",
    text: "waves hello",
    action: true,
  });
  throwsChatError(() => parseTextLine("/me waves", undefined), "no_current_room");
});

Deno.test("parseTextLine() turns /who into a who frame for the named or current room", () => {
  assert.deepEqual(parseTextLine("/who #ops", "#general"), { type: "who", room: "#ops" });
  assert.deepEqual(parseTextLine("/who ops", "#general"), { type: "who", room: "#ops" });
  assert.deepEqual(parseTextLine("/who", "#general"), { type: "who", room: "#general" });
  throwsChatError(() => parseTextLine("/who", undefined), "no_current_room");
});

Deno.test("parseTextLine() turns /rooms, /help and /ping into their commands", () => {
  assert.deepEqual(parseTextLine("/rooms", undefined), { type: "rooms" });
  assert.deepEqual(parseTextLine("/list", undefined), { type: "rooms" });
  assert.deepEqual(parseTextLine("/help", undefined), { type: "help" });
  assert.deepEqual(parseTextLine("/HELP", "#general"), { type: "help" });
  assert.deepEqual(parseTextLine("/ping", undefined), { type: "ping" });
});

Deno.test("parseTextLine() turns /quit into a quit frame, with a reason when given", () => {
  assert.deepEqual(parseTextLine("/quit", "#general"), { type: "quit" });
  assert.deepEqual(parseTextLine("/quit gone to lunch", "#general"), {
    type: "quit",
    reason: "gone to lunch",
  });
});

Deno.test("parseTextLine() treats logout, bye and quit alone on a line as quit", () => {
  for (const word of ["logout", "bye", "quit", "LOGOUT", "Bye", "QuIt", "  bye  ", "/QUIT"]) {
    assert.deepEqual(parseTextLine(word, "#general"), { type: "quit" }, JSON.stringify(word));
    assert.deepEqual(parseTextLine(word, undefined), { type: "quit" }, JSON.stringify(word));
  }
});

Deno.test("parseTextLine() sends a quit word inside a sentence as a message", () => {
  assert.deepEqual(parseTextLine("bye everyone", "#general"), {
    type: "send",
    room: "#general",
    text: "bye everyone",
  });
});

Deno.test("parseTextLine() sends a plain line to the current room", () => {
  assert.deepEqual(parseTextLine("hello world", "#general"), {
    type: "send",
    room: "#general",
    text: "hello world",
  });
});

Deno.test("parseTextLine() sends a line starting with // as text with one leading /", () => {
  assert.deepEqual(parseTextLine("//x", "#general"), {
    type: "send",
    room: "#general",
    text: "/x",
  });
  assert.deepEqual(parseTextLine("//nick not a command", "#ops"), {
    type: "send",
    room: "#ops",
    text: "/nick not a command",
  });
});

Deno.test("parseTextLine() returns undefined for an empty or blank line", () => {
  assert.equal(parseTextLine("", "#general"), undefined);
  assert.equal(parseTextLine("   \t ", "#general"), undefined);
  assert.equal(parseTextLine("", undefined), undefined);
});

Deno.test("parseTextLine() refuses a plain line with no current room", () => {
  throwsChatError(() => parseTextLine("hello", undefined), "no_current_room");
  throwsChatError(() => parseTextLine("//x", undefined), "no_current_room");
});

Deno.test("parseTextLine() refuses an unknown command as unknown_command", () => {
  throwsChatError(() => parseTextLine("/dance", "#general"), "unknown_command");
  throwsChatError(() => parseTextLine("/", "#general"), "unknown_command");
  throwsChatError(() => parseTextLine("/" + "z".repeat(500), "#general"), "unknown_command");
});

Deno.test("parseTextLine() refuses a command missing its argument as bad_frame", () => {
  for (const line of ["/nick", "/nick   ", "/join", "/msg", "/msg bob", "/msg bob   ", "/me"]) {
    throwsChatError(() => parseTextLine(line, "#general"), "bad_frame");
  }
});

Deno.test("formatTextEvent() renders room messages, direct messages and actions", () => {
  const base = { type: "message", id: 1, from: "alice", text: "hi", ts: 0 } as const;
  assert.equal(formatTextEvent({ ...base, room: "#general" }), "[#general] <alice> hi");
  assert.equal(formatTextEvent({ ...base, to: "bob" }), "[dm] <alice> hi");
  assert.equal(
    formatTextEvent({ ...base, room: "#general", text: "waves", action: true }),
    "[#general] * alice waves",
  );
  assert.equal(
    formatTextEvent({ ...base, to: "bob", text: "waves", action: true }),
    "[dm] * alice waves",
  );
});

Deno.test("formatTextEvent() renders every presence event", () => {
  const cases: [ServerFrame, string][] = [
    [{ type: "presence", room: "#ops", name: "bob", event: "joined" }, "* bob joined #ops"],
    [{ type: "presence", room: "#ops", name: "bob", event: "left" }, "* bob left #ops"],
    [{ type: "presence", name: "bob", event: "quit" }, "* bob quit"],
    [
      { type: "presence", name: "bob", event: "renamed", newName: "robert" },
      "* bob is now known as robert",
    ],
  ];
  for (const [frame, line] of cases) assert.equal(formatTextEvent(frame), line);
});

Deno.test("formatTextEvent() renders notice, shutdown and error lines", () => {
  assert.equal(formatTextEvent({ type: "notice", text: "welcome" }), "* welcome");
  assert.equal(
    formatTextEvent({ type: "shutdown", reason: "maintenance", permanent: false }),
    "* Server shutting down: maintenance",
  );
  assert.equal(
    formatTextEvent({ type: "error", code: "no_such_room", message: "No room named #x" }),
    "! No room named #x",
  );
});

Deno.test("formatTextEvent() returns undefined for ack, pong and welcome", () => {
  assert.equal(formatTextEvent({ type: "ack", ref: "1" }), undefined);
  assert.equal(formatTextEvent({ type: "pong" }), undefined);
  assert.equal(
    formatTextEvent({
      type: "welcome",
      server: "parley",
      version: "0.1.0",
      proto: 1,
      name: "guest-1234",
      limits: { maxLine: 16384, maxText: 4096, maxFileSize: 0, floodBurst: 30, floodRate: 10 },
    }),
    undefined,
  );
});

Deno.test("formatTextEvent() sanitizes text so one event stays one safe line", () => {
  const nasty = "a\x1b[2Jb\nc\r\nd";
  const lines = [
    formatTextEvent({ type: "message", id: 1, room: "#r", from: "eve", text: nasty, ts: 0 }),
    formatTextEvent({ type: "notice", text: nasty }),
    formatTextEvent({ type: "shutdown", reason: nasty, permanent: true }),
    formatTextEvent({ type: "error", code: "internal", message: nasty }),
  ];
  for (const line of lines) {
    assert.ok(line !== undefined);
    for (const control of ["\x1b", "\r", "\n"]) assert.equal(line.includes(control), false, line);
    assert.ok(line.endsWith("a [2Jb c  d"), line);
  }
});

Deno.test("sanitize() replaces ESC, newlines and other controls with spaces", () => {
  assert.equal(sanitize("a\x1b[31mred\x1b[0m\nnext\r"), "a [31mred [0m next ");
  assert.equal(sanitize("tab\there\x00\x7f\x9b"), "tab here   ");
  assert.equal(sanitize("plain café 😀"), "plain café 😀");
});
