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
chat.boot();
