// The installable app and the phone: the manifest as Chromium reads it, the service worker
// keeping the app shell (the page opens with the server stopped, and says so), the banner
// after an announced shutdown, and the layout at 360×740. The real server as a subprocess and
// Debian's Chromium driven by playwright-core. Writes docs/screenshots/phone*.png, chat-dark.png
// and offline.png.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Page } from "playwright-core";
import {
  browserTest,
  freePort,
  launchChromium,
  RawClient,
  request,
  screenshot,
  tempDir,
} from "./_helpers.ts";
import {
  controlled,
  joinRoom,
  message,
  online,
  openPage,
  PASSWORD,
  register,
  say,
  webServer,
} from "./_web.ts";
import { bannerText } from "../src/web/app/model.ts";

/** The browser logs each refused attempt to reach a stopped server. */
const OFFLINE_NOISE = /WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/;

Deno.test("web pwa: what the connection banner says", () => {
  const waiting = { kind: "waiting" as const, attempt: 2, retryAt: 5000, reason: "closed" };
  const restart = { reason: "the server is shutting down", permanent: false };
  assert.equal(
    bannerText(waiting, restart, false, 1000),
    "The server is restarting (the server is shutting down). Reconnecting in 4 s…",
  );
  // Shut down for good: the page stopped reconnecting (the link is offline), and says why.
  assert.equal(
    bannerText({ kind: "offline" }, { reason: "moving house", permanent: true }, false, 0),
    "The server has shut down (moving house). It said it will not be back.",
  );
  assert.equal(
    bannerText(waiting, undefined, true, 5000),
    "Offline: showing the saved app; reconnecting…",
  );
  assert.equal(
    bannerText(waiting, undefined, false, 1000),
    "Disconnected (closed). Reconnecting in 4 s…",
  );
  assert.equal(bannerText({ kind: "online" }, restart, true, 0), undefined);
  assert.equal(bannerText({ kind: "offline" }, undefined, false, 0), undefined);
});

/** The names of the page's caches and the paths each holds. */
function cached(page: Page): Promise<Record<string, string[]>> {
  return page.evaluate(async () => {
    const { caches } = globalThis as unknown as {
      caches: {
        keys(): Promise<string[]>;
        open(name: string): Promise<{ keys(): Promise<{ url: string }[]> }>;
      };
    };
    const out: Record<string, string[]> = {};
    for (const name of await caches.keys()) {
      out[name] = (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
    }
    return out;
  });
}

browserTest(
  "web pwa: the manifest, the service worker's shell offline, and the restart banner",
  async () => {
    await using data = await tempDir("parley-pwa-");
    const [port, httpPort] = [freePort(), freePort()];
    const args = ["--data", data.path, "--port", String(port), "--http-port", String(httpPort)];
    await using pw = await launchChromium();
    let first = await webServer(args);
    try {
      const alice = await openPage(pw.browser, `${first.url}/healthz`);
      // A cache left by an earlier build: the new worker removes it when it takes over.
      await alice.page.evaluate(async () => {
        const { caches } = globalThis as unknown as {
          caches: { open(name: string): Promise<{ put(u: string, r: Response): Promise<void> }> };
        };
        await (await caches.open("parley-shell-0123456789abcdef")).put(
          "/assets/app.old.js",
          new Response("old"),
        );
      });
      await alice.page.goto(first.url);

      // The manifest, as Chromium reads it: no errors, the fields an install needs.
      const cdp = await alice.context.newCDPSession(alice.page);
      const got = await cdp.send("Page.getAppManifest") as {
        url: string;
        errors: { message: string }[];
        data?: string;
      };
      assert.equal(new URL(got.url).pathname, "/manifest.webmanifest");
      assert.deepEqual(got.errors, []);
      const manifest = JSON.parse(got.data!);
      assert.equal(manifest.display, "standalone");
      assert.deepEqual(
        manifest.icons.map((i: { sizes: string }) => i.sizes),
        ["any", "192x192", "512x512"],
      );
      for (const icon of manifest.icons) {
        const res = await alice.page.request.get(new URL(icon.src, first.url).href);
        assert.equal(res.headers()["content-type"], icon.type);
        assert.ok((await res.body()).length > 100);
      }

      await register(alice.page, "alice");
      await controlled(alice.page);
      await say(alice.page, "before the restart");
      // A file goes up and comes down: neither it nor /ws may land in a cache.
      await using carol = await RawClient.json(port);
      const reg = await request(carol, { type: "register", name: "carol", password: PASSWORD });
      const up = await fetch(`${first.url}/files?name=notes.txt`, {
        method: "POST",
        headers: { authorization: `Bearer ${reg.token}`, "content-type": "text/plain" },
        body: "minutes\n".repeat(50),
      });
      const file = await up.json();
      carol.send({ type: "send", room: "#general", text: "the notes", file: file.id, ref: "s" });
      await carol.frame((f) => f.ref === "s");
      await message(alice.page, "carol", "the notes");
      const [download] = await Promise.all([
        alice.page.waitForEvent("download"),
        alice.page.getByRole("button", { name: /^Download notes\.txt/ }).click(),
      ]);
      await download.path();
      const version = /const VERSION = "([^"]+)"/.exec(
        await (await fetch(`${first.url}/sw.js`))
          .text(),
      )![1]!;
      const caches = await cached(alice.page);
      assert.deepEqual(Object.keys(caches), [`parley-shell-${version}`], "the old cache is gone");
      const shell = caches[`parley-shell-${version}`]!;
      assert.ok(shell.includes("/") && shell.includes("/manifest.webmanifest"), shell.join(" "));
      assert.ok(
        shell.every((p) => p === "/" || p === "/manifest.webmanifest" || p.startsWith("/assets/")),
      );
      assert.ok(!shell.some((p) => p.startsWith("/files") || p === "/ws" || p === "/healthz"));

      // SIGTERM: the server announces its shutdown; the banner says it is restarting.
      await first.server.stop("SIGTERM");
      const banner = alice.page.getByTestId("reconnect-banner");
      await alice.page.locator("[data-testid=reconnect-banner][data-kind=restarting]").waitFor();
      assert.match(
        await banner.textContent() ?? "",
        /^The server is restarting \(.+\)\. Reconnecting/,
      );
      await screenshot(alice.page, "restarting.png");

      // Reloaded with the server down: the saved app opens, logged in, and says so.
      await alice.page.reload();
      await alice.page.locator("[data-testid=reconnect-banner][data-kind=saved-app]").waitFor();
      assert.match(
        await banner.textContent() ?? "",
        /^Offline: showing the saved app; reconnecting/,
      );
      await alice.page.getByTestId("composer").waitFor();
      assert.equal(
        await alice.page.getByTestId("connection-status").getAttribute("data-state"),
        "waiting",
      );
      await screenshot(alice.page, "offline.png");

      // Back up on the same ports and data: connected, and the notice goes.
      first = await webServer(args);
      await online(alice.page, 20_000);
      await banner.waitFor({ state: "detached" });
      assert.equal(await alice.page.getByTestId("me").textContent(), "alice");
      await message(alice.page, "alice", "before the restart");
      assert.deepEqual(alice.problems.filter((p) => !OFFLINE_NOISE.test(p)), []);

      // A visitor without a token gets the saved login screen, and is told the server is away.
      const visitor = await openPage(pw.browser, first.url);
      await controlled(visitor.page);
      await first.server.stop("SIGTERM");
      await visitor.page.reload();
      await visitor.page.locator("[data-testid=reconnect-banner][data-kind=saved-app]").waitFor();
      await visitor.page.getByLabel("Password").waitFor();
    } finally {
      await first[Symbol.asyncDispose]();
    }
  },
);

/**
 * How many lines of text each element matching `selector` takes: the boxes of its text nodes,
 * counted as one line while their tops are within half a line of each other.
 */
function lines(page: Page, selector: string): Promise<{ text: string; lines: number }[]> {
  return page.locator(selector).evaluateAll((els) =>
    els.map((el) => {
      type Box = { top: number; height: number };
      type Node = { nodeType: number; childNodes: Node[]; textContent: string };
      const doc = (el as unknown as { ownerDocument: { createRange(): unknown } }).ownerDocument;
      const boxes: Box[] = [];
      const walk = (node: Node) => {
        if (node.nodeType === 3 && node.textContent.trim() !== "") {
          const range = doc.createRange() as {
            selectNodeContents(n: unknown): void;
            getClientRects(): Box[];
          };
          range.selectNodeContents(node);
          for (const r of range.getClientRects()) if (r.height > 0) boxes.push(r);
        }
        for (const child of node.childNodes) walk(child);
      };
      walk(el as unknown as Node);
      boxes.sort((a, b) => a.top - b.top);
      let count = 0;
      let last = -Infinity;
      for (const b of boxes) {
        if (b.top - last > b.height / 2) count++;
        last = b.top;
      }
      return { text: (el as unknown as Node).textContent, lines: count };
    })
  );
}

async function oneLine(page: Page, selector: string): Promise<void> {
  const found = await lines(page, selector);
  assert.ok(found.length > 0, `${selector} is on the page`);
  for (const f of found) {
    // An icon button has no text at all; anything with text has exactly one line of it.
    assert.equal(f.lines, f.text.trim() === "" ? 0 : 1, `${selector} "${f.text}" is on one line`);
  }
}

browserTest(
  "web pwa: at phone width (360×740) nothing wraps and everything is usable",
  async () => {
    await using web = await webServer();
    await using pw = await launchChromium();
    const phone = { width: 360, height: 740 };
    const alice = await openPage(pw.browser, web.url, phone);
    await register(alice.page, "alice");
    const gus = await openPage(pw.browser, web.url, { ...phone, colorScheme: "dark" });
    await gus.page.getByTestId("guest").click();
    await online(gus.page);
    const guest = await gus.page.getByTestId("me").textContent();
    await alice.page.locator(`[data-testid=member][data-name="${guest}"]`).waitFor({
      state: "attached",
    });

    // A file with a long name and a large size, beside its Download button.
    await using carol = await RawClient.json(web.server.port);
    const reg = await request(carol, { type: "register", name: "carol", password: PASSWORD });
    const up = await fetch(
      `${web.url}/files?name=quarterly-report-final-version-with-appendix.pdf`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${reg.token}`, "content-type": "application/pdf" },
        body: new Uint8Array(1_234_567),
      },
    );
    const file = await up.json();
    carol.send({ type: "send", room: "#general", text: "the report", file: file.id, ref: "s" });
    await carol.frame((f) => f.ref === "s");
    await message(alice.page, "carol", "the report");
    await say(gus.page, "hi from a guest");
    await message(alice.page, guest!, "hi from a guest");

    for (const page of [alice.page, gus.page]) {
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { innerWidth: number }).innerWidth),
        360,
      );
      assert.equal(
        await page.evaluate(() =>
          (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } })
            .document.documentElement.scrollWidth
        ),
        360,
        "no horizontal scrolling",
      );
      await oneLine(
        page,
        ".topbar button:visible, .status-pill, .conv-title, .composer-row button",
      );
      await oneLine(page, ".file-chip .muted, .file-chip button");
    }
    // The guest's avatar has its letter.
    const avatar = alice.page.locator(`[data-testid=message][data-from="${guest}"] .avatar`);
    assert.equal(await avatar.textContent(), "G");
    await alice.page.getByTestId("composer").focus();
    await screenshot(alice.page, "phone-chat.png");
    await gus.page.getByTestId("composer").focus();
    await screenshot(gus.page, "phone-dark.png");

    // The drawer: rooms, search, the footer's buttons on one line each, a tap target each.
    await alice.page.getByRole("button", { name: "Rooms and direct messages" }).click();
    await alice.page.locator("#sidebar").waitFor({ state: "visible" });
    await oneLine(alice.page, "#sidebar button:visible");
    for (
      const box of await alice.page.locator("#sidebar button:visible").evaluateAll((els) =>
        els.map((el) =>
          (el as unknown as { getBoundingClientRect(): { height: number; right: number } })
            .getBoundingClientRect()
        )
      )
    ) {
      assert.ok(box.height >= 44, `a touch target of ${box.height} px`);
      assert.ok(box.right <= 360);
    }
    await screenshot(alice.page, "phone.png");
    await joinRoom(alice.page, "#den");
    assert.equal(await alice.page.locator("#sidebar").isVisible(), false, "picking closes it");

    // An upload in progress at this width: the numbers and Cancel stay on one line.
    const cdp = await alice.context.newCDPSession(alice.page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 20_000,
    });
    await alice.page.getByTestId("file-input").setInputFiles({
      name: "holiday-photos-from-the-whole-summer.zip",
      mimeType: "application/zip",
      buffer: Buffer.alloc(400_000),
    });
    await alice.page.locator("[data-testid=upload][data-status=uploading]").waitFor();
    await oneLine(alice.page, ".upload-numbers, .upload button");
    await screenshot(alice.page, "phone-upload.png");
    await alice.page.getByRole("button", { name: /^Cancel uploading/ }).click();
    assert.deepEqual([...alice.problems, ...gus.problems], []);
  },
);

browserTest("web pwa: light and dark at desktop width (screenshots)", async () => {
  await using web = await webServer();
  await using pw = await launchChromium();
  const alice = await openPage(pw.browser, web.url, { colorScheme: "dark" });
  await register(alice.page, "alice");
  await using bob = await RawClient.json(web.server.port, "bob");
  await joinRoom(alice.page, "#ops");
  bob.send({ type: "join", room: "#ops", ref: "j" });
  await bob.frame((f) => f.ref === "j");
  bob.send({
    type: "send",
    room: "#ops",
    text: "the deploy is **done**, see `make ship`",
    ref: "s",
  });
  await message(alice.page, "bob", "the deploy is done, see make ship");
  await say(alice.page, "thanks bob! /me is next");
  await alice.page.getByTestId("composer").pressSequentially("/to");
  await alice.page.getByRole("listbox", { name: "Suggestions" }).waitFor();
  await screenshot(alice.page, "chat-dark.png");
  assert.deepEqual(alice.problems, []);
});
