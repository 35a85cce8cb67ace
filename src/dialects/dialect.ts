/**
 * A dialect is one wire format: it reads a client's lines into typed requests, and renders
 * typed results, errors and events into bytes. Sessions, commands and the hub never format
 * anything themselves; an event is encoded once per dialect however many sessions receive it
 * (see {@linkcode Outgoing}).
 *
 * To add one (IRC, say): implement this interface in `src/dialects/`, pick it in the session
 * from the connection's first line (`src/session/session.ts` `#start`), and give
 * `Outgoing.bytes` nothing new: it asks the dialect.
 *
 * @module
 */

import type { ChatError } from "../protocol/errors.ts";
import type { MessageFrame, ServerFrame } from "../protocol/frames.ts";
import type { EventEncoder } from "../protocol/outgoing.ts";
import type { Request, Result } from "../protocol/requests.ts";
import type { ReplayItem } from "../protocol/requests.ts";

/**
 * A line read by a dialect: a request, an error to answer, or nothing to do; and, for a
 * dialect with a state of its own (IRC), several requests run one after the other, or an answer
 * the dialect makes itself (in order with the replies to requests). `opens` marks the request
 * after which a dialect that {@linkcode Dialect.registers} arrives; `close` ends the session
 * once the answer is written.
 */
export type Parsed =
  | { request: Request; ref: string | undefined; opens?: boolean }
  | { error: ChatError; ref: string | undefined }
  | { requests: { request: Request; ref: string | undefined }[] }
  | { local: Uint8Array | null | Promise<Uint8Array | null>; close?: boolean }
  | undefined;

/** What a dialect needs to know of the session to read and word things. */
export interface SessionView {
  /** The session's name now. */
  name: string;
  /** Its current room (text mode sends plain lines there). */
  current: string | undefined;
  /** Whether it is online (with `--require-login`, not before logging in). */
  online: boolean;
}

/** How the session began, for a dialect that greets (text mode does, JSON does not). */
export type Start = { kind: "guest"; name: string; room: string } | { kind: "login_required" };

/** One wire format. */
export interface Dialect {
  /** Its name (for logs, and the text/JSON choice of the replay pager). */
  readonly name: "text" | "json" | "irc";
  /**
   * What events are encoded (and cached, once per fan-out) with, when not the dialect itself:
   * a stateful dialect (one per IRC session) shares one encoder per variant.
   */
  readonly events?: EventEncoder;
  /**
   * Whether the session arrives only at an `opens` request (IRC registration) rather than at
   * its first line.
   */
  readonly registers?: boolean;
  /** Whether it keeps an event's bytes itself for now (IRC, before registration ends). */
  hold?(bytes: Uint8Array): boolean;
  /** The line with a file message's download link, signed for the recipient. */
  fileLink?(frame: MessageFrame, url: string): Uint8Array;
  /** Requests (or an answer of its own) to run after a reply was written, if any. */
  followUp?(): Parsed;
  /** Told that the session ended (to forget what it kept for it). */
  ended?(): void;
  /** Reads one line (without its newline). */
  parse(line: string, view: SessionView): Parsed;
  /** The bytes answering a request, or null when nothing is said. */
  result(result: Result, ref: string | undefined, view: SessionView): Uint8Array | null;
  /** The bytes answering a request that failed (or a problem with no request: `ref` unset). */
  error(error: ChatError, ref: string | undefined): Uint8Array;
  /** An event's bytes, or null when this dialect does not show it. Called once per fan-out. */
  event(frame: ServerFrame): Uint8Array | null;
  /** The lines, if any, that greet a session as it starts. */
  start(start: Start): Uint8Array | null;
  /**
   * A server-built reply as units to page: each a line (or a few) that must not be split, and
   * the waiting direct message it delivers, if any.
   */
  replayUnits(
    item: ReplayItem,
    pageBytes: number,
  ): Iterable<{ bytes: Uint8Array; waiting?: number }>;
}

const encoder = new TextEncoder();

/** Encodes lines, each followed by a newline, as one chunk. */
export function encodeLines(lines: readonly string[]): Uint8Array {
  return encoder.encode(lines.length === 0 ? "" : lines.join("\n") + "\n");
}
