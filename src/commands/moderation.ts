/**
 * Moderation commands: `topic`, `mode`, `kick`, `ban`, `unban`, `mute`, `unmute`, `op`, `deop`,
 * `invite`, `wall`. Each declares the role it needs (the `role` guard); the moderation service
 * (src/services/moderation.ts) does the rest.
 *
 * @module
 */

import type { ModerationAction } from "../protocol/frames.ts";
import type { Command, CommandGroup } from "./command.ts";

/** A command that acts on someone in a room; `op` and `deop` need the owner. */
function targeted<K extends ModerationAction>(action: K): Command<K> {
  const least = action === "op" || action === "deop" ? "owner" : "op";
  const command: Command<ModerationAction> = {
    guard: {
      needs: "online",
      role: (request) => ({ room: request.room, least, what: `${action} in ${request.room}` }),
    },
    async run(request, caller, { moderation }) {
      await moderation.act(caller, action, request.room, request.name, request.reason);
      return { result: { command: action, reply: { type: "ack" } } };
    },
  };
  // Its request type is one of the union: the entry fits the table's slot for it.
  return command as unknown as Command<K>;
}

/** The moderation commands. */
export const moderationCommands: CommandGroup<
  "topic" | "mode" | "wall" | ModerationAction
> = {
  topic: {
    guard: {
      needs: "online",
      role: (request) =>
        request.text === undefined
          ? undefined
          : { room: request.room, least: "op", what: "set the topic" },
    },
    async run(request, caller, { moderation }) {
      const topic = await moderation.topic(caller, request.room, request.text);
      const reply = {
        type: "ack" as const,
        room: request.room,
        ...topic === undefined ? {} : { topic },
      };
      return { result: { command: "topic", reply } };
    },
  },
  mode: {
    guard: {
      needs: "online",
      role: (request) =>
        request.modes === undefined
          ? undefined
          : { room: request.room, least: "op", what: "change the modes" },
    },
    async run(request, caller, { moderation }) {
      const modes = await moderation.mode(caller, request.room, request.modes);
      return { result: { command: "mode", reply: { type: "ack", room: request.room, modes } } };
    },
  },
  wall: {
    guard: { needs: "account", role: () => ({ least: "admin", what: "wall" }) },
    async run(request, caller, { moderation }) {
      await moderation.wall(caller, request.text);
      return { result: { command: "wall", reply: { type: "ack" } } };
    },
  },
  kick: targeted("kick"),
  ban: targeted("ban"),
  unban: targeted("unban"),
  mute: targeted("mute"),
  unmute: targeted("unmute"),
  op: targeted("op"),
  deop: targeted("deop"),
  invite: targeted("invite"),
};
