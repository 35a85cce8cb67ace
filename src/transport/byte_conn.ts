/**
 * Raw byte connections and the two helpers every protocol over them needs: a reader whose reads
 * can be abandoned at a deadline (the bytes are kept for the next reader) and can be pushed
 * back, and a writer that serializes writes and gives up on a peer that stops reading.
 *
 * @module
 */

/** A byte stream connection: `Deno.Conn` satisfies it; node sockets through an adapter. */
export interface ByteConn {
  /** Reads into `p`; resolves to the byte count, or null at the end of the stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes from `p`; resolves to the byte count written (maybe fewer than `p.length`). */
  write(p: Uint8Array): Promise<number>;
  /** Half-closes: sends FIN, keeps reading. */
  closeWrite(): Promise<void>;
  /** Closes both directions at once; pending reads and writes fail. */
  close(): void;
}

/** Thrown (rejected) by {@linkcode ByteWriter} once the connection cannot take bytes. */
export class ConnectionGone extends Error {
  /** @param detail why */
  constructor(detail: string) {
    super(`Cannot write: ${detail}`);
    this.name = "ConnectionGone";
  }
}

const ABORTED: unique symbol = Symbol("aborted");
const MIN_READ = 2048;
const MAX_READ = 64 * 1024;

/**
 * Reads a {@linkcode ByteConn}, one read at a time. A read raced against an `abort` promise
 * that wins stays in flight, and its bytes go to the next caller, so a deadline never loses
 * data. The buffer starts small and doubles while reads fill it, up to 64 KiB.
 */
export class ByteReader {
  readonly #conn: ByteConn;
  #buf = new Uint8Array(MIN_READ);
  #pending: Promise<number | null> | undefined;
  #back: Uint8Array | undefined;
  #eof = false;

  /** @param conn the connection to read */
  constructor(conn: ByteConn) {
    this.#conn = conn;
  }

  /** Whether the peer ended the stream (or reading failed). */
  get eof(): boolean {
    return this.#eof && this.#back === undefined;
  }

  /**
   * Returns the next bytes: pushed-back bytes first, then the connection's.
   *
   * @param abort when it settles first, the read is abandoned (and kept for the next call)
   * @returns the bytes (valid until the next call), null at the end of the stream (a failed
   *   read counts as the end), or undefined if `abort` came first
   */
  async read(abort?: Promise<unknown>): Promise<Uint8Array | null | undefined> {
    const back = this.#back;
    if (back !== undefined) {
      this.#back = undefined;
      return back;
    }
    if (this.#eof) return null;
    const buf = this.#buf;
    const pending = this.#pending ??= this.#conn.read(buf).catch(() => null);
    const n = abort === undefined
      ? await pending
      : await Promise.race([pending, abort.then((): typeof ABORTED => ABORTED)]);
    if (n === ABORTED) return undefined;
    this.#pending = undefined;
    if (n === null || n === 0) {
      this.#eof = true;
      return null;
    }
    if (n === buf.length && buf.length < MAX_READ) this.#buf = new Uint8Array(buf.length * 2);
    else if (n < buf.length / 8 && buf.length > MIN_READ) {
      this.#buf = new Uint8Array(buf.length / 2);
    }
    return buf.subarray(0, n);
  }

  /**
   * Pushes bytes back: the next {@linkcode ByteReader.read} returns them (before anything
   * pushed back earlier). They are copied.
   *
   * @param bytes the bytes read too far
   */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const back = this.#back;
    if (back === undefined) {
      this.#back = bytes.slice();
      return;
    }
    const joined = new Uint8Array(bytes.length + back.length);
    joined.set(bytes);
    joined.set(back, bytes.length);
    this.#back = joined;
  }
}

/**
 * Writes to a {@linkcode ByteConn} in order, each write whole. With `stallMs`, a write that
 * makes no progress for that long closes the connection. After the first failure every write
 * rejects with {@linkcode ConnectionGone}.
 */
export class ByteWriter {
  readonly #conn: ByteConn;
  readonly #stallMs: number | undefined;
  #tail: Promise<void> = Promise.resolve();
  #failed: ConnectionGone | undefined;

  /**
   * @param conn the connection to write
   * @param stallMs the longest one write may wait for the peer, or undefined for no limit
   */
  constructor(conn: ByteConn, stallMs?: number) {
    this.#conn = conn;
    this.#stallMs = stallMs;
  }

  /** Whether a write failed (the connection is unusable). */
  get failed(): boolean {
    return this.#failed !== undefined;
  }

  /**
   * Queues `bytes` after the writes already queued.
   *
   * @param bytes what to send; must not change until the promise settles
   * @returns resolves once the connection accepted all of `bytes`
   * @throws {ConnectionGone} when the connection failed
   */
  write(bytes: Uint8Array): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const done = this.#tail.then(() => this.#writeAll(bytes));
    this.#tail = done.catch(() => {});
    return done;
  }

  /** @returns resolves when every queued write has settled */
  idle(): Promise<void> {
    return this.#tail;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      if (this.#failed !== undefined) throw this.#failed;
      try {
        offset += await this.#writeSome(bytes.subarray(offset));
      } catch (error) {
        this.#failed ??= new ConnectionGone(
          error instanceof ConnectionGone ? error.message : "the connection is closed",
        );
        throw this.#failed;
      }
    }
  }

  #writeSome(bytes: Uint8Array): Promise<number> {
    const stallMs = this.#stallMs;
    if (stallMs === undefined) return this.#conn.write(bytes);
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Promise<number>((resolve, reject) => {
      timer = setTimeout(() => {
        this.#failed ??= new ConnectionGone(`the peer read nothing for ${stallMs} ms`);
        reject(this.#failed);
        closeQuietly(this.#conn);
      }, stallMs);
      this.#conn.write(bytes).then(resolve, reject);
    }).finally(() => clearTimeout(timer));
  }
}

/** A timer as a promise that never rejects; cancel it when done with it. */
export class Deadline {
  /** Resolves when the time is up (never, once cancelled). */
  readonly promise: Promise<void>;
  readonly #timer: ReturnType<typeof setTimeout>;
  #expired = false;

  /** @param ms how long from now */
  constructor(ms: number) {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.promise = promise;
    this.#timer = setTimeout(() => {
      this.#expired = true;
      resolve();
    }, ms);
  }

  /** Whether the time is up. */
  get expired(): boolean {
    return this.#expired;
  }

  /** Stops the timer. */
  cancel(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * Waits for `promise`, at most `ms`.
 *
 * @param promise what to wait for (its rejection counts as settling)
 * @param ms the most to wait
 * @returns whether it settled in time
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const deadline = new Deadline(ms);
  try {
    const settled = promise.then(() => true, () => true);
    return await Promise.race([settled, deadline.promise.then(() => false)]);
  } finally {
    deadline.cancel();
  }
}

/** Closes `conn`, ignoring "already closed". */
export function closeQuietly(conn: ByteConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/**
 * How long, and how many bytes, a closing connection reads (and discards) before closing: long
 * enough that a client whose upload was refused early (413, 429) finishes sending its body and
 * reads the answer, instead of being reset with the body half sent. Discarding costs little;
 * the time bounds it.
 */
export const LINGER_MS = 2000;
/** See {@linkcode LINGER_MS}. */
export const LINGER_BYTES = 128 * 1024 * 1024;

/**
 * Ends a connection politely: waits (briefly) for queued writes, sends FIN, then reads and
 * discards what the peer still sends, until it closes too, {@linkcode LINGER_MS} pass or
 * {@linkcode LINGER_BYTES} arrived, so the peer is not reset before it read our last bytes.
 * Then closes. Never rejects.
 *
 * @param conn the connection
 * @param reader its reader
 * @param writer its writer, if any
 */
export async function lingerClose(
  conn: ByteConn,
  reader: ByteReader,
  writer?: ByteWriter,
): Promise<void> {
  try {
    if (writer !== undefined && !(await settlesWithin(writer.idle(), LINGER_MS))) return;
    if (writer?.failed || reader.eof) return;
    await conn.closeWrite();
    const deadline = new Deadline(LINGER_MS);
    try {
      let discarded = 0;
      while (discarded < LINGER_BYTES) {
        const bytes = await reader.read(deadline.promise);
        if (bytes === null || bytes === undefined) break;
        discarded += bytes.length;
      }
    } finally {
      deadline.cancel();
    }
  } catch {
    // the peer is gone: nothing to be polite to
  } finally {
    closeQuietly(conn);
  }
}
