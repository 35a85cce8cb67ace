/**
 * The server's password (`--server-password`): every client gives it first (IRC `PASS`, JSON
 * `hello`'s `serverPassword`, text mode's `/pass`).
 *
 * @module
 */

/**
 * Whether `given` is the server's password, compared in constant time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samePassword } from "./server_password.ts";
 * assert.equal(samePassword("open sesame", "open sesame"), true);
 * assert.equal(samePassword("open", "open sesame"), false);
 * assert.equal(samePassword(undefined, "x"), false);
 * ```
 */
export function samePassword(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]!;
  return diff === 0;
}
