/**
 * Tab completion for the terminal prompt, and the small bounded set of message ids that keeps
 * history from being printed twice. Pure: no I/O.
 *
 * @module
 */

/** What can be completed: command words (with their `/`), room names (with `#`), names. */
export interface Completions {
  commands: readonly string[];
  rooms: readonly string[];
  names: readonly string[];
}

/**
 * Completes the word before the end of `line`, in the line editor's terms: the candidates and
 * the word they replace. A first word starting with `/` completes commands, a word starting
 * with `#` rooms, any other word the names (a name completed as the line's first word gets
 * `: ` after it, elsewhere a space). Matching ignores case; candidates are unique and sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { complete } from "./complete.ts";
 * const c = { commands: ["/join", "/jump"], rooms: ["#ops"], names: ["Alice", "bob"] };
 * assert.deepEqual(complete("/jo", c), [["/join "], "/jo"]);
 * assert.deepEqual(complete("hi al", c), [["Alice "], "al"]);
 * assert.deepEqual(complete("al", c), [["Alice: "], "al"]);
 * assert.deepEqual(complete("/join #o", c), [["#ops "], "#o"]);
 * ```
 */
export function complete(line: string, c: Completions): [string[], string] {
  const word = /\S*$/.exec(line)![0];
  const first = line.slice(0, line.length - word.length).trim() === "";
  let pool: readonly string[];
  let suffix = " ";
  if (first && word.startsWith("/")) pool = c.commands;
  else if (word.startsWith("#")) pool = c.rooms;
  else {
    pool = c.names;
    if (first) suffix = ": ";
  }
  const lower = word.toLowerCase();
  const hits = [...new Set(pool)].filter((w) => w.toLowerCase().startsWith(lower)).sort();
  return [hits.length === 1 ? [hits[0] + suffix] : hits, word];
}

/**
 * The last `limit` keys seen, oldest forgotten first: {@linkcode SeenIds.add} says whether a
 * key is new.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SeenIds } from "./complete.ts";
 * const seen = new SeenIds(2);
 * assert.equal(seen.add("a"), true);
 * assert.equal(seen.add("a"), false);
 * seen.add("b");
 * seen.add("c"); // forgets "a"
 * assert.equal(seen.add("a"), true);
 * ```
 */
export class SeenIds {
  readonly #keys = new Set<string>();
  readonly limit: number;

  /** @param limit how many keys are kept @default 2000 */
  constructor(limit = 2000) {
    this.limit = limit;
  }

  /** Records `key`; true when it was not among the last `limit` seen. */
  add(key: string): boolean {
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    if (this.#keys.size > this.limit) this.#keys.delete(this.#keys.values().next().value!);
    return true;
  }

  /** How many keys are kept now. */
  get size(): number {
    return this.#keys.size;
  }
}
