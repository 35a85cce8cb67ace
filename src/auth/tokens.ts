/**
 * Session tokens: 256 random bits, given to the client once, stored only as a SHA-256 hash.
 *
 * @module
 */

import { createHash, randomBytes } from "node:crypto";

/** Makes a new token (base64url, 43 characters) and the hash to store. */
export function newToken(): { token: string; hash: Uint8Array } {
  const token = randomBytes(32).toString("base64url");
  return { token, hash: hashToken(token) };
}

/**
 * The hash under which a token is stored and looked up. Synchronous on purpose: WebCrypto's
 * `digest` hands every call to a thread pool and back, which for 43 bytes costs far more than
 * the hash (a token login is mostly such fixed costs).
 */
export function hashToken(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token).digest());
}
