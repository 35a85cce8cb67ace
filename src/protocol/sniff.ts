/**
 * Recognising other protocols on the chat port, from the first line a client sends: an HTTP
 * request (a browser pointed at the wrong port), or IRC registration (an IRC client). Neither
 * is chat: the session answers in that protocol and closes, and nothing reaches a room.
 *
 * @module
 */

import { utf8Length } from "./unicode.ts";

/** A protocol that is not parley's. */
export type ForeignProtocol = "http" | "irc";

/** `METHOD target HTTP/1.x` (and the HTTP/2 preface, `PRI * HTTP/2.0`). */
const HTTP_REQUEST_LINE = /^[A-Z][A-Z_-]{0,31} \S+ HTTP\/\d(?:\.\d)?$/;
/** The commands an IRC client opens with, after optional message tags and a prefix. */
const IRC_REGISTRATION = /^(?:@\S+ +)?(?::\S+ +)?(?:CAP|NICK|USER|PASS)(?: |$)/;
/** A `Host` header value that may be echoed into a URL: a name or IP literal, and a port. */
const HOST_RE = /^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(?::\d{1,5})?$/;

/**
 * Which foreign protocol `line` (a client's first line, without its line ending) opens, if any.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sniffFirstLine } from "./sniff.ts";
 * assert.equal(sniffFirstLine("GET / HTTP/1.1"), "http");
 * assert.equal(sniffFirstLine("CAP LS 302"), "irc");
 * assert.equal(sniffFirstLine("hello everyone"), undefined);
 * assert.equal(sniffFirstLine('{"type":"hello"}'), undefined);
 * ```
 */
export function sniffFirstLine(line: string): ForeignProtocol | undefined {
  if (HTTP_REQUEST_LINE.test(line)) return "http";
  if (IRC_REGISTRATION.test(line)) return "irc";
  return undefined;
}

/** Where the web client is, for the answer to an HTTP request. */
export interface WebPort {
  port: number;
  secure: boolean;
}

/**
 * The HTTP response for a request that reached the chat port: a redirect to the web client for
 * `GET` and `HEAD` when the server has a web port and the `Host` header is usable, else a 400
 * that says where to go. Always `connection: close`.
 *
 * @param requestLine the request's first line
 * @param host the request's `Host` header, if any
 * @param web the web port, or undefined when the server has none
 * @returns the whole response, head and body
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { httpAnswer } from "./sniff.ts";
 * const answer = httpAnswer("GET / HTTP/1.1", "chat.example:5000", { port: 8080, secure: false });
 * assert.match(answer, /^HTTP\/1\.1 301 /);
 * assert.match(answer, /\r\nlocation: http:\/\/chat\.example:8080\/\r\n/);
 * ```
 */
export function httpAnswer(
  requestLine: string,
  host: string | undefined,
  web: WebPort | undefined,
): string {
  const method = requestLine.slice(0, requestLine.indexOf(" "));
  const m = host === undefined ? null : HOST_RE.exec(host.trim());
  const hostname = m?.[1] ?? "localhost";
  const url = web === undefined
    ? undefined
    : `${web.secure ? "https" : "http"}://${hostname}:${web.port}/`;
  const body = url === undefined
    ? "This is parley's chat port, for nc and chat clients; this server has no web port.\n"
    : `This is parley's chat port, for nc and chat clients. The web client is at ${url}\n`;
  const redirect = url !== undefined && m !== null && (method === "GET" || method === "HEAD");
  const head = [
    redirect ? "HTTP/1.1 301 Moved Permanently" : "HTTP/1.1 400 Bad Request",
    ...(redirect ? [`location: ${url}`] : []),
    "content-type: text/plain; charset=utf-8",
    `content-length: ${utf8Length(body)}`,
    "connection: close",
    "",
    "",
  ].join("\r\n");
  return method === "HEAD" ? head : head + body;
}

/**
 * The IRC `ERROR` line for an IRC client that reached the chat port.
 *
 * @param ircPort where IRC is served, or undefined when this server has no IRC listener
 * @returns the line, CRLF included
 */
export function ircAnswer(ircPort?: number): string {
  const where = ircPort === undefined
    ? "this server does not speak IRC yet; use nc, the terminal client or the web client"
    : `IRC is on port ${ircPort}`;
  return `ERROR :Closing link: this is parley's chat port; ${where}\r\n`;
}
