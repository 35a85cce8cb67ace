/**
 * Strict parsing of an HTTP/1.x request head (request line and header fields) and the framing
 * decisions that follow from it (RFC 9112). Anything ambiguous is refused, so that no proxy in
 * front of parley can read a request differently (no request smuggling). Pure code.
 *
 * @module
 */

/** A refusal: the status to answer with, and why (for the log). */
export class HttpError extends Error {
  /** The response status: 400, 414, 417, 431, 505. */
  readonly status: number;

  /**
   * @param status the response status
   * @param reason what was wrong, for the log
   */
  constructor(status: number, reason: string) {
    super(reason);
    this.name = "HttpError";
    this.status = status;
  }
}

/** A parsed request head, before any interpretation. */
export interface RequestHead {
  /** The method token, as sent. */
  method: string;
  /** The request target, as sent. */
  target: string;
  /** The minor version: HTTP/1.0 or HTTP/1.1. */
  minor: 0 | 1;
  /** The header fields in order, names lowercased, values trimmed. */
  fields: [string, string][];
}

/** How a request's body is delimited. */
export type BodyFraming =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" };

/** What a request head means. */
export interface RequestMeta {
  /** The absolute URL: scheme, host, path and query. */
  url: string;
  /** How the body is delimited. */
  body: BodyFraming;
  /** Whether the client wants the connection kept open after the response. */
  keepAlive: boolean;
  /** Whether the client waits for `100 Continue` before sending the body. */
  expectContinue: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** tchar (RFC 9110 §5.6.2) by byte. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/**
 * Finds the end of a request head: the byte after its empty line (CRLF CRLF).
 *
 * @param bytes what arrived so far
 * @param from where to resume the search (the previous length: the search backs up 3 bytes)
 * @returns the head's length, or -1 while it is incomplete
 */
export function findHeadEnd(bytes: Uint8Array, from = 0): number {
  let i = Math.max(0, from - 3);
  for (;;) {
    i = bytes.indexOf(LF, i);
    if (i === -1) return -1;
    if (i >= 3 && bytes[i - 1] === CR && bytes[i - 2] === LF && bytes[i - 3] === CR) return i + 1;
    i++;
  }
}

/**
 * Whether what arrived holds a complete request line (for choosing 414 over 431).
 *
 * @param bytes the start of a head
 * @returns whether its request line ended
 */
export function hasRequestLine(bytes: Uint8Array): boolean {
  let start = 0;
  while (bytes[start] === CR && bytes[start + 1] === LF) start += 2;
  return bytes.indexOf(LF, start) !== -1;
}

/**
 * Parses a request head: the request line and header fields, lines ending in CRLF, up to and
 * including the empty line. Empty lines before the request line are skipped.
 *
 * @param bytes the head, as delimited by {@linkcode findHeadEnd}
 * @param maxFields the most header fields allowed
 * @returns the parsed head
 * @throws {HttpError} 400 for a malformed head, 505 for another HTTP version, 431 for too many
 *   fields
 */
export function parseHead(bytes: Uint8Array, maxFields: number): RequestHead {
  let at = 0;
  while (bytes[at] === CR && bytes[at + 1] === LF) at += 2;
  const lineEnd = endOfLine(bytes, at);
  const { method, target, minor } = parseRequestLine(bytes, at, lineEnd);
  at = lineEnd + 2;
  const fields: [string, string][] = [];
  for (;;) {
    const end = endOfLine(bytes, at);
    if (end === at) break;
    if (fields.length === maxFields) throw new HttpError(431, "too many header fields");
    fields.push(parseField(bytes, at, end));
    at = end + 2;
  }
  return { method, target, minor, fields };
}

/** The index of the CR of the CRLF ending the line at `start`; a bare CR or LF is refused. */
function endOfLine(bytes: Uint8Array, start: number): number {
  const lf = bytes.indexOf(LF, start);
  if (lf === -1 || lf === start || bytes[lf - 1] !== CR) {
    throw new HttpError(400, "a line does not end in CRLF");
  }
  const cr = bytes.indexOf(CR, start);
  if (cr !== lf - 1) throw new HttpError(400, "a bare CR in the head");
  return cr;
}

function parseRequestLine(
  bytes: Uint8Array,
  start: number,
  end: number,
): { method: string; target: string; minor: 0 | 1 } {
  let i = start;
  while (i < end && TCHAR[bytes[i]!] === 1) i++;
  if (i === start || bytes[i] !== SP) throw new HttpError(400, "malformed method");
  const method = latin1(bytes, start, i);
  const targetStart = ++i;
  // Visible ASCII only; a fragment is never sent.
  while (i < end && bytes[i]! > SP && bytes[i]! < 0x7f && bytes[i] !== 0x23) i++;
  if (i === targetStart || bytes[i] !== SP) throw new HttpError(400, "malformed request target");
  const target = latin1(bytes, targetStart, i);
  const version = latin1(bytes, i + 1, end);
  if (version === "HTTP/1.1") return { method, target, minor: 1 };
  if (version === "HTTP/1.0") return { method, target, minor: 0 };
  if (/^HTTP\/[0-9]\.[0-9]$/.test(version)) throw new HttpError(505, `unsupported ${version}`);
  throw new HttpError(400, "malformed HTTP version");
}

function parseField(bytes: Uint8Array, start: number, end: number): [string, string] {
  let i = start;
  while (i < end && TCHAR[bytes[i]!] === 1) i++;
  if (i === start) {
    const c = bytes[start];
    throw new HttpError(400, c === SP || c === HTAB ? "obs-fold line" : "malformed field name");
  }
  if (bytes[i] !== COLON) throw new HttpError(400, "malformed field name");
  const name = latin1(bytes, start, i).toLowerCase();
  let from = i + 1;
  let to = end;
  while (from < to && (bytes[from] === SP || bytes[from] === HTAB)) from++;
  while (to > from && (bytes[to - 1] === SP || bytes[to - 1] === HTAB)) to--;
  for (let j = from; j < to; j++) {
    const c = bytes[j]!;
    if ((c < SP && c !== HTAB) || c === 0x7f) {
      throw new HttpError(400, `control character in field ${name}`);
    }
  }
  return [name, latin1(bytes, from, to)];
}

/**
 * Bytes as a string of the same char codes (what HTTP field values are).
 *
 * @param bytes the bytes
 * @param start the first index
 * @param end the index past the last
 * @returns one char per byte
 */
export function latin1(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode(...bytes.subarray(i, Math.min(end, i + 4096)));
  }
  return out;
}

const HOST = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252}))(?::([0-9]{1,5}))?$/;

/**
 * Whether `host` is a plausible `host[:port]`: a DNS name or IPv4 address, or a bracketed IPv6
 * address, and a port up to 65535.
 *
 * @param host the Host header's value
 * @returns whether it can stand in a URL
 */
export function plausibleHost(host: string): boolean {
  const match = HOST.exec(host);
  if (match === null) return false;
  return match[1] === undefined || Number(match[1]) <= 65535;
}

/** The comma-separated tokens of every field named `name`, lowercased. */
function tokens(fields: readonly [string, string][], name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of fields) {
    if (k !== name) continue;
    for (const token of v.split(",")) out.push(token.trim().toLowerCase());
  }
  return out;
}

/**
 * Interprets a parsed head: its URL, how its body is framed, and whether the connection stays
 * open.
 *
 * @param head the parsed head
 * @param scheme "http" or "https", for the URL
 * @param defaultHost the host for an HTTP/1.0 request without a Host header
 * @returns what the request means
 * @throws {HttpError} 400 for a missing, repeated or implausible Host, an unsupported target
 *   form, an ambiguous body framing; 417 for an unknown expectation
 */
export function interpretHead(
  head: RequestHead,
  scheme: "http" | "https",
  defaultHost: string,
): RequestMeta {
  const { fields, target, minor } = head;
  const hosts = fields.filter(([k]) => k === "host").map(([, v]) => v);
  if (hosts.length > 1) throw new HttpError(400, "more than one Host");
  if (hosts.length === 0 && minor === 1) throw new HttpError(400, "no Host");
  let host = hosts[0] ?? defaultHost;
  if (!plausibleHost(host)) throw new HttpError(400, "implausible Host");
  let path: string;
  if (target.startsWith("/")) path = target;
  else if (/^https?:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new HttpError(400, "malformed absolute-form target");
    }
    if (url.username !== "" || url.password !== "" || !plausibleHost(url.host)) {
      throw new HttpError(400, "malformed absolute-form target");
    }
    host = url.host;
    path = url.pathname + url.search;
  } else throw new HttpError(400, "unsupported request target form");
  const url = `${scheme}://${host}${path}`;
  if (!URL.canParse(url)) throw new HttpError(400, "malformed request target");

  const connection = tokens(fields, "connection");
  const keepAlive = !connection.includes("close") &&
    (minor === 1 || connection.includes("keep-alive"));
  const body = framing(fields, minor);
  const expect = tokens(fields, "expect");
  if (expect.some((e) => e !== "100-continue")) throw new HttpError(417, "unknown expectation");
  const expectContinue = expect.length > 0 && minor === 1 && body.kind !== "none";
  return { url, body, keepAlive, expectContinue };
}

/** How the body is framed: Content-Length (digits, all equal) xor `Transfer-Encoding: chunked`. */
function framing(fields: readonly [string, string][], minor: 0 | 1): BodyFraming {
  const te = fields.some(([k]) => k === "transfer-encoding");
  const lengths = fields.filter(([k]) => k === "content-length").map(([, v]) => v);
  if (te) {
    if (lengths.length > 0) throw new HttpError(400, "both Content-Length and Transfer-Encoding");
    if (minor === 0) throw new HttpError(400, "Transfer-Encoding in HTTP/1.0");
    const codings = tokens(fields, "transfer-encoding");
    if (codings.length !== 1 || codings[0] !== "chunked") {
      throw new HttpError(400, "unsupported Transfer-Encoding");
    }
    return { kind: "chunked" };
  }
  if (lengths.length === 0) return { kind: "none" };
  const first = lengths[0]!;
  if (!/^[0-9]{1,15}$/.test(first) || lengths.some((v) => v !== first)) {
    throw new HttpError(400, "invalid Content-Length");
  }
  const length = Number(first);
  return length === 0 ? { kind: "none" } : { kind: "length", length };
}
