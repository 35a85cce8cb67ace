/**
 * Session tokens: 256 random bits, given to the client once, stored only as a SHA-256 hash.
 *
 * @module
 */

/** Makes a new token (base64url, 43 characters) and the hash to store. */
export async function newToken(): Promise<{ token: string; hash: Uint8Array }> {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
  return { token, hash: await hashToken(token) };
}

/** The hash under which a token is stored and looked up. */
export async function hashToken(token: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
}
