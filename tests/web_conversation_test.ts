// Replies, edits, deletions, reactions and typing in the web app, end to end: the real server as a
// subprocess, Chromium driven by playwright-core (skipped without it), and a raw JSON client as
// the other member.
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { browserTest, launchChromium, RawClient, request, startServer } from "./_helpers.ts";

const PASSWORD = "correct horse battery";

async function openPage(
  browser: Browser,
  url: string,
  problems: string[],
  sent: string[],
): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width: 1200, height: 760 },
    reducedMotion: "reduce",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => {
      if (typeof f.payload === "string") sent.push(f.payload);
    });
  });
  await page.goto(url);
  return page;
}

function message(page: Page, id: unknown) {
  return page.locator(`[data-testid=message][data-id="${id}"]`);
}

browserTest(
  "web conversation: reply, edit, delete (own, and as a room's owner), reactions toggle, edits and deletions from others show, typing goes both ways",
  async () => {
    await using server = await startServer();
    const url = `http://127.0.0.1:${server.httpPort}`;
    await using pw = await launchChromium();
    const problems: string[] = [];
    const sent: string[] = [];

    const alice = await openPage(pw.browser, url, problems, sent);
    await alice.getByTestId("mode-register").click();
    await alice.getByLabel("Name").fill("alice");
    await alice.getByLabel("Password").fill(PASSWORD);
    await alice.getByTestId("login-submit").click();
    await alice.locator("[data-testid=connection-status][data-state=online]").waitFor();
    await alice.locator("[data-testid=conv-title]", { hasText: "#general" }).waitFor();

    await using bob = await RawClient.json(server.port);
    assert.equal(
      (await request(bob, { type: "register", name: "bob", password: PASSWORD })).type,
      "ack",
    );
    const first = await request(bob, {
      type: "send",
      room: "#general",
      text: "first line\nsecond line",
    });
    const bobs = message(alice, first.id);
    await bobs.waitFor();
    // Not hers and not her room: Reply and React, no Edit or Delete.
    await bobs.hover();
    await bobs.getByTestId("action-reply").waitFor();
    assert.equal(await bobs.getByTestId("action-edit").count(), 0);
    assert.equal(await bobs.getByTestId("action-delete").count(), 0);

    // Reply: the composer says to what; the message carries replyTo and quotes the line.
    await bobs.getByTestId("action-reply").click();
    await alice.getByTestId("replying").filter({ hasText: "bob: first line" }).waitFor();
    await alice.getByTestId("composer").fill("an answer");
    await alice.getByTestId("composer").press("Enter");
    const answer = await bob.frame((f) => f.type === "message" && f.text === "an answer");
    assert.equal(answer.replyTo, first.id);
    await alice.getByTestId("replying").waitFor({ state: "detached" });
    const mine = message(alice, answer.id);
    await mine.getByTestId("reply-quote").filter({ hasText: "bob: first line" }).waitFor();

    // Edit her own message in place.
    await mine.hover();
    await mine.getByTestId("action-edit").click();
    await mine.getByTestId("edit-input").fill("a better answer");
    await mine.getByTestId("edit-input").press("Enter");
    const edited = await bob.frame((f) => f.type === "edited");
    assert.equal(edited.id, answer.id);
    assert.equal(edited.text, "a better answer");
    await mine.getByTestId("edited").waitFor();
    await mine.locator(".msg-content", { hasText: "a better answer" }).waitFor();

    // bob's edit shows, and the quote of the reply follows it.
    await request(bob, { type: "edit", id: first.id, text: "first, fixed" });
    await bobs.locator(".msg-content", { hasText: "first, fixed" }).waitFor();
    await bobs.getByTestId("edited").waitFor();
    await mine.getByTestId("reply-quote").filter({ hasText: "bob: first, fixed" }).waitFor();

    // React: the picker, the count, then a click on her own reaction takes it back.
    await bobs.hover();
    await bobs.getByTestId("action-react").click();
    await bobs.getByTestId("emoji-picker").locator("[data-emoji='🎉']").click();
    const reacted = await bob.frame((f) => f.type === "reactions");
    assert.deepEqual(reacted.reactions, { "🎉": 1 });
    const chip = bobs.locator("[data-testid=reaction][data-emoji='🎉']");
    await chip.filter({ hasText: "1" }).waitFor();
    assert.equal(await chip.getAttribute("aria-pressed"), "true");
    await request(bob, { type: "react", id: first.id, emoji: "🎉" });
    await chip.filter({ hasText: "2" }).waitFor();
    assert.equal(await chip.getAttribute("aria-pressed"), "true", "still hers too");
    await chip.click();
    await chip.filter({ hasText: "1" }).waitFor();
    assert.equal(await chip.getAttribute("aria-pressed"), "false");

    // bob deletes his message: it shows as deleted, and the reply's quote says so.
    await request(bob, { type: "delete", id: first.id });
    await bobs.getByTestId("deleted").waitFor();
    await mine.getByTestId("reply-quote").filter({ hasText: "bob: message deleted" }).waitFor();

    // Her own delete asks first.
    await mine.hover();
    await mine.getByTestId("action-delete").click();
    await mine.getByTestId("delete-yes").click();
    assert.equal((await bob.frame((f) => f.type === "deleted")).id, answer.id);
    await mine.getByTestId("deleted").waitFor();

    // As the owner of #den, alice deletes bob's message there.
    await alice.getByLabel("Join or create a room").fill("#den");
    await alice.getByRole("button", { name: "Join", exact: true }).click();
    await alice.locator("[data-testid=conv-title]", { hasText: "#den" }).waitFor();
    await request(bob, { type: "join", room: "#den" });
    const rude = await request(bob, { type: "send", room: "#den", text: "rude words" });
    const rudeRow = message(alice, rude.id);
    await rudeRow.hover();
    await rudeRow.getByTestId("action-delete").click();
    await rudeRow.getByTestId("delete-yes").click();
    const gone = await bob.frame((f) => f.type === "deleted");
    assert.deepEqual([gone.id, gone.by], [rude.id, "alice"]);
    await rudeRow.getByTestId("deleted").waitFor();

    // Typing: bob's shows under the list, then goes after about 5 s.
    await request(bob, { type: "typing", room: "#den" });
    const typing = alice.getByTestId("typing");
    await typing.filter({ hasText: "bob is typing…" }).waitFor();
    const shownAt = Date.now();
    await typing.filter({ hasText: /^$/ }).waitFor({ timeout: 8000 });
    const shownFor = Date.now() - shownAt;
    assert.ok(shownFor > 3500 && shownFor < 7000, `shown for ${shownFor} ms`);

    // Hers reach bob, at most once per 3 s however fast she types; a message ends bob's line.
    const before = sent.length;
    await alice.getByTestId("composer").pressSequentially("hello there", { delay: 20 });
    const told = await bob.frame((f) => f.type === "typing");
    assert.deepEqual(told, { type: "typing", room: "#den", name: "alice" });
    const typingSent = sent.slice(before).filter((f) => JSON.parse(f).type === "typing");
    assert.equal(typingSent.length, 1, "one typing frame for a burst of keys");
    await request(bob, { type: "typing", room: "#den" });
    await typing.filter({ hasText: "bob is typing…" }).waitFor();
    await request(bob, { type: "send", room: "#den", text: "done typing" });
    await typing.filter({ hasText: /^$/ }).waitFor({ timeout: 1000 });
    assert.deepEqual(problems, []);
  },
);

browserTest(
  "web search: results from the sidebar, newest first; a click opens the conversation at a message older than the loaded history",
  async () => {
    await using server = await startServer();
    const url = `http://127.0.0.1:${server.httpPort}`;
    await using pw = await launchChromium();
    const problems: string[] = [];

    await using bob = await RawClient.json(server.port);
    await request(bob, { type: "register", name: "bob", password: PASSWORD });
    const old = await request(bob, { type: "send", room: "#general", text: "the needle plan" });
    for (let i = 0; i < 60; i++) {
      await request(bob, { type: "send", room: "#general", text: `filler ${i}` });
    }
    const recent = await request(bob, { type: "send", room: "#general", text: "needles again" });

    const alice = await openPage(pw.browser, url, problems, []);
    await alice.getByTestId("mode-register").click();
    await alice.getByLabel("Name").fill("alice");
    await alice.getByLabel("Password").fill(PASSWORD);
    await alice.getByTestId("login-submit").click();
    await message(alice, recent.id).waitFor();
    assert.equal(await message(alice, old.id).count(), 0, "not in the history on join");

    await alice.getByTestId("search-input").fill("needle");
    await alice.getByTestId("search-input").press("Enter");
    const results = alice.getByTestId("search-result");
    await results.first().waitFor();
    assert.deepEqual(
      await results.evaluateAll((els) => els.map((e) => e.getAttribute("data-id"))),
      [String(recent.id), String(old.id)],
    );
    await results.nth(1).click();
    const row = message(alice, old.id);
    await row.waitFor();
    // Scrolled into view (within the list's box).
    // A function, not a string: the page's CSP forbids eval.
    await alice.waitForFunction((id: string) => {
      type Box = { getBoundingClientRect(): { top: number; bottom: number } };
      const doc = (globalThis as unknown as { document: { querySelector(s: string): Box | null } })
        .document;
      const el = doc.querySelector(`[data-testid=message][data-id="${id}"]`);
      const box = doc.querySelector("[data-testid=messages]");
      if (el === null || box === null) return false;
      const a = el.getBoundingClientRect();
      const b = box.getBoundingClientRect();
      return a.top >= b.top && a.bottom <= b.bottom;
    }, String(old.id));
    // Nothing found says so.
    await alice.getByTestId("search-input").fill("nothingmatches");
    await alice.getByTestId("search-input").press("Enter");
    await alice.getByTestId("search-results").filter({ hasText: "No messages found." }).waitFor();
    assert.deepEqual(problems, []);
  },
);

browserTest(
  "web markdown: bold, italic, code and links render; hostile text (script tags, javascript: links, HTML) stays text and nothing runs",
  async () => {
    await using server = await startServer();
    const url = `http://127.0.0.1:${server.httpPort}`;
    await using pw = await launchChromium();
    const problems: string[] = [];
    const alice = await openPage(pw.browser, url, problems, []);
    await alice.getByLabel("Name").fill("alice");
    await alice.getByTestId("guest").click();
    await alice.locator("[data-testid=connection-status][data-state=online]").waitFor();

    await using bob = await RawClient.json(server.port, "bob");
    const hostile = [
      "**bold** *it* `a<b>` see https://x.test/a_b",
      '<script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2">',
      "[click](javascript:window.pwned=3) javascript:window.pwned=4 **<b onclick=x>**",
      "```",
      "<script>window.pwned = 5</script>",
      "```",
    ].join("\n");
    const sent = await request(bob, { type: "send", room: "#general", text: hostile });
    const row = message(alice, sent.id);
    await row.waitFor();
    assert.equal(await row.locator("strong").first().textContent(), "bold");
    assert.equal(await row.locator("em").first().textContent(), "it");
    assert.equal(await row.locator("code.msg-code").textContent(), "a<b>");
    assert.equal(
      await row.getByTestId("code-block").textContent(),
      "<script>window.pwned = 5</script>",
    );
    const links = row.getByTestId("link");
    assert.equal(await links.count(), 1, "only the http link is a link");
    assert.equal(await links.getAttribute("href"), "https://x.test/a_b");
    assert.equal(await links.getAttribute("rel"), "noopener noreferrer nofollow");
    assert.equal(await row.locator("script, img, b, [onclick], [onerror]").count(), 0);
    assert.ok((await row.textContent())!.includes("<script>window.pwned = 1</script>"));
    assert.ok((await row.textContent())!.includes("[click](javascript:window.pwned=3)"));
    await row.locator("strong", { hasText: "<b onclick=x>" }).waitFor();
    assert.equal(await alice.evaluate("window.pwned"), undefined, "nothing ran");
    assert.deepEqual(problems, []);
  },
);

browserTest(
  "web read markers: opening a conversation sends read; after a reload the unread counts and the new-messages line come from the server; another device's read clears a badge; DMs come from unread",
  async () => {
    await using server = await startServer();
    const url = `http://127.0.0.1:${server.httpPort}`;
    await using pw = await launchChromium();
    const problems: string[] = [];
    const sent: string[] = [];

    const alice = await openPage(pw.browser, url, problems, sent);
    await alice.getByTestId("mode-register").click();
    await alice.getByLabel("Name").fill("alice");
    await alice.getByLabel("Password").fill(PASSWORD);
    await alice.getByTestId("login-submit").click();
    await alice.locator("[data-testid=conv-title]", { hasText: "#general" }).waitFor();
    await alice.getByLabel("Join or create a room").fill("#den");
    await alice.getByRole("button", { name: "Join", exact: true }).click();
    await alice.locator("[data-testid=conv-title]", { hasText: "#den" }).waitFor();

    await using bob = await RawClient.json(server.port);
    await request(bob, { type: "register", name: "bob", password: PASSWORD });
    await using phone = await RawClient.json(server.port);
    await request(phone, { type: "login", name: "alice", password: PASSWORD });

    const general = alice.locator("[data-testid=conversation][data-key='#general']");
    const m1 = await request(bob, { type: "send", room: "#general", text: "one" });
    await general.getByTestId("unread-badge").waitFor();
    await general.locator(".conv-button").click();
    await message(alice, m1.id).waitFor();
    const read = await phone.frame((f) => f.type === "read");
    assert.deepEqual(read, { type: "read", id: m1.id, room: "#general" });
    assert.ok(sent.some((f) => JSON.parse(f).type === "unread"), "unread asked at login");

    // Away in #den: two more arrive; a reload counts them from the server's marker.
    await alice.locator("[data-testid=conversation][data-key='#den'] .conv-button").click();
    const m2 = await request(bob, { type: "send", room: "#general", text: "two" });
    await request(bob, { type: "send", room: "#general", text: "three" });
    // A direct conversation alice had on another device only.
    await request(phone, { type: "send", to: "bob", text: "from my phone" });
    await general.getByTestId("unread-badge").filter({ hasText: "2" }).waitFor();
    await alice.reload();
    await alice.locator("[data-testid=connection-status][data-state=online]").waitFor();
    await general.getByTestId("unread-badge").locator("[aria-hidden]").filter({ hasText: /^2$/ })
      .waitFor();
    await alice.locator("[data-testid=conversation][data-key='@bob']").waitFor();
    await general.locator(".conv-button").click();
    const line = alice.getByTestId("new-line");
    await line.waitFor();
    assert.equal(
      await line.evaluate((el) => el.nextElementSibling?.getAttribute("data-id")),
      String(m2.id),
      "the line is right before the first unread message",
    );

    // Read on the phone: the badge goes here too.
    await alice.locator("[data-testid=conversation][data-key='#den'] .conv-button").click();
    const m4 = await request(bob, { type: "send", room: "#general", text: "four" });
    await general.getByTestId("unread-badge").waitFor();
    await request(phone, { type: "read", room: "#general", id: m4.id });
    await general.getByTestId("unread-badge").waitFor({ state: "detached" });
    assert.deepEqual(problems, []);
  },
);

browserTest(
  "web: a kept token logs in with hello itself, so the others never see a guest join and rename",
  async () => {
    await using server = await startServer();
    const url = `http://127.0.0.1:${server.httpPort}`;
    await using pw = await launchChromium();
    const problems: string[] = [];
    const sent: string[] = [];
    const alice = await openPage(pw.browser, url, problems, sent);
    await alice.getByTestId("mode-register").click();
    await alice.getByLabel("Name").fill("alice");
    await alice.getByLabel("Password").fill(PASSWORD);
    await alice.getByTestId("login-submit").click();
    await alice.locator("[data-testid=connection-status][data-state=online]").waitFor();

    await using bob = await RawClient.json(server.port, "bob");
    sent.length = 0;
    await alice.reload();
    await alice.locator("[data-testid=connection-status][data-state=online]").waitFor();
    await alice.getByTestId("me").filter({ hasText: "alice" }).waitFor();
    // (A frame of the page being reloaded may still be recorded after the reset: look for the
    // new page's hello rather than taking the first frame.)
    const first = sent.map((f) => JSON.parse(f)).find((f) => f.type === "hello");
    assert.ok(first !== undefined, JSON.stringify(sent));
    assert.equal(typeof first.token, "string");
    assert.ok(!sent.some((f) => JSON.parse(f).type === "login"), "no separate login");
    const seen: string[] = [];
    for (;;) {
      const f = await bob.frame((f) => f.type === "presence");
      seen.push(`${f.name} ${f.event}`);
      if (f.event === "joined" && f.name === "alice") break;
    }
    assert.ok(!seen.some((p) => p.startsWith("guest-")), `no guest first: ${seen.join(", ")}`);
    assert.deepEqual(problems, []);
  },
);
