/**
 * What the terminal remembers of the messages it showed, for the line a reply quotes
 * (`(re alice: what time?)`), and who is typing where, for the status line. Pure: no I/O.
 *
 * @module
 */

import type { MessageFrame } from "../../protocol/frames.ts";
import { nameKey } from "../../protocol/names.ts";
import { displayWidth } from "./width.ts";

/** What is kept of a message. */
interface Known {
  from: string;
  text: string;
  room?: string;
  to?: string;
  deleted?: boolean;
  file?: string;
}

/** The longest quoted line, in columns (longer ones end with `…`). */
const QUOTE_COLUMNS = 40;

/**
 * The last messages seen (at most `limit`, the oldest forgotten first), by id: their sender and
 * text, kept current by edits and deletions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KnownMessages } from "./known.ts";
 * const known = new KnownMessages();
 * known.remember({ id: 41, from: "alice", text: "what time?\nor later" });
 * assert.equal(known.quote(41), "alice: what time?");
 * known.deleted(41);
 * assert.equal(known.quote(41), "alice: message deleted");
 * assert.equal(known.quote(7), undefined);
 * ```
 */
export class KnownMessages {
  readonly #limit: number;
  readonly #messages = new Map<number, Known>();

  /** @param limit how many messages to remember @default 2000 */
  constructor(limit = 2000) {
    this.#limit = limit;
  }

  /** Remembers a message (again: it counts as the newest). */
  remember(
    m: Pick<MessageFrame, "id" | "from" | "text" | "deleted" | "file" | "room" | "to">,
  ): void {
    this.#messages.delete(m.id);
    const kept: Known = { from: m.from, text: m.text };
    if (m.room !== undefined) kept.room = m.room;
    if (m.to !== undefined) kept.to = m.to;
    if (m.deleted) kept.deleted = true;
    if (m.file !== undefined) kept.file = m.file.name;
    this.#messages.set(m.id, kept);
    if (this.#messages.size > this.#limit) {
      this.#messages.delete(this.#messages.keys().next().value!);
    }
  }

  /** Where a message seen is: its room, or the two names of its direct conversation. */
  place(id: number): { room: string } | { from: string; to: string } | undefined {
    const m = this.#messages.get(id);
    if (m === undefined) return undefined;
    if (m.room !== undefined) return { room: m.room };
    return m.to === undefined ? undefined : { from: m.from, to: m.to };
  }

  /** A message seen was edited. */
  edited(id: number, text: string): void {
    const m = this.#messages.get(id);
    if (m !== undefined) m.text = text;
  }

  /** A message seen was deleted. */
  deleted(id: number): void {
    const m = this.#messages.get(id);
    if (m !== undefined) {
      m.deleted = true;
      m.text = "";
      delete m.file;
    }
  }

  /**
   * The line a reply to `id` quotes: its sender and first non-blank line, shortened; undefined
   * when the message was not seen.
   */
  quote(id: number): string | undefined {
    const m = this.#messages.get(id);
    if (m === undefined) return undefined;
    if (m.deleted) return `${m.from}: message deleted`;
    const line = m.text.split("\n").find((l) => l.trim() !== "")?.trim() ??
      (m.file === undefined ? "" : `(file ${m.file})`);
    return `${m.from}: ${shorten(line, QUOTE_COLUMNS)}`;
  }
}

/** `text` cut to at most `columns` display columns, with `…` when it was cut. */
function shorten(text: string, columns: number): string {
  if (displayWidth(text) <= columns) return text;
  let out = "";
  for (const { segment } of new Intl.Segmenter().segment(text)) {
    if (displayWidth(out + segment) > columns - 1) break;
    out += segment;
  }
  return `${out}…`;
}

/** How long someone shows as typing after their last `typing` event (docs/protocol.md). */
export const TYPING_SHOWN_MS = 5000;

/** Who is typing where, each until a time: a room (`#key`) or to you (`@namekey`). */
export class Typists {
  readonly #where = new Map<string, Map<string, { name: string; until: number }>>();

  /** `name` is typing in `room`, or (no room) to you, until `until`. */
  add(name: string, room: string | undefined, until: number): void {
    const key = room === undefined ? `@${nameKey(name)}` : `#${nameKey(room)}`;
    let names = this.#where.get(key);
    if (names === undefined) this.#where.set(key, names = new Map());
    names.set(nameKey(name), { name, until });
  }

  /** `name` stopped typing: in `room` (its message arrived there), to you, or (both undefined, e.g. it quit) everywhere. */
  remove(name: string, room?: string, direct = false): void {
    const keys = room !== undefined
      ? [`#${nameKey(room)}`]
      : direct
      ? [`@${nameKey(name)}`]
      : [...this.#where.keys()];
    for (const key of keys) {
      this.#where.get(key)?.delete(nameKey(name));
      if (this.#where.get(key)?.size === 0) this.#where.delete(key);
    }
  }

  /** Forgets everyone whose time is up at `now`; the earliest time still to come, if any. */
  expire(now: number): number | undefined {
    let next: number | undefined;
    for (const [key, names] of this.#where) {
      for (const [k, t] of names) {
        if (t.until <= now) names.delete(k);
        else next = Math.min(next ?? Infinity, t.until);
      }
      if (names.size === 0) this.#where.delete(key);
    }
    return next;
  }

  /**
   * The status line for someone in `room` (the current one, if any): who is typing there, and
   * who is typing a direct message to you; empty when nobody is.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Typists } from "./known.ts";
   * const t = new Typists();
   * t.add("alice", "#ops", 10);
   * t.add("bob", "#ops", 10);
   * t.add("carol", undefined, 10);
   * t.add("dave", "#elsewhere", 10);
   * assert.equal(t.line("#OPS", 0), "alice and bob are typing… · carol is typing to you…");
   * assert.equal(t.line("#ops", 10), "");
   * ```
   */
  line(room: string | undefined, now: number): string {
    const live = (key: string) =>
      [...this.#where.get(key)?.values() ?? []].filter((t) => t.until > now).map((t) => t.name);
    const here = room === undefined ? [] : live(`#${nameKey(room)}`);
    const direct = [...this.#where.keys()].filter((k) => k.startsWith("@")).flatMap(live);
    const parts: string[] = [];
    if (here.length > 0) parts.push(`${names(here)} ${here.length === 1 ? "is" : "are"} typing…`);
    if (direct.length > 0) {
      parts.push(`${names(direct)} ${direct.length === 1 ? "is" : "are"} typing to you…`);
    }
    return parts.join(" · ");
  }
}

/** `alice`, `alice and bob`, `alice, bob and 2 more`. */
function names(list: readonly string[]): string {
  if (list.length === 1) return list[0]!;
  if (list.length === 2) return `${list[0]} and ${list[1]}`;
  return `${list[0]}, ${list[1]} and ${list.length - 2} more`;
}

/**
 * Where a draft being typed will go, for `typing`: the current room for a plain line (or
 * `//…`, `/me …`), a person for `/msg NAME …` (`/dm`); undefined for an empty line and for
 * other commands.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { typingTarget } from "./known.ts";
 * assert.deepEqual(typingTarget("hel", "#ops"), { room: "#ops" });
 * assert.deepEqual(typingTarget("/msg bob hi", "#ops"), { to: "bob" });
 * assert.equal(typingTarget("/join #x", "#ops"), undefined);
 * assert.equal(typingTarget("hi", undefined), undefined);
 * ```
 */
export function typingTarget(
  draft: string,
  current: string | undefined,
): { room: string } | { to: string } | undefined {
  if (draft.trim() === "") return undefined;
  if (!draft.startsWith("/") || draft.startsWith("//") || /^\/me\s+\S/i.test(draft)) {
    return current === undefined ? undefined : { room: current };
  }
  const dm = /^\/(?:msg|dm)\s+([A-Za-z0-9_-]{1,32})\s+\S/i.exec(draft);
  return dm === null ? undefined : { to: dm[1]! };
}
