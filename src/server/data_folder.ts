/**
 * The data folder at start: made if missing, checked (a folder, writable, its database
 * writable and readable as SQLite), and locked so that a second server on it is refused.
 *
 * The lock is the operating system's (`Deno.FsFile.tryLock`, non-blocking, exclusive) on
 * `parley.lock` in the folder: the kernel releases it when the process ends, however it ends, so
 * a crashed server leaves no stale lock to clean up. The file holds the pid of the server that
 * holds the lock, for the message the second one prints; it is left in place at shutdown
 * (removing it would let a third server lock a new file while a second still holds the old one).
 *
 * @module
 */

/** A reason the server cannot start, worded for the operator (printed after `cannot start:`). */
export class StartError extends Error {
  /** @param message what is wrong and what to do */
  constructor(message: string) {
    super(message);
    this.name = "StartError";
  }
}

/** The data folder, locked for this process until {@linkcode DataFolder.release}. */
export interface DataFolder {
  /** The database's path inside it. */
  db: string;
  /** Unlocks the folder. Safe to call more than once. */
  release(): void;
}

/** The lock file's name inside the data folder. */
export const LOCK_FILE = "parley.lock";

const WRITABLE = "make it writable by the user running parley, or choose another folder with " +
  "--data";

/**
 * Makes `dir` (mode 0700) if needed, checks it, and locks it.
 *
 * @throws {StartError} when it is not a folder, is not writable, is locked by another server,
 * or its database is read-only
 * @throws {Deno.errors.NotCapable} when this run may not read or write it
 */
export async function claimDataFolder(dir: string): Promise<DataFolder> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new StartError(
        `${dir} is a file, not a folder: --data names the folder parley.db is in`,
      );
    }
    throw new StartError(`cannot create the data folder ${dir} (${reason(error)}): ${WRITABLE}`);
  }
  const info = await Deno.stat(dir);
  if (!info.isDirectory) {
    throw new StartError(`${dir} is not a folder: --data names the folder parley.db is in`);
  }
  try {
    await Deno.remove(await Deno.makeTempFile({ dir, prefix: ".write-test-" }));
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StartError(`the data folder ${dir} is read-only (${reason(error)}): ${WRITABLE}`);
  }
  const lock = await Deno.open(`${dir}/${LOCK_FILE}`, { read: true, write: true, create: true });
  if (!await lock.tryLock(true)) {
    lock.close();
    const pid = (await Deno.readTextFile(`${dir}/${LOCK_FILE}`).catch(() => "")).trim();
    throw new StartError(
      `${dir} is in use by another parley server${/^\d+$/.test(pid) ? ` (pid ${pid})` : ""}`,
    );
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      lock.unlockSync();
    } finally {
      lock.close();
    }
  };
  try {
    await lock.truncate(0);
    await lock.write(new TextEncoder().encode(`${Deno.pid}\n`));
    const db = `${dir}/parley.db`;
    try {
      (await Deno.open(db, { read: true, write: true })).close();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        if (error instanceof Deno.errors.NotCapable) throw error;
        throw new StartError(`the database ${db} is read-only (${reason(error)}): ${WRITABLE}`);
      }
    }
    return { db, release };
  } catch (error) {
    release();
    throw error;
  }
}

/**
 * The start error for a database SQLite cannot open or read.
 *
 * @param db the database's path
 * @param error what opening it threw
 */
export function databaseError(db: string, error: unknown): Error {
  if (error instanceof Deno.errors.NotCapable) return error;
  const why = reason(error);
  if (/not a database|malformed|corrupt/i.test(why)) {
    return new StartError(
      `${db} is not a readable parley database (${why}): restore it from a backup, or move it ` +
        "away to start with an empty one",
    );
  }
  if (/readonly|read-only/i.test(why)) {
    return new StartError(`the database ${db} is read-only (${why}): ${WRITABLE}`);
  }
  return new StartError(`cannot open the database ${db}: ${why}`);
}

/** An error's message, without the trailing period. */
function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, "");
}
