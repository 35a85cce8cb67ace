/**
 * Password hashing with Argon2id through WebCrypto, stored as PHC strings
 * (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so parameters can be raised later and old
 * hashes upgraded at the next login.
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import { utf8Length } from "../protocol/unicode.ts";

/** Argon2id cost parameters. */
export interface Argon2Params {
  /** Memory in KiB. */
  memory: number;
  /** Passes over memory. */
  passes: number;
  /** Lanes. */
  parallelism: number;
}

/** OWASP's recommendation: 19 MiB, 2 passes, 1 lane. */
export const DEFAULT_PARAMS: Readonly<Argon2Params> = { memory: 19456, passes: 2, parallelism: 1 };

const encoder = new TextEncoder();
const HASH_BYTES = 32;
const SALT_BYTES = 16;

/** Shortest and longest password accepted, in characters and UTF-8 bytes. */
export const PASSWORD_MIN = 8;
/** The longest password accepted, in UTF-8 bytes (bounds hashing work). */
export const PASSWORD_MAX_BYTES = 1024;

/** Derives `bytes` bytes of Argon2id from a password and a salt. */
export type Derive = (
  password: string,
  salt: Uint8Array,
  params: Argon2Params,
  bytes: number,
) => Promise<Uint8Array>;

/** Derives on this thread's WebCrypto (which runs it on a blocking thread at normal priority). */
export const deriveHere: Derive = async (password, salt, params, bytes) => {
  const key = await crypto.subtle.importKey(
    "raw-secret",
    encoder.encode(password),
    "Argon2id",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "Argon2id", nonce: salt, ...params } as unknown as AlgorithmIdentifier,
    key,
    bytes * 8,
  );
  return new Uint8Array(bits);
};

function b64(bytes: Uint8Array): string {
  return bytes.toBase64({ omitPadding: true });
}

function unb64(text: string): Uint8Array {
  return Uint8Array.fromBase64(text);
}

/** A parsed PHC string. */
interface Phc {
  params: Argon2Params;
  salt: Uint8Array;
  hash: Uint8Array;
}

const PHC_RE = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

function parsePhc(phc: string): Phc | undefined {
  const m = PHC_RE.exec(phc);
  if (!m) return undefined;
  return {
    params: { memory: Number(m[1]), passes: Number(m[2]), parallelism: Number(m[3]) },
    salt: unb64(m[4]!),
    hash: unb64(m[5]!),
  };
}

/**
 * Hashes a password with a fresh random salt.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashPassword, verifyPassword } from "./password.ts";
 * const phc = await hashPassword("correct horse");
 * assert.ok(phc.startsWith("$argon2id$v=19$m=19456,t=2,p=1$"));
 * assert.ok((await verifyPassword(phc, "correct horse")).ok);
 * ```
 */
export async function hashPassword(
  password: string,
  params: Argon2Params = DEFAULT_PARAMS,
  derive: Derive = deriveHere,
): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, params, HASH_BYTES);
  const { memory: m, passes: t, parallelism: p } = params;
  return `$argon2id$v=19$m=${m},t=${t},p=${p}$${b64(salt)}$${b64(hash)}`;
}

/**
 * What a missing account is checked against: random bytes under `params`, the parameters an
 * account hashed now would have, so the check costs what checking such an account costs.
 */
function dummyPhc(params: Argon2Params): Phc {
  return {
    params,
    salt: crypto.getRandomValues(new Uint8Array(SALT_BYTES)),
    hash: crypto.getRandomValues(new Uint8Array(HASH_BYTES)),
  };
}

/**
 * Checks a password against a PHC string in constant time. With `phc` undefined (no such
 * account) it still does the work of one check under `params`, so timing does not tell
 * whether the name exists.
 *
 * @returns `ok`, and `rehash` when the stored parameters are weaker than `params`
 */
export async function verifyPassword(
  phc: string | undefined,
  password: string,
  params: Argon2Params = DEFAULT_PARAMS,
  derive: Derive = deriveHere,
): Promise<{ ok: boolean; rehash: boolean }> {
  const parsed = phc === undefined ? dummyPhc(params) : parsePhc(phc);
  if (parsed === undefined) return { ok: false, rehash: false };
  const actual = await derive(password, parsed.salt, parsed.params, HASH_BYTES);
  const ok = phc !== undefined && actual.length === parsed.hash.length &&
    timingSafeEqual(actual, parsed.hash);
  const p = parsed.params;
  const rehash = ok &&
    (p.memory < params.memory || p.passes < params.passes || p.parallelism < params.parallelism);
  return { ok, rehash };
}

/**
 * Checks a new password's length.
 *
 * @returns a sentence saying what is wrong, or undefined when it is acceptable
 */
export function passwordProblem(password: string): string | undefined {
  if ([...password].length < PASSWORD_MIN) {
    return `Password too short: use at least ${PASSWORD_MIN} characters`;
  }
  if (utf8Length(password) > PASSWORD_MAX_BYTES) {
    return `Password too long: use at most ${PASSWORD_MAX_BYTES} bytes`;
  }
  return undefined;
}
