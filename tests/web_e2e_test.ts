// Browser end to end: the real server as a subprocess, and Debian's Chromium (/usr/bin/chromium,
// installed by .ci/run; never a downloaded browser) driven by playwright-core. Screenshots of
// the main screens are written to docs/screenshots/ as the tests go.
import assert from "node:assert/strict";
import {
  browserTest,
  ClientProcess,
  freePort,
  launchChromium,
  RawClient,
  screenshot,
  tempDir,
} from "./_helpers.ts";
import {
  conversation,
  joinRoom,
  login,
  message,
  online,
  openPage,
  PASSWORD,
  register,
  say,
  texts,
  webServer,
} from "./_web.ts";
import type { UserPage } from "./_web.ts";

// ---- the tests ----

browserTest(
  "web: two browser users register, join a room and see each other's messages",
  async () => {
    await using web = await webServer();
    await using pw = await launchChromium();
    const alice = await openPage(pw.browser, web.url);
    await alice.page.getByLabel("Name").waitFor();
    await screenshot(alice.page, "login.png");
    await register(alice.page, "alice");
    const bob = await openPage(pw.browser, web.url);
    await register(bob.page, "bob");

    await joinRoom(alice.page, "#ops");
    await joinRoom(bob.page, "ops");
    await alice.page.locator("[data-testid=member][data-name=bob]").waitFor();
    await alice.page.getByText("bob joined #ops").waitFor();
    assert.deepEqual(
      await alice.page.locator("[data-testid=member]").evaluateAll((els) =>
        els.map((e) => e.getAttribute("data-name"))
      ),
      ["alice", "bob"],
    );

    await say(alice.page, "hi bob, welcome to #ops");
    await message(bob.page, "alice", "hi bob, welcome to #ops");
    await say(bob.page, "thanks alice!\nsecond line, same message");
    await message(alice.page, "bob", "thanks alice!\nsecond line, same message");
    await say(alice.page, "/me waves");
    await bob.page.locator("[data-testid=message].action", {
      hasText: "alice waves",
    }).waitFor();
    // A mention is highlighted for the one named.
    await bob.page.locator("[data-testid=message].mention").waitFor();
    assert.equal(
      await alice.page.locator("[data-testid=message].mention").count(),
      1,
    );
    // Text stays text: markup arrives as characters, not elements.
    await say(bob.page, "<img src=x onerror=alert(1)> <b>bold</b>");
    const raw = await message(
      alice.page,
      "bob",
      "<img src=x onerror=alert(1)> <b>bold</b>",
    );
    assert.equal(await raw.locator("img, b").count(), 0);
    // Every room message is in the room the other side sees.
    assert.deepEqual(
      (await texts(alice.page)).slice(-4),
      (await texts(bob.page)).slice(-4),
    );

    // Leaving: the room goes from the sidebar and the other side sees it.
    await bob.page.getByRole("button", { name: "Leave #ops" }).click();
    await conversation(bob.page, "#ops").waitFor({ state: "detached" });
    await alice.page.getByText("bob left #ops").waitFor();
    await alice.page.locator("[data-testid=member][data-name=bob]").waitFor({
      state: "detached",
    });
    await joinRoom(bob.page, "#ops");
    await alice.page.locator("[data-testid=member][data-name=bob]").waitFor();
    await alice.page.getByTestId("composer").focus();
    await screenshot(alice.page, "chat.png");
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  },
);

browserTest("web: a terminal client and a browser user converse both ways", async () => {
  await using web = await webServer();
  await using pw = await launchChromium();
  await using term = new ClientProcess(["127.0.0.1", String(web.server.port), "--name", "termie"]);
  await term.line(/\* You are now termie$/);
  const web1 = await openPage(pw.browser, web.url);
  await web1.page.getByLabel("Name").fill("webby");
  await web1.page.getByTestId("guest").click();
  await online(web1.page);
  assert.equal(await web1.page.getByTestId("me").textContent(), "webby");
  await web1.page.locator("[data-testid=member][data-name=termie]").waitFor();
  await term.line(/\* webby joined #general$|guest-\d+ is now known as webby$/);

  await term.type("hello from the terminal");
  await message(web1.page, "termie", "hello from the terminal");
  await say(web1.page, "hello from the browser");
  assert.match(
    await term.line(/<webby>/),
    / \[#general\] <webby> hello from the browser$/,
  );
  // A direct message each way.
  await term.type("/msg webby psst");
  await conversation(web1.page, "@termie").locator("[data-testid=unread-badge]")
    .waitFor();
  await conversation(web1.page, "@termie").locator(".conv-button").click();
  await message(web1.page, "termie", "psst");
  await say(web1.page, "psst yourself");
  assert.match(
    await term.line(/\[dm\] <webby>/),
    /\[dm\] <webby> psst yourself$/,
  );
  // The terminal leaving is a notice in the browser.
  await term.type("/quit");
  await conversation(web1.page, "#general").locator(".conv-button").click();
  await web1.page.getByText("termie quit").waitFor();
  assert.deepEqual(web1.problems, []);
});

browserTest(
  "web: a server that requires an account refuses guests; an unreachable one is reported",
  async () => {
    await using web = await webServer(["--require-login"]);
    await using pw = await launchChromium();
    const user = await openPage(pw.browser, web.url);
    await user.page.getByTestId("guest").click();
    await user.page.getByText("This server requires an account").waitFor();
    assert.equal(await user.page.getByTestId("guest").count(), 0, "the guest button is gone");
    await user.page.getByLabel("Name").fill("x");
    await user.page.getByLabel("Password").fill("short");
    await user.page.getByTestId("mode-register").click();
    await user.page.getByTestId("login-submit").click();
    await user.page.getByText("Choose a password of at least 8 characters").waitFor();
    await user.page.getByTestId("mode-login").click();
    await user.page.getByTestId("login-submit").click();
    await user.page.getByText("Login failed: wrong name or password").waitFor();
    await register(user.page, "dora");
    assert.equal(await user.page.getByTestId("conv-title").textContent(), "#general");
    assert.deepEqual(user.problems, []);

    // A login that cannot reach the server says so, rather than retrying behind the form.
    await user.page.getByTestId("logout").click();
    await web.server.stop();
    await user.page.getByLabel("Name").fill("dora");
    await user.page.getByLabel("Password").fill(PASSWORD);
    await user.page.getByTestId("login-submit").click();
    await user.page.getByText(/^Cannot reach the server/).waitFor();
    assert.equal(await user.page.getByTestId("login-submit").isEnabled(), true);
  },
);

browserTest("web: a file sent to a room shows as an attachment and downloads intact", async () => {
  await using web = await webServer();
  await using pw = await launchChromium();
  const alice = await openPage(pw.browser, web.url);
  await register(alice.page, "alice");
  await using carol = await RawClient.json(web.server.port);
  carol.send({ type: "register", name: "carol", password: PASSWORD, ref: "r" });
  const { token } = await carol.frame((f) => f.ref === "r");
  const body = "quarterly numbers\n".repeat(100);
  const res = await fetch(`${web.url}/files?name=report.txt`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" },
    body,
  });
  assert.equal(res.status, 201);
  const file = await res.json();
  carol.send({ type: "send", room: "#general", text: "the report", file: file.id, ref: "s" });
  await carol.frame((f) => f.ref === "s");
  await message(alice.page, "carol", "the report");
  const chip = alice.page.getByTestId("file");
  assert.match(await chip.textContent() ?? "", /report\.txt.*1\.8 KiB/);
  const [download] = await Promise.all([
    alice.page.waitForEvent("download"),
    chip.getByRole("button", { name: "Download report.txt (1.8 KiB)" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "report.txt");
  const saved = await download.path();
  assert.equal(await Deno.readTextFile(saved), body);
  assert.deepEqual(alice.problems, []);
});

browserTest("web: history appears after a reload, and older pages load on scroll-up", async () => {
  await using web = await webServer(["--history-on-join", "20", "--flood-rate", "0"]);
  await using pw = await launchChromium();
  await using filler = await RawClient.json(web.server.port, "filler");
  for (let i = 1; i <= 70; i++) {
    filler.send({ type: "send", room: "#general", text: `old ${i}`, ref: `s${i}` });
  }
  await filler.frame((f) => f.ref === "s70");
  const old = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `old ${from + i}`);
  const alice = await openPage(pw.browser, web.url, { height: 400 });
  await register(alice.page, "alice");
  await message(alice.page, "filler", "old 70");
  assert.deepEqual(await texts(alice.page), old(51, 70));
  await say(alice.page, "mine 1");
  await say(alice.page, "mine 2");

  // Reload: the kept token logs back in; the latest page of history is back.
  await alice.page.reload();
  await online(alice.page);
  await message(alice.page, "alice", "mine 2");
  assert.deepEqual(await texts(alice.page), [...old(53, 70), "mine 1", "mine 2"]);
  await alice.page.getByTestId("load-older").waitFor();

  // Scrolling to the top fetches the page before (50), and again, until the start.
  const scroller = alice.page.getByTestId("messages");
  await scroller.evaluate((el) => el.scrollTop = 0);
  await message(alice.page, "filler", "old 3");
  assert.deepEqual(await texts(alice.page), [...old(3, 70), "mine 1", "mine 2"]);
  // The reader keeps their place: the message that was first is still on screen.
  assert.ok(await alice.page.getByText("old 53", { exact: true }).isVisible());
  await scroller.evaluate((el) => el.scrollTop = 0);
  await message(alice.page, "filler", "old 1");
  await alice.page.getByText("This is the start of #general.").waitFor();
  assert.deepEqual(await texts(alice.page), [...old(1, 70), "mine 1", "mine 2"]);
  assert.equal(await alice.page.getByTestId("load-older").count(), 0);

  // Logging out forgets the token: a reload shows the login form.
  await alice.page.getByTestId("logout").click();
  await alice.page.getByLabel("Password").waitFor();
  await alice.page.reload();
  await alice.page.getByLabel("Password").waitFor();
  assert.deepEqual(alice.problems, []);
});

browserTest(
  "web: a direct message arrives with an unread badge (and notifies when hidden)",
  async () => {
    await using web = await webServer();
    await using pw = await launchChromium();
    const alice = await openPage(pw.browser, web.url);
    // Notifications and page visibility, observable: the browser's own need a desktop.
    await alice.context.addInitScript(`
    window.__notes = [];
    window.__hidden = false;
    Object.defineProperty(document, "hidden", { get: () => window.__hidden === true });
    window.Notification = class {
      static permission = "default";
      static requestPermission() {
        this.permission = "granted";
        return Promise.resolve("granted");
      }
      constructor(title, options) {
        window.__notes.push({ title, body: options.body });
      }
      close() {}
    };
  `);
    await alice.page.reload();
    await register(alice.page, "alice");
    await alice.page.getByTestId("notify-toggle").click();
    await alice.page.locator("[data-testid=notify-toggle][aria-pressed=true]")
      .waitFor();

    // Bob is on a phone: the conversation list is behind the menu button.
    const bob = await openPage(pw.browser, web.url, { width: 375, height: 740 });
    await register(bob.page, "bob");
    assert.equal(await bob.page.locator("#sidebar").isVisible(), false);
    await bob.page.getByRole("button", { name: "Rooms and direct messages" })
      .click();
    await bob.page.getByLabel("Message someone").fill("alice");
    await bob.page.getByRole("button", { name: "Open", exact: true }).click();
    await bob.page.locator("[data-testid=conv-title]", { hasText: "alice" })
      .waitFor();
    await say(bob.page, "psst, alice");

    const dm = conversation(alice.page, "@bob");
    assert.equal(
      await dm.getByTestId("unread-badge").locator("[aria-hidden]").textContent(),
      "1",
    );
    assert.match(
      await dm.getByTestId("unread-badge").textContent() ?? "",
      /1 unread/,
    );
    assert.equal(await alice.page.title(), "(1) parley");
    await screenshot(alice.page, "dm-unread.png");
    await dm.locator(".conv-button").click();
    await message(alice.page, "bob", "psst, alice");
    await dm.getByTestId("unread-badge").waitFor({ state: "detached" });
    assert.equal(await alice.page.title(), "parley");
    await say(alice.page, "hi bob");
    await message(bob.page, "alice", "hi bob");

    // Hidden tab: a direct message and a mention notify; a plain room message does not.
    await alice.page.evaluate(() =>
      (globalThis as unknown as Record<string, unknown>).__hidden = true
    );
    await say(bob.page, "are you there?");
    await bob.page.getByRole("button", { name: "Rooms and direct messages" })
      .click();
    await bob.page.locator(
      "[data-testid=conversation][data-key='#general'] .conv-button",
    ).click();
    await say(bob.page, "nothing to see");
    await say(bob.page, "alice: standup now");
    await alice.page.waitForFunction("window.__notes.length >= 2");
    const notes = await alice.page.evaluate("window.__notes");
    assert.deepEqual(notes, [
      { title: "bob (direct message)", body: "are you there?" },
      { title: "bob in #general", body: "alice: standup now" },
    ]);
    // While hidden, even the open conversation counts as unread.
    await dm.getByTestId("unread-badge").waitFor();

    // The phone layout: the drawer with rooms and direct messages, nothing wider than the screen.
    await bob.page.getByRole("button", { name: "Rooms and direct messages" })
      .click();
    await bob.page.locator("#sidebar").waitFor({ state: "visible" });
    await bob.page.keyboard.press("Escape");
    await bob.page.locator("#sidebar").waitFor({ state: "hidden" });
    assert.equal(
      await bob.page.evaluate("document.documentElement.scrollWidth"),
      375,
      "no horizontal scrolling at phone width",
    );

    // Offline delivery: a direct message to alice while she is away waits for her next login.
    await alice.context.close();
    await bob.page.getByRole("button", { name: "Rooms and direct messages" })
      .click();
    await bob.page.locator(
      "[data-testid=conversation][data-key='@alice'] .conv-button",
    ).click();
    await say(bob.page, "while you were away");
    const again = await openPage(pw.browser, web.url);
    await login(again.page, "alice");
    const badge = conversation(again.page, "@bob").getByTestId("unread-badge");
    await badge.waitFor();
    await conversation(again.page, "@bob").locator(".conv-button").click();
    await message(again.page, "bob", "while you were away");
    await message(again.page, "bob", "psst, alice"); // the earlier ones, from DM history
    assert.deepEqual([...alice.problems, ...bob.problems, ...again.problems], []);
  },
);

browserTest("web: a server restart shows the reconnect status and recovers", async () => {
  await using data = await tempDir("parley-web-");
  const [port, httpPort] = [freePort(), freePort()];
  const args = ["--data", data.path, "--port", String(port), "--http-port", String(httpPort)];
  await using pw = await launchChromium();
  let alice: UserPage;
  let gus: UserPage;
  {
    await using first = await webServer(args);
    alice = await openPage(pw.browser, first.url);
    await register(alice.page, "alice");
    await joinRoom(alice.page, "#ops");
    await say(alice.page, "before the restart");
    gus = await openPage(pw.browser, first.url, { width: 375, height: 700 });
    await gus.page.getByLabel("Name").fill("gus");
    await gus.page.getByTestId("guest").click();
    await online(gus.page);
    await gus.page.getByRole("button", { name: "Rooms and direct messages" }).click();
    await joinRoom(gus.page, "#ops");
    await message(gus.page, "alice", "before the restart");
    await first.server.stop("SIGTERM");
    await alice.page.locator("[data-testid=reconnect-banner]").waitFor();
    await alice.page.locator("[data-testid=connection-status]:not([data-state=online])").waitFor();
    await alice.page.getByText(/Reconnecting in \d+ s/).waitFor();
  }
  await using second = await webServer(args);
  await online(alice.page, 20_000);
  await online(gus.page, 20_000);
  await alice.page.locator("[data-testid=reconnect-banner]").waitFor({ state: "detached" });
  // The account logs back in with its token; the guest takes its name again and its rooms.
  assert.equal(await alice.page.getByTestId("me").textContent(), "alice");
  assert.equal(await gus.page.getByTestId("me").textContent(), "gus");
  await conversation(alice.page, "#ops").waitFor();
  await alice.page.locator("[data-testid=conv-title]", { hasText: "#ops" }).waitFor();
  // What was there is there once (history after the reconnect is merged, not repeated).
  for (const user of [alice, gus]) {
    assert.equal((await texts(user.page)).filter((t) => t === "before the restart").length, 1);
  }

  await using watcher = await RawClient.json(second.server.port, "watcher");
  watcher.send({ type: "join", room: "#ops", ref: "j" });
  const joined = await watcher.frame((f) => f.ref === "j");
  assert.deepEqual(joined.members, ["alice", "gus", "watcher"]);
  await say(alice.page, "after the restart");
  const got = await watcher.frame((f) => f.type === "message");
  assert.deepEqual([got.room, got.from, got.text], ["#ops", "alice", "after the restart"]);
  watcher.send({ type: "send", room: "#ops", text: "welcome back", ref: "s" });
  await message(alice.page, "watcher", "welcome back");
  await message(gus.page, "watcher", "welcome back");
  const expected = /WebSocket|ERR_CONNECTION_REFUSED/; // the browser logs failed attempts
  assert.deepEqual([...alice.problems, ...gus.problems].filter((p) => !expected.test(p)), []);
});

browserTest(
  "web: the composer refuses text over the server's announced --max-text before sending",
  async () => {
    await using web = await webServer(["--max-text", "100"]);
    await using pw = await launchChromium();
    const user = await openPage(pw.browser, web.url);
    await register(user.page, "terse");
    const box = user.page.getByTestId("composer");
    await box.fill("x".repeat(150));
    await box.press("Enter");
    await user.page.getByTestId("composer-error").filter({
      hasText: "Too long: 150 bytes, the most is 100",
    }).waitFor();
    assert.equal(await box.inputValue(), "x".repeat(150), "the draft is kept");
    await say(user.page, "y".repeat(100));
    assert.deepEqual(user.problems, []);
  },
);
