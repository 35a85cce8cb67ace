/**
 * Byte arrays.
 *
 * @module
 */

/** `parts` one after another in a new array; `total`: their length, when the caller knows it. */
export function concatBytes(parts: readonly Uint8Array[], total?: number): Uint8Array {
  const out = new Uint8Array(total ?? parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
