/**
 * Commands about the connection itself: `hello`, `ping`, `pong`, `help`, `quit`.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import { PROTO } from "../protocol/frames.ts";
import { DEFAULT_ROOM } from "../protocol/names.ts";
import type { Outcome } from "../protocol/requests.ts";
import type { WebPort } from "../protocol/sniff.ts";
import type { Start } from "../dialects/dialect.ts";
import type { Caller, CommandGroup, Services } from "./command.ts";

/**
 * What a session does at its first line: unless the server requires logins, it comes online as a
 * guest in #general, with #general's latest history to replay.
 */
export function arrive(
  caller: Caller,
  { hub, messages, config }: Services,
): { start: Start; replay?: Promise<Outcome> } {
  if (config.requireLogin) return { start: { kind: "login_required" } };
  hub.connect(caller);
  caller.autoGeneral = true;
  caller.comeOnline([DEFAULT_ROOM]);
  const history = messages.latest([DEFAULT_ROOM], config.historyOnJoin);
  return {
    start: { kind: "guest", name: caller.name, room: caller.current! },
    replay: history.then((replay) => ({ replay })),
  };
}

/** The connection commands. */
export const connectionCommands: CommandGroup<"hello" | "ping" | "pong" | "help" | "quit"> = {
  hello: {
    guard: { needs: "nothing" },
    run(request, caller, { version, limits, web, config }) {
      if (request.proto !== undefined && request.proto !== PROTO) {
        throw new ChatError("bad_frame", `Unsupported protocol version ${request.proto}`);
      }
      return {
        result: {
          command: "hello",
          reply: {
            type: "welcome",
            server: "parley",
            version,
            proto: PROTO,
            name: caller.name,
            limits,
            ...web === undefined ? {} : { web: webUrl(web, config.host) },
          },
          online: caller.online,
        },
      };
    },
  },
  ping: {
    guard: { needs: "nothing" },
    run: () => ({ result: { command: "ping", reply: { type: "pong" } } }),
  },
  pong: {
    guard: { needs: "nothing" },
    run: () => ({ result: { command: "pong" } }),
  },
  help: {
    guard: { needs: "nothing" },
    run: () => ({ result: { command: "help", reply: { type: "ack" } } }),
  },
  quit: {
    guard: { needs: "nothing" },
    run: (_request, caller) => ({
      result: { command: "quit", reply: { type: "ack" }, name: caller.name },
      close: true,
    }),
  },
};

/** The web port as `welcome` announces it: `https://HOST:PORT` (or `http://`). */
export function webUrl(web: WebPort, host: string): string {
  return `${web.secure ? "https" : "http"}://${
    host.includes(":") ? `[${host}]` : host
  }:${web.port}`;
}
