/**
 * `parley client`: the terminal chat client. Parses flags, connects a
 * {@linkcode ChatClient}, and runs the terminal session on stdin/stdout.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ChatClient } from "../client/chat_client.ts";
import { SessionRefusedError } from "../client/errors.ts";
import { openConsole } from "../client/terminal/console.ts";
import { Formatter } from "../client/terminal/format.ts";
import { runTerminal } from "../client/terminal/run.ts";
import type { TerminalOptions } from "../client/terminal/run.ts";
import { VERSION } from "../version.ts";
import { intFlag, UsageError } from "./args.ts";

/** The port used when none is given. */
export const DEFAULT_CLIENT_PORT = 5000;

/** `client --help`. */
export const CLIENT_USAGE = `Usage: parley client HOST [PORT] [options]
       parley client PORT HOST [options]

The terminal chat client (port ${DEFAULT_CLIENT_PORT} by default). Type a line to send it to your
current room; events from others appear as they arrive.

Options:
  --name NAME        take this name once connected
  --room #ROOM       join this room and make it the current one
  --no-color         no colors (also when NO_COLOR is set or stdout is not a terminal)
  -h, --help         show this help

Commands (as in the server's text mode):
  /nick NAME  /join #room  /part [#room]  /msg NAME TEXT  /me TEXT
  /who [#room]  /rooms  /history [#room|NAME] [N]  /ping  /help  /quit [reason]
  /register NAME PASS  /login NAME PASS  /logout  /passwd OLD NEW
  logout, bye, quit, Ctrl-C or end of input (Ctrl-D) leave cleanly.

Piped: printf '/join #ops\\nhello\\n' | parley client 127.0.0.1 --name bot
sends each line in order, waits for every reply, and exits.

Exit codes: 0 after a clean quit; 1 when the server cannot be reached, refuses the session,
or the connection is lost for good (or, when piped, a line could not be delivered); 2 on a
command-line mistake.`;

/** What `client` flags say. */
export interface ClientArgs {
  /** The server's host. */
  host: string;
  /** The server's port. */
  port: number;
  /** A name to take at start. */
  name?: string;
  /** A room to join and make current at start. */
  room?: string;
  /** Whether colors may be used (still only on a terminal, and never with NO_COLOR). */
  color: boolean;
}

/**
 * Parses `client` arguments; `undefined` when help was asked for. Accepts `HOST [PORT]`, and
 * `PORT HOST` when the first argument is a number.
 *
 * @throws {UsageError} on a missing host, a bad port or an extra argument
 */
export function parseClientArgs(args: string[]): ClientArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      room: { type: "string" },
      "no-color": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  if (positionals.length > 2) throw new UsageError(`Unexpected argument: ${positionals[2]}`);
  let [host, port] = positionals;
  if (host !== undefined && /^\d+$/.test(host)) {
    if (port === undefined) throw new UsageError(`Missing HOST: use client HOST [PORT]`);
    [host, port] = [port, host];
  }
  if (host === undefined || host === "") {
    throw new UsageError("Missing HOST: use client HOST [PORT]");
  }
  const parsed: ClientArgs = {
    host,
    port: intFlag(port, "port", DEFAULT_CLIENT_PORT, 1, 65535),
    color: !values["no-color"],
  };
  if (values.name !== undefined) parsed.name = values.name;
  if (values.room !== undefined) parsed.room = values.room;
  return parsed;
}

/** Whether to color output: stdout is a terminal, NO_COLOR is unset or empty, no --no-color. */
function useColor(allowed: boolean): boolean {
  return allowed && Deno.stdout.isTerminal() && (Deno.env.get("NO_COLOR") ?? "") === "";
}

/** Runs `parley client`; resolves to the exit code. */
export async function clientMain(args: string[]): Promise<number> {
  const parsed = parseClientArgs(args);
  if (parsed === undefined) {
    console.log(CLIENT_USAGE);
    return 0;
  }
  const { host, port } = parsed;
  let client: ChatClient;
  try {
    client = await ChatClient.connect(host, port, { clientName: `parley-cli/${VERSION}` });
  } catch (error) {
    const why = error instanceof SessionRefusedError
      ? `the server refused the session: ${error.message}`
      : `cannot connect to ${host}:${port}: ${error instanceof Error ? error.message : error}`;
    console.error(`parley client: ${why}`);
    return 1;
  }

  let interrupts = 0;
  const interrupt = () => {
    if (++interrupts > 1) Deno.exit(130); // a second Ctrl-C does not wait
    void client.quit();
  };
  const io = openConsole({
    onInterrupt: interrupt,
    prompt: `${client.joinedRooms.at(-1) ?? "(no room)"}> `,
  });
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, interrupt);
  try {
    const session: TerminalOptions = {
      format: new Formatter(useColor(parsed.color)),
    };
    if (parsed.name !== undefined) session.name = parsed.name;
    if (parsed.room !== undefined) session.room = parsed.room;
    return await runTerminal(client, io, session);
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, interrupt);
    io.close();
    await client.close();
  }
}
