/**
 * The server's password (`--server-password`): every client gives it first (IRC `PASS`, JSON
 * `hello`'s `serverPassword`, text mode's `/pass`).
 *
 * @module
 */

import type { Dialect, Parsed } from "../dialects/dialect.ts";
import { ChatError } from "../protocol/errors.ts";

/** What the gate made of a line: it was the password (`accepted`), or the session must end. */
export type GateVerdict = "accepted" | "refused";

/** The line text mode gets once its `/pass` was right. */
export const PASSWORD_ACCEPTED = "* Server password accepted";

/** The error a session gets before it is closed for not giving the server's password. */
export function passwordRequired(): ChatError {
  return new ChatError(
    "auth_failed",
    'This server needs its password first: /pass PASSWORD in text mode, or "serverPassword" in hello',
    undefined,
    "serverPassword",
  );
}

/**
 * A session's gate: shut, on a server with a password, until its first line gives it (text
 * mode: `/pass PASSWORD`; JSON: a `hello` with `serverPassword`). IRC checks `PASS` itself, at
 * registration, so an IRC session's gate is open.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { text } from "../dialects/text.ts";
 * import { ServerPasswordGate } from "./server_password.ts";
 * const gate = new ServerPasswordGate("open sesame");
 * assert.equal(gate.before(text, "hello"), "refused");
 * const again = new ServerPasswordGate("open sesame");
 * assert.equal(again.before(text, "/pass open sesame"), "accepted");
 * assert.equal(again.before(text, "hello"), undefined, "open from then on");
 * assert.equal(new ServerPasswordGate(undefined).before(text, "hello"), undefined);
 * ```
 */
export class ServerPasswordGate {
  readonly #password: string | undefined;
  /** Undefined until the session's dialect is known. */
  #shut: boolean | undefined;

  /** @param password the server's password, if it has one */
  constructor(password: string | undefined) {
    this.#password = password;
    if (password === undefined) this.#shut = false;
  }

  /**
   * Before a line is parsed: undefined when the session goes on with it, else what the line was
   * (text mode's `/pass`, right or wrong; any other line while shut is refused).
   */
  before(dialect: Dialect, line: string): GateVerdict | undefined {
    this.#shut ??= dialect.name !== "irc";
    if (!this.#shut || dialect.name !== "text") return undefined;
    const m = /^\/pass (.*)$/.exec(line);
    if (m === null || !samePassword(m[1], this.#password!)) return "refused";
    this.#shut = false;
    return "accepted";
  }

  /** After a JSON line is parsed: undefined when the session goes on, `refused` otherwise. */
  after(parsed: Parsed): "refused" | undefined {
    if (!this.#shut) return undefined;
    const request = parsed !== undefined && "request" in parsed ? parsed.request : undefined;
    const given = request?.type === "hello" ? request.serverPassword : undefined;
    if (!samePassword(given, this.#password!)) return "refused";
    this.#shut = false;
    return undefined;
  }
}

/**
 * Whether `given` is the server's password, compared in constant time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samePassword } from "./server_password.ts";
 * assert.equal(samePassword("open sesame", "open sesame"), true);
 * assert.equal(samePassword("open", "open sesame"), false);
 * assert.equal(samePassword(undefined, "x"), false);
 * ```
 */
export function samePassword(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]!;
  return diff === 0;
}
