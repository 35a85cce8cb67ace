/**
 * Stable error codes of the wire protocol (docs/protocol.md, "Errors").
 *
 * @module
 */

/** Every error code the server sends. Clients may switch on these; they never change meaning. */
export const ERROR_CODES = [
  "bad_frame",
  "unknown_type",
  "unknown_command",
  "bad_utf8",
  "line_too_long",
  "text_too_long",
  "invalid_name",
  "invalid_room",
  "name_taken",
  "no_such_user",
  "no_such_room",
  "no_such_file",
  "no_such_message",
  "not_in_room",
  "no_current_room",
  "auth_failed",
  "login_required",
  "forbidden",
  "registration_closed",
  "weak_password",
  "busy",
  "rate_limited",
  "too_many_connections",
  "timeout",
  "slow_consumer",
  "internal",
  "voice_full",
] as const;

/** One of {@linkcode ERROR_CODES}. */
export type ErrorCode = typeof ERROR_CODES[number];

/**
 * A refusal the client caused: it becomes an `error` frame (JSON mode) or a `! …` line (text
 * mode). The message is one sentence a human can act on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChatError } from "./errors.ts";
 * const err = new ChatError("no_such_room", "Cannot send: #nowhere does not exist");
 * assert.equal(err.code, "no_such_room");
 * ```
 */
export class ChatError extends Error {
  /** The stable error code. */
  readonly code: ErrorCode;
  /** For `rate_limited` and `busy`: seconds after which a retry may succeed. */
  readonly retryAfter: number | undefined;
  /**
   * For `auth_failed` refusing a connection that did not give the server's password
   * (`--server-password`): `serverPassword`, so that a client can ask for it.
   */
  readonly need: "serverPassword" | undefined;

  /**
   * @param code the stable error code
   * @param message one human-readable sentence
   * @param retryAfter seconds after which a retry may succeed
   * @param need what the client must give first (the server's password)
   */
  constructor(code: ErrorCode, message: string, retryAfter?: number, need?: "serverPassword") {
    super(message);
    this.name = "ChatError";
    this.code = code;
    this.retryAfter = retryAfter;
    this.need = need;
  }
}
