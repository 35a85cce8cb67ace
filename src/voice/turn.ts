/**
 * TURN credentials for browsers behind strict NAT, in the time-limited REST scheme coturn
 * implements (`use-auth-secret`): the username is `EXPIRY:NAME` (EXPIRY in seconds since the
 * epoch) and the password is base64(HMAC-SHA1(secret, username)). The relay checks both without
 * asking parley anything. See docs/voice.md, "When TURN is needed".
 *
 * @module
 */

/** An ICE server as `RTCPeerConnection` takes it. */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}

const encoder = new TextEncoder();

/**
 * The ICE servers for `name`, valid for `ttlMs` from `now`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { turnCredentials } from "./turn.ts";
 * const [server] = await turnCredentials(["turn:turn.example:3478"], "s3cret", "alice", {
 *   now: 1_000_000,
 *   ttlMs: 3_600_000,
 * });
 * assert.equal(server!.username, "4600:alice");
 * assert.equal(server!.credential.length, 28); // 20 bytes of HMAC-SHA1, in base64
 * ```
 */
export async function turnCredentials(
  urls: readonly string[],
  secret: string,
  name: string,
  options: { now: number; ttlMs: number },
): Promise<IceServer[]> {
  if (urls.length === 0) return [];
  const username = `${Math.floor((options.now + options.ttlMs) / 1000)}:${name}`;
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(username)));
  const credential = btoa(String.fromCharCode(...mac));
  return [{ urls: [...urls], username, credential }];
}
