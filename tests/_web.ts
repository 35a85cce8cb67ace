// Browser test helpers shared by tests/web_*_test.ts: the real server with its web port, a page
// in a fresh browser context (its own storage: one user) that records console errors and
// foreign requests, and what a user does (register, log in, join, say) and waits for.
import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { startServer } from "./_helpers.ts";
import type { ServerProcess } from "./_helpers.ts";

export const PASSWORD = "correct horse battery";

// ---- fixtures ----

/** The real server with its web port, disposable. */
export interface WebServer extends AsyncDisposable {
  server: ServerProcess;
  /** `http://127.0.0.1:PORT` */
  url: string;
  httpPort: number;
}

export async function webServer(args: string[] = []): Promise<WebServer> {
  const server = await startServer(args);
  assert.ok(server.httpPort > 0, "the server has an HTTP listener");
  return {
    server,
    url: `http://127.0.0.1:${server.httpPort}`,
    httpPort: server.httpPort,
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}

/** A page in a fresh context (its own storage: one user), with the problems it logged. */
export interface UserPage {
  page: Page;
  context: BrowserContext;
  /** Console errors, page errors, and requests to any other origin. */
  problems: string[];
}

export async function openPage(
  browser: Browser,
  url: string,
  options: {
    width?: number;
    height?: number;
    colorScheme?: "light" | "dark";
    /** Runs in the page before its own scripts (the page's CSP does not apply to it). */
    initScript?: string;
  } = {},
): Promise<UserPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1200, height: options.height ?? 760 },
    reducedMotion: "reduce",
    colorScheme: options.colorScheme ?? "light",
    acceptDownloads: true,
  });
  if (options.initScript !== undefined) await context.addInitScript(options.initScript);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  const origin = new URL(url).origin;
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    if (new URL(r.url()).origin !== origin) {
      problems.push(`foreign request: ${r.url()}`);
    }
  });
  page.on("websocket", (ws) => {
    if (new URL(ws.url()).host !== new URL(url).host) {
      problems.push(`foreign ws: ${ws.url()}`);
    }
  });
  await page.goto(url);
  return { page, context, problems };
}

// ---- what a user does ----

export async function register(page: Page, name: string): Promise<void> {
  await page.getByTestId("mode-register").click();
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByTestId("login-submit").click();
  await online(page);
  assert.equal(await page.getByTestId("me").textContent(), name);
}

export async function login(page: Page, name: string): Promise<void> {
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByTestId("login-submit").click();
  await online(page);
}

export async function online(page: Page, timeout = 10_000): Promise<void> {
  await page.locator("[data-testid=connection-status][data-state=online]")
    .waitFor({ timeout });
}

export async function say(page: Page, text: string): Promise<void> {
  const box = page.getByTestId("composer");
  const lines = text.split("\n");
  await box.fill(lines[0]!);
  for (const line of lines.slice(1)) {
    await box.press("Shift+Enter");
    await box.pressSequentially(line);
  }
  await box.press("Enter");
  if (text.startsWith("/")) {
    await page.getByTestId("composer").and(page.locator("textarea")).waitFor();
    await page.waitForFunction(() => {
      const doc = (globalThis as unknown as {
        document: { querySelector(s: string): { value: string } | null };
      }).document;
      return doc.querySelector("[data-testid=composer]")?.value === "";
    });
  } else {
    await message(page, "", text, { status: "sent" });
  }
}

export async function joinRoom(page: Page, room: string): Promise<void> {
  await page.getByLabel("Join or create a room").fill(room);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator(`[data-testid=conv-title]`, { hasText: room }).waitFor();
}

/** Waits for a message (from `from`, unless "") whose text is exactly `text`. */
export async function message(
  page: Page,
  from: string,
  text: string,
  options: { status?: string; timeout?: number } = {},
) {
  const sel = `[data-testid=message]${from === "" ? "" : `[data-from="${from}"]`}${
    options.status === undefined ? "" : `[data-status="${options.status}"]`
  }`;
  const loc = page.locator(sel).filter({
    has: page.locator(".msg-text", {
      hasText: new RegExp(`^${escapeRe(text)}$`),
    }),
  });
  await loc.first().waitFor({ timeout: options.timeout ?? 10_000 });
  return loc;
}

export function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export async function texts(page: Page): Promise<string[]> {
  return await page.locator("[data-testid=message] .msg-text")
    .allTextContents();
}

/** The sidebar entry of a conversation. */
export function conversation(page: Page, key: string) {
  return page.locator(`[data-testid=conversation][data-key="${key}"]`);
}

/**
 * Waits until a service worker controls `page` (it claims the page once it has kept the app
 * shell, see src/web/app/sw.js).
 */
export async function controlled(page: Page): Promise<void> {
  await page.waitForFunction(() =>
    (globalThis as unknown as { navigator: { serviceWorker: { controller: unknown } } })
      .navigator.serviceWorker.controller !== null
  );
}

/** A TCP proxy to the server's web port that passes what browsers send slowly. */
export interface SlowProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, the proxy's address. */
  url: string;
  /** Bytes the browsers have written to the proxy, and those passed on to the server. */
  readonly fromBrowser: number;
  readonly toServer: number;
}

/**
 * Listens on a free port and forwards each connection to `127.0.0.1:port`, the server's way
 * back at full speed and the browser's way at most `bytesPerSecond` (in slices every 50 ms):
 * the server then receives an upload slowly while the browser has long handed it to its socket.
 */
export function slowProxy(port: number, bytesPerSecond: number): SlowProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const counts = { fromBrowser: 0, toServer: 0 };
  const slice = Math.max(1, Math.round(bytesPerSecond / 20));
  const pump = async (client: Deno.Conn) => {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch {
      client.close();
      return;
    }
    conns.add(client).add(server);
    const back = server.readable.pipeTo(client.writable).catch(() => {});
    const writer = server.writable.getWriter();
    try {
      for await (const chunk of client.readable) {
        counts.fromBrowser += chunk.length;
        for (let at = 0; at < chunk.length; at += slice) {
          const part = chunk.subarray(at, at + slice);
          await writer.write(part);
          counts.toServer += part.length;
          if (part.length === slice) await new Promise((r) => setTimeout(r, 50));
        }
      }
    } catch {
      // either side went away
    } finally {
      for (const c of [client, server]) {
        try {
          c.close();
        } catch {
          // closed already
        }
        conns.delete(c);
      }
      await back;
    }
  };
  const pumps = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const p = pump(conn).finally(() => pumps.delete(p));
        pumps.add(p);
      }
    } catch {
      // closed
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get fromBrowser() {
      return counts.fromBrowser;
    },
    get toServer() {
      return counts.toServer;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed already
        }
      }
      await accepting;
      await Promise.all(pumps);
    },
  };
}
