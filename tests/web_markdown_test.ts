// The web app's Markdown subset and the model's message changes, as pure functions.
import assert from "node:assert/strict";
import { markdown } from "../src/web/app/markdown.ts";
import {
  changeMessage,
  fromFrame,
  mergeMessages,
  quoteOf,
  typingLine,
} from "../src/web/app/model.ts";
import type { ChatMessage } from "../src/web/app/model.ts";

Deno.test("markdown: bold, italic, code, code blocks and http(s) links; snake_case and HTML stay text", () => {
  assert.deepEqual(markdown("a **b _c_** snake_case 2*3*4"), [
    { kind: "text", text: "a " },
    {
      kind: "strong",
      children: [{ kind: "text", text: "b " }, {
        kind: "em",
        children: [{ kind: "text", text: "c" }],
      }],
    },
    { kind: "text", text: " snake_case 2*3*4" },
  ]);
  assert.deepEqual(markdown("`**x**` <i>y</i>"), [
    { kind: "code", text: "**x**" },
    { kind: "text", text: " <i>y</i>" },
  ]);
  assert.deepEqual(markdown("x\n```ts\n*a*\n```\ny"), [
    { kind: "text", text: "x\n" },
    { kind: "pre", text: "*a*" },
    { kind: "text", text: "y" },
  ]);
  assert.deepEqual(markdown("```\nnot closed"), [{ kind: "text", text: "```\nnot closed" }]);
  assert.deepEqual(markdown("[a](javascript:alert(1)) https://x.test/a_b_"), [
    { kind: "text", text: "[a](javascript:alert(1)) " },
    { kind: "link", text: "https://x.test/a_b_", href: "https://x.test/a_b_" },
  ]);
});

function msg(id: number, from: string, text: string): ChatMessage {
  return fromFrame({ type: "message", id, room: "#r", from, text, ts: id }, "me");
}

Deno.test("model: edits, deletions and reactions change the held message; history carries them too", () => {
  let items = [msg(1, "bob", "hello me"), msg(2, "me", "hi")];
  items = changeMessage(items, 1, {
    kind: "edited",
    text: "bye",
    edited: 9,
    me: "me",
  }) as ChatMessage[];
  assert.equal(items[0]!.text, "bye");
  assert.equal(items[0]!.edited, 9);
  assert.equal(items[0]!.mention, false);
  items = changeMessage(items, 1, {
    kind: "reactions",
    reactions: { "🎉": 2, "🦄": 1, "👍": 0 },
    mine: ["🎉"],
  }) as ChatMessage[];
  assert.deepEqual(items[0]!.reactions, { "🎉": 2 });
  assert.deepEqual(items[0]!.mine, ["🎉"]);
  items = changeMessage(items, 1, {
    kind: "reactions",
    reactions: { "🎉": 1, "👍": 1 },
  }) as ChatMessage[];
  assert.deepEqual(items[0]!.mine, ["🎉"], "kept while the emoji is there");
  assert.equal(changeMessage(items, 99, { kind: "deleted" }), items);
  assert.equal(quoteOf(items, 1), "bob: bye");
  assert.equal(quoteOf(items, 99), "a message");
  items = changeMessage(items, 1, { kind: "deleted" }) as ChatMessage[];
  assert.equal(items[0]!.deleted, true);
  assert.equal(items[0]!.text, "");
  assert.equal(items[0]!.reactions, undefined);
  assert.equal(quoteOf(items, 1), "bob: message deleted");
  // A history page with an edit replaces the held copy.
  const page = fromFrame(
    { type: "message", id: 2, room: "#r", from: "me", text: "hi!", ts: 2, edited: 5, replyTo: 1 },
    "me",
  );
  const merged = mergeMessages(items, [page]);
  assert.equal((merged[1] as ChatMessage).text, "hi!");
  assert.equal((merged[1] as ChatMessage).replyTo, 1);
  assert.equal(mergeMessages(merged, [page]), merged, "nothing new: the same array");
});

Deno.test("model: the typing line names who is typing until it expires", () => {
  assert.equal(typingLine(undefined, 0), "");
  assert.equal(typingLine([{ name: "al", until: 10 }], 5), "al is typing…");
  assert.equal(typingLine([{ name: "al", until: 10 }], 10), "");
  assert.equal(
    typingLine([{ name: "al", until: 10 }, { name: "bo", until: 10 }], 0),
    "al and bo are typing…",
  );
  assert.equal(
    typingLine(["a", "b", "c", "d"].map((name) => ({ name, until: 9 })), 0),
    "a, b and 2 more are typing…",
  );
});
