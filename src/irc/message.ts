/**
 * IRC lines (RFC 1459 §2.3, RFC 2812 §2.3, IRCv3 message tags): parsing one line into tags,
 * source, command and parameters, and formatting one back. Pure: no I/O, no state.
 *
 * @module
 */

/** One IRC message. */
export interface IrcMessage {
  /** IRCv3 tags, unescaped (a tag without a value is `""`). */
  tags: Map<string, string>;
  /** The prefix without its `:`, when the line had one. */
  source: string | undefined;
  /** The command, upper case (or a three-digit numeric). */
  command: string;
  /** The parameters, the trailing one included. */
  params: string[];
}

/** The longest line without its tags, CRLF included (RFC 1459 §2.3). */
export const MAX_LINE_BYTES = 512;
/** The longest tag section in all (IRCv3: 8191 bytes, the `@` and space included). */
export const MAX_TAG_BYTES = 8191;

const encoder = new TextEncoder();

/** Why a line was refused. */
export type LineProblem = "too_long" | "tags_too_long" | "empty";

/**
 * Parses one line (without its line ending).
 *
 * @returns the message, or why the line is refused
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIrcLine } from "./message.ts";
 * const m = parseIrcLine("@label=a\\sb :nick PRIVMSG #room :hello there");
 * assert.ok(typeof m !== "string");
 * assert.equal(m.tags.get("label"), "a b");
 * assert.equal(m.command, "PRIVMSG");
 * assert.deepEqual(m.params, ["#room", "hello there"]);
 * ```
 */
export function parseIrcLine(line: string): IrcMessage | LineProblem {
  let rest = line;
  const tags = new Map<string, string>();
  if (rest.startsWith("@")) {
    const space = rest.indexOf(" ");
    const raw = space === -1 ? rest.slice(1) : rest.slice(1, space);
    if (encoder.encode(raw).length + 2 > MAX_TAG_BYTES) return "tags_too_long";
    rest = space === -1 ? "" : rest.slice(space + 1);
    for (const item of raw.split(";")) {
      if (item === "") continue;
      const eq = item.indexOf("=");
      const key = eq === -1 ? item : item.slice(0, eq);
      tags.set(key, eq === -1 ? "" : unescapeTag(item.slice(eq + 1)));
    }
  }
  // 510 bytes of message: 512 less the CRLF.
  if (encoder.encode(rest).length > MAX_LINE_BYTES - 2) return "too_long";
  rest = rest.replace(/^ +/, "");
  let source: string | undefined;
  if (rest.startsWith(":")) {
    const space = rest.indexOf(" ");
    source = space === -1 ? rest.slice(1) : rest.slice(1, space);
    rest = space === -1 ? "" : rest.slice(space + 1).replace(/^ +/, "");
  }
  const params: string[] = [];
  let command = "";
  while (rest !== "") {
    if (command !== "" && rest.startsWith(":")) {
      params.push(rest.slice(1));
      break;
    }
    const space = rest.indexOf(" ");
    const word = space === -1 ? rest : rest.slice(0, space);
    rest = space === -1 ? "" : rest.slice(space + 1).replace(/^ +/, "");
    if (command === "") command = word.toUpperCase();
    else params.push(word);
  }
  if (command === "") return "empty";
  return { tags, source, command, params };
}

/** What {@linkcode formatIrcLine} takes: tags in order, source, command, parameters. */
export interface OutMessage {
  tags?: readonly (readonly [string, string])[];
  source?: string | undefined;
  command: string;
  params?: readonly string[];
}

/** Commands whose last parameter is always written as trailing (text), as servers do. */
const TRAILING = new Set(["PRIVMSG", "NOTICE", "TOPIC", "QUIT", "KICK", "ERROR", "SETNAME"]);

/**
 * Formats one line, CRLF included. The last parameter becomes trailing (`:…`) when it has a
 * space, starts with `:` or is empty; other parameters must not (they are the caller's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIrcLine } from "./message.ts";
 * assert.equal(
 *   formatIrcLine({ tags: [["time", "x;y"]], source: "srv", command: "NOTICE", params: ["*", "hi you"] }),
 *   "@time=x\\:y :srv NOTICE * :hi you\r\n",
 * );
 * ```
 */
export function formatIrcLine(message: OutMessage): string {
  let out = "";
  if (message.tags !== undefined && message.tags.length > 0) {
    out = "@" + message.tags.map(([k, v]) => v === "" ? k : `${k}=${escapeTag(v)}`).join(";") +
      " ";
  }
  if (message.source !== undefined) out += `:${message.source} `;
  out += message.command;
  const params = message.params ?? [];
  const trailing = TRAILING.has(message.command) ||
    (/^\d{3}$/.test(message.command) && message.command !== "004" && message.command !== "005");
  for (let i = 0; i < params.length; i++) {
    // A parameter can never end the line early: CR, LF and NUL become spaces.
    const p = params[i]!.replace(/[\r\n\0]/g, " ");
    const last = i === params.length - 1;
    const colon = last && (trailing || p === "" || p.includes(" ") || p.startsWith(":"));
    out += colon ? ` :${p}` : ` ${p}`;
  }
  return out + "\r\n";
}

/** Escapes a tag value (IRCv3 message-tags: `\:` `\s` `\\` `\r` `\n`). */
export function escapeTag(value: string): string {
  return value.replace(
    /[\\; \r\n]/g,
    (c) => c === "\\" ? "\\\\" : c === ";" ? "\\:" : c === " " ? "\\s" : c === "\r" ? "\\r" : "\\n",
  );
}

/** Unescapes a tag value; an unknown escape is the character itself, a lone `\` at the end is dropped. */
export function unescapeTag(value: string): string {
  return value.replace(
    /\\(.?)/gs,
    (_, c: string) => c === ":" ? ";" : c === "s" ? " " : c === "r" ? "\r" : c === "n" ? "\n" : c,
  );
}

/**
 * Cuts `text` into pieces of at most `maxBytes` UTF-8 bytes each, never inside a character,
 * preferring to cut after a space.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitUtf8 } from "./message.ts";
 * assert.deepEqual(splitUtf8("aaa bbb", 5), ["aaa ", "bbb"]);
 * assert.deepEqual(splitUtf8("éééé", 4), ["éé", "éé"]);
 * ```
 */
export function splitUtf8(text: string, maxBytes: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (encoder.encode(rest).length > maxBytes) {
    let bytes = 0;
    let cut = 0;
    let space = -1;
    for (const ch of rest) {
      const size = encoder.encode(ch).length;
      if (bytes + size > maxBytes) break;
      bytes += size;
      cut += ch.length;
      if (ch === " ") space = cut;
    }
    if (cut === 0) cut = [...rest][0]!.length; // one character longer than the limit
    if (space > cut / 2) cut = space;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest !== "" || out.length === 0) out.push(rest);
  return out;
}

/** The IRC formatting codes (bold, colour, italics…), removed from text sent to parley. */
const FORMATTING =
  // deno-lint-ignore no-control-regex
  /\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g;

/**
 * Text from an IRC client as parley stores it: formatting codes removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stripFormatting } from "./message.ts";
 * assert.equal(stripFormatting("\x02bold\x02 \x0304,01red\x03"), "bold red");
 * ```
 */
export function stripFormatting(text: string): string {
  return text.replace(FORMATTING, "");
}
