/**
 * Writing a `Response` as HTTP/1.1: the status line, its headers, and its body framed by
 * Content-Length when the length is known, else chunked (close-delimited for HTTP/1.0),
 * streamed with backpressure.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import { ConnectionGone, Deadline } from "../transport/byte_conn.ts";
import type { ByteWriter } from "../transport/byte_conn.ts";

/** How the response must be written for its request. */
export interface ResponseContext {
  /** Whether the request was HEAD (no body is sent). */
  head: boolean;
  /** The request's minor HTTP version. */
  minor: 0 | 1;
  /** Whether the connection may stay open after this response. */
  keepAlive: boolean;
  /** Called for a handler bug found while writing (a body that fails or lies about its size). */
  onServerError(error: unknown): void;
}

/** Hop-by-hop fields: the server frames the message itself. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length"]);
/** Bodies at most this long, available at once, get a Content-Length. */
const PREFETCH_BYTES = 64 * 1024;
/** Body chunks smaller than this are copied into one write with their framing. */
const SMALL = 16 * 1024;
const CRLF = new Uint8Array([0x0d, 0x0a]);
const LAST_CHUNK = new Uint8Array([0x30, 0x0d, 0x0a, 0x0d, 0x0a]);

const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
};

let dateSecond = -1;
let dateValue = "";

/** The Date header's value, computed once a second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

/**
 * Serializes a response head.
 *
 * @param status the status code
 * @param statusText the reason phrase ("" for the standard one)
 * @param fields the header fields, in order
 * @returns the head's bytes, ending with the empty line
 */
export function encodeHead(
  status: number,
  statusText: string,
  fields: readonly (readonly [string, string])[],
): Uint8Array {
  const reason = statusText !== "" && /^[\t\x20-\x7e\x80-\xff]*$/.test(statusText)
    ? statusText
    : REASONS[status] ?? "";
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  head += "\r\n";
  const bytes = new Uint8Array(head.length);
  for (let i = 0; i < head.length; i++) bytes[i] = head.charCodeAt(i);
  return bytes;
}

/**
 * The standard reason phrase of a status.
 *
 * @param status the status code
 * @returns its phrase, or "" when unknown
 */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "";
}

/**
 * A plain-text response the server makes itself (errors, timeouts).
 *
 * @param status the status code
 * @param text the body, one line
 * @returns the response's bytes, with `connection: close`
 */
export function simpleResponse(status: number, text: string): Uint8Array {
  const body = new TextEncoder().encode(`${text}\n`);
  const head = encodeHead(status, "", [
    ["content-type", "text/plain; charset=utf-8"],
    ["content-length", String(body.length)],
    ["date", httpDate()],
    ["connection", "close"],
  ]);
  return join([head, body]);
}

/**
 * Writes `res` to the connection.
 *
 * @param writer the connection's writer
 * @param res the handler's response
 * @param ctx the request's method, version and keep-alive wish
 * @returns whether the connection may serve another request
 * @throws {ConnectionGone} when the connection failed
 */
export async function writeResponse(
  writer: ByteWriter,
  res: Response,
  ctx: ResponseContext,
): Promise<boolean> {
  const { status } = res;
  const fields: [string, string][] = [];
  let declared: number | undefined;
  let dated = false;
  for (const [name, value] of res.headers) {
    if (name === "content-length") {
      if (/^[0-9]{1,15}$/.test(value)) declared = Number(value);
    } else if (!HOP_BY_HOP.has(name)) fields.push([name, value]);
    if (name === "date") dated = true;
  }
  if (!dated) fields.push(["date", httpDate()]);
  let keepAlive = ctx.keepAlive && !res.headers.get("connection")?.toLowerCase().includes("close");
  const connectionField = () => {
    if (!keepAlive) fields.push(["connection", "close"]);
    else if (ctx.minor === 0) fields.push(["connection", "keep-alive"]);
  };

  if (ctx.head || status === 204 || status === 304 || status < 200) {
    void res.body?.cancel().catch(() => {});
    if (declared !== undefined && (ctx.head || status === 304)) {
      fields.push(["content-length", String(declared)]);
    }
    connectionField();
    await writer.write(encodeHead(status, res.statusText, fields));
    return keepAlive;
  }

  const reader = res.body?.getReader();
  if (reader === undefined) declared = undefined; // no body: its length is 0, whatever it says
  const early: Uint8Array[] = [];
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  let ended = reader === undefined;
  if (reader !== undefined && declared === undefined) {
    // A body available at once (a string, a buffer: before the next macrotask) gets a
    // Content-Length.
    const tick = new Deadline(0);
    try {
      let total = 0;
      while (total < PREFETCH_BYTES) {
        const read = reader.read();
        const result = await Promise.race([read, tick.promise.then(() => undefined)]);
        if (result === undefined) {
          pending = read;
          break;
        }
        if (result.done) {
          ended = true;
          break;
        }
        const chunk = checkChunk(result.value);
        if (chunk.length > 0) early.push(chunk);
        total += chunk.length;
      }
    } catch (error) {
      void reader.cancel().catch(() => {});
      ctx.onServerError(error);
      await writer.write(simpleResponse(500, "Internal server error"));
      return false;
    } finally {
      tick.cancel();
    }
  }
  const length = declared ?? (ended ? early.reduce((n, c) => n + c.length, 0) : undefined);
  const chunked = length === undefined && ctx.minor === 1;
  if (length === undefined && !chunked) keepAlive = false;
  if (length !== undefined) fields.push(["content-length", String(length)]);
  if (chunked) fields.push(["transfer-encoding", "chunked"]);
  connectionField();

  let sent = 0;
  const frame = (chunk: Uint8Array): Uint8Array[] => {
    sent += chunk.length;
    return chunked ? [new TextEncoder().encode(`${chunk.length.toString(16)}\r\n`), chunk, CRLF] : [
      chunk,
    ];
  };
  const first = [encodeHead(status, res.statusText, fields), ...early.flatMap(frame)];
  if (ended && chunked) first.push(LAST_CHUNK);
  await writer.write(join(first));
  if (ended || reader === undefined) return keepAlive;

  try {
    for (;;) {
      const result = await (pending ?? reader.read());
      pending = undefined;
      if (result.done) break;
      let chunk = checkChunk(result.value);
      if (chunk.length === 0) continue;
      if (length !== undefined && sent + chunk.length > length) {
        chunk = chunk.subarray(0, length - sent);
        ctx.onServerError(new RangeError("Cannot respond: the body is longer than its length"));
        await writeParts(writer, frame(chunk));
        void reader.cancel().catch(() => {});
        return false;
      }
      await writeParts(writer, frame(chunk));
    }
  } catch (error) {
    void reader.cancel().catch(() => {});
    if (error instanceof ConnectionGone) throw error;
    ctx.onServerError(error);
    return false; // the response is cut short: only closing tells the client
  }
  if (length !== undefined && sent < length) {
    ctx.onServerError(new RangeError("Cannot respond: the body is shorter than its length"));
    return false;
  }
  if (chunked) await writer.write(LAST_CHUNK);
  return keepAlive;
}

/** A body chunk must be bytes. */
function checkChunk(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError("Cannot respond: a body chunk is not a Uint8Array");
  }
  return value;
}

/** Small parts go out in one write; a large chunk is written as is, not copied. */
async function writeParts(writer: ByteWriter, parts: Uint8Array[]): Promise<void> {
  const size = parts.reduce((n, p) => n + p.length, 0);
  if (size < SMALL) return writer.write(join(parts));
  for (const part of parts) await writer.write(part);
}

/** `parts` as one array: the only part itself, else a new array. */
function join(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}
