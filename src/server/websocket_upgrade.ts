/**
 * The WebSocket opening handshake (RFC 6455 §4.2): checking the client's upgrade request and
 * writing the 101 answer. No extension is negotiated; the handler may choose a subprotocol.
 *
 * @module
 */

import { validWebSocketKey, webSocketAccept } from "../protocol/websocket_frames.ts";
import { encodeHead } from "./http_response.ts";

/** Fields of the 101 the server sets itself; the handler's copies are dropped. */
const OWN = new Set([
  "connection",
  "upgrade",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "sec-websocket-accept",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
]);

/** Whether the comma-separated list in `value` holds `token` (case-insensitive). */
function listHas(value: string | null, token: string): boolean {
  return value !== null && value.split(",").some((t) => t.trim().toLowerCase() === token);
}

/**
 * Checks an upgrade request, as `Deno.upgradeWebSocket` does.
 *
 * @param req the request
 * @param minor its HTTP minor version
 * @param hasBody whether it carries a body (an upgrade request must not)
 * @returns the client's `Sec-WebSocket-Key`
 * @throws {TypeError} when the request is not a valid WebSocket upgrade
 */
export function checkUpgrade(req: Request, minor: 0 | 1, hasBody: boolean): string {
  const fail = (why: string) => new TypeError(`Cannot upgrade to a WebSocket: ${why}`);
  if (req.method !== "GET" || minor !== 1) throw fail("not an HTTP/1.1 GET");
  if (hasBody) throw fail("the request has a body");
  if (!listHas(req.headers.get("upgrade"), "websocket")) throw fail("no Upgrade: websocket");
  if (!listHas(req.headers.get("connection"), "upgrade")) throw fail("no Connection: upgrade");
  if (req.headers.get("sec-websocket-version") !== "13") {
    throw fail("Sec-WebSocket-Version is not 13");
  }
  const key = req.headers.get("sec-websocket-key");
  if (key === null || !validWebSocketKey(key)) throw fail("invalid Sec-WebSocket-Key");
  return key;
}

/**
 * The 101 Switching Protocols head answering `key`.
 *
 * @param key the client's `Sec-WebSocket-Key`
 * @param headers the handler's extra headers (security headers and the like)
 * @param protocol the subprotocol chosen, answered in `Sec-WebSocket-Protocol`
 * @returns the head's bytes
 */
export async function switchingProtocols(
  key: string,
  headers: Headers,
  protocol?: string,
): Promise<Uint8Array> {
  const fields: [string, string][] = [
    ["upgrade", "websocket"],
    ["connection", "Upgrade"],
    ["sec-websocket-accept", await webSocketAccept(key)],
  ];
  if (protocol !== undefined) fields.push(["sec-websocket-protocol", protocol]);
  for (const [name, value] of headers) if (!OWN.has(name)) fields.push([name, value]);
  return encodeHead(101, "", fields);
}

/**
 * The first of `supported` the client offered in `Sec-WebSocket-Protocol` (in the client's
 * order of preference), or undefined when it offered none of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseProtocol } from "./websocket_upgrade.ts";
 * const h = new Headers({ "sec-websocket-protocol": "binary.ircv3.net, text.ircv3.net" });
 * assert.equal(chooseProtocol(h, ["text.ircv3.net", "binary.ircv3.net"]), "binary.ircv3.net");
 * assert.equal(chooseProtocol(new Headers(), ["text.ircv3.net"]), undefined);
 * ```
 */
export function chooseProtocol(headers: Headers, supported: readonly string[]): string | undefined {
  const offered = headers.get("sec-websocket-protocol");
  if (offered === null) return undefined;
  for (const token of offered.split(",").slice(0, 32)) {
    const name = token.trim().toLowerCase();
    if (supported.includes(name)) return name;
  }
  return undefined;
}
