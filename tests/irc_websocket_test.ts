/**
 * IRC over WebSocket (`/irc` on the web port, the IRCv3 binding) end to end, with Deno's own
 * WebSocket client: the subprotocols, registration, chat with a JSON user, IRC's line limit,
 * the Origin policy, and `--no-irc`.
 */

import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";
import { parseIrcLine } from "../src/irc/message.ts";
import type { IrcMessage } from "../src/irc/message.ts";

const NAME = ["--server-name", "irc.test"];

/** An IRC client over a WebSocket: one line per message. */
class WsIrc implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly lines: string[] = [];
  /** Whether every message arrived as binary (an ArrayBuffer). */
  binary = true;
  closed: Promise<CloseEvent>;
  #wake: (() => void) | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    const closed = Promise.withResolvers<CloseEvent>();
    this.closed = closed.promise;
    socket.onclose = (e) => {
      closed.resolve(e);
      this.#wake?.();
    };
    socket.onmessage = (e) => {
      if (typeof e.data === "string") {
        this.binary = false;
        this.lines.push(e.data);
      } else this.lines.push(new TextDecoder().decode(e.data as ArrayBuffer));
      this.#wake?.();
    };
  }

  static async open(
    port: number,
    protocols: string[] = ["text.ircv3.net"],
    headers: Record<string, string> = {},
  ): Promise<WsIrc> {
    // deno-lint-ignore no-explicit-any
    const socket = new WebSocket(`ws://127.0.0.1:${port}/irc`, { protocols, headers } as any);
    const c = new WsIrc(socket);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("The WebSocket failed to open"));
    });
    return c;
  }

  send(line: string): void {
    this.socket.send(line);
  }

  /** The next message with `command`, skipping those before it. */
  async expect(
    command: string,
    match: (m: IrcMessage) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<IrcMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        assert.doesNotMatch(line, /[\r\n]/, "one IRC line per message, without CRLF");
        const m = parseIrcLine(line);
        if (typeof m !== "string" && m.command === command && match(m)) return m;
        continue;
      }
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error(`Closed before ${command}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${command}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.close();
      await this.closed;
    }
  }
}

Deno.test("irc over WebSocket: text.ircv3.net registers, joins, chats with a JSON user, gets 417", async () => {
  await using server = await startServer(NAME);
  await using irc = await WsIrc.open(server.httpPort, ["text.ircv3.net"]);
  assert.equal(irc.socket.protocol, "text.ircv3.net");
  irc.send("NICK webby");
  irc.send("USER webby 0 * :Web IRC");
  const welcome = await irc.expect("001");
  assert.equal(welcome.source, "irc.test");
  assert.equal(welcome.params[0], "webby");
  await irc.expect("422");
  irc.send("JOIN #web");
  await irc.expect("366", (m) => m.params[1] === "#web");

  await using json = await RawClient.json(server.port, "jason");
  json.send({ type: "join", room: "#web", ref: "j" });
  await json.frame((f) => f.ref === "j");
  json.send({ type: "send", room: "#web", text: "hello from JSON", ref: "s" });
  const heard = await irc.expect("PRIVMSG");
  assert.equal(heard.source?.split("!")[0], "jason");
  assert.deepEqual(heard.params, ["#web", "hello from JSON"]);

  irc.send("PRIVMSG #web :hello from the web");
  const got = await json.frame((f) => f.type === "message" && f.from === "webby");
  assert.equal(got.text, "hello from the web");
  // A client that ends its line with CRLF anyway is understood.
  irc.send("PRIVMSG #web :with crlf\r\n");
  const crlf = await json.frame((f) => f.type === "message" && f.from === "webby");
  assert.equal(crlf.text, "with crlf");

  // IRC's 512-byte line limit, under the frame limit: 417, and the session goes on.
  irc.send(`PRIVMSG #web :${"x".repeat(600)}`);
  await irc.expect("417");
  irc.send("PING :still");
  const pong = await irc.expect("PONG");
  assert.equal(pong.params.at(-1), "still");
  assert.equal(irc.binary, false, "text.ircv3.net gets text frames");

  // Past the frame limit (512 + 8191 bytes): closed with 1009, as /ws past its frame limit.
  irc.send(`PRIVMSG #web :${"y".repeat(9000)}`);
  assert.equal((await irc.closed).code, 1009);
});

Deno.test("irc over WebSocket: binary.ircv3.net gets binary frames; no subprotocol means text", async () => {
  await using server = await startServer(NAME);
  await using bin = await WsIrc.open(server.httpPort, ["binary.ircv3.net", "text.ircv3.net"]);
  assert.equal(bin.socket.protocol, "binary.ircv3.net");
  bin.socket.send(new TextEncoder().encode("NICK bin"));
  bin.socket.send(new TextEncoder().encode("USER bin 0 * :b"));
  await bin.expect("001");
  assert.equal(bin.binary, true);

  await using plainWs = await WsIrc.open(server.httpPort, []);
  assert.equal(plainWs.socket.protocol, "");
  plainWs.send("NICK nosub");
  plainWs.send("USER nosub 0 * :n");
  await plainWs.expect("001");
  assert.equal(plainWs.binary, false);

  // Only unknown subprotocols: refused with 400.
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/irc`, {
    headers: {
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-protocol": "chat.example",
    },
  });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /text\.ircv3\.net/);
});

Deno.test("irc over WebSocket: /ws's Origin policy; the server password; --no-irc makes /irc 404", async () => {
  await using server = await startServer([...NAME, "--server-password", "letmein"]);
  await assert.rejects(
    WsIrc.open(server.httpPort, ["text.ircv3.net"], { origin: "https://evil.example" }),
  );
  await using same = await WsIrc.open(server.httpPort, ["text.ircv3.net"], {
    origin: `http://127.0.0.1:${server.httpPort}`,
  });
  same.send("NICK nopass");
  same.send("USER nopass 0 * :x");
  await same.expect("464");
  await using good = await WsIrc.open(server.httpPort);
  good.send("PASS letmein");
  good.send("NICK haspass");
  good.send("USER haspass 0 * :x");
  await good.expect("001");

  await using off = await startServer([...NAME, "--no-irc"]);
  const res = await fetch(`http://127.0.0.1:${off.httpPort}/irc`);
  assert.equal(res.status, 404);
  await res.body?.cancel();
  await assert.rejects(WsIrc.open(off.httpPort));
});
