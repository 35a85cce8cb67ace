// The web client's pure parts (src/web/app/model.ts, format.ts): no browser needed.
import assert from "node:assert/strict";
import {
  conversationOf,
  dmConversationKey,
  fromFrame,
  mentions,
  menuActions,
  mergeMessages,
  modeBadges,
  newConversation,
  parseComposer,
  roleOf,
  rolesFrom,
  roomKey,
  sortNames,
  withMember,
} from "../src/web/app/model.ts";
import type { ChatMessage, Item } from "../src/web/app/model.ts";
import { segments } from "../src/web/app/format.ts";
import type { MessageFrame } from "../src/protocol/frames.ts";

function frame(id: number, fields: Partial<MessageFrame> = {}): MessageFrame {
  return {
    type: "message",
    id,
    room: "#ops",
    from: "bob",
    text: `m${id}`,
    ts: id * 1000,
    ...fields,
  };
}

function msg(id: number, fields: Partial<MessageFrame> = {}): ChatMessage {
  return fromFrame(frame(id, fields), "alice");
}

function ids(items: readonly Item[]): (number | string)[] {
  return items.map((i) => i.kind === "message" ? (i.id ?? i.key) : i.key);
}

Deno.test("mergeMessages() adds each stored message once, in id order, keeping notices in place", () => {
  const notice: Item = { kind: "notice", key: "n1", text: "carol joined #ops", ts: 0 };
  let items: Item[] = [msg(5), notice, msg(7)];
  items = mergeMessages(items, [msg(1), msg(2), msg(5), msg(6), msg(8)]);
  assert.deepEqual(ids(items), [1, 2, 5, "n1", 6, 7, 8]);
  const same = mergeMessages(items, [msg(2), msg(8)]);
  assert.equal(same, items, "nothing new: the same array");
});

Deno.test("mergeMessages() replaces a failed local copy with the stored message", () => {
  const failed: ChatMessage = {
    ...msg(0, { from: "alice", text: "did it arrive?" }),
    key: "p1",
    status: "failed",
  };
  delete failed.id;
  const items = mergeMessages([msg(1), failed], [
    msg(2, { from: "alice", text: "did it arrive?" }),
  ]);
  assert.deepEqual(ids(items), [1, 2]);
});

Deno.test("mentions() finds the name as a word, with or without @, in any case", () => {
  for (const text of ["alice", "hi @alice!", "ALICE: look", "(alice)", "cc @Alice"]) {
    assert.ok(mentions(text, "alice"), text);
  }
  for (const text of ["malice", "alice_b", "alice-2", "bob", "alicex"]) {
    assert.ok(!mentions(text, "alice"), text);
  }
  assert.ok(!mentions("anything", ""));
  assert.ok(mentions("ping guest-12", "guest-12"));
});

Deno.test("fromFrame() marks mentions only in others' messages", () => {
  assert.equal(msg(1, { text: "alice?" }).mention, true);
  assert.equal(fromFrame(frame(1, { from: "alice", text: "I am alice" }), "alice").mention, false);
  assert.equal(msg(2, { offline: true, action: true }).offline, true);
});

Deno.test("conversationOf() files direct messages under the other user, both ways", () => {
  assert.deepEqual(conversationOf(frame(1, { room: "#Ops" }), "alice"), {
    key: "#ops",
    name: "#Ops",
  });
  const dm = (from: string, to: string): MessageFrame => ({
    type: "message",
    id: 2,
    to,
    from,
    text: "hi",
    ts: 1,
  });
  assert.deepEqual(conversationOf(dm("Bob", "alice"), "alice"), { key: "@bob", name: "Bob" });
  assert.deepEqual(conversationOf(dm("alice", "Bob"), "Alice"), { key: "@bob", name: "Bob" });
  assert.equal(roomKey("#OPS"), "#ops");
  assert.equal(dmConversationKey("BOB"), "@bob");
});

Deno.test("parseComposer() reads text and the few commands", () => {
  assert.deepEqual(parseComposer("hello\nworld"), {
    kind: "say",
    text: "hello\nworld",
    action: false,
  });
  assert.deepEqual(parseComposer("//etc/hosts"), {
    kind: "say",
    text: "/etc/hosts",
    action: false,
  });
  assert.deepEqual(parseComposer("/me waves"), { kind: "say", text: "waves", action: true });
  assert.deepEqual(parseComposer("/join ops"), { kind: "join", room: "#ops" });
  assert.deepEqual(parseComposer("/JOIN #ops"), { kind: "join", room: "#ops" });
  assert.deepEqual(parseComposer("/part"), { kind: "part", room: undefined });
  assert.deepEqual(parseComposer("/leave ops"), { kind: "part", room: "#ops" });
  assert.deepEqual(parseComposer("/msg bob hi\nthere"), {
    kind: "dm",
    to: "bob",
    text: "hi\nthere",
  });
  assert.equal(parseComposer("/msg bob").kind, "error");
  assert.equal(parseComposer("/me").kind, "error");
  assert.equal(parseComposer("/frob x").kind, "error");
});

Deno.test("parseComposer() reads the moderation commands as text mode does, in the open room", () => {
  assert.deepEqual(parseComposer("/kick bob spam, again", "#den"), {
    kind: "request",
    frame: { type: "kick", room: "#den", name: "bob", reason: "spam, again" },
  });
  assert.deepEqual(parseComposer("/ban #ops carol", "#den"), {
    kind: "request",
    frame: { type: "ban", room: "#ops", name: "carol" },
  });
  assert.deepEqual(parseComposer("/topic Release day", "#den"), {
    kind: "request",
    frame: { type: "topic", room: "#den", text: "Release day" },
  });
  assert.deepEqual(parseComposer("/topic -", "#den"), {
    kind: "request",
    frame: { type: "topic", room: "#den", text: "" },
  });
  assert.deepEqual(parseComposer("/mode", "#den"), {
    kind: "request",
    frame: { type: "mode", room: "#den" },
  });
  assert.deepEqual(parseComposer("/MUTE bob", "#den"), {
    kind: "request",
    frame: { type: "mute", room: "#den", name: "bob" },
  });
  assert.deepEqual(parseComposer("/wall Restarting at noon"), {
    kind: "request",
    frame: { type: "wall", text: "Restarting at noon" },
  });
  assert.deepEqual(parseComposer("/kick", "#den"), {
    kind: "error",
    message: "Usage: /kick [#room] NAME [reason]",
  });
  assert.deepEqual(parseComposer("/kick bob"), {
    kind: "error",
    message: "Cannot kick: you are in no room",
  });
});

Deno.test("menuActions(): operators and above act on lower ranks; the owner and admins name operators", () => {
  const den = {
    ...newConversation("room", "#den"),
    members: ["alice", "Bob", "carol", "dave", "root"],
    roles: rolesFrom({ alice: "owner", Bob: "op", root: "admin", x: "king" }),
  };
  assert.deepEqual(den.roles, { alice: "owner", bob: "op", root: "admin" });
  assert.equal(roleOf(den, "BOB"), "op");
  assert.equal(roleOf(den, "carol"), undefined);
  const names = (me: string, target: string) => menuActions(den, me, target).map((a) => a.label);
  assert.deepEqual(names("alice", "bob"), ["Kick", "Ban", "Mute", "Remove operator"]);
  assert.deepEqual(names("alice", "carol"), ["Kick", "Ban", "Mute", "Make operator"]);
  assert.deepEqual(names("bob", "carol"), ["Kick", "Ban", "Mute"], "operators name no operators");
  assert.deepEqual(names("bob", "alice"), [], "nobody acts on a higher rank");
  assert.deepEqual(names("alice", "alice"), [], "nor on themselves");
  assert.deepEqual(names("alice", "root"), []);
  assert.deepEqual(names("root", "alice"), ["Kick", "Ban", "Mute", "Make operator"]);
  assert.deepEqual(names("carol", "dave"), [], "a member without a role has no menu");
  assert.deepEqual(names("dave", "carol"), []);
  const muted = { ...den, muted: ["carol"] };
  assert.deepEqual(menuActions(muted, "bob", "carol").map((a) => a.action), [
    "kick",
    "ban",
    "unmute",
  ]);
  assert.deepEqual(
    menuActions(den, "alice", "carol").filter((a) => a.reason).map((a) => a.action),
    [
      "kick",
      "ban",
    ],
  );
  assert.deepEqual(modeBadges(""), []);
  assert.deepEqual(modeBadges("+im"), ["invite only", "moderated"]);
});

Deno.test("withMember() and sortNames() keep one entry per name, sorted case-insensitively", () => {
  assert.deepEqual(sortNames(["bob", "Alice", "carol"]), ["Alice", "bob", "carol"]);
  assert.deepEqual(withMember(["alice", "carol"], "Bob", true), ["alice", "Bob", "carol"]);
  assert.deepEqual(withMember(["alice", "bob"], "BOB", true), ["alice", "BOB"]);
  assert.deepEqual(withMember(["alice", "bob"], "Bob", false), ["alice"]);
});

Deno.test("segments() cuts http(s) links out of text, leaving trailing punctuation", () => {
  assert.deepEqual(segments("see https://x.test/a?b=1. ok"), [
    { kind: "text", text: "see " },
    { kind: "link", text: "https://x.test/a?b=1", href: "https://x.test/a?b=1" },
    { kind: "text", text: ". ok" },
  ]);
  assert.deepEqual(segments("javascript:alert(1) <b>"), [
    { kind: "text", text: "javascript:alert(1) <b>" },
  ]);
  assert.deepEqual(segments(""), []);
});
