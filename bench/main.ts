/**
 * The benchmark tool, a workspace member of its own, not part of `main.ts` or the compiled binaries: `deno run -A bench/main.ts --help` (or `deno task bench --help`).
 *
 * @module
 */

import { benchMain } from "./cli.ts";

if (import.meta.main) Deno.exit(await benchMain(Deno.args));
