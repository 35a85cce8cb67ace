/**
 * Download links for people at `nc`: a text-mode user cannot send an `Authorization` header,
 * so a file message it receives carries a URL that `curl` can fetch: signed by the server for
 * that account and that file, and expiring. The key is made when the server starts (links die
 * with a restart, as their expiry is short anyway).
 *
 * @module
 */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** How long a download link works. */
export const LINK_TTL_MS = 24 * 3600 * 1000;

/**
 * Signs and checks download links.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileLinks } from "./capability.ts";
 * const links = new FileLinks();
 * const url = new URL(links.url("http://127.0.0.1:8080", "AAAAAAAAAAAAAAAAAAAAAA", 7, 0));
 * assert.equal(links.check("AAAAAAAAAAAAAAAAAAAAAA", url.searchParams, 1000), 7);
 * assert.equal(links.check("BBBBBBBBBBBBBBBBBBBBBB", url.searchParams, 1000), undefined);
 * ```
 */
export class FileLinks {
  readonly #key: Uint8Array = randomBytes(32);

  /** A link to file `id` for account `userId`, valid for {@linkcode LINK_TTL_MS} from `now`. */
  url(base: string, id: string, userId: number, now: number): string {
    const expires = now + LINK_TTL_MS;
    return `${base}/files/${id}?u=${userId}&e=${expires}&s=${this.#sign(id, userId, expires)}`;
  }

  /** The account a link's query grants file `id` to, if the link is genuine and unexpired. */
  check(id: string, query: URLSearchParams, now: number): number | undefined {
    const u = query.get("u"), e = query.get("e"), s = query.get("s");
    if (u === null || e === null || s === null || !/^\d{1,15}$/.test(u) || !/^\d{1,15}$/.test(e)) {
      return undefined;
    }
    const userId = Number(u), expires = Number(e);
    if (expires < now) return undefined;
    const want = new TextEncoder().encode(this.#sign(id, userId, expires));
    const got = new TextEncoder().encode(s);
    return want.length === got.length && timingSafeEqual(want, got) ? userId : undefined;
  }

  #sign(id: string, userId: number, expires: number): string {
    return createHmac("sha256", this.#key).update(`${id}.${userId}.${expires}`).digest("base64url");
  }
}
