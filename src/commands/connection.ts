/**
 * Commands about the connection itself: `hello`, `ping`, `pong`, `help`, `quit`.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import { PROTO } from "../protocol/frames.ts";
import type { CommandGroup } from "./command.ts";

/** The connection commands. */
export const connectionCommands: CommandGroup<"hello" | "ping" | "pong" | "help" | "quit"> = {
  hello: {
    guard: { needs: "nothing" },
    run(request, caller, { version, limits }) {
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
