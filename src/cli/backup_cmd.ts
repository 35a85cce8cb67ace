/**
 * `parley backup`: writes a consistent copy of the data folder's database (SQLite's online backup
 * API, in one step), safe while a server uses it: the copy holds every commit made before the
 * backup started and nothing half-written. The copy is one self-contained file; uploaded files' bytes
 * (the data folder's `files/`) are not in it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_CONFIG } from "../server/config.ts";
import { openSqliteStore } from "../store/worker_store.ts";
import { UsageError } from "./args.ts";

/** `backup --help`. */
export const BACKUP_USAGE = `Usage: parley backup --out FILE [options]

Writes a consistent copy of the data folder's database to FILE, safe while the server runs (it
waits for no one, and the server goes on serving). FILE must not exist yet. Restore by stopping
the server and putting the copy in place of DIR/parley.db (removing parley.db-wal and
parley.db-shm). Uploaded files' bytes (DIR/files/) are not in the copy: copy that folder too.

'deno task backup' may write anywhere under the current folder and read only ./parley-data.

Options:
  --out FILE    where to write the copy (required)
  --data DIR    the data folder (default ${DEFAULT_CONFIG.data})
  -h, --help    show this help`;

/** Runs `parley backup`; resolves to the exit code. */
export async function backupMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      data: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(BACKUP_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`Unexpected argument: ${positionals[0]}`);
  const out = values.out;
  if (out === undefined || out === "") throw new UsageError("Missing --out FILE");
  const data = values.data ?? DEFAULT_CONFIG.data;
  const db = `${data}/parley.db`;
  const fail = (message: string) => {
    console.error(`parley backup: ${message}`);
    return 1;
  };
  try {
    if (!(await Deno.stat(db)).isFile) return fail(`${db} is not a file`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return fail(`no database in ${data} (${db})`);
    if (error instanceof Deno.errors.NotCapable) {
      return fail(`no permission to read ${db}: ${error.message}`);
    }
    throw error;
  }
  const started = performance.now();
  try {
    await using store = await openSqliteStore(db);
    // The store creates `out` (mode 0600) and refuses an existing file.
    await store.moderation.backup(out);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      return fail(`${out} already exists; choose a new file name`);
    }
    if (error instanceof Deno.errors.NotCapable) {
      return fail(
        `no permission: ${error.message} (under 'deno task backup', --out must be inside the ` +
          `current folder)`,
      );
    }
    if (error instanceof Deno.errors.NotFound) return fail(`cannot create ${out}: no such folder`);
    return fail(`the copy failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const ms = Math.round(performance.now() - started);
  // The task may write the copy without being allowed to read it back: the size is optional.
  const size = await Deno.stat(out).then((info) => `${info.size} bytes, `, () => "");
  console.log(`backed up ${db} to ${out} (${size}${ms} ms)`);
  return 0;
}
