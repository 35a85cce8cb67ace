/**
 * A raw-line IRC client for the tests: lines in, parsed messages out, over a real socket
 * ({@linkcode RawClient}), with registration and SASL helpers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type IrcMessage, parseIrcLine } from "../src/irc/message.ts";
import { RawClient } from "./_helpers.ts";

/** An IRC connection to a test server. */
export class IrcClient implements AsyncDisposable {
  readonly raw: RawClient;

  private constructor(raw: RawClient) {
    this.raw = raw;
  }

  /** Connects to 127.0.0.1:`port` (the IRC port, or the chat port for the hand-off). */
  static async connect(port: number): Promise<IrcClient> {
    return new IrcClient(await RawClient.connect(port));
  }

  /**
   * Connects and registers as `nick`: CAP LS 302, the `caps` asked for, SASL PLAIN with
   * `sasl` when given, NICK, USER, CAP END; waits for 001 (and the end of the burst: 422).
   */
  static async register(
    port: number,
    nick: string,
    options: { caps?: string[]; sasl?: [string, string]; pass?: string } = {},
  ): Promise<IrcClient> {
    const c = await IrcClient.connect(port);
    const caps = [...options.caps ?? [], ...options.sasl ? ["sasl"] : []];
    if (options.pass !== undefined) c.send(`PASS ${options.pass}`);
    c.send("CAP LS 302");
    c.send(`NICK ${nick}`);
    c.send(`USER ${nick} 0 * :${nick} Real`);
    await c.expect("CAP", (m) => m.params[1] === "LS");
    if (caps.length > 0) {
      c.send(`CAP REQ :${caps.join(" ")}`);
      await c.expect("CAP", (m) => m.params[1] === "ACK");
    }
    if (options.sasl !== undefined) {
      c.send("AUTHENTICATE PLAIN");
      await c.expect("AUTHENTICATE");
      c.send(`AUTHENTICATE ${plain(...options.sasl)}`);
      await c.expect("903");
    }
    c.send("CAP END");
    await c.expect("001");
    await c.expect("422");
    return c;
  }

  /** Sends one line (LF is added). */
  send(line: string): void {
    this.raw.send(line);
  }

  /** Sends raw bytes. */
  sendRaw(bytes: Uint8Array): void {
    this.raw.sendRaw(bytes);
  }

  /**
   * The next message with `command` (and matching `match`), skipping the ones before it;
   * throws after `timeoutMs`.
   */
  async expect(
    command: string,
    match: (m: IrcMessage) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<IrcMessage> {
    const line = await this.raw.line((l) => {
      const m = parseIrcLine(l);
      return typeof m !== "string" && m.command === command && match(m);
    }, timeoutMs);
    return parseIrcLine(line) as IrcMessage;
  }

  /** The next line, raw (for byte-exact checks). */
  line(match: (line: string) => boolean = () => true, timeoutMs = 5000): Promise<string> {
    return this.raw.line(match, timeoutMs);
  }

  /** Asserts that no message with `command` arrives within `ms`. */
  async none(command: string, ms = 300, match: (m: IrcMessage) => boolean = () => true) {
    await assert.rejects(this.expect(command, match, ms), /Timed out/);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.raw[Symbol.asyncDispose]();
  }
}

/** SASL PLAIN's payload for `name` and `password`. */
export function plain(name: string, password: string): string {
  const bytes = new TextEncoder().encode(`${name}\0${name}\0${password}`);
  return btoa(String.fromCharCode(...bytes));
}

/** Makes an account with `parley user add` against the running server's data folder. */
export async function addUser(data: string, name: string, password: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../main.ts", import.meta.url).pathname,
      "user",
      "add",
      name,
      "--password-stdin",
      "--data",
      data,
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(password + "\n"));
  await writer.close();
  const { code, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}
