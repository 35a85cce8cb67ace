/**
 * Request bodies: a strict, bounded chunked-coding decoder, and the reader that streams a body
 * (Content-Length or chunked) from the connection as the handler asks for it, so an upload is
 * never held in memory whole.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import { Deadline } from "../transport/byte_conn.ts";
import type { ByteReader } from "../transport/byte_conn.ts";
import { HttpError } from "./http_head.ts";
import type { BodyFraming } from "./http_head.ts";

const CR = 0x0d;
const LF = 0x0a;
/** The longest chunk-size line, extensions included. */
const MAX_SIZE_LINE = 1024;
/** The most trailer bytes (they are read and ignored). */
const MAX_TRAILERS = 8 * 1024;

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const DONE = 4;

/** What {@linkcode ChunkedDecoder.decode} found in its input. */
export interface ChunkedResult {
  /** Chunk data, as views into the input. */
  data: Uint8Array[];
  /** How many input bytes were consumed (all of them, unless `done`). */
  used: number;
  /** Whether the body ended (last chunk and trailers read). */
  done: boolean;
}

/**
 * Decodes the chunked transfer coding (RFC 9112 §7.1) incrementally. Chunk-size lines are hex
 * digits, optionally followed by `;` extensions (ignored), at most 1 KiB; trailers are checked
 * as header fields and ignored, at most 8 KiB; every line ends in CRLF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChunkedDecoder } from "./http_body.ts";
 * const result = new ChunkedDecoder().decode(new TextEncoder().encode("2\r\nhi\r\n0\r\n\r\nX"));
 * assert.equal(result.done, true);
 * assert.equal(result.used, 12); // the "X" after the body is left alone
 * assert.deepEqual(result.data.map((chunk) => new TextDecoder().decode(chunk)), ["hi"]);
 * ```
 */
export class ChunkedDecoder {
  #state = SIZE;
  #line: number[] = [];
  #remaining = 0;
  #trailerBytes = 0;

  /** Whether the body ended. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Decodes the next bytes of the body.
   *
   * @param input the bytes that arrived
   * @returns the data found, the bytes used, and whether the body ended
   * @throws {HttpError} 400 for a malformed or oversized chunk line or trailer
   */
  decode(input: Uint8Array): ChunkedResult {
    const data: Uint8Array[] = [];
    let at = 0;
    while (at < input.length && this.#state !== DONE) {
      if (this.#state === DATA) {
        const n = Math.min(this.#remaining, input.length - at);
        data.push(input.subarray(at, at + n));
        at += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = DATA_END;
        continue;
      }
      const c = input[at++]!;
      if (c !== LF) {
        const limit = this.#state === TRAILERS ? MAX_TRAILERS - this.#trailerBytes : MAX_SIZE_LINE;
        if (this.#line.length >= limit) throw new HttpError(400, "chunk line or trailers too long");
        this.#line.push(c);
        continue;
      }
      const line = this.#line;
      this.#line = [];
      if (line.at(-1) !== CR) throw new HttpError(400, "chunk line does not end in CRLF");
      line.pop();
      this.#endLine(line);
    }
    return { data, used: at, done: this.#state === DONE };
  }

  #endLine(line: number[]): void {
    if (this.#state === DATA_END) {
      if (line.length !== 0) throw new HttpError(400, "chunk data longer than its size");
      this.#state = SIZE;
    } else if (this.#state === SIZE) {
      const size = chunkSize(line);
      if (size === 0) this.#state = TRAILERS;
      else {
        this.#remaining = size;
        this.#state = DATA;
      }
    } else if (line.length === 0) this.#state = DONE;
    else {
      this.#trailerBytes += line.length + 2;
      checkTrailer(line);
    }
  }
}

/** Parses `1*HEXDIG [ *WS ";" ext ]`; the value must fit in 52 bits. */
function chunkSize(line: number[]): number {
  let i = 0;
  let digits = "";
  while (i < line.length && isHex(line[i]!)) digits += String.fromCharCode(line[i++]!);
  if (digits === "") throw new HttpError(400, "malformed chunk size");
  const significant = digits.replace(/^0+/, "");
  if (significant.length > 13) throw new HttpError(400, "chunk size too large");
  if (i < line.length) {
    while (line[i] === 0x20 || line[i] === 0x09) i++;
    if (line[i] !== 0x3b) throw new HttpError(400, "malformed chunk size");
    for (; i < line.length; i++) {
      const c = line[i]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
        throw new HttpError(400, "control character in a chunk extension");
      }
    }
  }
  return significant === "" ? 0 : parseInt(significant, 16);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** A trailer field must look like a header field: `token ":" value` without controls. */
function checkTrailer(line: number[]): void {
  const colon = line.indexOf(0x3a);
  if (colon <= 0) throw new HttpError(400, "malformed trailer");
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    const bad = i < colon
      ? !/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(c))
      : (c < 0x20 && c !== 0x09) || c === 0x7f;
    if (bad) throw new HttpError(400, "malformed trailer");
  }
}

/** Options for {@linkcode BodyReader}. */
export interface BodyReaderOptions {
  /** The longest wait for the next body bytes. */
  stallMs: number;
  /** Called before the handler's first read (sends `100 Continue` when expected). */
  onFirstRead(): Promise<void>;
  /** Called once when the client broke the body's framing (or left, or stalled). */
  onClientError(reason: string): void;
}

/**
 * One request's body, read from the connection on demand. The handler reads it through
 * {@linkcode BodyReader.stream}; after the response, {@linkcode BodyReader.drain} reads what
 * the handler left, within a limit, so the connection can serve the next request.
 */
export class BodyReader {
  readonly #reader: ByteReader;
  readonly #options: BodyReaderOptions;
  readonly #chunked: ChunkedDecoder | undefined;
  #remaining: number;
  #done = false;
  #failed = false;
  #started = false;
  #detached = false;
  #busy: Promise<unknown> = Promise.resolve();

  /**
   * @param reader the connection's reader, positioned at the body
   * @param framing how the body is delimited (not "none")
   * @param options the stall limit and callbacks
   */
  constructor(reader: ByteReader, framing: BodyFraming, options: BodyReaderOptions) {
    this.#reader = reader;
    this.#options = options;
    this.#chunked = framing.kind === "chunked" ? new ChunkedDecoder() : undefined;
    this.#remaining = framing.kind === "length" ? framing.length : 0;
  }

  /** Whether the whole body was read. */
  get done(): boolean {
    return this.#done;
  }

  /** Whether reading the body failed (the connection cannot be reused). */
  get failed(): boolean {
    return this.#failed;
  }

  /** Whether the handler started reading. */
  get started(): boolean {
    return this.#started;
  }

  /** For Content-Length bodies, the bytes not read yet; undefined when chunked. */
  get remaining(): number | undefined {
    return this.#chunked === undefined ? this.#remaining : undefined;
  }

  /** @returns the body as a stream that reads the connection only when pulled */
  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (this.#detached) {
          controller.error(new TypeError("Cannot read the request body: the response was sent"));
          return;
        }
        if (!this.#started) {
          this.#started = true;
          await this.#options.onFirstRead();
        }
        try {
          const chunk = await this.#serialized();
          if (chunk === null) controller.close();
          else controller.enqueue(chunk);
        } catch (error) {
          controller.error(error);
        }
      },
    }, { highWaterMark: 0 });
  }

  /** Stops the handler's access: its further reads fail. */
  detach(): void {
    this.#detached = true;
  }

  /**
   * Stops the handler's access and reads the rest of the body, discarding it.
   *
   * @param maxBytes the most bytes to discard
   * @param ms the most time to spend
   * @returns whether the body ended within the limits (else the connection must close)
   */
  async drain(maxBytes: number, ms: number): Promise<boolean> {
    this.#detached = true;
    if (this.#failed) return false;
    if (this.#remaining > maxBytes) return false;
    const deadline = new Deadline(ms);
    let discarded = 0;
    try {
      while (!this.#done) {
        const chunk = await this.#serialized(deadline.promise);
        if (chunk === null) break;
        discarded += chunk.length;
        if (discarded > maxBytes) return false;
      }
      return this.#done;
    } catch {
      return false;
    } finally {
      deadline.cancel();
    }
  }

  /** One read at a time: a drain waits for the handler's read in flight. */
  #serialized(abort?: Promise<void>): Promise<Uint8Array | null> {
    const result = this.#busy.then(() => this.#read(abort));
    this.#busy = result.catch(() => {});
    return result;
  }

  /** The next body bytes (an owned copy), or null at its end. */
  async #read(abort?: Promise<void>): Promise<Uint8Array | null> {
    if (this.#failed) throw new TypeError("Cannot read the request body: it was cut short");
    while (!this.#done) {
      const stall = new Deadline(this.#options.stallMs);
      let bytes: Uint8Array | null | undefined;
      try {
        bytes = await this.#reader.read(
          abort === undefined ? stall.promise : Promise.race([stall.promise, abort]),
        );
      } finally {
        stall.cancel();
      }
      if (bytes === undefined) {
        if (!stall.expired) throw new TypeError("Cannot read the request body: time is up");
        throw this.#fail(`no body bytes for ${this.#options.stallMs} ms`);
      }
      if (bytes === null) throw this.#fail("the connection closed inside the body");
      const chunk = this.#take(bytes);
      if (chunk !== undefined) return chunk;
    }
    return null;
  }

  /** Takes the body's part of `bytes`, pushing back what follows the body. */
  #take(bytes: Uint8Array): Uint8Array | undefined {
    const chunked = this.#chunked;
    if (chunked === undefined) {
      const n = Math.min(this.#remaining, bytes.length);
      this.#remaining -= n;
      if (this.#remaining === 0) this.#done = true;
      this.#reader.unread(bytes.subarray(n));
      return bytes.slice(0, n);
    }
    let result;
    try {
      result = chunked.decode(bytes);
    } catch (error) {
      throw this.#fail(error instanceof Error ? error.message : String(error));
    }
    if (result.done) {
      this.#done = true;
      this.#reader.unread(bytes.subarray(result.used));
    }
    return result.data.length === 0 ? undefined : concatBytes(result.data);
  }

  #fail(reason: string): TypeError {
    this.#failed = true;
    this.#options.onClientError(`bad request body: ${reason}`);
    return new TypeError(`Cannot read the request body: ${reason}`);
  }
}
