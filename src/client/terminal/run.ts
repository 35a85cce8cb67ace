/**
 * The terminal client's loop, a thin layer on {@linkcode ChatClient}: typed lines are parsed
 * with the server's own text-mode grammar and sent as JSON frames one after another (each
 * waits for its reply, so what was typed goes out in order), while events print concurrently.
 *
 * @module
 */

import { ChatError } from "../../protocol/errors.ts";
import type { ClientFrame } from "../../protocol/frames.ts";
import { nameKey } from "../../protocol/names.ts";
import { parseTextLine, TEXT_HELP } from "../../protocol/text_mode.ts";
import type { ChatClient } from "../chat_client.ts";
import { ConnectionClosedError, ServerError } from "../errors.ts";
import type { Formatter } from "./format.ts";
import type { TerminalIO } from "./console.ts";

/** What the terminal session needs besides the client and the I/O. */
export interface TerminalOptions {
  /** Formats output lines. */
  format: Formatter;
  /** A name to take at start (`--name`). */
  name?: string;
  /** A room to join and make current at start (`--room`). */
  room?: string;
}

/**
 * Runs the terminal session until the user quits (a quit word, `/quit`, end of input, or
 * {@linkcode ChatClient.quit} from a signal handler) or the client closes for good.
 *
 * @returns the exit code: 0 after a clean quit; 1 when the connection was lost for good or,
 * when not interactive, some typed lines could not be delivered
 */
export async function runTerminal(
  client: ChatClient,
  io: TerminalIO,
  options: TerminalOptions,
): Promise<number> {
  const fmt = options.format;
  let current: string | undefined = client.joinedRooms.at(-1);
  let undelivered = 0;
  let loggedOut = false;
  const isIn = (room: string | undefined) =>
    room !== undefined && client.joinedRooms.some((r) => nameKey(r) === nameKey(room));
  const prompt = () => io.setPrompt(`${current ?? "(no room)"}> `);
  const show = (lines: { text: string; error: boolean }[]) => lines.forEach((l) => io.print(l));

  show([
    fmt.info(
      `Connected to ${client.hostname}:${client.port} (${client.server?.server} ` +
        `${client.server?.version}) as ${client.name}, in ${client.joinedRooms.join(", ")}`,
    ),
  ]);
  if (io.interactive) show([fmt.info("Type /help for commands, /quit to leave")]);
  prompt();

  /** Sends one frame; prints the reply or the refusal. */
  const execute = async (frame: ClientFrame): Promise<void> => {
    try {
      await client.whenConnected();
      const name = client.name;
      const reply = await client.request(frame);
      show(fmt.reply(frame, reply, name));
      if (frame.type === "logout") loggedOut = true;
      if (frame.type === "join") {
        current = String(reply.room);
      } else if (!isIn(current)) {
        // Left the current room (or logging in changed the rooms): the latest joined is current.
        const left = current;
        current = client.joinedRooms.at(-1);
        if (frame.type === "part" && left !== undefined) {
          show([fmt.info(current ? `Current room: ${current}` : "You are in no room; /join one")]);
        }
      }
      prompt();
    } catch (error) {
      if (error instanceof ServerError) {
        show([fmt.error(error.message)]);
      } else if (error instanceof ConnectionClosedError) {
        undelivered++;
        show([fmt.error(`Not sent: ${error.message}`)]);
      } else {
        throw error;
      }
    }
  };

  const printing = (async () => {
    for await (const event of client) {
      show(fmt.event(event, client.name));
      if (event.type === "reconnected") {
        if (!isIn(current)) current = client.joinedRooms.at(-1);
        prompt();
      }
    }
  })();

  /** Reads typed lines until a quit or the end of input; resolves with the quit reason. */
  const reading = (async (): Promise<string | undefined> => {
    if (options.name !== undefined) await execute({ type: "nick", name: options.name });
    if (options.room !== undefined) {
      await execute({
        type: "join",
        room: options.room.startsWith("#") ? options.room : `#${options.room}`,
      });
    }
    prompt();
    for await (const line of io.lines()) {
      if (client.state === "closed") break;
      let command;
      try {
        command = parseTextLine(line, current);
      } catch (error) {
        if (!(error instanceof ChatError)) throw error;
        show([fmt.error(error.message)]);
        continue;
      }
      if (command === undefined) continue;
      if (command.type === "help") {
        show(TEXT_HELP.map((text) => fmt.info(text)));
        continue;
      }
      if (command.type === "quit") return command.reason;
      await execute(command);
      if (loggedOut) return undefined; // the server ends the connection after a logout
    }
    return undefined;
  })();

  reading.then(
    (reason) => client.quit(reason),
    (error) => {
      show([fmt.error(`Input failed: ${error instanceof Error ? error.message : error}`)]);
      return client.quit();
    },
  );
  const reason = await client.closed;
  await printing;
  if (reason === "quit") {
    if (io.interactive && !loggedOut) show([fmt.info(`Goodbye, ${client.name}`)]);
    io.close();
    if (!io.interactive && undelivered > 0) {
      show([fmt.error(`${undelivered} typed line(s) were not delivered`)]);
      return 1;
    }
    return 0;
  }
  io.close();
  show([fmt.error(`Connection lost: ${reason}`)]);
  return 1;
}
