/**
 * Unit tests of the terminal client's pure parts: display width, name colours, dedupe,
 * completion.
 *
 * @module
 */

import assert from "node:assert/strict";
import { complete, SeenIds } from "../src/client/terminal/complete.ts";
import { Formatter, mentions, NAME_PALETTE, nameColor } from "../src/client/terminal/format.ts";
import { parseClientArgs } from "../src/cli/client_cmd.ts";
import { cursorAfter, displayWidth } from "../src/client/terminal/width.ts";
import { KnownMessages, typingTarget, Typists } from "../src/client/terminal/known.ts";
import { exchange } from "../src/client/core/frames.ts";

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

Deno.test("nameColor: a name keeps its colour, whatever its case, and names spread over the palette", () => {
  assert.equal(nameColor("alice"), nameColor("alice"));
  assert.equal(nameColor("Alice"), nameColor("ALICE"));
  assert.ok(NAME_PALETTE.includes(nameColor("bob")));
  const names = Array.from({ length: 50 }, (_, i) => `user${i}`);
  assert.ok(new Set(names.map(nameColor)).size >= 5, "at least 5 colours over 50 names");
  const f = new Formatter(true, () => 0);
  const a = f.message({ room: "#r", from: "alice", text: "x", ts: 0 }).text;
  const b = f.message({ room: "#r", from: "alice", text: "y", ts: 0 }).text;
  assert.ok(a.includes(`\x1b[1;${nameColor("alice")}m<alice>`), a);
  assert.equal(a.slice(0, a.indexOf("<alice>")), b.slice(0, b.indexOf("<alice>")));
  const plain = new Formatter(false, () => 0).message({
    room: "#r",
    from: "alice",
    text: "x",
    ts: 0,
  });
  assert.ok(!plain.text.includes("\x1b"), "no colour when colours are off (NO_COLOR)");
});

Deno.test("mentions: your name as a word is highlighted, and rings only with the bell option", () => {
  assert.equal(mentions("hey alice, look", "Alice"), true);
  assert.equal(mentions("@alice", "alice"), true);
  assert.equal(mentions("malice aforethought", "alice"), false);
  assert.equal(mentions("alice2 is here", "alice"), false);
  const m = { room: "#r", from: "bob", text: "hi alice", ts: 0 };
  const quiet = new Formatter(true, () => 0).message(m, "alice");
  assert.ok(quiet.text.includes("\x1b[1;33mhi alice"), quiet.text);
  assert.equal(quiet.bell, undefined);
  assert.equal(new Formatter(true, () => 0, { bell: true }).message(m, "alice").bell, true);
  assert.equal(
    new Formatter(true, () => 0, { bell: true }).message({ ...m, from: "alice" }, "alice").bell,
    undefined,
    "your own messages do not ring",
  );
});

Deno.test("SeenIds: a bounded set, oldest forgotten first", () => {
  const seen = new SeenIds(3);
  assert.deepEqual(["a", "b", "a", "c", "d", "b", "a"].map((k) => seen.add(k)), [
    true,
    true,
    false,
    true,
    true,
    false,
    true,
  ]);
  assert.equal(seen.size, 3);
  const big = new SeenIds();
  for (let i = 0; i < 10_000; i++) big.add(String(i));
  assert.equal(big.size, big.limit);
});

Deno.test("complete: commands, rooms and names", () => {
  const c = {
    commands: ["/join", "/part", "/msg", "/me"],
    rooms: ["#ops", "#Offtopic"],
    names: ["bob", "Bea"],
  };
  assert.deepEqual(complete("/j", c), [["/join "], "/j"]);
  assert.deepEqual(complete("/m", c), [["/me", "/msg"], "/m"]);
  assert.deepEqual(complete("/join #o", c), [["#Offtopic", "#ops"], "#o"]);
  assert.deepEqual(complete("b", c), [["Bea", "bob"], "b"]);
  assert.deepEqual(complete("bo", c), [["bob: "], "bo"]);
  assert.deepEqual(complete("hi bo", c), [["bob "], "bo"]);
  assert.deepEqual(complete("/msg be", c), [["Bea "], "be"]);
  assert.deepEqual(complete("x", c), [[], "x"]);
});

/** The `--allow-write` folders the `client` task grants in `env` (its shell, echoing). */
async function taskWrites(env: Record<string, string>): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string = config.tasks.client;
  const m = /^sh -c '(.*)' client$/.exec(task);
  assert.ok(m, task);
  const out = await new Deno.Command("sh", {
    args: ["-c", m[1]!.replace(/^exec deno /, "printf '%s\\n' deno "), "client", "HOST"],
    clearEnv: true,
    env,
    stdout: "piped",
  }).output();
  const words = new TextDecoder().decode(out.stdout).split("\n");
  assert.equal(words.at(-2), "HOST", "the task's arguments are passed on");
  return words.find((w) => w.startsWith("--allow-write="))!.slice("--allow-write=".length)
    .split(",");
}

Deno.test("client task: write access to the token and download folders, with XDG_* set or not", async () => {
  assert.deepEqual(
    new Set(await taskWrites({ HOME: "/h" })),
    new Set([".", "/h/.config/parley", "/h/Downloads"]),
  );
  assert.deepEqual(
    new Set(await taskWrites({ HOME: "/h", XDG_CONFIG_HOME: "/c", XDG_DOWNLOAD_DIR: "/d" })),
    new Set([".", "/h/.config/parley", "/c/parley", "/h/Downloads", "/d"]),
  );
});

Deno.test("parseClientArgs(): --bell", () => {
  assert.equal(parseClientArgs(["example.org", "--bell"])?.bell, true);
  assert.equal(parseClientArgs(["example.org"])?.bell, undefined);
});

Deno.test("Formatter.message(): replies, edits, deletions and reactions read as the server's text mode", () => {
  const fmt = new Formatter(false, () => 0);
  const base = { room: "#ops", from: "bob", text: "noon", ts: 0 };
  const line = (m: Record<string, unknown>) => fmt.message({ ...base, ...m }, "alice").text;
  assert.match(line({ replyTo: 41 }), /<bob> \(re 41\) noon$/);
  assert.match(line({ edited: 5 }), /<bob> noon \(edited\)$/);
  assert.match(line({ deleted: true, text: "" }), /<bob> \(message deleted\)$/);
  assert.match(line({ reactions: { "🎉": 2, "👍": 1 } }), /<bob> noon 🎉2 👍1$/);
});

Deno.test("Formatter: a reply quotes the line it answers when known, else its id; unknown places say reply", () => {
  const fmt = new Formatter(false, () => 0);
  const known = new KnownMessages();
  fmt.quoteWith((id) => known.quote(id));
  const reply = { room: "#ops", from: "bob", text: "noon", ts: 0, replyTo: 41 };
  assert.match(fmt.message(reply, "alice").text, /<bob> \(re 41\) noon$/);
  known.remember({ id: 41, room: "#ops", from: "alice", text: "what time?\nsecond line" });
  assert.match(fmt.message(reply, "alice").text, /<bob> \(re alice: what time\?\) noon$/);
  known.remember({ id: 42, room: "#ops", from: "alice", text: "x".repeat(100) });
  assert.match(
    fmt.message({ ...reply, replyTo: 42 }, "alice").text,
    new RegExp(`\\(re alice: ${"x".repeat(39)}…\\) noon$`),
  );
  known.edited(41, "what time tomorrow?");
  assert.match(fmt.message(reply, "alice").text, /\(re alice: what time tomorrow\?\)/);
  known.deleted(41);
  assert.match(fmt.message(reply, "alice").text, /\(re alice: message deleted\)/);
  assert.deepEqual(known.place(41), { room: "#ops" });
  // Your own reply to a message whose place this terminal does not know.
  const own = fmt.reply(
    exchange({ type: "send", replyTo: 7, text: "yes" }, { type: "ack", id: 8, ts: 0 }),
    "alice",
  );
  assert.match(own[0]!.text, /\[reply\] <alice> \(re 7\) yes$/);
});

Deno.test("Formatter: search results and /context carry ids; /unread counts; reactions events counted per emoji", () => {
  const fmt = new Formatter(false, () => 0);
  const m = (id: number, text: string) => ({
    type: "message" as const,
    id,
    room: "#ops",
    from: "bob",
    text,
    ts: 0,
  });
  const found = fmt.reply(
    exchange({ type: "search", text: "plan" }, { type: "ack", messages: [m(9, "the plan")] }),
    "alice",
  ).map((l) => l.text);
  assert.match(found[0]!, /Search results for "plan" \(1, newest first; \/context ID/);
  assert.match(found[1]!, /<bob> the plan \(id 9\)$/);
  const page = {
    type: "history" as const,
    room: "#ops",
    around: 9,
    messages: [m(8, "before"), m(9, "the plan"), m(10, "after")],
    more: true,
    newer: false,
  };
  const context = fmt.reply(exchange({ type: "history", around: 9 }, page), "alice");
  assert.match(context[0]!.text, /\* Around message 9 in #ops \(3 messages; earlier ones/);
  assert.deepEqual(context.slice(1).map((l) => l.text.slice(9)), [
    "[#ops] <bob> before (id 8)",
    "[#ops] <bob> the plan (id 9)",
    "[#ops] <bob> after (id 10)",
  ]);
  const colored = new Formatter(true, () => 0).context(page, "alice").map((l) => l.text);
  assert.ok(colored[1]!.includes("\x1b[2m[#ops] <bob> before"), "neighbours dimmed");
  assert.ok(!colored[2]!.includes("\x1b[2m[#ops]"), "the message asked for is not");
  const unread = (rooms: unknown[], conversations: unknown[]) =>
    fmt.reply(
      exchange({ type: "unread" }, { type: "ack", rooms, conversations } as never),
      "alice",
    )[0]!.text.slice(9);
  assert.equal(unread([{ room: "#ops", read: 1, unread: 0 }], []), "* Nothing unread");
  assert.equal(
    unread([{ room: "#ops", read: 1, unread: 3 }], [{
      with: "bob",
      read: 0,
      unread: 1000,
      last: m(1, "x"),
    }]),
    "* Unread: #ops (3), bob (999+)",
  );
  assert.deepEqual(
    fmt.event({ type: "reactions", id: 9, reactions: { "🎉": 2, "👍": 1 }, room: "#ops" })
      .map((l) => l.text.slice(9)),
    ["* Reactions to message 9 in #ops: 🎉2 👍1"],
  );
  assert.deepEqual(
    fmt.event({ type: "reactions", id: 9, reactions: {}, from: "a", to: "b" })
      .map((l) => l.text.slice(9)),
    ["* Reactions to direct message 9: none"],
  );
  assert.deepEqual(fmt.event({ type: "typing", room: "#ops", name: "bob" }), []);
});

Deno.test("Typists: who is typing where, until when; typingTarget() says where a draft goes", () => {
  const t = new Typists();
  t.add("bob", "#ops", 5000);
  t.add("carol", "#ops", 3000);
  assert.equal(t.line("#ops", 0), "bob and carol are typing…");
  assert.equal(t.expire(3000), 5000, "carol's time is up; bob's is next");
  assert.equal(t.line("#ops", 3000), "bob is typing…");
  t.remove("bob", "#ops");
  assert.equal(t.line("#ops", 3000), "");
  t.add("dave", undefined, 9000);
  t.add("dave", "#ops", 9000);
  t.remove("dave", undefined, true);
  assert.equal(t.line("#ops", 0), "dave is typing…", "only the direct one went");
  t.remove("dave");
  assert.equal(t.line("#ops", 0), "");
  assert.equal(t.expire(0), undefined);
  assert.deepEqual(typingTarget("//x", "#ops"), { room: "#ops" });
  assert.deepEqual(typingTarget("/me waves", "#ops"), { room: "#ops" });
  assert.equal(typingTarget("/me", "#ops"), undefined);
  assert.deepEqual(typingTarget("/DM bob x", undefined), { to: "bob" });
  assert.equal(typingTarget("/msg bob", "#ops"), undefined, "no text yet");
  assert.equal(typingTarget("   ", "#ops"), undefined);
  assert.equal(typingTarget("/login alice secret", "#ops"), undefined);
});
