// Moderation in the web app, end to end: the real server as a subprocess, Chromium driven by
// playwright-core (skipped without it), and raw JSON clients as the other members.
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import {
  browserTest,
  launchChromium,
  RawClient,
  request,
  screenshot,
  startServer,
} from "./_helpers.ts";

const PASSWORD = "correct horse battery";

async function openPage(browser: Browser, url: string, problems: string[]): Promise<Page> {
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
  await page.goto(url);
  return page;
}

async function online(page: Page): Promise<void> {
  await page.locator("[data-testid=connection-status][data-state=online]").waitFor();
}

async function joinRoom(page: Page, room: string): Promise<void> {
  await page.getByLabel("Join or create a room").fill(room);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator(`[data-testid=conv-title]`, { hasText: room }).waitFor();
}

/** Types a line in the composer and waits until it was taken (the box empties). */
async function type(page: Page, line: string): Promise<void> {
  await page.getByTestId("composer").fill(line);
  await page.getByTestId("composer").press("Enter");
  await page.waitForFunction("document.querySelector('[data-testid=composer]').value === ''");
}

function member(page: Page, name: string) {
  return page.locator(`[data-testid=member][data-name="${name}"]`);
}

/** Waits for a system line in the open conversation, exactly `text`. */
async function notice(page: Page, text: string): Promise<void> {
  await page.locator("[data-testid=notice] > span", { hasText: new RegExp(`^${escape(text)}$`) })
    .waitFor();
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

browserTest(
  "web moderation: the owner kicks from the member menu with a reason, edits the topic; roles and modes show; a member without a role has no menu; kicked and banned guests are told",
  async () => {
    await using server = await startServer();
    const url = `http://127.0.0.1:${server.httpPort}`;
    await using pw = await launchChromium();
    const problems: string[] = [];

    // alice registers and creates #den: she owns it.
    const alice = await openPage(pw.browser, url, problems);
    await alice.getByTestId("mode-register").click();
    await alice.getByLabel("Name").fill("alice");
    await alice.getByLabel("Password").fill(PASSWORD);
    await alice.getByTestId("login-submit").click();
    await online(alice);
    await joinRoom(alice, "#den");
    await member(alice, "alice").locator("[data-testid=role]", { hasText: "owner" }).waitFor();
    assert.equal(await member(alice, "alice").getByTestId("member-menu-button").count(), 0);

    // bob, a raw guest, joins; alice sees him with a menu.
    await using bob = await RawClient.json(server.port, "bob");
    assert.equal((await request(bob, { type: "join", room: "#den" })).type, "ack");
    const bobMenu = member(alice, "bob").getByTestId("member-menu-button");
    await bobMenu.waitFor();
    assert.equal(await bobMenu.getAttribute("aria-label"), "Moderate bob");
    assert.equal(await bobMenu.getAttribute("aria-expanded"), "false");

    // carol, a guest in the browser without a role, sees the roles but no menu.
    const carol = await openPage(pw.browser, url, problems);
    await carol.getByLabel("Name").fill("carol");
    await carol.getByTestId("guest").click();
    await online(carol);
    await joinRoom(carol, "#den");
    await member(carol, "bob").waitFor();
    await member(carol, "alice").locator("[data-testid=role]", { hasText: "owner" }).waitFor();
    assert.equal(await carol.getByTestId("member-menu-button").count(), 0);
    assert.equal(await carol.getByTestId("topic-edit").count(), 0, "no topic editing either");

    // The keyboard opens the menu and moves through it; Kick asks for a reason.
    await member(alice, "carol").getByTestId("member-menu-button").waitFor();
    await bobMenu.focus();
    await alice.keyboard.press("Enter");
    const menu = alice.getByRole("menu", { name: "Moderate bob" });
    await menu.waitFor();
    await alice.waitForFunction("document.activeElement?.getAttribute('role') === 'menuitem'");
    assert.deepEqual(await menu.getByRole("menuitem").allTextContents(), [
      "Kick",
      "Ban",
      "Mute",
      "Make operator",
    ]);
    assert.equal(await bobMenu.getAttribute("aria-expanded"), "true");
    assert.equal(await alice.evaluate("document.activeElement?.textContent"), "Kick");
    await alice.keyboard.press("ArrowDown");
    assert.equal(await alice.evaluate("document.activeElement?.textContent"), "Ban");
    await alice.keyboard.press("ArrowUp");
    await screenshot(alice, "moderation-menu.png");
    await alice.keyboard.press("Escape");
    await menu.waitFor({ state: "detached" });
    assert.equal(
      await alice.evaluate("document.activeElement?.getAttribute('aria-label')"),
      "Moderate bob",
      "Escape gives the focus back to the menu button",
    );
    await alice.keyboard.press("Enter");
    await menu.waitFor();
    await alice.waitForFunction("document.activeElement?.textContent === 'Kick'");
    await alice.keyboard.press("Enter"); // Kick
    const reason = alice.getByTestId("moderation-reason");
    await reason.waitFor();
    await reason.fill("spam, please stop");
    await screenshot(alice, "moderation-reason.png");
    await alice.getByTestId("moderation-confirm").click();

    const kicked = await bob.frame((f) => f.type === "moderation");
    assert.deepEqual(kicked, {
      type: "moderation",
      room: "#den",
      action: "kick",
      by: "alice",
      name: "bob",
      reason: "spam, please stop",
    });
    const refused = await request(bob, { type: "send", room: "#den", text: "still here?" });
    assert.equal(refused.code, "not_in_room", "bob is out of the room");
    await notice(alice, "alice kicked bob from #den (spam, please stop)");
    await notice(carol, "alice kicked bob from #den (spam, please stop)");
    await member(alice, "bob").waitFor({ state: "detached" });

    // alice sets the topic in the header; carol sees it, and bob's join ack carries it.
    await alice.getByTestId("topic-edit").click();
    await alice.getByTestId("topic-input").fill("Release day");
    await alice.getByTestId("topic-save").click();
    await alice.getByTestId("topic").filter({ hasText: "Release day" }).waitFor();
    await carol.getByTestId("topic").filter({ hasText: "Release day" }).waitFor();
    await notice(carol, "alice set the topic of #den: Release day");
    const rejoined = await request(bob, { type: "join", room: "#den" });
    assert.equal(rejoined.type, "ack");
    assert.equal(rejoined.topic, "Release day");

    // Slash commands in the composer: modes show as badges; a member's menu follows op.
    await type(alice, "/mode +m");
    await carol.getByTestId("mode-badge").filter({ hasText: "moderated" }).waitFor();
    await notice(carol, "alice set the modes of #den: +m");
    await carol.getByTestId("composer").fill("/kick alice");
    await carol.getByTestId("composer").press("Enter");
    await carol.getByTestId("composer-error").filter({
      hasText: "Cannot kick in #den: you are not an operator of #den",
    }).waitFor();
    await type(alice, "/mode -m");
    await carol.getByTestId("mode-badge").waitFor({ state: "detached" });
    await screenshot(alice, "moderation-topic.png");

    // Kicked in the browser: the room is left, with a notice saying so.
    await type(alice, "/kick carol bye now");
    await carol.getByTestId("toast").filter({
      hasText: "alice kicked carol from #den (bye now): you are no longer in #den",
    }).waitFor();
    await carol.locator("[data-testid=conversation][data-key='#den']").waitFor({
      state: "detached",
    });
    // …and the line is written where carol is now.
    await carol.locator("[data-testid=conv-title]", { hasText: "#general" }).waitFor();
    await notice(carol, "alice kicked carol from #den (bye now)");
    await screenshot(carol, "moderation-kicked.png");

    // Banned: joining again is refused, and the refusal is shown.
    await type(alice, "/ban carol");
    await carol.getByLabel("Join or create a room").fill("#den");
    await carol.getByRole("button", { name: "Join", exact: true }).click();
    await carol.locator("#join-error", { hasText: "Cannot join #den: you are banned from it" })
      .waitFor();
    assert.deepEqual(problems, []);
  },
);
