/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The web client's entry point: creates the controller and mounts the app into `#app`.
 * Bundled by src/web/build.ts (`deno task build:web`).
 *
 * @module
 */

import { render } from "preact";
import { App } from "./app.tsx";
import { Chat } from "./chat.ts";
import { ChatContext } from "./hooks.ts";

const chat = new Chat();
const root = document.getElementById("app");
if (root === null) {
  throw new Error("Cannot start: the page has no #app element");
}
render(
  <ChatContext.Provider value={chat}>
    <App />
  </ChatContext.Provider>,
  root,
);
chat.checkSavedApp();
chat.boot();
// The service worker keeps the app shell, so the page opens while the server is down (sw.js).
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    // Not a secure context, or refused: the app works as a plain page.
  });
}
