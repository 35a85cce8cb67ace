/**
 * The text dialect, for `nc` and people: typed lines in (`/join #room`, or a message to the
 * current room), `* `-prefixed notices and `[#room] <name> text` lines out (docs/protocol.md,
 * "Text mode"). The grammar and the event lines live in `src/protocol/text_mode.ts`.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import type { ServerFrame } from "../protocol/frames.ts";
import type { ReplayItem, Result } from "../protocol/requests.ts";
import {
  contextLines,
  formatTextEvent,
  historyLine,
  historyLines,
  parseTextLine,
  sanitize,
  TEXT_HELP,
  voiceWhoLines,
} from "../protocol/text_mode.ts";
import { DEFAULT_ROOM } from "../protocol/names.ts";
import type { Dialect, Parsed, SessionView, Start } from "./dialect.ts";
import { encodeLines } from "./dialect.ts";

const encoder = new TextEncoder();

/** A reply's lines as notices: `* ` in front, unless a line is a message (`[…`) already. */
function notices(lines: readonly string[]): Uint8Array {
  return encodeLines(lines.map((l) => l.startsWith("[") || l.startsWith("* ") ? l : `* ${l}`));
}

/** The words for a result. */
function words(result: Result): string[] {
  switch (result.command) {
    case "hello":
      return [result.online ? `You are ${result.reply.name}` : "Log in or register to start"];
    case "ping":
      return ["pong"];
    case "pong":
      return [];
    case "history": {
      const { around } = result.reply;
      if (around !== undefined) return contextLines({ ...result.reply, around });
      const lines = historyLines(result.reply);
      return lines.length > 0 ? lines : ["No messages"];
    }
    case "nick":
      return [`You are now ${result.reply.name}`];
    case "join": {
      const { room, members } = result.reply;
      return [`You joined ${room}; members (${members.length}): ${members.join(", ")}`];
    }
    case "part": {
      const lines = [`You left ${result.reply.room}`];
      if (result.current !== undefined) {
        lines.push(
          result.current ? `Current room: ${result.current}` : "You are in no room; /join one",
        );
      }
      return lines;
    }
    case "rooms":
      return [`Rooms: ${result.reply.rooms.map((r) => `${r.name} (${r.members})`).join(", ")}`];
    case "who": {
      const { room, members } = result.reply;
      return [`Members of ${room} (${members.length}): ${members.join(", ")}`];
    }
    case "send": {
      const m = result.message;
      // A room message shows up as the room's own line; a direct one is echoed.
      if (m.to === undefined) return [];
      const echo = `[dm to ${m.to}] <${m.from}> ${sanitize(m.text)}`;
      return result.reply.waiting
        ? [echo, `${m.to} is offline: it will be delivered when they log in`]
        : [echo];
    }
    case "login":
    case "register": {
      const { name, unread } = result.reply;
      const verb = result.command === "login" ? "Logged in" : "Registered and logged in";
      const summary = unread.length === 0
        ? "no unread direct messages"
        : `unread direct messages: ${unread.map((u) => `${u.from} (${u.count})`).join(", ")}`;
      return [`${verb} as ${name}; ${summary}`];
    }
    case "logout":
      return [`Logged out; goodbye, ${result.name}`];
    case "quit":
      return [`Goodbye, ${result.name}`];
    case "passwd":
      return ["Password changed; your other sessions must log in again"];
    case "help":
      return [...TEXT_HELP];
    case "topic": {
      const { room, topic } = result.reply;
      return [
        topic === undefined ? `${room} has no topic` : `Topic of ${room}: ${sanitize(topic)}`,
      ];
    }
    case "mode": {
      const { room, modes } = result.reply;
      return [modes === "" ? `${room} has no modes` : `Modes of ${room}: ${modes}`];
    }
    case "typing":
    case "react": // the reactions event, which reaches the reacting session too, says it
      return [];
    case "read":
      return [`Read up to message ${result.reply.id}`];
    case "unread": {
      const { rooms, conversations } = result.reply;
      const count = (n: number) => n >= 1000 ? "999+" : String(n);
      const parts = [
        ...rooms.filter((r) => r.unread > 0).map((r) => `${r.room} (${count(r.unread)})`),
        ...conversations.filter((c) => c.unread > 0).map((c) => `${c.with} (${count(c.unread)})`),
      ];
      return [parts.length === 0 ? "Nothing unread" : `Unread: ${parts.join(", ")}`];
    }
    case "search": {
      const found = result.reply.messages;
      if (found.length === 0) return [`No messages match "${sanitize(result.text)}"`];
      return [
        `* Search results for "${sanitize(result.text)}" (${found.length}, newest first):`,
        ...found.map((m) => `${historyLine(m)} (id ${m.id})`),
      ];
    }
    case "voice_who":
      return voiceWhoLines(result.reply, result.web);
    case "voice_join":
      return [`You joined voice in ${result.reply.room}`];
    case "voice_leave":
      return [`You left voice in ${result.reply.room}`];
    case "voice_answer":
    case "voice_ice":
      return [];
    default:
      return ["Done"]; // kick, ban, unban, mute, unmute, op, deop, invite, wall, edit, delete
  }
}

/**
 * The text dialect.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { text } from "./text.ts";
 * const view = { name: "alice", current: "#general", online: true };
 * assert.deepEqual(text.parse("hi all", view), {
 *   request: { type: "send", room: "#general", text: "hi all" },
 *   ref: undefined,
 * });
 * const bytes = text.result({ command: "nick", reply: { type: "ack", name: "bo" } }, undefined, view);
 * assert.equal(new TextDecoder().decode(bytes!), "* You are now bo\n");
 * ```
 */
export const text: Dialect = {
  name: "text",

  parse(line: string, view: SessionView): Parsed {
    try {
      const request = parseTextLine(line, view.online ? view.current : DEFAULT_ROOM);
      return request === undefined ? undefined : { request, ref: undefined };
    } catch (error) {
      if (error instanceof ChatError) return { error, ref: undefined };
      throw error;
    }
  },

  result(result: Result): Uint8Array | null {
    const lines = words(result);
    return lines.length === 0 ? null : notices(lines);
  },

  error(error: ChatError): Uint8Array {
    return encoder.encode(`! ${sanitize(error.message)}\n`);
  },

  event(frame: ServerFrame): Uint8Array | null {
    const line = formatTextEvent(frame);
    return line === undefined ? null : encoder.encode(line + "\n");
  },

  start(start: Start): Uint8Array {
    return encodeLines([
      start.kind === "guest"
        ? `* You are ${start.name}, in ${start.room}`
        : "* This server requires an account: /login NAME PASSWORD or /register NAME PASSWORD",
    ]);
  },

  *replayUnits(item: ReplayItem) {
    if (item.type === "message") {
      const line = formatTextEvent(item);
      if (line === undefined) return;
      const bytes = encoder.encode(line + "\n");
      yield item.offline ? { bytes, waiting: item.id } : { bytes };
      return;
    }
    for (const line of historyLines(item)) yield { bytes: encoder.encode(line + "\n") };
  },
};
