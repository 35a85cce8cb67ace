/**
 * The errors both parley clients (the terminal/library {@linkcode ChatClient} and the web app)
 * report for requests and connections, shared so that callers switch on one set of classes:
 *
 * - {@linkcode ServerError}: the server answered with an `error` frame (`code`, `retryAfter`);
 * - {@linkcode ConnectionClosedError}: the connection ended (or was never up) before the reply;
 * - {@linkcode RequestTimeoutError}: no reply came in time (a kind of connection loss: the
 *   connection is dropped, since the server answers every request);
 * - {@linkcode ProtocolError}: the server sent something that is not protocol v1;
 * - {@linkcode SessionRefusedError}: the server turned the connection away before a session.
 *
 * Platform-neutral: no Deno or DOM APIs.
 *
 * @module
 */

import { ChatError } from "../../protocol/errors.ts";
import type { ErrorCode } from "../../protocol/errors.ts";

/**
 * The server refused a request: it answered with an `error` frame. `code` is the protocol's
 * stable error code; the message is the server's sentence for humans.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerError } from "./errors.ts";
 * const err = new ServerError("rate_limited", "Slow down", 3);
 * assert.equal(err.code, "rate_limited");
 * assert.equal(err.retryAfter, 3);
 * ```
 */
export class ServerError extends ChatError {
  /**
   * @param code the server's error code
   * @param message the server's message
   * @param retryAfter seconds to wait, when given
   * @param need `serverPassword` when the server wants its password in `hello`
   */
  constructor(code: ErrorCode, message: string, retryAfter?: number, need?: "serverPassword") {
    super(code, message, retryAfter, need);
    this.name = "ServerError";
  }
}

/**
 * A request could not complete because the connection was closed (dropped, quit, disposed or
 * aborted), is being re-established, or was never open. The request may or may not have
 * reached the server.
 */
export class ConnectionClosedError extends Error {
  /**
   * @param message what happened
   * @param options the underlying cause, if any
   */
  constructor(message = "Cannot complete the request: the connection is closed", options?: {
    cause?: unknown;
  }) {
    super(message, options);
    this.name = "ConnectionClosedError";
  }
}

/**
 * No reply came within the request's timeout. The server answers every request, so the
 * connection is taken for dead and dropped (and re-established when reconnecting is on); like
 * any {@linkcode ConnectionClosedError}, the request may or may not have been carried out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConnectionClosedError, RequestTimeoutError } from "./errors.ts";
 * const err = new RequestTimeoutError(20_000);
 * assert.ok(err instanceof ConnectionClosedError);
 * assert.equal(err.timeoutMs, 20_000);
 * ```
 */
export class RequestTimeoutError extends ConnectionClosedError {
  /** How long the request waited, in ms. */
  readonly timeoutMs: number;

  /** @param timeoutMs how long the request waited */
  constructor(timeoutMs: number) {
    super(`No reply from the server within ${timeoutMs} ms`);
    this.name = "RequestTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The server refused the connection before a session started (it sent a `! …` line instead of
 * the banner, e.g. too many connections). The message is the server's sentence.
 */
export class SessionRefusedError extends Error {
  /** @param message the server's reason, without the leading `!` */
  constructor(message: string) {
    super(message);
    this.name = "SessionRefusedError";
  }
}

/**
 * The server sent something that is not protocol v1 (an unreadable line, or not JSON): the
 * connection is dropped, and re-established when reconnecting is on.
 */
export class ProtocolError extends Error {
  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** A short description of any thrown value. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
