/**
 * The terminal client's own commands, `/send [#room|NAME] PATH` and `/get ID [PATH]` (file
 * transfer goes over HTTP, not through the server's text-mode grammar), and where a download
 * may land: a server-provided name made safe, and a free name so nothing is overwritten.
 * Pure functions: the file system is asked through the callbacks given.
 *
 * @module
 */

import { ChatError } from "../../protocol/errors.ts";
import { isValidName } from "../../protocol/names.ts";
import { revealHidden, utf8Length } from "../../protocol/unicode.ts";

/** A file command: upload PATH and send it to `to`, or download file `id` (to `path`). */
export type FileCommand =
  | { type: "upload"; to: string; path: string }
  | { type: "download"; id: string; path?: string };

/** The help lines for the file commands, in the style of the server's `/help`. */
export const FILE_HELP: readonly string[] = [
  "  /send [#room|NAME] PATH  upload a file and send it (default: to the current room)",
  "  /get ID [PATH]       download a file (resumes; checks its SHA-256)",
];

/**
 * Parses `/send` and `/get`. A PATH may be quoted ("…" or '…') and may contain spaces. For
 * `/send`, a first word starting with `#` is the room; otherwise, when the whole rest names a
 * file (`isFile`), it goes to the current room, and else a first word that is a valid user
 * name is the recipient of a direct message.
 *
 * @param line the typed line
 * @param current the current room, if any
 * @param isFile whether a path names an existing file
 * @returns the command, or undefined when the line is not a file command
 * @throws {ChatError} `bad_frame` (usage) or `no_current_room`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFileCommand } from "./file_commands.ts";
 * const none = () => false;
 * assert.deepEqual(parseFileCommand("/send bob notes.txt", "#general", none), {
 *   type: "upload", to: "bob", path: "notes.txt",
 * });
 * assert.deepEqual(parseFileCommand("/get AbC ~/x.pdf", "#general", none), {
 *   type: "download", id: "AbC", path: "~/x.pdf",
 * });
 * ```
 */
export function parseFileCommand(
  line: string,
  current: string | undefined,
  isFile: (path: string) => boolean,
): FileCommand | undefined {
  const m = /^\/(send|get)(?:\s+(.*))?$/is.exec(line.trim());
  if (m === null) return undefined;
  const verb = m[1]!.toLowerCase();
  const rest = (m[2] ?? "").trim();
  if (verb === "get") {
    const [id, path] = splitFirst(rest);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw usage("/get ID [PATH]");
    return path === "" ? { type: "download", id } : { type: "download", id, path: unquote(path) };
  }
  if (rest === "") throw usage("/send [#room|NAME] PATH");
  const [first, remainder] = splitFirst(rest);
  if (first.startsWith("#")) {
    if (remainder === "") throw usage("/send [#room|NAME] PATH");
    return { type: "upload", to: first, path: unquote(remainder) };
  }
  const whole = unquote(rest);
  if (remainder !== "" && isValidName(first) && !isFile(whole)) {
    return { type: "upload", to: first, path: unquote(remainder) };
  }
  if (current === undefined) {
    throw new ChatError("no_current_room", "Cannot send: you are in no room; /join one first");
  }
  return { type: "upload", to: current, path: whole };
}

function usage(form: string): ChatError {
  return new ChatError("bad_frame", `Usage: ${form}`);
}

function splitFirst(text: string): [string, string] {
  const m = /^(\S+)\s*(.*)$/s.exec(text);
  return m ? [m[1]!, m[2]!] : ["", ""];
}

function unquote(text: string): string {
  const t = text.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t.at(-1) === t[0]) return t.slice(1, -1);
  return t;
}

/**
 * A file name from the server made safe to create in a chosen folder: only its last path
 * segment, no control characters, none of `<>:"/\|?*`, no leading dots (no hidden files, no
 * `..`) or trailing dots and spaces, at most 200 bytes (keeping the extension); "download"
 * when nothing is left.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { safeFileName } from "./file_commands.ts";
 * assert.equal(safeFileName("../../etc/passwd"), "passwd");
 * assert.equal(safeFileName(".."), "download");
 * assert.equal(safeFileName("a\x1b[2Jb?.txt"), "a_[2Jb_.txt");
 * assert.equal(safeFileName("invoice\u202efdp.exe"), "invoice_fdp.exe");
 * ```
 */
export function safeFileName(name: string): string {
  let clean = revealHidden(name.split(/[\\/]/).at(-1) ?? "")
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f<>:"|?*]/g, "_")
    .replace(/^[\s.]+/, "")
    .replace(/[\s.]+$/, "");
  if (utf8Length(clean) > 200) {
    const ext = /\.[^.]{1,16}$/.exec(clean)?.[0] ?? "";
    let stem = clean.slice(0, clean.length - ext.length);
    while (utf8Length(stem + ext) > 200) stem = [...stem].slice(0, -1).join("");
    clean = stem + ext;
  }
  return clean === "" ? "download" : clean;
}

/**
 * The first of `name`, `stem (1).ext`, `stem (2).ext`, … that is not `taken`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { freeName } from "./file_commands.ts";
 * const taken = new Set(["a.pdf", "a (1).pdf"]);
 * assert.equal(freeName("a.pdf", (n) => taken.has(n)), "a (2).pdf");
 * assert.equal(freeName("notes", (n) => taken.has(n)), "notes");
 * ```
 */
export function freeName(name: string, taken: (name: string) => boolean): string {
  if (!taken(name)) return name;
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  for (let n = 1;; n++) {
    const candidate = `${stem} (${n})${ext}`;
    if (!taken(candidate)) return candidate;
  }
}
