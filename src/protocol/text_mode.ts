/**
 * Text mode (for `nc` and humans): parsing typed lines into the same frames JSON clients send,
 * and rendering server events as the lines docs/protocol.md specifies.
 *
 * @module
 */

import { ChatError } from "./errors.ts";
import type {
  ClientFrame,
  HistoryFrame,
  MessageFrame,
  MessagePlace,
  ModerationAction,
  ModerationFrame,
  ServerFrame,
  VoiceParticipant,
  VoiceStateFrame,
} from "./frames.ts";
import { neutralizeBidi } from "./unicode.ts";

/** A text-mode line turned into work: a client frame, or a request for help. */
export type TextCommand = ClientFrame | { type: "help" };

/** Lines that end a text-mode session, as typed alone on a line. */
const QUIT_WORDS = new Set(["logout", "bye", "quit", "/quit"]);

/** The help text, one notice line each. */
export const TEXT_HELP: readonly string[] = [
  "Commands:",
  "  /nick NAME           pick a name (1-32 letters, digits, _ or -)",
  "  /join #room          join a room and make it current",
  "  /part [#room]        leave a room (default: the current one)",
  "  /msg NAME TEXT       send a direct message",
  "  /me TEXT             send an action to the current room",
  "  /who [#room]         list a room's members",
  "  /rooms               list rooms and their member counts",
  "  /register NAME PASS  create an account and log in",
  "  /login NAME PASS     log in to your account",
  "  /logout              log out (ends this connection and its session token)",
  "  /passwd OLD NEW      change your password",
  "  /history [#room|NAME] [N]  show earlier messages of a room or a DM",
  "  /topic [#room] [TEXT] show or set a room's topic (- clears it)",
  "  /kick, /ban [#room] NAME [reason]   remove someone from a room (ban: for good)",
  "  /unban, /mute, /unmute, /op, /deop, /invite [#room] NAME",
  "  /mode [#room] [+i|-i|+m|-m]  show or set invite-only (i) and moderated (m)",
  "  /wall TEXT           (administrators) tell everyone on the server",
  "  /reply ID TEXT       answer message ID (ids are shown by /search)",
  "  /edit ID TEXT, /delete ID    change or remove a message of yours",
  "  /react ID EMOJI, /unreact ID EMOJI   react to a message",
  "  /search [#room|NAME:] WORDS  find messages you can read",
  "  /context ID [N]      message ID in its conversation, N messages (5) either side",
  "  /unread              what you have not read, in your rooms and direct messages",
  "  /read [#room|NAME]   mark a room (default: the current one) or a DM as read",
  "  /voice [#room]       who is in a room's voice, and the link to join it from a browser",
  "  /decline             refuse the call ringing for you (answer calls in a browser)",
  "  /help                this list",
  "  /quit [reason]       leave (also: logout, bye, quit)",
  "Any other line is a message to your current room; start it with // to send a leading /.",
];

/** How many messages `/context ID` shows on either side of the message, by default and at most. */
export const CONTEXT_SIDE = 5;
const MAX_CONTEXT_SIDE = 99;

function roomArg(arg: string): string {
  return arg.startsWith("#") ? arg : `#${arg}`;
}

function splitFirst(rest: string): [string, string] {
  const m = /^(\S+)\s*(.*)$/s.exec(rest);
  return m ? [m[1]!, m[2]!] : ["", ""];
}

/** The moderation commands that take a reason after the name. */
const TAKES_REASON = new Set<ModerationAction>(["kick", "ban"]);

/** A command's optional leading `#room` (else the current room), and the rest of its line. */
function roomFirst(rest: string, current: string | undefined, verb: string): [string, string] {
  const [first, after] = splitFirst(rest);
  if (first.startsWith("#")) return [first, after];
  return [needRoom(current, verb), rest];
}

function needRoom(current: string | undefined, verb: string): string {
  if (current === undefined) {
    throw new ChatError("no_current_room", `Cannot ${verb}: you are in no room; /join one first`);
  }
  return current;
}

/**
 * Parses a typed line. `current` is the session's current room (plain lines go there).
 *
 * @returns the command, or `undefined` for an empty line
 * @throws {ChatError} `unknown_command`, `bad_frame` (missing argument) or `no_current_room`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTextLine } from "./text_mode.ts";
 * const cmd = parseTextLine("/msg bob hi there", "#general");
 * assert.deepEqual(cmd, { type: "send", to: "bob", text: "hi there" });
 * ```
 */
export function parseTextLine(line: string, current: string | undefined): TextCommand | undefined {
  const trimmed = line.trim();
  if (trimmed === "") return undefined;
  if (QUIT_WORDS.has(trimmed.toLowerCase())) return { type: "quit" };
  if (!line.startsWith("/") || line.startsWith("//")) {
    const text = line.startsWith("//") ? line.slice(1) : line;
    return { type: "send", room: needRoom(current, "send"), text };
  }
  const [verb, rest] = splitFirst(trimmed.slice(1));
  const usage = (form: string) => new ChatError("bad_frame", `Usage: ${form}`);
  switch (verb.toLowerCase()) {
    case "nick": {
      if (rest === "") throw usage("/nick NAME");
      return { type: "nick", name: rest };
    }
    case "join":
      if (rest === "") throw usage("/join #room");
      return { type: "join", room: roomArg(rest) };
    case "part":
    case "leave":
      return { type: "part", room: rest === "" ? needRoom(current, "part") : roomArg(rest) };
    case "msg":
    case "dm": {
      const [to, text] = splitFirst(rest);
      if (to === "" || text === "") throw usage("/msg NAME TEXT");
      return { type: "send", to, text };
    }
    case "me":
      if (rest === "") throw usage("/me TEXT");
      return { type: "send", room: needRoom(current, "send"), text: rest, action: true };
    case "who":
    case "names":
      return { type: "who", room: rest === "" ? needRoom(current, "list members") : roomArg(rest) };
    case "decline":
      return { type: "call_decline" };
    case "voice":
      return {
        type: "voice_who",
        room: rest === "" ? needRoom(current, "list voice") : roomArg(rest),
      };
    case "rooms":
    case "list":
      return { type: "rooms" };
    case "help":
      return { type: "help" };
    case "quit":
      return rest === "" ? { type: "quit" } : { type: "quit", reason: rest };
    case "ping":
      return { type: "ping" };
    case "register":
    case "login": {
      const [name, password] = splitFirst(rest);
      if (name === "" || password === "") throw usage(`/${verb.toLowerCase()} NAME PASSWORD`);
      return { type: verb.toLowerCase() as "register" | "login", name, password };
    }
    case "logout":
      return { type: "logout" };
    case "passwd": {
      const [old, password] = splitFirst(rest);
      if (old === "" || password === "") throw usage("/passwd OLD NEW");
      return { type: "passwd", old, new: password };
    }
    case "topic": {
      const [room, text] = roomFirst(rest, current, "show the topic");
      if (text === "") return { type: "topic", room };
      return { type: "topic", room, text: text === "-" ? "" : text };
    }
    case "kick":
    case "ban":
    case "unban":
    case "mute":
    case "unmute":
    case "op":
    case "deop":
    case "invite": {
      const action = verb.toLowerCase() as ModerationAction;
      const [room, args] = roomFirst(rest, current, action);
      const [name, reason] = splitFirst(args);
      if (name === "") {
        throw usage(`/${action} [#room] NAME${TAKES_REASON.has(action) ? " [reason]" : ""}`);
      }
      const frame: ClientFrame = { type: action, room, name };
      if (reason !== "" && TAKES_REASON.has(action)) frame.reason = reason;
      return frame;
    }
    case "mode": {
      const [room, modes] = roomFirst(rest, current, "show the modes");
      return modes === "" ? { type: "mode", room } : { type: "mode", room, modes };
    }
    case "wall":
      if (rest === "") throw usage("/wall TEXT");
      return { type: "wall", text: rest };
    case "reply":
    case "edit": {
      const [id, text] = splitFirst(rest);
      if (!/^\d+$/.test(id) || text === "") throw usage(`/${verb.toLowerCase()} ID TEXT`);
      return verb.toLowerCase() === "reply"
        ? { type: "send", replyTo: Number(id), text }
        : { type: "edit", id: Number(id), text };
    }
    case "delete":
      if (!/^\d+$/.test(rest)) throw usage("/delete ID");
      return { type: "delete", id: Number(rest) };
    case "react":
    case "unreact": {
      const [id, emoji] = splitFirst(rest);
      if (!/^\d+$/.test(id) || emoji === "") throw usage(`/${verb.toLowerCase()} ID EMOJI`);
      const frame: ClientFrame = { type: "react", id: Number(id), emoji };
      if (verb.toLowerCase() === "unreact") frame.off = true;
      return frame;
    }
    case "unread":
      return { type: "unread" };
    case "read": {
      if (/\s/.test(rest)) throw usage("/read [#room|NAME]");
      if (rest === "") return { type: "read", room: needRoom(current, "mark as read") };
      return rest.startsWith("#") ? { type: "read", room: rest } : { type: "read", with: rest };
    }
    case "search": {
      const [first, after] = splitFirst(rest);
      if (rest === "") throw usage("/search [#room|NAME:] WORDS");
      if (first.startsWith("#") && after !== "") {
        return { type: "search", room: first, text: after };
      }
      if (first.endsWith(":") && first.length > 1 && after !== "") {
        return { type: "search", with: first.slice(0, -1), text: after };
      }
      return { type: "search", text: rest };
    }
    case "context": {
      const [id, n, extra] = rest.split(/\s+/).filter((a) => a !== "");
      const side = n === undefined ? CONTEXT_SIDE : Number(n);
      if (
        id === undefined || !/^\d+$/.test(id) || (n !== undefined && !/^\d+$/.test(n)) ||
        side > MAX_CONTEXT_SIDE || extra !== undefined
      ) {
        throw usage(`/context ID [N] (N: 0-${MAX_CONTEXT_SIDE} messages either side)`);
      }
      return { type: "history", around: Number(id), limit: 2 * side + 1 };
    }
    case "history": {
      const args = rest.split(/\s+/).filter((a) => a !== "");
      let limit: number | undefined;
      if (args.length > 0 && /^\d+$/.test(args.at(-1)!)) limit = Number(args.pop());
      if (args.length > 1) throw usage("/history [#room|NAME] [N]");
      const target = args[0];
      const frame: ClientFrame = target === undefined
        ? { type: "history", room: needRoom(current, "show history") }
        : target.startsWith("#")
        ? { type: "history", room: target }
        : { type: "history", with: target };
      if (limit !== undefined) frame.limit = limit;
      return frame;
    }
    default:
      throw new ChatError(
        "unknown_command",
        `Unknown command /${verb.slice(0, 32)}: type /help for the list`,
      );
  }
}

// C0 and C1 controls (terminal escapes among them) never reach a text-mode terminal.
// deno-lint-ignore no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Makes text safe for a terminal: control characters (newlines, escapes) become spaces, so one
 * event stays one line and nothing received can drive the terminal, and bidi controls become
 * U+FFFD, so text reads in the order it was written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sanitize } from "./text_mode.ts";
 * assert.equal(sanitize("a\x1b[2Jb\u202ec"), "a [2Jb\ufffdc");
 * ```
 */
export function sanitize(text: string): string {
  return neutralizeBidi(text.replace(CONTROLS, " "));
}

/**
 * Renders a server event as one text-mode line (without the newline), or `undefined` for
 * frames that text mode does not show (`welcome`, `ack`, `pong` are answered differently).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTextEvent } from "./text_mode.ts";
 * const line = formatTextEvent({
 *   type: "message", id: 1, room: "#general", from: "alice", text: "hi", ts: 0,
 * });
 * assert.equal(line, "[#general] <alice> hi");
 * ```
 */
export function formatTextEvent(frame: ServerFrame): string | undefined {
  switch (frame.type) {
    case "message":
      // Messages kept while you were offline show their time, like history.
      return formatMessage(frame, frame.offline ? clock(frame.ts) : undefined);
    case "history": {
      const lines = historyLines(frame);
      return lines.length === 0 ? undefined : lines.join("\n");
    }
    case "presence":
      switch (frame.event) {
        case "joined":
          return `* ${frame.name} joined ${frame.room}`;
        case "left":
          return `* ${frame.name} left ${frame.room}`;
        case "quit":
          return `* ${frame.name} quit`;
        case "renamed":
          return `* ${frame.name} is now known as ${frame.newName}`;
      }
      return undefined;
    case "notice":
      return `* ${sanitize(frame.text)}`;
    case "shutdown":
      return `* Server shutting down: ${sanitize(frame.reason)}`;
    case "topic":
      return frame.topic === undefined
        ? `* ${frame.by} cleared the topic of ${frame.room}`
        : `* ${frame.by} set the topic of ${frame.room}: ${sanitize(frame.topic)}`;
    case "moderation":
      return `* ${moderationLine(frame)}`;
    case "wall":
      return `* Announcement from ${frame.from}: ${sanitize(frame.text)}`;
    case "edited":
      return `* ${frame.by} edited ${placeOf(frame)}: ${sanitize(frame.text)}`;
    case "deleted":
      return `* ${frame.by} deleted ${placeOf(frame)}`;
    case "reactions": {
      const where = "room" in frame
        ? `message ${frame.id} in ${frame.room}`
        : `direct message ${frame.id}`;
      return `* Reactions to ${where}: ${reactionCounts(frame.reactions) || "none"}`;
    }
    case "error":
      return `! ${sanitize(frame.message)}`;
    case "voice_state":
      return voiceLine(frame);
    case "voice_ended":
      return `* Your voice in ${frame.room} ended: ${sanitize(frame.reason)}`;
    case "call_state":
      switch (frame.state) {
        case "ringing":
          return `* ${frame.from} is calling ${frame.to} (answer it in a browser, or /decline)`;
        case "active":
          return `* ${frame.from} and ${frame.to} are in a call`;
        case "ended":
          return `* The call between ${frame.from} and ${frame.to} ended: ${
            frame.reason ?? "over"
          }`;
      }
      return undefined;
    default:
      return undefined;
  }
}

/** What a voice change says: `alice joined voice in #ops`; nothing for a plain update. */
function voiceLine(frame: VoiceStateFrame): string | undefined {
  const { name, room, by } = frame;
  if (name === undefined) return undefined;
  switch (frame.change) {
    case "joined":
      return `* ${name} joined voice in ${room}`;
    case "left":
      return `* ${name} left voice in ${room}`;
    case "removed":
      return `* ${by ?? "an operator"} removed ${name} from voice in ${room}`;
    case "muted":
      return by === undefined
        ? `* ${name} muted in voice in ${room}`
        : `* ${by} muted ${name} in voice in ${room}`;
    case "unmuted":
      return by === undefined
        ? `* ${name} unmuted in voice in ${room}`
        : `* ${by} unmuted ${name} in voice in ${room}`;
    default:
      return undefined;
  }
}

/**
 * The lines answering `/voice`: who is in the room's voice, and where to join it from a browser.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { voiceWhoLines } from "./text_mode.ts";
 * const lines = voiceWhoLines({
 *   room: "#ops",
 *   enabled: true,
 *   participants: [{ name: "alice", muted: true, deafened: false }],
 * }, "http://chat.example:8080");
 * assert.deepEqual(lines, [
 *   "In voice in #ops (1): alice (muted)",
 *   "Join from a browser: http://chat.example:8080/#voice=%23ops",
 * ]);
 * ```
 */
export function voiceWhoLines(
  reply: { room: string; participants: VoiceParticipant[]; enabled: boolean },
  web: string | undefined,
): string[] {
  if (!reply.enabled) return ["Voice is turned off on this server"];
  const { room, participants } = reply;
  const who = participants.map((p) => {
    const marks = [p.muted ? "muted" : "", p.deafened ? "deafened" : ""].filter((m) => m !== "");
    return marks.length === 0 ? p.name : `${p.name} (${marks.join(", ")})`;
  });
  const lines = [
    participants.length === 0
      ? `Nobody is in voice in ${room}`
      : `In voice in ${room} (${participants.length}): ${who.join(", ")}`,
  ];
  if (web !== undefined) {
    lines.push(`Join from a browser: ${web}/#voice=${encodeURIComponent(room)}`);
  }
  return lines;
}

/** Which message an edit or deletion concerns: `a message in #ops`, or `a direct message`. */
function placeOf(frame: MessagePlace): string {
  return "room" in frame ? `a message in ${frame.room}` : "a direct message";
}

/** What a moderation event says: `alice kicked bob from #ops (spam)`. */
function moderationLine(frame: ModerationFrame): string {
  const { by, room } = frame;
  if (frame.action === "mode") return `${by} set the modes of ${room}: ${frame.modes || "none"}`;
  const why = frame.reason === undefined ? "" : ` (${sanitize(frame.reason)})`;
  const name = frame.name;
  switch (frame.action) {
    case "kick":
      return `${by} kicked ${name} from ${room}${why}`;
    case "ban":
      return `${by} banned ${name} from ${room}${why}`;
    case "unban":
      return `${by} unbanned ${name} in ${room}`;
    case "mute":
      return `${by} muted ${name} in ${room}`;
    case "unmute":
      return `${by} unmuted ${name} in ${room}`;
    case "op":
      return `${by} made ${name} an operator of ${room}`;
    case "deop":
      return `${by} removed ${name} as an operator of ${room}`;
    case "invite":
      return `${by} invited ${name} to ${room}`;
  }
}

function formatMessage(frame: MessageFrame, stamp?: string, dim = true): string {
  const where = (frame.room ?? "dm") + (stamp === undefined ? "" : ` ${stamp}`);
  let text = frame.deleted ? "(message deleted)" : sanitize(frame.text);
  if (frame.replyTo !== undefined) text = `(re ${quoteLine(frame)}) ${text}`;
  if (frame.edited !== undefined && !frame.deleted) text = `${text} (edited)`;
  if (frame.file !== undefined) {
    const { name, size, id } = frame.file;
    text = `${text === "" ? "" : `${text} `}[file ${sanitize(name)}, ${
      formatSize(size)
    }: /get ${id}]`;
  }
  const counted = reactionCounts(frame.reactions);
  if (counted !== "") text = `${text} ${counted}`;
  const body = frame.action ? `* ${frame.from} ${text}` : `<${frame.from}> ${text}`;
  return stamp === undefined || !dim ? `[${where}] ${body}` : `[${where}] ${DIM}${body}${UNDIM}`;
}

/**
 * What a reply shows of the message it answers: `alice: what time?`, `alice: message deleted`,
 * `alice` (a message without text), or its id when the server sent no quote.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quoteLine } from "./text_mode.ts";
 * assert.equal(quoteLine({ replyTo: 4, quote: { from: "al", text: "hi" } }), "al: hi");
 * assert.equal(quoteLine({ replyTo: 4 }), "4");
 * ```
 */
export function quoteLine(frame: Pick<MessageFrame, "replyTo" | "quote">): string {
  const q = frame.quote;
  if (q === undefined) return String(frame.replyTo);
  if (q.deleted) return `${q.from}: message deleted`;
  return q.text === "" ? q.from : `${q.from}: ${sanitize(q.text)}`;
}

/**
 * A message's reactions as shown after its text, counted per emoji: `🎉2 👍1` (empty when none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reactionCounts } from "./text_mode.ts";
 * assert.equal(reactionCounts({ "🎉": 2, "👍": 1 }), "🎉2 👍1");
 * assert.equal(reactionCounts(undefined), "");
 * ```
 */
export function reactionCounts(reactions: Record<string, number> | undefined): string {
  return Object.entries(reactions ?? {}).filter(([, n]) => n > 0)
    .map(([emoji, n]) => `${sanitize(emoji)}${n}`).join(" ");
}

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSize } from "./text_mode.ts";
 * assert.equal(formatSize(1536), "1.5 KiB");
 * ```
 */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `HH:MM` in UTC. */
function clock(ts: number): string {
  return new Date(ts).toISOString().slice(11, 16);
}

const DIM = "\x1b[2m";
const UNDIM = "\x1b[22m";

/**
 * A page of history as text-mode lines: a `* ` header, then one dimmed line per message with
 * its UTC time (`[#room HH:MM] <from> text`). Empty when there is nothing to show.
 */
export function historyLines(frame: HistoryFrame): string[] {
  if (frame.messages.length === 0) return [];
  const where = frame.room ?? `your messages with ${frame.with}`;
  const n = frame.messages.length;
  const lines = [
    `* History of ${where} (${n} message${n === 1 ? "" : "s"}${
      frame.more ? ", more with /history" : ""
    }):`,
  ];
  for (const m of frame.messages) lines.push(historyLine(m));
  return lines;
}

/** One stored message as a text-mode line, with its time (UTC) and its body dimmed. */
export function historyLine(message: MessageFrame): string {
  return formatMessage(message, clock(message.ts));
}

/**
 * A page asked for with `around` as text-mode lines: a `* ` header, then one line per message
 * with its time and its id; the message asked for is not dimmed, the others are.
 */
export function contextLines(frame: HistoryFrame & { around: number }): string[] {
  const where = frame.room ?? `your messages with ${frame.with}`;
  const n = frame.messages.length;
  return [
    `* Around message ${frame.around} in ${where} (${n} message${n === 1 ? "" : "s"}):`,
    ...frame.messages.map((m) =>
      `${formatMessage(m, clock(m.ts), m.id !== frame.around)} (id ${m.id})`
    ),
  ];
}
