// The composer's slash commands and its completion popup: the pure parts (the command table
// against the server's text-mode grammar, completion), then the real server as a subprocess
// and Debian's Chromium driven by playwright-core, beside a JSON client on the TCP port.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { browserTest, launchChromium, RawClient, request, screenshot } from "./_helpers.ts";
import { joinRoom, message, online, openPage, PASSWORD, register, say, webServer } from "./_web.ts";
import {
  accept,
  commandNamed,
  COMMANDS,
  completionAt,
  HELP_LINES,
} from "../src/web/app/commands.ts";
import { parseComposer } from "../src/web/app/model.ts";
import { parseTextLine, TEXT_HELP } from "../src/protocol/text_mode.ts";
import { ChatError } from "../src/protocol/errors.ts";

// ---- the pure parts ----

Deno.test("web composer: every command of text mode is in the composer's table, and parses", () => {
  const textMode = new Set(
    TEXT_HELP.flatMap((line) => [...line.matchAll(/(?<![\w/])\/([a-z]+)/g)].map((m) => m[1]!)),
  );
  for (const verb of textMode) assert.ok(commandNamed(verb), `/${verb} is in the table`);
  for (const cmd of COMMANDS) {
    for (const word of [cmd.name, ...cmd.aliases]) {
      // With arguments the grammar accepts (ids and emoji where it wants them).
      const args = ["reply", "edit"].includes(word)
        ? "41 text"
        : word === "delete"
        ? "41"
        : ["react", "unreact"].includes(word)
        ? "41 🎉"
        : "bob some words";
      try {
        parseTextLine(`/${word} ${args}`, "#general");
      } catch (error) {
        assert.ok(error instanceof ChatError);
        assert.notEqual(error.code, "unknown_command", `/${word} is text mode's`);
      }
    }
  }
  assert.ok(HELP_LINES.some((l) => l.startsWith("/nick NAME: ")));
});

Deno.test("web composer: what a line means, read by the text-mode grammar", () => {
  assert.deepEqual(parseComposer("/nick gustavo", "#general"), {
    kind: "command",
    command: { type: "nick", name: "gustavo" },
  });
  assert.deepEqual(parseComposer("/who", "#ops"), {
    kind: "command",
    command: { type: "who", room: "#ops" },
  });
  assert.deepEqual(parseComposer("/help"), { kind: "command", command: { type: "help" } });
  assert.deepEqual(parseComposer("//etc/hosts is a file"), {
    kind: "say",
    text: "/etc/hosts is a file",
    action: false,
  });
  const unknown = parseComposer("/frobnicate now");
  assert.equal(unknown.kind, "error");
  assert.match(
    (unknown as { message: string }).message,
    /^Unknown command \/frobnicate: type \/help/,
  );
  assert.deepEqual(parseComposer("/nick"), { kind: "error", message: "Usage: /nick NAME" });
});

Deno.test("web composer: completion of commands, @names, #rooms and command arguments", () => {
  const sources = {
    names: ["alice", "Albert", "bob", "alice"],
    rooms: [{ name: "#ops" }, { name: "#ops", members: 3 }, { name: "#general", members: 5 }],
  };
  const at = (text: string, cursor = text.length) => completionAt(text, cursor, sources);
  assert.deepEqual(at("/j")?.items.map((i) => i.insert), ["/join "]);
  assert.deepEqual(at("/le")?.items.map((i) => i.label), ["/part"], "aliases find their command");
  assert.equal(at("/")?.items.length, 8, "at most 8 at once");
  assert.equal(at("//x"), undefined, "an escaped line is text");
  assert.deepEqual(at("hi @al")?.items.map((i) => i.label), ["@Albert", "@alice"], "once each");
  assert.deepEqual(at("#o")?.items, [{ label: "#ops", detail: "3 members", insert: "#ops " }]);
  assert.deepEqual(at("/msg b")?.items.map((i) => i.insert), ["bob "]);
  assert.deepEqual(at("/kick #ops b")?.items.map((i) => i.insert), ["bob "]);
  assert.deepEqual(at("/join ")?.items.map((i) => i.label), ["#general", "#ops"]);
  assert.equal(at("/msg bob hel"), undefined, "the text of a message is not completed");
  assert.equal(at("plain words"), undefined);
  assert.equal(at("/who"), undefined, "typed out: Enter sends it");
  assert.equal(at("hi @bob"), undefined);
  // In the middle of the text: the word under the cursor is replaced, the rest kept.
  const mid = completionAt("hi @bo, see you", 6, sources)!;
  assert.deepEqual(accept("hi @bo, see you", mid, mid.items[0]!), {
    text: "hi @bob, see you",
    cursor: 7,
  });
  const before = completionAt("/jo #ops", 3, sources)!;
  assert.deepEqual(accept("/jo #ops", before, before.items[0]!), { text: "/join #ops", cursor: 5 });
});

// ---- in the browser ----

/** The notices of the open conversation. */
async function notices(page: Page): Promise<string[]> {
  return await page.locator("[data-testid=notice] > span").allTextContents();
}

async function notice(page: Page, text: string | RegExp) {
  await page.locator("[data-testid=notice] > span", { hasText: text }).first().waitFor();
}

browserTest("web composer: slash commands, as a guest and as an account", async () => {
  await using web = await webServer();
  await using pw = await launchChromium();
  await using carol = await RawClient.json(web.server.port, "carol");
  const alice = await openPage(pw.browser, web.url);
  await register(alice.page, "alice");
  const gus = await openPage(pw.browser, web.url);
  await gus.page.getByTestId("guest").click();
  await online(gus.page);
  const guestName = await gus.page.getByTestId("me").textContent() ?? "";
  assert.match(guestName, /^guest-\d+$/);
  await alice.page.locator(`[data-testid=member][data-name="${guestName}"]`).waitFor();
  // A guest's avatar shows a letter, as everyone's does.
  assert.equal(
    await alice.page.locator(`[data-testid=member][data-name="${guestName}"] .avatar`)
      .textContent(),
    "G",
  );

  // /nick: the guest's new name is the one everyone sees.
  await say(gus.page, "/nick gustavo");
  await gus.page.locator("[data-testid=me]", { hasText: /^gustavo$/ }).waitFor();
  await alice.page.locator("[data-testid=member][data-name=gustavo]").waitFor();
  assert.equal(
    await alice.page.locator(`[data-testid=member][data-name="${guestName}"]`).count(),
    0,
  );
  await gus.page.locator("[data-testid=member][data-name=gustavo]").waitFor();
  carol.send({ type: "who", room: "#general", ref: "w" });
  assert.deepEqual((await carol.frame((f) => f.ref === "w")).members, [
    "alice",
    "carol",
    "gustavo",
  ]);
  await say(gus.page, "hello from gustavo");
  await message(alice.page, "gustavo", "hello from gustavo");
  // An account cannot rename: the server's refusal shows under the box, the text stays.
  await alice.page.getByTestId("composer").fill("/nick alicia");
  await alice.page.getByTestId("composer").press("Escape"); // the popup, if any
  await alice.page.getByTestId("composer").press("Enter");
  await alice.page.getByTestId("composer-error").filter({ hasText: /rename/i }).waitFor();
  assert.equal(await alice.page.getByTestId("composer").inputValue(), "/nick alicia");
  await alice.page.getByTestId("composer").fill("");

  // /who and /rooms answer in the conversation.
  await say(gus.page, "/who");
  await notice(gus.page, "Members of #general (3): alice, carol, gustavo");
  await say(alice.page, "/rooms");
  await notice(alice.page, /^Rooms: #general \(3\)/);
  await say(alice.page, "/ping");
  await notice(alice.page, /^pong \(\d+ ms\)$/);
  await say(alice.page, "/help");
  await notice(alice.page, /\/nick NAME: change your name/);

  // An unknown command is refused here and never sent; // sends a leading slash.
  const box = gus.page.getByTestId("composer");
  await box.fill("/frobnicate the logs");
  await box.press("Escape");
  await box.press("Enter");
  await gus.page.getByTestId("composer-error").filter({
    hasText: "Unknown command /frobnicate: type /help for the list",
  }).waitFor();
  assert.equal(await box.inputValue(), "/frobnicate the logs", "the text stays to fix");
  await box.fill("");
  await say(gus.page, "//etc/hosts is a file");
  await message(alice.page, "gustavo", "/etc/hosts is a file");
  const seen = await carol.frame((f) => f.type === "message" && f.text === "/etc/hosts is a file");
  assert.equal(seen.from, "gustavo");
  assert.ok(
    !carol.pending().some((l) => l.includes("frobnicate")),
    "the unknown command never reached the server",
  );

  // Moderation and room commands, and /me, /msg, as before.
  await say(alice.page, "/join #den");
  await alice.page.locator("[data-testid=conv-title]", { hasText: "#den" }).waitFor();
  await say(alice.page, "/topic Plans for the week");
  await alice.page.getByTestId("topic").filter({ hasText: "Plans for the week" }).waitFor();
  await say(alice.page, "/me waves");
  await alice.page.locator("[data-testid=message].action", { hasText: "alice waves" }).waitFor();
  await say(alice.page, "/msg carol psst");
  const dm = await carol.frame((f) => f.type === "message" && f.to === "carol");
  assert.equal(dm.text, "psst");
  await alice.page.locator("[data-testid=conv-title]", { hasText: "carol" }).waitFor();

  // /edit and /reply by id, /unread, /history, /search (which shows in the sidebar).
  carol.send({ type: "send", to: "alice", text: "what about lunch", ref: "l" });
  const lunch = Number((await carol.frame((f) => f.ref === "l")).id);
  await message(alice.page, "carol", "what about lunch");
  await say(alice.page, `/reply ${lunch} lunch at noon`);
  const reply = await carol.frame((f) => f.type === "message" && f.text === "lunch at noon");
  assert.equal(reply.replyTo, lunch);
  await alice.page.getByTestId("reply-quote").filter({ hasText: "carol: what about lunch" })
    .waitFor();
  await say(alice.page, `/edit ${reply.id} lunch at one`);
  await carol.frame((f) => f.type === "edited" && f.text === "lunch at one");
  await alice.page.locator("[data-testid=message][data-from=alice]", { hasText: "lunch at one" })
    .getByTestId("edited").waitFor();
  await say(alice.page, "/unread");
  await notice(alice.page, /^(Nothing unread|Unread: )/);
  await say(alice.page, "/history #general 5");
  await alice.page.locator("[data-testid=conv-title]", { hasText: "#general" }).waitFor();
  await notice(alice.page, "History of #general: the last 2 messages shown");
  await say(alice.page, "/search lunch");
  await alice.page.getByTestId("search-results").waitFor();
  assert.equal(await alice.page.getByTestId("search-input").inputValue(), "lunch");
  assert.equal(await alice.page.getByTestId("search-result").count(), 2);
  assert.ok((await notices(alice.page)).length > 0);

  // /register as a guest: the same connection becomes the account, in the rooms it was in.
  await say(gus.page, "/join #den");
  await say(gus.page, `/register gustavo ${PASSWORD}`);
  await gus.page.getByTestId("logout").filter({ hasText: "Log out" }).waitFor();
  assert.equal(await gus.page.getByTestId("me").textContent(), "gustavo");
  await gus.page.locator("[data-testid=conversation][data-key='#den']").waitFor();
  await gus.page.reload(); // the token was kept: back as the account
  await online(gus.page);
  await gus.page.getByTestId("logout").filter({ hasText: "Log out" }).waitFor();
  // /quit: as the Log out button; the others see the quit.
  await alice.page.locator("[data-testid=conversation][data-key='#den'] .conv-button").click();
  await gus.page.getByTestId("composer").fill("/quit see you");
  await gus.page.getByTestId("composer").press("Enter");
  await gus.page.getByLabel("Password").waitFor();
  await notice(alice.page, "gustavo quit");
  assert.deepEqual([...alice.problems, ...gus.problems], []);
});

browserTest("web composer: the completion popup, from the keyboard", async () => {
  await using web = await webServer();
  await using pw = await launchChromium();
  await using carol = await RawClient.json(web.server.port, "carol");
  assert.equal((await request(carol, { type: "join", room: "#ops" })).type, "ack");
  const alice = await openPage(pw.browser, web.url);
  await register(alice.page, "alice");
  await joinRoom(alice.page, "#den");
  await joinRoom(alice.page, "#general");
  await alice.page.locator("[data-testid=member][data-name=carol]").waitFor();
  const box = alice.page.getByTestId("composer");
  const list = alice.page.getByRole("listbox", { name: "Suggestions" });
  const labels = () => list.getByRole("option").locator(".suggestion-label").allTextContents();
  const activeId = () => box.getAttribute("aria-activedescendant");

  // Commands after "/": the box points at the highlighted option; ↓ and ↑ move, wrapping.
  await box.pressSequentially("/m");
  await list.waitFor();
  assert.deepEqual(await labels(), ["/me", "/msg", "/mute", "/mode"]);
  assert.equal(await box.getAttribute("aria-controls"), await list.getAttribute("id"));
  assert.equal(await activeId(), "suggestion-0");
  assert.equal(
    await list.getByRole("option", { selected: true }).textContent(),
    "/me/me TEXT: an action in this conversation",
  );
  await box.press("ArrowDown");
  assert.equal(await activeId(), "suggestion-1");
  await box.press("ArrowUp");
  await box.press("ArrowUp");
  assert.equal(await activeId(), "suggestion-3", "up from the first wraps to the last");
  await screenshot(alice.page, "composer-commands.png");
  await box.press("ArrowDown");
  await box.press("ArrowDown");
  await box.press("Tab");
  assert.equal(await box.inputValue(), "/msg ");
  // The command's argument: names, without the @.
  await box.pressSequentially("ca");
  assert.deepEqual(await labels(), ["carol"]);
  await box.press("Enter"); // accepts, does not send
  assert.equal(await box.inputValue(), "/msg carol ");
  await list.waitFor({ state: "detached" });
  await box.fill("");

  // @names in text, and Escape closes the popup without touching the text.
  await box.pressSequentially("thanks @c");
  assert.deepEqual(await labels(), ["@carol"]);
  await box.press("Escape");
  await list.waitFor({ state: "detached" });
  assert.equal(await box.getAttribute("aria-activedescendant"), null);
  assert.equal(await box.inputValue(), "thanks @c");
  await box.pressSequentially("a");
  await list.waitFor();
  await box.press("Tab");
  await box.pressSequentially("see you");
  await box.press("Enter");
  await message(alice.page, "alice", "thanks @carol see you");

  // #rooms: joined ones and the server's (#ops, which alice is not in), with member counts.
  await box.pressSequentially("/join o");
  await list.getByRole("option", { name: /#ops/ }).waitFor();
  assert.match(await list.getByRole("option").first().textContent() ?? "", /#ops.*1 member/);
  await box.press("Enter");
  assert.equal(await box.inputValue(), "/join #ops ");
  await box.press("Enter");
  await alice.page.locator("[data-testid=conv-title]", { hasText: "#ops" }).waitFor();
  await box.pressSequentially("see #d");
  assert.deepEqual(await labels(), ["#den"]);
  // A click takes an option too.
  await list.getByRole("option", { name: /#den/ }).click();
  assert.equal(await box.inputValue(), "see #den ");
  await box.fill("");
  await say(alice.page, "done");
  assert.deepEqual(alice.problems, []);
});
