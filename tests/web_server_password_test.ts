// Browser end to end: the web client on a server started with --server-password. The page
// learns of the password from the refused hello (`need: "serverPassword"`), asks for it on the
// login screen, keeps it for the tab only (sessionStorage), and sends it in every hello.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { browserTest, launchChromium, RawClient } from "./_helpers.ts";
import { message, online, openPage, PASSWORD, say, webServer } from "./_web.ts";

const SERVER_PASSWORD = "private club 7";

async function submit(page: Page, mode: "login" | "register", name: string): Promise<void> {
  await page.getByTestId(mode === "login" ? "mode-login" : "mode-register").click();
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByTestId("login-submit").click();
}

async function loginError(page: Page, pattern: RegExp): Promise<void> {
  await page.locator("[data-testid=login-error]", { hasText: pattern }).waitFor();
}

browserTest(
  "web: a server with a password: asked for on the login screen, kept for the tab, sent in every hello",
  async () => {
    await using web = await webServer(["--server-password", SERVER_PASSWORD]);
    await using pw = await launchChromium();
    const { page, context, problems } = await openPage(pw.browser, web.url);

    // Without it: refused, and the login screen asks for it.
    assert.equal(await page.getByTestId("server-password").count(), 0);
    await submit(page, "register", "carol");
    await loginError(page, /needs its password/);
    await page.getByTestId("server-password").waitFor();

    // A wrong one: refused, said so.
    await page.getByTestId("server-password").fill("not it");
    await submit(page, "register", "carol");
    await loginError(page, /Wrong server password/);

    // The right one: in.
    await page.getByTestId("server-password").fill(SERVER_PASSWORD);
    await submit(page, "register", "carol");
    await online(page);
    assert.equal(await page.getByTestId("me").textContent(), "carol");
    await using watcher = await RawClient.connect(web.server.port);
    watcher.send({ type: "hello", proto: 1, ref: "h", serverPassword: SERVER_PASSWORD });
    await watcher.frame((f) => f.ref === "h" && f.type === "welcome");
    watcher.send({ type: "nick", name: "watcher", ref: "n" });
    await watcher.frame((f) => f.ref === "n");
    await say(page, "inside the club");
    assert.equal(
      (await watcher.frame((f) => f.type === "message" && f.from === "carol")).text,
      "inside the club",
    );
    watcher.send({ type: "send", room: "#general", text: "welcome carol", ref: "s" });
    await message(page, "watcher", "welcome carol");

    // Kept for the tab only: sessionStorage, never localStorage.
    const stored = await page.evaluate(() => ({
      local: Object.values(localStorage).join("\n"),
      session: sessionStorage.getItem("parley.serverPassword"),
    }));
    assert.doesNotMatch(stored.local, /private club/);
    assert.equal(stored.session, SERVER_PASSWORD);

    // A reload in the same tab logs back in with the token and the tab's server password.
    await page.reload();
    await online(page);
    assert.equal(await page.getByTestId("me").textContent(), "carol");

    // Another tab (same browser profile: the token is shared, the server password is not): the
    // login screen asks for it, and resumes the saved session with it.
    const tab = await context.newPage();
    await tab.goto(web.url);
    await loginError(tab, /needs its password/);
    await tab.getByTestId("server-password").fill(SERVER_PASSWORD);
    await tab.getByTestId("resume").click();
    await online(tab);
    assert.equal(await tab.getByTestId("me").textContent(), "carol");
    assert.deepEqual(problems.filter((p) => !p.startsWith("console:")), []);
  },
);
