/**
 * RFC 6455 WebSocket frames: the encoder, and an incremental decoder that enforces the
 * protocol's rules and a message size limit while the bytes arrive (nothing past the limit is
 * ever kept). Pure code, no Deno APIs, so it can be unit-tested and fuzzed on its own.
 *
 * @module
 */

/** Frame opcodes. */
export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Close codes parley sends. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidData: 1007,
  policy: 1008,
  tooBig: 1009,
} as const;

/** The longest control frame payload. */
export const MAX_CONTROL = 125;

/** What {@linkcode FrameDecoder.push} yields. */
export type FrameEvent =
  /** A whole message, decoded as UTF-8; `text` is undefined for a binary one that is not UTF-8. */
  | { readonly type: "message"; readonly binary: boolean; readonly text: string | undefined }
  | { readonly type: "ping"; readonly payload: Uint8Array }
  | { readonly type: "pong"; readonly payload: Uint8Array }
  /** The peer's close frame; `code` is undefined when it carried none. */
  | { readonly type: "close"; readonly code: number | undefined; readonly reason: string }
  /** The peer broke the protocol or a limit: close with `code`. Nothing follows. */
  | { readonly type: "error"; readonly code: number; readonly reason: string };

/** Options for {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** The largest message (the sum of its fragments' payloads) accepted, in bytes. */
  maxMessage: number;
  /** Whether frames must be masked (a server decoding a client) or must not be (a client). */
  masked: boolean;
}

const HEADER = 0;
const PAYLOAD = 1;
const DONE = 2;
/** Decoded pieces of a message kept before they are joined. */
const MAX_PIECES = 256;
/** Shared for messages that arrive whole in one chunk (decoded without streaming). */
const DECODER = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes frames from a byte stream. Text messages are decoded (and validated) as their bytes
 * arrive, so a message is held as text, never as bytes; a frame whose length would take the
 * message past `maxMessage` is refused from its header. Control frames may arrive between
 * fragments. After a `close` or an `error` event the decoder ignores everything.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFrame, FrameDecoder, Opcode } from "./websocket_frames.ts";
 * const decoder = new FrameDecoder({ maxMessage: 1024, masked: true });
 * const mask = new Uint8Array([1, 2, 3, 4]);
 * const frame = encodeFrame(Opcode.text, new TextEncoder().encode("hi"), { mask });
 * assert.deepEqual([...decoder.push(frame)], [{ type: "message", binary: false, text: "hi" }]);
 * ```
 */
export class FrameDecoder {
  readonly #maxMessage: number;
  readonly #masked: boolean;
  #state = HEADER;
  readonly #head = new Uint8Array(14);
  #headLength = 0;
  #fin = false;
  #opcode = 0;
  #remaining = 0;
  readonly #mask = new Uint8Array(4);
  #maskAt = 0;
  readonly #control = new Uint8Array(MAX_CONTROL);
  #controlLength = 0;
  /** The opcode of the message being assembled, or 0 between messages. */
  #message = 0;
  #messageSize = 0;
  #decoder: TextDecoder | undefined;
  #pieces: string[] = [];
  #badUtf8 = false;

  /** @param options the message limit and which side's frames are decoded */
  constructor(options: FrameDecoderOptions) {
    if (!(options.maxMessage >= 0)) {
      throw new RangeError("Cannot decode frames: maxMessage must be >= 0");
    }
    this.#maxMessage = options.maxMessage;
    this.#masked = options.masked;
  }

  /** Whether the decoder stopped (after a close or an error event). */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Feeds bytes; yields the events they complete. Unmasks `chunk` in place: the caller must not
   * need its bytes afterwards.
   *
   * @param chunk the next bytes of the stream
   */
  *push(chunk: Uint8Array): Generator<FrameEvent> {
    let at = 0;
    while (at < chunk.length && this.#state !== DONE) {
      if (this.#state === HEADER) {
        at = this.#readHeader(chunk, at);
        if (this.#state === HEADER) continue; // incomplete header: chunk used up
        const error = this.#checkHeader();
        if (error !== undefined) {
          yield this.#fail(error[0], error[1]);
          return;
        }
        if (this.#remaining > 0) continue;
      } else {
        const n = Math.min(this.#remaining, chunk.length - at);
        const part = chunk.subarray(at, at + n);
        at += n;
        this.#remaining -= n;
        this.#unmask(part);
        if (this.#opcode >= 0x8) {
          this.#control.set(part, this.#controlLength);
          this.#controlLength += n;
        } else {
          const error = this.#take(part);
          if (error !== undefined) {
            yield this.#fail(CloseCode.invalidData, error);
            return;
          }
        }
        if (this.#remaining > 0) continue;
      }
      const event = this.#endFrame();
      if (event !== undefined) yield event;
    }
  }

  /** Copies header bytes; once complete, parses it and switches to the payload. */
  #readHeader(chunk: Uint8Array, at: number): number {
    const head = this.#head;
    while (at < chunk.length) {
      head[this.#headLength++] = chunk[at++]!;
      if (this.#headLength < 2) continue;
      const len7 = head[1]! & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (head[1]! & 0x80 ? 4 : 0);
      if (this.#headLength === need) {
        this.#state = PAYLOAD;
        return at;
      }
    }
    return at;
  }

  /** Validates a complete header; returns the close code and reason for a bad one. */
  #checkHeader(): [number, string] | undefined {
    const head = this.#head;
    const b0 = head[0]!;
    const b1 = head[1]!;
    this.#headLength = 0;
    this.#fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    this.#opcode = opcode;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    if (b0 & 0x70) return [CloseCode.protocolError, "reserved bits set"];
    if ((opcode > 0x2 && opcode < 0x8) || opcode > 0xa) {
      return [CloseCode.protocolError, "unknown opcode"];
    }
    if (masked !== this.#masked) {
      return [CloseCode.protocolError, masked ? "masked frame" : "unmasked frame"];
    }
    let length = len7;
    let at = 2;
    if (len7 === 126) {
      length = (head[2]! << 8) | head[3]!;
      if (length < 126) return [CloseCode.protocolError, "length not minimally encoded"];
      at = 4;
    } else if (len7 === 127) {
      const high = ((head[2]! << 24) | (head[3]! << 16) | (head[4]! << 8) | head[5]!) >>> 0;
      const low = ((head[6]! << 24) | (head[7]! << 16) | (head[8]! << 8) | head[9]!) >>> 0;
      if (high & 0x80000000) return [CloseCode.protocolError, "length has its top bit set"];
      length = high * 2 ** 32 + low;
      if (length < 0x10000) return [CloseCode.protocolError, "length not minimally encoded"];
      at = 10;
    }
    if (masked) {
      this.#mask.set(head.subarray(at, at + 4));
      this.#maskAt = 0;
    }
    this.#remaining = length;
    if (opcode >= 0x8) {
      if (!this.#fin) return [CloseCode.protocolError, "fragmented control frame"];
      if (length > MAX_CONTROL) return [CloseCode.protocolError, "control frame too long"];
      this.#controlLength = 0;
      return undefined;
    }
    if (opcode === Opcode.continuation) {
      if (this.#message === 0) return [CloseCode.protocolError, "continuation of no message"];
    } else if (this.#message !== 0) {
      return [CloseCode.protocolError, "new message inside a fragmented one"];
    } else {
      this.#message = opcode;
      this.#messageSize = 0;
      // A message whole in one frame whose payload arrives in one chunk is decoded in one go.
      this.#decoder = undefined;
    }
    if (length > this.#maxMessage - this.#messageSize) {
      return [CloseCode.tooBig, "message too big"];
    }
    this.#messageSize += length;
    return undefined;
  }

  #unmask(part: Uint8Array): void {
    if (!this.#masked) return;
    const mask = this.#mask;
    let m = this.#maskAt;
    for (let i = 0; i < part.length; i++) {
      part[i]! ^= mask[m]!;
      m = (m + 1) & 3;
    }
    this.#maskAt = m;
  }

  /** Decodes a piece of a data frame's payload; returns why it is invalid text, if it is. */
  #take(part: Uint8Array): string | undefined {
    if (this.#badUtf8) return undefined;
    const whole = this.#fin && this.#remaining === 0 && this.#pieces.length === 0 &&
      this.#decoder === undefined;
    try {
      let piece: string;
      if (whole) piece = DECODER.decode(part);
      else {
        this.#decoder ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
        piece = this.#decoder.decode(part, { stream: true });
      }
      if (piece !== "") this.#pieces.push(piece);
      // Tiny fragments must not cost an object each: join them now and then.
      if (this.#pieces.length >= MAX_PIECES) this.#pieces = [this.#pieces.join("")];
    } catch {
      if (this.#message === Opcode.text) return "invalid UTF-8";
      this.#badUtf8 = true;
      this.#pieces = [];
    }
    return undefined;
  }

  #endFrame(): FrameEvent | undefined {
    this.#state = HEADER;
    const opcode = this.#opcode;
    if (opcode >= 0x8) {
      const payload = this.#control.slice(0, this.#controlLength);
      if (opcode === Opcode.ping) return { type: "ping", payload };
      if (opcode === Opcode.pong) return { type: "pong", payload };
      return this.#closeEvent(payload);
    }
    if (!this.#fin) return undefined;
    if (this.#decoder !== undefined && !this.#badUtf8) {
      try {
        this.#pieces.push(this.#decoder.decode());
      } catch {
        if (this.#message === Opcode.text) {
          return this.#fail(CloseCode.invalidData, "invalid UTF-8");
        }
        this.#badUtf8 = true;
      }
    }
    const binary = this.#message === Opcode.binary;
    const text = this.#badUtf8 ? undefined : this.#pieces.join("");
    this.#message = 0;
    this.#messageSize = 0;
    this.#decoder = undefined;
    this.#pieces = [];
    this.#badUtf8 = false;
    return { type: "message", binary, text };
  }

  #closeEvent(payload: Uint8Array): FrameEvent {
    if (payload.length === 0) {
      this.#state = DONE;
      return { type: "close", code: undefined, reason: "" };
    }
    if (payload.length === 1) return this.#fail(CloseCode.protocolError, "close frame of 1 byte");
    const code = (payload[0]! << 8) | payload[1]!;
    if (!validCloseCode(code)) return this.#fail(CloseCode.protocolError, "invalid close code");
    let reason: string;
    try {
      reason = DECODER.decode(payload.subarray(2));
    } catch {
      return this.#fail(CloseCode.invalidData, "invalid UTF-8 in the close reason");
    }
    this.#state = DONE;
    return { type: "close", code, reason };
  }

  #fail(code: number, reason: string): FrameEvent {
    this.#state = DONE;
    this.#pieces = [];
    this.#decoder = undefined;
    return { type: "error", code, reason };
  }
}

/**
 * Whether a peer may send `code` in a close frame (RFC 6455 §7.4, and the IANA registry).
 *
 * @param code the close code received
 * @returns whether it is allowed on the wire
 */
export function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** Options for {@linkcode encodeFrame} and {@linkcode writeFrameHeader}. */
export interface FrameOptions {
  /** Whether this is the message's last frame (default true). */
  fin?: boolean;
  /** The masking key (4 bytes): clients mask, servers must not. */
  mask?: Uint8Array;
}

/**
 * The size of a frame header.
 *
 * @param length the payload length
 * @param masked whether the frame carries a masking key
 * @returns the header's byte count
 */
export function frameHeaderLength(length: number, masked = false): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes a frame header into `target` at `offset`.
 *
 * @param target where to write
 * @param offset where the header starts
 * @param opcode the frame's opcode
 * @param length the payload length
 * @param options `fin` and `mask`
 * @returns the offset just past the header
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  length: number,
  options: FrameOptions = {},
): number {
  const { fin = true, mask } = options;
  target[offset++] = (fin ? 0x80 : 0) | opcode;
  const maskBit = mask === undefined ? 0 : 0x80;
  if (length < 126) target[offset++] = maskBit | length;
  else if (length < 0x10000) {
    target[offset++] = maskBit | 126;
    target[offset++] = length >>> 8;
    target[offset++] = length & 0xff;
  } else {
    target[offset++] = maskBit | 127;
    const high = Math.floor(length / 2 ** 32);
    for (const word of [high, length >>> 0]) {
      target[offset++] = word >>> 24;
      target[offset++] = (word >>> 16) & 0xff;
      target[offset++] = (word >>> 8) & 0xff;
      target[offset++] = word & 0xff;
    }
  }
  if (mask !== undefined) {
    target.set(mask.subarray(0, 4), offset);
    offset += 4;
  }
  return offset;
}

/**
 * Encodes one frame.
 *
 * @param opcode the frame's opcode
 * @param payload its payload (copied, and masked in the copy when `options.mask` is given)
 * @param options `fin` and `mask`
 * @returns the frame's bytes
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: FrameOptions = {},
): Uint8Array {
  const frame = new Uint8Array(
    frameHeaderLength(payload.length, options.mask !== undefined) +
      payload.length,
  );
  const at = writeFrameHeader(frame, 0, opcode, payload.length, options);
  frame.set(payload, at);
  const mask = options.mask;
  if (mask !== undefined) {
    for (let i = 0; i < payload.length; i++) frame[at + i]! ^= mask[i & 3]!;
  }
  return frame;
}

/**
 * Encodes a close frame.
 *
 * @param code the close code, or undefined for none
 * @param reason a short reason (cut to fit the 125-byte control payload)
 * @param options `mask`, for a client
 * @returns the frame's bytes
 */
export function encodeClose(
  code: number | undefined,
  reason = "",
  options: FrameOptions = {},
): Uint8Array {
  if (code === undefined) return encodeFrame(Opcode.close, new Uint8Array(0), options);
  const text = new TextEncoder().encode(reason);
  let end = Math.min(text.length, MAX_CONTROL - 2);
  while (end > 0 && end < text.length && (text[end]! & 0xc0) === 0x80) end--;
  const payload = new Uint8Array(2 + end);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text.subarray(0, end), 2);
  return encodeFrame(Opcode.close, payload, options);
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Whether `key` is a valid `Sec-WebSocket-Key`: 16 bytes in base64.
 *
 * @param key the header's value
 * @returns whether it is well formed
 */
export function validWebSocketKey(key: string): boolean {
  return /^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key);
}

/**
 * The `Sec-WebSocket-Accept` value answering `key`.
 *
 * @param key the client's `Sec-WebSocket-Key`
 * @returns base64(SHA-1(key + the RFC 6455 GUID))
 */
export async function webSocketAccept(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + GUID));
  return new Uint8Array(digest).toBase64();
}
