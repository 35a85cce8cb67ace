/**
 * The errors a {@linkcode ChatClient} user is meant to catch.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import type { ErrorCode } from "../protocol/errors.ts";

/**
 * The server refused a request: it answered with an `error` frame. `code` is the protocol's
 * stable error code; the message is the server's sentence for humans.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerError } from "./errors.ts";
 * const err = new ServerError("name_taken", "Cannot rename: the name alice is taken");
 * assert.equal(err.code, "name_taken");
 * ```
 */
export class ServerError extends ChatError {
  /**
   * @param code the server's error code
   * @param message the server's message
   * @param retryAfter seconds to wait, when given
   */
  constructor(code: ErrorCode, message: string, retryAfter?: number) {
    super(code, message, retryAfter);
    this.name = "ServerError";
  }
}

/**
 * A request could not complete because the connection was closed (dropped, quit, disposed or
 * aborted) or is being re-established. The request may or may not have reached the server.
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

/** What was wrong with a server's TLS certificate. */
export type TlsProblem = "unknown_issuer" | "wrong_host" | "expired" | "not_yet_valid" | "other";

/**
 * The server's TLS certificate did not verify, so the client did not connect. `problem` says
 * which check failed; the message is one sentence for humans, and `cause` is the TLS stack's
 * own error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TlsVerificationError } from "./errors.ts";
 * const err = new TlsVerificationError("expired", "the server's certificate has expired");
 * assert.equal(err.problem, "expired");
 * ```
 */
export class TlsVerificationError extends Error {
  /** Which check failed: an unknown CA, the host name, the validity period, or another. */
  readonly problem: TlsProblem;

  /**
   * @param problem which check failed
   * @param message what was wrong, in one sentence
   * @param options the underlying TLS error
   */
  constructor(problem: TlsProblem, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TlsVerificationError";
    this.problem = problem;
  }
}

/**
 * A file upload or download failed. For a refusal by the server, `status` is the HTTP status and
 * `code` the `error` of its JSON answer (`login_required`, `auth_failed`, `too_large`,
 * `quota_exceeded`, `rate_limited`, `not_found`, …) and the message is its `message`. The client
 * itself reports `login_required` (no session token: log in first), `unreachable` (the web
 * port cannot be reached: wrong `httpPort`, server down), `hash_mismatch` (the downloaded bytes
 * do not have the expected SHA-256), `incomplete` (the body ended early) and `bad_response` (an
 * answer that is not what the protocol says), without a `status`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileTransferError } from "./errors.ts";
 * const err = new FileTransferError("too_large", "File too large: the limit is 1048576 bytes", {
 *   status: 413,
 * });
 * assert.equal(err.code, "too_large");
 * assert.equal(err.status, 413);
 * ```
 */
export class FileTransferError extends Error {
  /** The server's error code, or the client's own (see the class description). */
  readonly code: string;
  /** The HTTP status of the server's refusal; undefined for the client's own checks. */
  readonly status: number | undefined;
  /** Seconds to wait before retrying, when the server said (`Retry-After`). */
  readonly retryAfter: number | undefined;

  /**
   * @param code the error code
   * @param message what went wrong, in one sentence
   * @param options the HTTP status, `Retry-After` seconds, and the underlying cause
   */
  constructor(
    code: string,
    message: string,
    options: { status?: number; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FileTransferError";
    this.code = code;
    this.status = options.status;
    this.retryAfter = options.retryAfter;
  }
}
