/**
 * Clients that opened the chat port in another protocol (a browser, a TLS client, an IRC
 * client) are answered in that protocol and closed: nothing they sent reaches a room, and none
 * of it (an IRC `PASS` among it) is logged.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { PROTO } from "../protocol/frames.ts";
import { httpAnswer, ircAnswer, sniffFirstLine } from "../protocol/sniff.ts";
import type { ForeignProtocol, WebPort } from "../protocol/sniff.ts";
import type { InboundEvent } from "../transport/connection.ts";
import { within } from "./within.ts";

const log = getLogger(["parley", "session"]);

/** The plain-text line every chat connection receives first. */
export const BANNER = `* Welcome to parley. Type a message, or /help for commands. ` +
  `(Clients: send {"type":"hello","proto":${PROTO}} for JSON mode.)`;

/**
 * How long a plain connection may take to speak first before it gets the banner. A browser, a
 * TLS client or an IRC client speaks at once: waiting this long lets the session answer it in its
 * own protocol, with no chat banner in front; a person at `nc` does not notice 100 ms.
 */
export const SNIFF_MS = 100;

/**
 * Whether to greet a plain connection with the banner: it said nothing within
 * {@linkcode SNIFF_MS}, or what it said first is no other protocol.
 */
export async function speaksChat(first: Promise<IteratorResult<InboundEvent>>): Promise<boolean> {
  const early = await within(first, SNIFF_MS);
  return early === undefined || early.done === true || foreignProtocol(early.value) === undefined;
}

/** How many lines a turned-away connection may send while it is answered (an HTTP head). */
const FOREIGN_LINES = 100;
/** How long a turned-away connection is read (and ignored) before it is closed. */
export const FOREIGN_LINGER_MS = 1000;

/** Which other protocol a connection's first event opens, if any. */
export function foreignProtocol(event: InboundEvent): ForeignProtocol | "tls" | undefined {
  if ("error" in event) return event.error === "tls_hello" ? "tls" : undefined;
  return sniffFirstLine(event.line);
}

/**
 * The answer to a client that opened with `foreign`, reading the rest of an HTTP request head
 * from `events` first (so the redirect can name the host the browser used); undefined for TLS,
 * which nothing said in plain text could reach.
 */
export async function foreignAnswer(
  foreign: ForeignProtocol | "tls",
  first: InboundEvent,
  events: AsyncIterator<InboundEvent>,
  { remote, web, ircPort }: {
    remote: string;
    web: WebPort | undefined;
    ircPort?: number | undefined;
  },
): Promise<string | undefined> {
  log.debug("Turned away {remote}: it spoke {protocol} on the chat port", {
    remote,
    protocol: foreign,
  });
  if (foreign === "tls") return undefined;
  if (foreign !== "http") return ircAnswer(ircPort);
  const deadline = performance.now() + FOREIGN_LINGER_MS;
  let host: string | undefined;
  for (let i = 0; i < FOREIGN_LINES; i++) {
    const result = await within(events.next(), deadline - performance.now());
    if (result === undefined || result.done || !("line" in result.value)) break;
    const line = result.value.line;
    if (line === "") break;
    const m = /^host:\s*(.*)$/i.exec(line);
    if (m !== null) host = m[1];
  }
  return httpAnswer("line" in first ? first.line : "", host, web);
}
