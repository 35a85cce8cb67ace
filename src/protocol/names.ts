/**
 * Validation of user and room names. Names compare case-insensitively: {@linkcode nameKey}
 * gives the key under which a name is unique.
 *
 * @module
 */

import { ChatError } from "./errors.ts";

const NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
const ROOM_RE = /^#[A-Za-z0-9_-]{1,64}$/;

/** The room every user is in from the start. */
export const DEFAULT_ROOM = "#general";

/**
 * The key under which a user or room name is unique (names are case-insensitive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nameKey } from "./names.ts";
 * assert.equal(nameKey("Alice"), nameKey("aLICE"));
 * ```
 */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** Whether `name` is a valid user name: 1–32 of letters, digits, `_`, `-`. */
export function isValidName(name: unknown): name is string {
  return typeof name === "string" && NAME_RE.test(name);
}

/** Whether `room` is a valid room name: `#` then 1–64 of letters, digits, `_`, `-`. */
export function isValidRoom(room: unknown): room is string {
  return typeof room === "string" && ROOM_RE.test(room);
}

/**
 * Returns `name` when it is a valid user name, else throws `invalid_name`.
 *
 * @throws {ChatError} `invalid_name`
 */
export function checkName(name: unknown): string {
  if (isValidName(name)) return name;
  throw new ChatError(
    "invalid_name",
    `Invalid name ${
      JSON.stringify(String(name).slice(0, 40))
    }: use 1-32 letters, digits, '_' or '-'`,
  );
}

/**
 * Returns `room` when it is a valid room name, else throws `invalid_room`.
 *
 * @throws {ChatError} `invalid_room`
 */
export function checkRoom(room: unknown): string {
  if (isValidRoom(room)) return room;
  throw new ChatError(
    "invalid_room",
    `Invalid room ${
      JSON.stringify(String(room).slice(0, 70))
    }: use '#' and 1-64 letters, digits, '_' or '-'`,
  );
}
