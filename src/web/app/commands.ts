/**
 * The composer's slash commands: every command of the server's text mode (the grammar is
 * `src/protocol/text_mode.ts`'s, reused as is), their help lines, and the completion popup's
 * suggestions (commands after `/`, `@names`, `#rooms`, and the names or rooms a command takes).
 * Pure: no DOM, unit-tested in tests/web_composer_test.ts.
 *
 * @module
 */

import { nameKey } from "../../protocol/names.ts";

/** What a command's first argument is, for completion. */
export type ArgKind = "room" | "name" | "none";

/** One composer command. */
export interface CommandInfo {
  /** The command word, without its `/`. */
  name: string;
  /** Other words for it (`/leave` for `/part`). */
  aliases: readonly string[];
  /** How it is typed: `/kick [#room] NAME [reason]`. */
  usage: string;
  /** What it does, in a few words. */
  summary: string;
  /** What its first argument (after an optional `#room`, for moderation) is. */
  arg: ArgKind;
}

const c = (
  name: string,
  usage: string,
  summary: string,
  arg: ArgKind = "none",
  aliases: readonly string[] = [],
): CommandInfo => ({ name, aliases, usage, summary, arg });

/** Every command the composer takes, in the order `/help` lists them. */
export const COMMANDS: readonly CommandInfo[] = [
  c("me", "/me TEXT", "an action in this conversation"),
  c("msg", "/msg NAME TEXT", "send a direct message", "name", ["dm"]),
  c("nick", "/nick NAME", "change your name (guests)"),
  c("join", "/join #room", "join a room and open it", "room"),
  c("part", "/part [#room]", "leave a room (this one by default)", "room", ["leave"]),
  c("who", "/who [#room]", "list a room's members", "room", ["names"]),
  c("rooms", "/rooms", "the server's rooms and their members", "none", ["list"]),
  c("topic", "/topic [#room] [TEXT]", "show or set the topic (- clears it)", "room"),
  c("kick", "/kick [#room] NAME [reason]", "remove someone from the room", "name"),
  c("ban", "/ban [#room] NAME [reason]", "remove someone for good", "name"),
  c("unban", "/unban [#room] NAME", "lift a ban", "name"),
  c("mute", "/mute [#room] NAME", "stop someone sending here", "name"),
  c("unmute", "/unmute [#room] NAME", "let someone send again", "name"),
  c("op", "/op [#room] NAME", "make someone an operator", "name"),
  c("deop", "/deop [#room] NAME", "remove an operator", "name"),
  c("invite", "/invite [#room] NAME", "let someone into an invite-only room", "name"),
  c("mode", "/mode [#room] [+i|-i|+m|-m]", "show or set invite only and moderated", "room"),
  c("wall", "/wall TEXT", "tell everyone on the server (administrators)"),
  c("reply", "/reply ID TEXT", "answer message ID"),
  c("edit", "/edit ID TEXT", "change a message of yours"),
  c("delete", "/delete ID", "delete a message"),
  c("react", "/react ID EMOJI", "react to a message"),
  c("unreact", "/unreact ID EMOJI", "take a reaction back"),
  c("search", "/search [#room|NAME:] WORDS", "find messages (in the sidebar)"),
  c("unread", "/unread", "what you have not read"),
  c("read", "/read [#room|NAME]", "mark a conversation read (this one by default)", "room"),
  c("context", "/context ID [N]", "open message ID among its neighbours"),
  c("voice", "/voice [#room]", "who is in a room's voice (the voice bar joins it)", "room"),
  c("decline", "/decline", "refuse the call ringing for you (as the Decline button)"),
  c("history", "/history [#room|NAME] [N]", "load the last N messages", "room"),
  c("register", "/register NAME PASSWORD", "create an account and log in"),
  c("login", "/login NAME PASSWORD", "log in to your account"),
  c("logout", "/logout", "log out (as the Log out button)"),
  c("passwd", "/passwd OLD NEW", "change your password"),
  c("ping", "/ping", "see that the server answers"),
  c("help", "/help", "this list"),
  c("quit", "/quit [reason]", "leave (as the Log out or Leave button)"),
];

/** The lines `/help` shows. */
export const HELP_LINES: readonly string[] = [
  "Commands:",
  ...COMMANDS.map((cmd) => `${cmd.usage}: ${cmd.summary}`),
  "Start a line with // to send it with a leading /.",
];

/** The command a word names (`part` or `leave`), any case. */
export function commandNamed(word: string): CommandInfo | undefined {
  const w = word.toLowerCase();
  return COMMANDS.find((cmd) => cmd.name === w || cmd.aliases.includes(w));
}

/** One suggestion of the completion popup. */
export interface Suggestion {
  /** As listed: `/join`, `@alice`, `#ops`. */
  label: string;
  /** Shown beside it: a command's usage and summary, a room's member count. */
  detail: string;
  /** What replaces the word being typed (with a space after it). */
  insert: string;
}

/** The completion popup's suggestions and the part of the text they replace. */
export interface Completion {
  /** Where the replaced word starts and ends in the text. */
  start: number;
  end: number;
  items: Suggestion[];
}

/** What can be suggested besides commands. */
export interface CompletionSources {
  /** Members of the open room and direct-message partners (yourself left out by the caller). */
  names: readonly string[];
  /** Rooms: joined ones and the server's list, with member counts when known. */
  rooms: readonly { name: string; members?: number }[];
}

/** The most suggestions shown at once. */
export const MAX_SUGGESTIONS = 8;

/**
 * The suggestions for the word before `cursor` in `text`: commands for a first word starting
 * with `/`; names for a word starting with `@`; rooms for a word starting with `#`; and where a
 * command takes a name or a room (`/msg bo`, `/kick #ops bo`, `/join op`), those. Undefined when
 * there is nothing to suggest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { completionAt } from "./commands.ts";
 * const sources = { names: ["alice", "bob"], rooms: [{ name: "#ops", members: 2 }] };
 * assert.deepEqual(completionAt("hi @al", 6, sources)?.items.map((i) => i.insert), ["@alice "]);
 * assert.deepEqual(completionAt("/jo", 3, sources)?.items.map((i) => i.label), ["/join"]);
 * assert.deepEqual(completionAt("/join o", 7, sources)?.items.map((i) => i.insert), ["#ops "]);
 * ```
 */
export function completionAt(
  text: string,
  cursor: number,
  sources: CompletionSources,
): Completion | undefined {
  const before = text.slice(0, cursor);
  const word = /\S*$/.exec(before)![0];
  const start = cursor - word.length;
  const end = cursor + /^[A-Za-z0-9_#@-]*/.exec(text.slice(cursor))![0].length;
  const result = (items: Suggestion[]) =>
    items.length === 0 ||
      // Typed out already: nothing to complete (so Enter sends "/who" rather than accepting it).
      (items.length === 1 && lower(items[0]!.insert.trimEnd()) === lower(text.slice(start, end)))
      ? undefined
      : { start, end, items: items.slice(0, MAX_SUGGESTIONS) };
  const lower = (s: string) => s.toLowerCase();
  if (start === 0) {
    if (!word.startsWith("/") || word.startsWith("//")) {
      return word.startsWith("@") || word.startsWith("#") ? tagged(word) : undefined;
    }
    const typed = lower(word.slice(1));
    return result(
      COMMANDS.filter((cmd) =>
        cmd.name.startsWith(typed) || cmd.aliases.some((a) => a.startsWith(typed))
      ).map((cmd) => ({
        label: `/${cmd.name}`,
        detail: `${cmd.usage}: ${cmd.summary}`,
        insert: `/${cmd.name} `,
      })),
    );
  }
  const tag = tagged(word);
  if (tag !== undefined || word.startsWith("@") || word.startsWith("#")) return tag;
  // A bare word where a command takes a name or a room.
  if (!text.startsWith("/") || text.startsWith("//")) return undefined;
  const words = before.slice(0, start).trim().split(/\s+/);
  const cmd = commandNamed(words[0]!.slice(1));
  if (cmd === undefined) return undefined;
  const position = words.length; // 1: the first argument
  const afterRoom = position === 2 && words[1]!.startsWith("#");
  if (cmd.arg === "room" && position === 1) return result(rooms(word));
  if (cmd.arg === "name" && (position === 1 || afterRoom)) return result(names(word, ""));
  return undefined;

  function tagged(w: string): Completion | undefined {
    if (w.startsWith("@")) return result(names(w.slice(1), "@"));
    if (w.startsWith("#")) return result(rooms(w));
    return undefined;
  }
  function names(prefix: string, mark: string): Suggestion[] {
    const seen = new Set<string>();
    const out: Suggestion[] = [];
    for (const name of sources.names) {
      const key = nameKey(name);
      if (seen.has(key) || !key.startsWith(lower(prefix))) continue;
      seen.add(key);
      out.push({ label: `${mark}${name}`, detail: "", insert: `${mark}${name} ` });
    }
    return out.sort((a, b) => lower(a.label) < lower(b.label) ? -1 : 1);
  }
  function rooms(typed: string): Suggestion[] {
    const prefix = lower(typed.startsWith("#") ? typed : `#${typed}`);
    const seen = new Map<string, { name: string; members?: number }>();
    for (const room of sources.rooms) {
      const key = nameKey(room.name);
      if (!key.startsWith(prefix)) continue;
      const had = seen.get(key);
      if (had === undefined || (had.members === undefined && room.members !== undefined)) {
        seen.set(key, room);
      }
    }
    return [...seen.values()].sort((a, b) => lower(a.name) < lower(b.name) ? -1 : 1).map((r) => ({
      label: r.name,
      detail: r.members === undefined
        ? ""
        : `${r.members} ${r.members === 1 ? "member" : "members"}`,
      insert: `${r.name} `,
    }));
  }
}

/**
 * `text` with the completion's word replaced by `item`, and where the cursor goes after it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { accept } from "./commands.ts";
 * const item = { label: "@alice", detail: "", insert: "@alice " };
 * assert.deepEqual(accept("hi @al", { start: 3, end: 6, items: [item] }, item), {
 *   text: "hi @alice ",
 *   cursor: 10,
 * });
 * ```
 */
export function accept(
  text: string,
  completion: Completion,
  item: Suggestion,
): { text: string; cursor: number } {
  const rest = text.slice(completion.end);
  // Before a space or punctuation ("@bo|, see you"), no space of its own.
  const insert = /^[^\w#@]/.test(rest) ? item.insert.trimEnd() : item.insert;
  const head = text.slice(0, completion.start) + insert;
  return { text: head + rest, cursor: head.length };
}
