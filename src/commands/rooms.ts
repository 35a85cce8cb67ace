/**
 * Room commands: `join`, `part`, `rooms`, `who`. A logged-in account's memberships are stored,
 * so its rooms come back at its next login.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import { checkRoom, DEFAULT_ROOM } from "../protocol/names.ts";
import type { CommandGroup } from "./command.ts";

/** The room commands. */
export const roomCommands: CommandGroup<"join" | "part" | "rooms" | "who"> = {
  join: {
    guard: { needs: "online" },
    async run(request, caller, { hub, store, messages, moderation, config }) {
      checkRoom(request.room);
      if (!hub.isIn(caller, request.room)) await moderation.admit(caller, request.room);
      if (caller.closed) throw new ChatError("timeout", "The session ended while joining");
      const { room, members, joined } = hub.join(caller, request.room);
      if (room === DEFAULT_ROOM) caller.autoGeneral = false;
      caller.current = room;
      const [replay, state] = await Promise.all([
        joined ? messages.latest([room], config.historyOnJoin) : [],
        moderation.state(room),
        joined && caller.user !== undefined
          ? store.memberships.add(caller.user.id, room)
          : undefined,
      ]);
      const reply = { type: "ack" as const, room, members, ...state };
      return { result: { command: "join", reply }, replay };
    },
  },
  part: {
    guard: { needs: "online" },
    async run(request, caller, { hub, store }) {
      const room = hub.part(caller, request.room);
      let current: string | null | undefined;
      if (caller.current === room) {
        caller.current = hub.roomsOf(caller).at(-1);
        current = caller.current ?? null;
      }
      if (caller.user !== undefined) await store.memberships.remove(caller.user.id, room);
      const result = { command: "part" as const, reply: { type: "ack" as const, room } };
      return { result: current === undefined ? result : { ...result, current } };
    },
  },
  rooms: {
    guard: { needs: "online" },
    run: (_request, _caller, { hub }) => ({
      result: { command: "rooms", reply: { type: "ack", rooms: hub.rooms() } },
    }),
  },
  who: {
    guard: { needs: "online" },
    async run(request, _caller, { hub, moderation }) {
      const { room, members } = hub.who(request.room);
      const state = await moderation.state(room);
      return { result: { command: "who", reply: { type: "ack", room, members, ...state } } };
    },
  },
};
