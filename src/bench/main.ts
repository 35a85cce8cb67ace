/**
 * Runs `parley bench` on its own: `deno run -A src/bench/main.ts --help`.
 *
 * @module
 */

import { benchMain } from "./cli.ts";

if (import.meta.main) Deno.exit(await benchMain(Deno.args));
