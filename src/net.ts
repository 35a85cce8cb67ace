/**
 * Facts about peer addresses.
 *
 * @module
 */

/**
 * Whether `ip` is a loopback address (127.0.0.0/8, `::1`, or 127.x mapped into IPv6).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopback } from "./net.ts";
 * assert.equal(isLoopback("127.0.0.5"), true);
 * assert.equal(isLoopback("::ffff:127.0.0.1"), true);
 * assert.equal(isLoopback("10.0.0.1"), false);
 * ```
 */
export function isLoopback(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.") || ip.startsWith("::ffff:127.");
}
