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
import type { AccountLogin } from "../auth/accounts.ts";
import type { RequestOf } from "../protocol/requests.ts";
import type { WelcomeFrame } from "../protocol/frames.ts";
import type { Caller, CommandGroup, Services } from "./command.ts";
import { logIn, resume } from "./identity.ts";

/** Whether a request is a `hello` that logs in (a token, or a name and a password). */
export function logsIn(request: { type: string }): boolean {
  if (request.type !== "hello") return false;
  const hello = request as RequestOf<"hello">;
  return hello.token !== undefined || (hello.name !== undefined && hello.password !== undefined);
}

/** The login a `hello` asks for. */
function credentials(
  hello: RequestOf<"hello">,
  caller: Caller,
  services: Services,
): Promise<AccountLogin & { rooms?: string[] }> {
  return hello.token !== undefined
    ? resume(hello.token, caller, services)
    : services.accounts.login(hello.name!, hello.password!, caller.remoteIp);
}

/**
 * What a session does at its first line: unless the server requires logins, it comes online as a
 * guest in #general, with #general's latest history to replay.
 */
export function arrive(
  caller: Caller,
  { hub, messages, moderation, config }: Services,
): { start: Start; replay?: Promise<Outcome> } {
  if (config.requireLogin) return { start: { kind: "login_required" } };
  hub.connect(caller);
  caller.autoGeneral = true;
  caller.comeOnline([DEFAULT_ROOM]);
  const start: Start = { kind: "guest", name: caller.name, room: caller.current! };
  // A guest banned from #general (by its address) is put out of it again, and told why.
  const replay = moderation.admit(caller, DEFAULT_ROOM).then(
    () => messages.latest([DEFAULT_ROOM], config.historyOnJoin).then((replay) => ({ replay })),
    (error) => {
      hub.evict(caller.name, DEFAULT_ROOM);
      throw error;
    },
  );
  return { start, replay };
}

/** The connection commands. */
export const connectionCommands: CommandGroup<"hello" | "ping" | "pong" | "help" | "quit"> = {
  hello: {
    guard: { needs: "nothing" },
    async run(request, caller, services) {
      if (request.proto !== undefined && request.proto !== PROTO) {
        caller.arrive();
        throw new ChatError("bad_frame", `Unsupported protocol version ${request.proto}`);
      }
      let login: Outcome | undefined;
      if (logsIn(request)) {
        try {
          login = await logIn(
            "login",
            await credentials(request, caller, services),
            caller,
            services,
          );
        } catch (error) {
          caller.arrive(); // as a guest after all (or, with --require-login, not yet)
          throw error;
        }
      }
      const welcome: WelcomeFrame = {
        type: "welcome",
        server: "parley",
        version: services.version,
        proto: PROTO,
        name: caller.name,
        limits: services.limits,
        ...services.web === undefined ? {} : { web: webUrl(services.web, services.config.host) },
      };
      if (login?.result?.command === "login") {
        const { type: _, ...fields } = login.result.reply;
        welcome.login = fields;
      }
      const outcome: Outcome = {
        result: { command: "hello", reply: welcome, online: caller.online },
      };
      if (login?.replay !== undefined) outcome.replay = login.replay;
      return outcome;
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
