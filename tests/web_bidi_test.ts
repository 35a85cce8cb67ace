// File names and link text that try to masquerade with bidi controls and invisible characters:
// the real server as a subprocess on a real SQLite file, and Debian's Chromium driven by
// playwright-core, reading what is rendered (the text, and where each character is drawn).
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { Locator, Page } from "playwright-core";
import {
  browserTest,
  launchChromium,
  RawClient,
  request,
  startServer,
  tempDir,
} from "./_helpers.ts";
import { revealParts, revealText } from "../src/web/app/format.ts";

const PASSWORD = "correct horse battery";
/** An executable that shows as `invoiceexe.pdf` where U+202E acts. */
const SPOOF = "invoice\u202efdp.exe";

/** The page's globals that the callback given to `evaluate` uses (it runs in the browser). */
interface PageGlobals {
  document: {
    createTreeWalker(root: unknown, what: number): { nextNode(): { data: string } | null };
    createRange(): {
      setStart(node: unknown, at: number): void;
      setEnd(node: unknown, at: number): void;
      getBoundingClientRect(): { left: number; width: number; top: number };
    };
  };
}

/**
 * Each character of `el`'s text with the x where it is drawn, in the order of the text; drawn
 * left to right means every x is larger than the one before.
 */
function drawn(el: Locator): Promise<{ ch: string; x: number; y: number }[]> {
  return el.evaluate((root) => {
    const { document } = globalThis as unknown as PageGlobals;
    const out: { ch: string; x: number; y: number }[] = [];
    const walker = document.createTreeWalker(root, 4 /* NodeFilter.SHOW_TEXT */);
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
      for (let i = 0; i < node.data.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const box = range.getBoundingClientRect();
        if (box.width > 0) out.push({ ch: node.data[i]!, x: box.left, y: box.top });
      }
    }
    return out;
  });
}

/** The text as a reader sees it: the characters drawn, left to right (one line). */
async function seen(el: Locator): Promise<{ text: string; inOrder: boolean }> {
  const chars = await drawn(el);
  assert.ok(chars.length > 0, "something is drawn");
  assert.ok(chars.every((c) => Math.abs(c.y - chars[0]!.y) < 8), "on one line");
  const inOrder = chars.every((c, i) => i === 0 || c.x > chars[i - 1]!.x);
  return { text: chars.toSorted((a, b) => a.x - b.x).map((c) => c.ch).join(""), inOrder };
}

async function login(page: Page, name: string): Promise<void> {
  await page.getByTestId("mode-login").click();
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByTestId("login-submit").click();
  await page.locator("[data-testid=connection-status][data-state=online]").waitFor();
}

Deno.test("web bidi: the pure parts (hidden characters found, written out as code points)", () => {
  assert.equal(revealText(SPOOF), "invoice⟨U+202E⟩fdp.exe");
  assert.equal(revealText("a\u200bb\u2066c\ufeff"), "a⟨U+200B⟩b⟨U+2066⟩c⟨U+FEFF⟩");
  assert.equal(revealText("plain résumé.pdf"), "plain résumé.pdf");
  assert.deepEqual(revealParts("x\u202ey").map((p) => p.kind), ["text", "hidden", "text"]);
});

browserTest("web bidi: spoofed file names and link text read as they are written", async () => {
  await using data = await tempDir("parley-bidi-");
  let fileId: string;
  {
    await using server = await startServer(["--data", data.path]);
    await using c = await RawClient.json(server.port);
    const reg = await request(c, { type: "register", name: "alice", password: PASSWORD });
    assert.equal(reg.type, "ack");
    await request(c, { type: "join", room: "#docs" });
    const up = (name: string) =>
      fetch(`http://127.0.0.1:${server.httpPort}/files?name=${encodeURIComponent(name)}`, {
        method: "POST",
        headers: { authorization: `Bearer ${reg.token}` },
        body: "MZ not really an executable",
      }).then((r) => r.json());
    // What is uploaded now is cleaned by the server...
    assert.equal((await up(SPOOF)).name, "invoice_fdp.exe");
    assert.equal((await up("a\u200bb\u2060c.txt")).name, "a_b_c.txt");
    // ...but a file stored before that keeps its name: made here by writing it into the tables.
    fileId = (await up("placeholder.exe")).id;
    const sent = await request(c, { type: "send", room: "#docs", text: "", file: fileId });
    assert.equal(sent.type, "ack");
    const link = await request(c, {
      type: "send",
      room: "#docs",
      text: "get https://example.test/invoice\u202efdp.exe or \u202e https://example.test/a.txt",
    });
    assert.equal(link.type, "ack", JSON.stringify(link));
    assert.equal((await server.stop()).code, 0);
  }
  const db = new DatabaseSync(`${data.path}/parley.db`);
  db.prepare("UPDATE files SET name = ? WHERE id = ?").run(SPOOF, fileId);
  // Messages keep a copy of the file's reference, name and all.
  db.prepare("UPDATE messages SET file_json = json_set(file_json, '$.name', ?) WHERE file_id = ?")
    .run(SPOOF, fileId);
  db.close();

  await using server = await startServer(["--data", data.path]);
  const url = `http://127.0.0.1:${server.httpPort}`;
  await using pw = await launchChromium();
  const context = await pw.browser.newContext({
    viewport: { width: 1200, height: 760 },
    acceptDownloads: true,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  await page.goto(url);
  await login(page, "alice");
  await page.locator("[data-testid=conversation][data-key='#docs'] .conv-button").click();
  await page.locator("[data-testid=conv-title]", { hasText: "#docs" }).waitFor();

  // The file: the override is shown, not obeyed; "exe" is drawn last, as the extension.
  const chip = page.getByTestId("file").filter({ hasText: "invoice" });
  const name = chip.getByTestId("file-name");
  assert.equal(await name.textContent(), "invoice⟨U+202E⟩fdp.exe");
  const file = await seen(name);
  console.log(`file name as drawn: ${file.text}`);
  assert.equal(file.text, "invoice⟨U+202E⟩fdp.exe");
  assert.ok(file.inOrder, "drawn left to right, in the order it is written");
  assert.match(file.text, /\.exe$/);
  assert.equal(
    await chip.getByRole("button", { name: /^Download / }).getAttribute("aria-label"),
    "Download invoice⟨U+202E⟩fdp.exe (27 B)",
  );
  // Saved under the name the server gives it too, the override as "_".
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    chip.getByRole("button", { name: /^Download / }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "invoice_fdp.exe");
  await using c = await RawClient.json(server.port);
  const again = await request(c, { type: "login", name: "alice", password: PASSWORD });
  const res = await fetch(`${url}/files/${fileId}`, {
    headers: { authorization: `Bearer ${again.token}` },
  });
  await res.body?.cancel();
  assert.equal(res.status, 200);
  assert.equal(
    res.headers.get("content-disposition"),
    `attachment; filename="invoice_fdp.exe"; filename*=UTF-8''invoice_fdp.exe`,
  );

  // Links: one with an override in it, one after an override in the plain text.
  const links = page.getByTestId("link");
  assert.equal(await links.count(), 2);
  assert.equal(await links.nth(0).textContent(), "https://example.test/invoice⟨U+202E⟩fdp.exe");
  const first = await seen(links.nth(0));
  assert.equal(first.text, "https://example.test/invoice⟨U+202E⟩fdp.exe");
  assert.ok(first.inOrder, "the link's own override does not reorder it");
  const second = await seen(links.nth(1));
  console.log(`links as drawn: ${first.text} | ${second.text}`);
  assert.equal(second.text, "https://example.test/a.txt");
  assert.ok(second.inOrder, "an override before the link does not reorder it");
  assert.deepEqual(problems, []);
});
