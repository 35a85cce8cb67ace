/**
 * A deadline on a promise, without cancelling it.
 *
 * @module
 */

/**
 * `promise`'s result if it settles within `ms`, else undefined (the promise still runs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { within } from "./within.ts";
 * assert.equal(await within(Promise.resolve(1), 10), 1);
 * assert.equal(await within(new Promise(() => {}), 1), undefined);
 * ```
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) =>
        timer = setTimeout(() => resolve(undefined), Math.max(0, ms))
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
