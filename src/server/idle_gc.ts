/**
 * A full garbage collection on demand, for a server that just went idle after a burst: V8 keeps
 * the young generation it grew during the burst, and the garbage the burst left in the old one,
 * until the next collections, and an idle server allocates too little to cause any. The
 * collector is V8's `gc` (exposed at the first call through `node:v8`'s flags and `node:vm`).
 *
 * @module
 */

import v8 from "node:v8";
import vm from "node:vm";

let collect: (() => void) | null | undefined;

/**
 * Collects all garbage now (blocking: tens of milliseconds for a heap of 100 MB).
 *
 * @returns whether it could (false when the runtime does not expose a collector)
 */
export function collectGarbage(): boolean {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      const gc: unknown = vm.runInNewContext("gc");
      collect = typeof gc === "function" ? gc as () => void : null;
    } catch {
      collect = null;
    }
  }
  if (collect === null) return false;
  collect();
  return true;
}
