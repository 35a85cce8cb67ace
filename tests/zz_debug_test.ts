import { launchChromium } from "./_helpers.ts";
import { controlled, openPage, webServer } from "./_web.ts";
Deno.test("debug", async () => {
  const web = await webServer();
  await using pw = await launchChromium();
  const visitor = await openPage(pw.browser, web.url);
  visitor.page.on("console", (m) => console.log("console:", m.type(), m.text()));
  await controlled(visitor.page);
  await web.server.stop("SIGTERM");
  await visitor.page.reload();
  await new Promise((r) => setTimeout(r, 2000));
  console.log(
    await visitor.page.evaluate(() =>
      JSON.stringify({ c: !!(globalThis as any).navigator.serviceWorker.controller })
    ),
  );
  console.log((await visitor.page.locator("body").innerText()).slice(0, 300));
  await web[Symbol.asyncDispose]();
});
