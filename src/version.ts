/**
 * The version of parley, read from deno.json so there is one source of truth.
 *
 * @module
 */

import config from "../deno.json" with { type: "json" };

/** parley's version. */
export const VERSION: string = config.version;
