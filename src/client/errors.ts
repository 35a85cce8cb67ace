/**
 * The errors a {@linkcode ChatClient} user is meant to catch: the client core's (shared with
 * the web app: `ServerError`, `ConnectionClosedError`, `RequestTimeoutError`, `ProtocolError`,
 * `SessionRefusedError`) and the terminal side's own (TLS verification, file transfer).
 *
 * @module
 */

export {
  ConnectionClosedError,
  ProtocolError,
  RequestTimeoutError,
  ServerError,
  SessionRefusedError,
} from "./core/errors.ts";

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
