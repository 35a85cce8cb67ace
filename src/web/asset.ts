/**
 * The shape of the embedded web assets (src/web/assets.gen.ts, written by src/web/build.ts).
 *
 * @module
 */

/** One file the HTTP server serves. */
export interface Asset {
  /** The URL path: `/` for the page, `/assets/NAME.HASH.EXT` for the rest. */
  path: string;
  /** The Content-Type. */
  type: string;
  /** The body, base64. */
  body: string;
  /**
   * The body compressed with Brotli and with gzip, base64, made once by the build (compressing
   * at the server's start cost about 300 ms); each only when it saves at least 256 bytes.
   */
  br?: string;
  gzip?: string;
  /** A strong ETag: the body's SHA-256, base64url, quoted. */
  etag: string;
  /** Whether the URL changes when the content does (hashed names): cache forever. */
  immutable: boolean;
}
