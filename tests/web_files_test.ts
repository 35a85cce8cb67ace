// File transfer in the browser client, end to end: the real server as a subprocess and Debian's
// Chromium (/usr/bin/chromium, never a downloaded browser) driven by playwright-core, beside a
// JSON client on the TCP port. Writes docs/screenshots/file-message.png.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Page } from "playwright-core";
import { browserTest, launchChromium, RawClient, screenshot, startServer } from "./_helpers.ts";
import { joinRoom, openPage, PASSWORD, register, slowProxy } from "./_web.ts";
import { progressText } from "../src/web/app/format.ts";
import { encodePng } from "../src/web/_icon_png.ts";
import { mergeMessages } from "../src/web/app/model.ts";
import type { ChatMessage } from "../src/web/app/model.ts";

/** The server's `--max-file-size` in these tests. */
const MAX_FILE = 150_000;

/** The page's globals that the callbacks given to `evaluate` use (they run in the browser). */
interface PageGlobals {
  DataTransfer: new () => { items: { add(file: File): void } };
  ClipboardEvent: new (type: string, init: Record<string, unknown>) => Event;
  document: { querySelector(selector: string): { value: number; max: number } | null };
}

// ---- a PNG made here (no binary fixture) ----

/** An RGB PNG of `width`×`height` whose pixels `paint` gives. */
function png(
  width: number,
  height: number,
  paint: (x: number, y: number) => [number, number, number],
): Uint8Array<ArrayBuffer> {
  const raw = new Uint8Array(height * (1 + width * 3));
  for (let y = 0, at = 0; y < height; y++) {
    raw[at++] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const [r, g, b] = paint(x, y);
      raw[at++] = r;
      raw[at++] = g;
      raw[at++] = b;
    }
  }
  return encodePng(width, height, "rgb", raw);
}

/** A speech bubble on a blue-to-violet gradient. */
function logo(): Uint8Array<ArrayBuffer> {
  return png(240, 150, (x, y) => {
    const inBubble = (((x - 120) / 70) ** 2 + ((y - 68) / 42) ** 2 <= 1) ||
      (x >= 88 && x <= 104 && y >= 100 && y <= 124 && x - 88 <= (124 - y));
    if (inBubble) return [255, 255, 255];
    const t = (x + y) / (240 + 150);
    return [Math.round(36 + 90 * t), Math.round(83 - 30 * t), Math.round(196 + 30 * t)];
  });
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- browser helpers (besides tests/_web.ts) ----

/** The stored message from `from` whose text is exactly `text` ("" for a file alone). */
function message(page: Page, from: string, text: string) {
  const sel = `[data-testid=message][data-from="${from}"][data-status=sent]`;
  return text === ""
    ? page.locator(sel).filter({ hasNot: page.locator(".msg-text") }).filter({
      has: page.getByTestId("file"),
    })
    : page.locator(sel).filter({
      has: page.locator(".msg-text", { hasText: new RegExp(`^${text}$`) }),
    });
}

/** Waits for the thumbnail in `msg` to be decoded; returns its src and natural width. */
async function thumbnail(msg: ReturnType<Page["locator"]>): Promise<[string, number]> {
  const img = msg.getByTestId("thumbnail");
  await img.waitFor();
  return await img.evaluate((el) => {
    const image = el as unknown as { decode(): Promise<void>; src: string; naturalWidth: number };
    return image.decode().then(() => [image.src, image.naturalWidth] as [string, number]);
  });
}

// ---- the tests ----

Deno.test("web files: pure parts (progress text, a pending file message matched by its file)", () => {
  assert.equal(progressText(0, 2048), "0% · 0 B of 2.0 KiB");
  assert.equal(progressText(1536, 2048), "75% · 1.5 KiB of 2.0 KiB");
  assert.equal(progressText(5000, 4000), "100% · 3.9 KiB of 3.9 KiB");
  const file = (id: string) => ({ id, name: "a.png", size: 1, type: "image/png", sha256: "" });
  const pending: ChatMessage = {
    kind: "message",
    key: "p1",
    from: "alice",
    text: "",
    ts: 1,
    action: false,
    offline: false,
    mention: false,
    status: "failed",
    file: file("A"),
  };
  const stored = (id: number, f: string): ChatMessage => ({
    ...pending,
    key: `m${id}`,
    id,
    status: "sent",
    file: file(f),
  });
  // Another empty-text file message from the same sender is not the failed one...
  const items = mergeMessages([pending], [stored(1, "B")]);
  assert.deepEqual(items.map((i) => i.key), ["p1", "m1"]);
  // ...the one with its file is.
  assert.deepEqual(mergeMessages(items, [stored(2, "A")]).map((i) => i.key), ["m1", "m2"]);
});

browserTest(
  "web files: attach, progress, thumbnails, download, drop, paste, errors, guests",
  async () => {
    await using server = await startServer(["--max-file-size", String(MAX_FILE)]);
    const url = `http://127.0.0.1:${server.httpPort}`;
    await using pw = await launchChromium();
    const image = logo();
    assert.ok(image.length < MAX_FILE, `the test image (${image.length} B) is under the limit`);

    const alice = await openPage(pw.browser, url);
    await register(alice.page, "alice");
    const bob = await openPage(pw.browser, url);
    await register(bob.page, "bob");
    await joinRoom(alice.page, "#pics");
    await joinRoom(bob.page, "#pics");
    // A JSON client, logged in and in the room, sees the same message with its file object.
    await using carol = await RawClient.json(server.port);
    carol.send({ type: "register", name: "carol", password: PASSWORD, ref: "r" });
    await carol.frame((f) => f.ref === "r");
    carol.send({ type: "join", room: "#pics", ref: "j" });
    await carol.frame((f) => f.ref === "j");

    // The attach button opens a hidden file input; the typed text goes with the file.
    const attach = alice.page.getByRole("button", { name: "Attach files" });
    assert.equal(await attach.isEnabled(), true);
    await alice.page.getByTestId("composer").fill("the new logo");
    await alice.page.getByTestId("file-input").setInputFiles({
      name: "logo.png",
      mimeType: "image/png",
      buffer: Buffer.from(image),
    });
    const sent = message(bob.page, "alice", "the new logo");
    const [src, width] = await thumbnail(sent);
    assert.match(src, /^blob:/);
    assert.equal(width, 240);
    assert.equal(await sent.getByRole("img", { name: "logo.png" }).count(), 1, "alt is the name");
    assert.match(await sent.getByTestId("file").textContent() ?? "", /logo\.png/);
    assert.equal(await alice.page.getByTestId("composer").inputValue(), "", "the text was sent");
    await thumbnail(message(alice.page, "alice", "the new logo"));
    await bob.page.getByTestId("composer").focus();
    await screenshot(bob.page, "file-message.png");

    const frame = await carol.frame((f) => f.type === "message" && f.from === "alice");
    assert.equal(frame.text, "the new logo");
    const ref = frame.file as Record<string, unknown>;
    assert.deepEqual(
      { ...ref, id: typeof ref.id },
      {
        id: "string",
        name: "logo.png",
        size: image.length,
        type: "image/png",
        sha256: await sha256Hex(image),
      },
    );

    // Downloading gives back the very bytes.
    const [download] = await Promise.all([
      bob.page.waitForEvent("download"),
      sent.getByRole("button", { name: /^Download logo\.png/ }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "logo.png");
    assert.deepEqual(await Deno.readFile(await download.path()), image);

    // Over the --max-file-size the server announced: refused before a byte is sent.
    await alice.page.getByTestId("file-input").setInputFiles({
      name: "huge.bin",
      mimeType: "application/octet-stream",
      buffer: Buffer.alloc(MAX_FILE + 50_000),
    });
    await alice.page.getByTestId("composer-error").filter({
      hasText: "huge.bin is too large: the most is 146.5 KiB",
    }).waitFor();
    assert.equal(await alice.page.locator("[data-testid=upload]").count(), 0, "nothing uploaded");

    // A slow upload shows its progress and can be cancelled; the text comes back to the box.
    const cdp = await alice.page.context().newCDPSession(alice.page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 40_000,
    });
    await alice.page.getByTestId("composer").fill("never mind");
    await alice.page.getByTestId("file-input").setInputFiles({
      name: "slow.bin",
      mimeType: "application/octet-stream",
      buffer: Buffer.alloc(140_000),
    });
    const going = alice.page.locator("[data-testid=upload][data-status=uploading]");
    await going.waitFor();
    assert.equal(await alice.page.getByTestId("composer").inputValue(), "");
    await alice.page.waitForFunction(() => {
      const { document } = globalThis as unknown as PageGlobals;
      const bar = document.querySelector("[data-testid=upload] progress");
      return bar !== null && bar.value > 0 && bar.value < bar.max;
    });
    assert.match(
      await going.getByTestId("upload-progress").textContent() ?? "",
      /^\d+% · [\d.]+ KiB of 136\.7 KiB$/,
    );
    assert.equal(await going.getByRole("progressbar", { name: "Uploading slow.bin" }).count(), 1);
    await going.getByRole("button", { name: "Cancel uploading slow.bin" }).click();
    await going.waitFor({ state: "detached" });
    assert.equal(await alice.page.getByTestId("composer").inputValue(), "never mind");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
    await alice.page.getByTestId("composer").fill("");

    // Dropping a file on the conversation: a highlighted drop zone, then a file message.
    const notes = "minutes of the meeting\n".repeat(20);
    const transfer = await alice.page.evaluateHandle((text) => {
      const { DataTransfer } = globalThis as unknown as PageGlobals;
      const dt = new DataTransfer();
      dt.items.add(new File([text], "notes.txt", { type: "text/plain" }));
      return dt;
    }, notes);
    const main = alice.page.locator("main");
    await main.dispatchEvent("dragenter", { dataTransfer: transfer });
    assert.equal(
      await alice.page.getByTestId("drop-zone").textContent(),
      "Drop files to send them to #pics",
    );
    await main.dispatchEvent("drop", { dataTransfer: transfer });
    await alice.page.getByTestId("drop-zone").waitFor({ state: "detached" });
    const dropped = message(bob.page, "alice", "");
    await dropped.waitFor();
    assert.match(await dropped.getByTestId("file").textContent() ?? "", /notes\.txt.*460 B/);
    assert.equal(await dropped.getByTestId("thumbnail").count(), 0, "no thumbnail for text");
    const note = await carol.frame((f) => f.type === "message" && f.from === "alice");
    assert.deepEqual([note.text, (note.file as { name: string }).name], ["", "notes.txt"]);

    // Pasting an image into a direct message.
    await alice.page.getByLabel("Message someone").fill("bob");
    await alice.page.getByRole("button", { name: "Open", exact: true }).click();
    await alice.page.locator("[data-testid=conv-title]", { hasText: "bob" }).waitFor();
    await alice.page.getByTestId("composer").evaluate((box, bytes) => {
      const { DataTransfer, ClipboardEvent } = globalThis as unknown as PageGlobals;
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], "image.png", { type: "image/png" }));
      box.dispatchEvent(
        new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }),
      );
    }, [...image]);
    await bob.page.locator("[data-testid=conversation][data-key='@alice'] .conv-button").click();
    const [dmSrc, dmWidth] = await thumbnail(message(bob.page, "alice", ""));
    assert.match(dmSrc, /^blob:/);
    assert.equal(dmWidth, 240);

    // A guest sees the button disabled, and why; files in the room show without a preview.
    const gus = await openPage(pw.browser, url);
    await gus.page.getByLabel("Name").fill("gus");
    await gus.page.getByTestId("guest").click();
    await gus.page.locator("[data-testid=connection-status][data-state=online]").waitFor();
    await joinRoom(gus.page, "#pics");
    const guestAttach = gus.page.getByRole("button", { name: "Attach files" });
    assert.equal(await guestAttach.getAttribute("aria-disabled"), "true");
    assert.equal(await guestAttach.isDisabled(), true);
    const why = "Files need an account: log in or register to send them";
    assert.equal(await gus.page.locator("#attach-why").textContent(), `${why}.`);
    await guestAttach.click({ force: true });
    assert.equal(await gus.page.getByTestId("composer-error").textContent(), why);
    await gus.page.getByTestId("file-input").setInputFiles({
      name: "x.png",
      mimeType: "image/png",
      buffer: Buffer.from(image),
    });
    assert.equal(await gus.page.locator("[data-testid=upload]").count(), 0);
    const seen = message(gus.page, "alice", "the new logo");
    await seen.getByTestId("file").waitFor();
    assert.equal(await seen.getByTestId("thumbnail").count(), 0);

    const expected = /status of 413/; // the browser logs the refused upload
    assert.deepEqual(
      [...alice.problems, ...bob.problems, ...gus.problems].filter((p) => !expected.test(p)),
      [],
    );
  },
);

/** What the page records (see PROGRESS_PROBE): the server's counts, the bar, the browser's. */
interface ProgressProbe {
  /** `received` of each `upload_progress` frame, as it arrived. */
  server: number[];
  /** Each value the bar took, with the largest server count the page had then. */
  bars: { value: number; server: number }[];
  /** The browser's own upload progress events (bytes handed to its socket). */
  sent: number[];
}

/**
 * Runs in the page before its scripts: records the `upload_progress` frames its WebSockets
 * receive (before the app sees them), every value the upload bar shows, and the browser's own
 * upload progress, in `window.__probe`.
 */
const PROGRESS_PROBE = `
  const probe = { server: [], bars: [], sent: [] };
  window.__probe = probe;
  const Native = WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (ev) => {
        try {
          const f = JSON.parse(ev.data);
          if (f.type === "upload_progress") probe.server.push(f.received);
        } catch {}
      });
    }
  };
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (body) {
    this.upload.addEventListener("progress", (ev) => probe.sent.push(ev.loaded));
    return send.call(this, body);
  };
  let last = -1;
  const watch = () => {
    const bar = document.querySelector("[data-testid=upload] progress");
    if (bar !== null && bar.value !== last) {
      last = bar.value;
      probe.bars.push({ value: bar.value, server: Math.max(0, ...probe.server) });
    }
    requestAnimationFrame(watch);
  };
  requestAnimationFrame(watch);
`;

browserTest(
  "web files: the upload bar shows what the server received, never what the browser queued",
  async () => {
    await using server = await startServer();
    // The browser's bytes reach the server at 384 KiB/s; the browser hands them to its socket
    // much faster.
    await using proxy = slowProxy(server.httpPort, 384 * 1024);
    await using pw = await launchChromium();
    const alice = await openPage(pw.browser, proxy.url, { initScript: PROGRESS_PROBE });
    await register(alice.page, "alice");
    await using bob = await RawClient.json(server.port, "bob");
    const size = 1536 * 1024;
    await alice.page.getByTestId("file-input").setInputFiles({
      name: "big.bin",
      mimeType: "application/octet-stream",
      buffer: Buffer.alloc(size, 7),
    });
    await alice.page.locator("[data-testid=upload][data-status=uploading]").waitFor();
    await alice.page.waitForFunction(() => {
      const { document } = globalThis as unknown as PageGlobals;
      const bar = document.querySelector("[data-testid=upload] progress");
      return bar !== null && bar.value > 0 && bar.value < bar.max;
    });
    const midway = await alice.page.getByTestId("upload-progress").textContent();
    assert.match(midway ?? "", /^\d+% · [\d.]+ (KiB|MiB) of 1\.5 MiB$/);
    assert.ok(proxy.toServer < proxy.fromBrowser, "the proxy holds bytes back");
    const sent = await bob.frame((f) => f.type === "message" && f.from === "alice", 20_000);
    assert.equal((sent.file as { size: number }).size, size);

    const probe = await alice.page.evaluate(() =>
      (globalThis as unknown as { __probe: ProgressProbe }).__probe
    );
    // The server's counts grow to the whole file, a frame at a time.
    assert.ok(probe.server.length >= 5, `frames: ${probe.server.join(", ")}`);
    assert.deepEqual(probe.server, [...probe.server].sort((a, b) => a - b));
    assert.equal(probe.server.at(-1), size);
    // Every value the bar took was the server's, never ahead of what the page had heard.
    const bars = probe.bars.filter((b) => b.value > 0);
    assert.ok(bars.length >= 3, `the bar moved: ${JSON.stringify(probe.bars)}`);
    for (const bar of bars) {
      assert.ok(bar.value <= bar.server, `bar ${bar.value} ≤ the server's ${bar.server}`);
      assert.ok(probe.server.includes(bar.value), `bar ${bar.value} is one of the server's`);
    }
    // Meanwhile the browser thought it had sent more than the server had received.
    const browserAhead = probe.sent.some((n) => n > (bars[0]?.value ?? 0) + 256 * 1024);
    assert.ok(browserAhead, `the browser's own count ran ahead: ${probe.sent.slice(0, 8)}`);
    assert.deepEqual(alice.problems, []);
  },
);
