/**
 * How the terminal client shows things: one line per event or reply, each starting with an
 * `HH:MM:SS` timestamp, in the same words as the server's text mode; ANSI colors optional.
 * Pure functions: no I/O.
 *
 * @module
 */

import type { HistoryFrame, MessageFrame } from "../../protocol/frames.ts";
import {
  formatSize,
  formatTextEvent,
  quoteLine,
  reactionCounts,
  sanitize,
  voiceWhoLines,
} from "../../protocol/text_mode.ts";
import type { ChatEvent } from "../events.ts";
import type { Exchange } from "../core/frames.ts";

/** One output line; `error` lines go to stderr when the client is not interactive. */
export interface Line {
  /** The text, colors included, without a newline. */
  text: string;
  /** Whether it reports a failure. */
  error: boolean;
  /** Whether it mentions you and the terminal should ring its bell (`--bell`). */
  bell?: boolean;
}

const SGR = {
  bold: ["\x1b[1m", "\x1b[22m"],
  dim: ["\x1b[2m", "\x1b[22m"],
  red: ["\x1b[31m", "\x1b[39m"],
  cyan: ["\x1b[36m", "\x1b[39m"],
  magenta: ["\x1b[35m", "\x1b[39m"],
  mention: ["\x1b[1;33m", "\x1b[22;39m"],
} as const;

/** The colours names are drawn in (not red: errors are red). */
export const NAME_PALETTE: readonly number[] = [32, 33, 34, 35, 36, 92, 93, 94, 95, 96];

/**
 * The stable colour of a name: the SGR foreground code its FNV-1a hash (of the name in lower
 * case, as the server compares names) picks in {@linkcode NAME_PALETTE}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nameColor } from "./format.ts";
 * assert.equal(nameColor("Alice"), nameColor("alice"));
 * ```
 */
export function nameColor(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(name.toLowerCase())) {
    h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  }
  return NAME_PALETTE[h % NAME_PALETTE.length]!;
}

/**
 * Whether `text` mentions `name`: the name as a whole word, in any case (`@name` too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mentions } from "./format.ts";
 * assert.equal(mentions("hi @Alice!", "alice"), true);
 * assert.equal(mentions("malice", "alice"), false);
 * ```
 */
export function mentions(text: string, name: string): boolean {
  if (name === "") return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_-])${escaped}($|[^\\p{L}\\p{N}_-])`, "iu").test(text);
}

/** A style name {@linkcode Painter.paint} accepts. */
export type StyleName = keyof typeof SGR;

/**
 * Wraps text in ANSI styles, or leaves it alone when colors are off. Text it is given is
 * sanitized first, so nothing received can drive the terminal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Painter } from "./format.ts";
 * assert.equal(new Painter(false).paint("red", "x\x1b[2J"), "x [2J");
 * assert.equal(new Painter(true).paint("red", "x"), "\x1b[31mx\x1b[39m");
 * ```
 */
export class Painter {
  /** Whether colors are on. */
  readonly color: boolean;

  /** @param color whether to emit ANSI styles */
  constructor(color: boolean) {
    this.color = color;
  }

  /** Sanitizes `text` and wraps it in `style` when colors are on. */
  paint(style: StyleName, text: string): string {
    const clean = sanitize(text);
    if (!this.color) return clean;
    const [on, off] = SGR[style];
    return on + clean + off;
  }

  /** Sanitizes `name` and draws it bold in its own stable colour ({@linkcode nameColor}). */
  name(name: string, text = name): string {
    const clean = sanitize(text);
    if (!this.color) return clean;
    return `\x1b[1;${nameColor(name)}m${clean}\x1b[22;39m`;
  }
}

/**
 * `HH:MM:SS` in local time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clock } from "./format.ts";
 * assert.match(clock(Date.now()), /^\d\d:\d\d:\d\d$/);
 * ```
 */
export function clock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

/** How far continuation rows of a message of several lines are indented (under the time). */
const CONTINUATION = " ".repeat(9);

/** Options for {@linkcode Formatter.message}. */
export interface MessageOptions {
  /** Dimmed, as history is (no highlight, no bell). */
  dim?: boolean;
  /** Ends with the message's id, `(id 41)`, for the commands that take one. */
  id?: boolean;
  /** Never rings the bell (a message shown again, on request). */
  quiet?: boolean;
}

/** Formats lines for one terminal: colors on or off, and the time source. */
export class Formatter {
  readonly #p: Painter;
  readonly #now: () => number;
  readonly #bell: boolean;
  #quote: (id: number) => string | undefined = () => undefined;

  /**
   * @param color whether to emit ANSI styles
   * @param now the clock, for lines that carry no server time @default Date.now
   * @param options `bell`: lines mentioning you ask for the terminal bell
   */
  constructor(color: boolean, now: () => number = Date.now, options: { bell?: boolean } = {}) {
    this.#p = new Painter(color);
    this.#now = now;
    this.#bell = options.bell ?? false;
  }

  /**
   * Sets where a reply's quoted line comes from: the sender and first line of the message with
   * that id (`alice: what time?`), when the terminal has seen it; else the reply shows its id.
   */
  quoteWith(lookup: (id: number) => string | undefined): void {
    this.#quote = lookup;
  }

  /** Text for the status line above the prompt (who is typing), dimmed. */
  status(text: string): string {
    return this.#p.paint("dim", text);
  }

  /** A dimmed notice line: `HH:MM:SS * text`. */
  info(text: string, ts = this.#now()): Line {
    return { text: `${this.#time(ts)} ${this.#p.paint("dim", `* ${text}`)}`, error: false };
  }

  /** A red error line: `HH:MM:SS ! text`. */
  error(text: string, ts = this.#now()): Line {
    return { text: `${this.#time(ts)} ${this.#p.paint("red", `! ${text}`)}`, error: true };
  }

  /**
   * A chat message line: `HH:MM:SS [#room] <from> text`, `[dm] <from> text` for a direct
   * message to you, `[dm to bob] <from> text` for one you sent; `* from text` for actions. A
   * file attached shows as `[file NAME, SIZE: /get ID]`; a reply starts with the line it
   * quotes, `(re alice: what time?)` (or `(re 41)` when that message was not seen here). Text
   * of several lines (a code block) continues on rows of its own, indented.
   */
  message(
    m: Omit<MessageFrame, "type" | "id"> & { id?: number },
    me?: string,
    options: MessageOptions = {},
  ): Line {
    const p = this.#p;
    const where = m.room !== undefined ? `[${m.room}]` : m.to === undefined
      ? "[reply]" // your reply to a message this terminal never saw: its place is unknown
      : m.from === me
      ? `[dm to ${m.to}]`
      : "[dm]";
    const sender = m.action ? `* ${m.from}` : `<${m.from}>`;
    const late = m.offline ? " (sent while you were away)" : "";
    let body = m.deleted
      ? "(message deleted)"
      : m.file === undefined
      ? m.text
      : `${m.text === "" ? "" : `${m.text} `}[file ${m.file.name}, ${
        formatSize(m.file.size)
      }: /get ${m.file.id}]`;
    // As the server's text mode words them: what it answers, whether it changed, its reactions.
    // The line answered as this terminal last saw it, else as the server quoted it, else its id.
    if (m.replyTo !== undefined) {
      body = `(re ${this.#quote(m.replyTo) ?? quoteLine({ ...m, replyTo: m.replyTo })}) ${body}`;
    }
    if (m.edited !== undefined && !m.deleted) body = `${body} (edited)`;
    const reactions = reactionCounts(m.reactions);
    if (reactions !== "") body = `${body} ${reactions}`;
    if (options.id && m.id !== undefined) body = `${body} (id ${m.id})`;
    const mentioned = me !== undefined && m.from !== me && mentions(m.text, me);
    // Each row of the text is made safe on its own: a newline starts a row, nothing else does.
    const split = body.split("\n");
    while (split.length > 1 && sanitize(split.at(-1)!).trim() === "") split.pop();
    const [first, ...rest] = split;
    const style = (row: string) =>
      options.dim ? p.paint("dim", row) : mentioned ? p.paint("mention", row) : sanitize(row);
    const head = options.dim
      ? p.paint("dim", `${where} ${sender} ${first}`)
      : `${p.paint(m.room !== undefined ? "cyan" : "magenta", where)} ${p.name(m.from, sender)} ${
        style(first!)
      }`;
    const rows = [`${this.#time(m.ts)} ${head}${late && p.paint("dim", late)}`];
    for (const row of rest) rows.push(`${CONTINUATION}${style(row)}`);
    const line: Line = { text: rows.join("\n"), error: false };
    if (mentioned && !options.dim && !options.quiet && this.#bell) line.bell = true;
    return line;
  }

  /** A page of history: a header, then each message dimmed, oldest first. */
  history(page: HistoryFrame, me?: string): Line[] {
    const n = page.messages.length;
    if (n === 0) return [this.info("No messages")];
    const where = page.room ?? `your messages with ${page.with}`;
    const more = page.more ? ", more with /history" : "";
    return [
      this.info(`History of ${where} (${n} message${n === 1 ? "" : "s"}${more}):`),
      ...page.messages.map((m) => this.message(m, me, { dim: true })),
    ];
  }

  /**
   * A page around a message (`/context ID`): a header, then each message with its id, the one
   * asked for in full, the others dimmed.
   */
  context(page: HistoryFrame & { around: number }, me?: string): Line[] {
    const n = page.messages.length;
    const where = page.room ?? `your messages with ${page.with}`;
    const before = page.more ? "; earlier ones with /history" : "";
    return [
      this.info(
        `Around message ${page.around} in ${where} (${n} message${n === 1 ? "" : "s"}${before}):`,
      ),
      ...page.messages.map((m) =>
        this.message(m, me, { dim: m.id !== page.around, id: true, quiet: true })
      ),
    ];
  }

  /** The lines showing an event; none for events the terminal does not show. `me`: your name. */
  event(event: ChatEvent, me?: string): Line[] {
    switch (event.type) {
      case "message":
        return [this.message(event, me)];
      case "history":
        return this.history(event, me);
      case "presence":
        switch (event.event) {
          case "joined":
            return [this.info(`${event.name} joined ${event.room}`)];
          case "left":
            return [this.info(`${event.name} left ${event.room}`)];
          case "quit":
            return [this.info(`${event.name} quit`)];
          case "renamed":
            return [this.info(`${event.name} is now known as ${event.newName}`)];
        }
        return [];
      case "notice":
        return [this.info(event.text)];
      case "shutdown":
        return [this.info(`Server shutting down: ${event.reason}`)];
      case "topic":
      case "moderation":
      case "wall":
      case "edited":
      case "deleted":
        // The server's text-mode words ("* alice kicked bob from #ops"), without the marker.
        return [this.info(formatTextEvent(event)!.slice(2))];
      case "voice_state":
      case "voice_ended":
      case "call_state": {
        const line = formatTextEvent(event);
        return line === undefined ? [] : [this.info(line.slice(2))];
      }
      case "reactions":
        return [this.info(formatTextEvent(event)!.slice(2))];
      case "typing": // on the status line (see runTerminal)
      case "read":
      case "upload_progress": // the terminal client shows its own upload's progress
      case "voice_offer":
        return [];
      case "error":
        return [this.error(event.message)];
      case "disconnected":
        return [
          this.error(
            `Disconnected: ${event.reason}${event.reconnecting ? "; reconnecting..." : ""}`,
          ),
        ];
      case "reconnected": {
        const lines = [
          this.info(`Reconnected as ${event.name}, in ${event.rooms.join(", ") || "no room"}`),
        ];
        if (event.lostSession === "auth_failed") {
          lines.push(
            this.error(
              `Your session as ${event.lostName} has expired or was revoked; you are ` +
                `${event.name || "not logged in"} (/login to log in again)`,
            ),
          );
        } else if (event.lostSession !== undefined) {
          lines.push(
            this.error(
              `Could not log in again as ${event.lostName} (${event.lostSession}); you are ` +
                `${event.name || "not logged in"}`,
            ),
          );
        } else if (event.lostName !== undefined) {
          lines.push(this.error(`The name ${event.lostName} was taken; you are ${event.name}`));
        }
        if (event.lostRooms !== undefined) {
          lines.push(this.error(`Could not re-join ${event.lostRooms.join(", ")}`));
        }
        return lines;
      }
      case "lagged":
        return [this.error(`${event.dropped} events were dropped: output could not keep up`)];
    }
  }

  /** The lines answering a successful request, in the server's text-mode words. */
  reply(ex: Exchange, me: string, web?: string): Line[] {
    switch (ex.type) {
      case "nick":
        return [this.info(`You are now ${ex.reply.name}`)];
      case "join": {
        const { room, members, topic } = ex.reply;
        const lines = [
          this.info(`You joined ${room}; members (${members.length}): ${members.join(", ")}`),
        ];
        if (typeof topic === "string" && topic !== "") {
          lines.push(this.info(`Topic of ${room}: ${sanitize(topic)}`));
        }
        return lines;
      }
      case "part":
        return [this.info(`You left ${ex.reply.room}`)];
      case "who": {
        const { room, members } = ex.reply;
        return [this.info(`Members of ${room} (${members.length}): ${members.join(", ")}`)];
      }
      case "rooms": {
        const rooms = ex.reply.rooms;
        return [this.info(`Rooms: ${rooms.map((r) => `${r.name} (${r.members})`).join(", ")}`)];
      }
      case "send": {
        const { frame } = ex;
        const ts = typeof ex.reply.ts === "number" ? ex.reply.ts : this.#now();
        const m = {
          id: ex.reply.id,
          from: me,
          text: frame.text,
          ts,
          ...(frame.action ? { action: true } : {}),
          ...(frame.replyTo === undefined ? {} : { replyTo: frame.replyTo }),
        };
        return [
          this.message(
            frame.room !== undefined
              ? { ...m, room: frame.room }
              : frame.to !== undefined
              ? { ...m, to: frame.to }
              : m,
            me,
          ),
        ];
      }
      case "hello":
        return [this.info(`You are ${ex.reply.name}`)];
      case "register":
      case "login": {
        const verb = ex.type === "register" ? "Registered and logged in" : "Logged in";
        const unread = ex.reply.unread;
        const summary = unread.length === 0
          ? "no unread direct messages"
          : `unread direct messages: ${unread.map((u) => `${u.from} (${u.count})`).join(", ")}`;
        return [this.info(`${verb} as ${ex.reply.name}; ${summary}`)];
      }
      case "logout":
        return [this.info(`Logged out; goodbye, ${me}`)];
      case "passwd":
        return [this.info("Password changed; your other sessions must log in again")];
      case "history":
        return ex.reply.around === undefined
          ? this.history(ex.reply, me)
          : this.context({ ...ex.reply, around: ex.reply.around }, me);
      case "ping":
        return [this.info("pong")];
      case "quit":
        return [this.info(`Goodbye, ${me}`)];
      case "topic": {
        const { room, topic } = ex.reply;
        return [
          this.info(
            topic === undefined ? `${room} has no topic` : `Topic of ${room}: ${sanitize(topic)}`,
          ),
        ];
      }
      case "mode": {
        const { room, modes } = ex.reply;
        return [this.info(modes === "" ? `${room} has no modes` : `Modes of ${room}: ${modes}`)];
      }
      case "typing":
      case "react": // the reactions event, which reaches this session too, says it
        return [];
      case "read":
        return ex.frame.id === undefined ? [this.info(`Read up to message ${ex.reply.id}`)] : []; // the terminal marks what it shows by itself: nothing to say
      case "unread": {
        const { rooms, conversations } = ex.reply;
        const count = (n: number) => n >= 1000 ? "999+" : String(n);
        const parts = [
          ...rooms.filter((r) => r.unread > 0).map((r) => `${r.room} (${count(r.unread)})`),
          ...conversations.filter((c) => c.unread > 0).map((c) => `${c.with} (${count(c.unread)})`),
        ];
        return [this.info(parts.length === 0 ? "Nothing unread" : `Unread: ${parts.join(", ")}`)];
      }
      case "search": {
        const found = ex.reply.messages;
        if (found.length === 0) {
          return [this.info(`No messages match "${sanitize(ex.frame.text)}"`)];
        }
        return [
          this.info(
            `Search results for "${
              sanitize(ex.frame.text)
            }" (${found.length}, newest first; /context ID shows one in its conversation):`,
          ),
          ...found.map((m) => this.message(m, me, { dim: true, id: true })),
        ];
      }
      case "voice_who":
        return voiceWhoLines(ex.reply, web).map((line) => this.info(line));
      default:
        return [this.info("Done")]; // kick, ban, unban, mute, unmute, op, deop, invite, wall, edit…
    }
  }

  #time(ts: number): string {
    return this.#p.paint("dim", clock(ts));
  }
}
