/**
 * The PNG icons of the web app (192 and 512 px, for the manifest), drawn at build time from the
 * same shapes as `app/icon.svg` (a blue rounded square, a white speech bubble) and encoded
 * here: a few lines of rasterising and PNG chunks over `node:zlib`, no image library and no
 * browser. Deterministic, so `deno task build:web --check` can compare.
 *
 * @module
 */

import { deflateSync } from "node:zlib";
import { concatBytes } from "../bytes.ts";

/** The icon's shapes, in the 32×32 units of icon.svg. */
const RADIUS = 7;
const BLUE = [0x2b, 0x5c, 0xd6] as const;
/** The bubble: `M8 9h16v10H14l-5 5v-5H8z`. */
const BUBBLE: readonly (readonly [number, number])[] = [
  [8, 9],
  [24, 9],
  [24, 19],
  [14, 19],
  [9, 24],
  [9, 19],
  [8, 19],
];

function inRoundedSquare(x: number, y: number): boolean {
  if (x < 0 || y < 0 || x > 32 || y > 32) return false;
  const cx = Math.min(Math.max(x, RADIUS), 32 - RADIUS);
  const cy = Math.min(Math.max(y, RADIUS), 32 - RADIUS);
  return (x - cx) ** 2 + (y - cy) ** 2 <= RADIUS ** 2;
}

function inBubble(x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = BUBBLE.length - 1; i < BUBBLE.length; j = i++) {
    const [xi, yi] = BUBBLE[i]!;
    const [xj, yj] = BUBBLE[j]!;
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * The icon as an RGBA PNG of `size`×`size` pixels (edges smoothed by 4×4 samples a pixel).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { iconPng } from "./_icon_png.ts";
 * const png = iconPng(48);
 * assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
 * assert.equal(new DataView(png.buffer).getUint32(16), 48); // the width
 * ```
 */
export function iconPng(size: number): Uint8Array<ArrayBuffer> {
  const S = 4;
  const raw = new Uint8Array(size * (1 + size * 4));
  for (let py = 0, at = 0; py < size; py++) {
    raw[at++] = 0; // filter: none
    for (let px = 0; px < size; px++) {
      let square = 0;
      let white = 0;
      for (let sy = 0; sy < S; sy++) {
        for (let sx = 0; sx < S; sx++) {
          const x = ((px + (sx + 0.5) / S) * 32) / size;
          const y = ((py + (sy + 0.5) / S) * 32) / size;
          if (!inRoundedSquare(x, y)) continue;
          square++;
          if (inBubble(x, y)) white++;
        }
      }
      const w = square === 0 ? 0 : white / square;
      raw[at++] = Math.round(BLUE[0] + (255 - BLUE[0]) * w);
      raw[at++] = Math.round(BLUE[1] + (255 - BLUE[1]) * w);
      raw[at++] = Math.round(BLUE[2] + (255 - BLUE[2]) * w);
      raw[at++] = Math.round((255 * square) / (S * S));
    }
  }
  return encodePng(size, size, "rgba", raw);
}

/**
 * A PNG of `width`×`height` pixels from `raw`: its rows, each a filter byte (0) and then 3 (RGB)
 * or 4 (RGBA) bytes a pixel. The tests make their images with it too.
 */
export function encodePng(
  width: number,
  height: number,
  kind: "rgb" | "rgba",
  raw: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, kind === "rgb" ? 2 : 6, 0, 0, 0], 8); // 8 bits, deflate, no filter or interlace
  return concatBytes([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk("IEND", new Uint8Array()),
  ]) as Uint8Array<ArrayBuffer>;
}
