/**
 * Exponential backoff with full jitter, for reconnecting without a thundering herd: the client
 * core's one policy (base 500 ms, cap 10 s), re-exported here for the library's users.
 *
 * @module
 */

export { BACKOFF_DEFAULTS, backoffDelay } from "./core/backoff.ts";
export type { BackoffOptions } from "./core/backoff.ts";
