/**
 * The accept loop every listener runs: it never stalls and never dies. A connection reset
 * before it was accepted is skipped at once; running out of file descriptors backs off (and
 * frees nothing by spinning) until descriptors free up; every kind of failure is logged at most
 * once per interval.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["parley", "server"]);

/** Errors that concern one connection that is already gone: skip it, accept the next. */
const PEER_GONE = new Set(["ECONNABORTED", "ECONNRESET", "ENOTCONN", "EPROTO", "EPIPE"]);
/** Errors that mean the process or system is out of descriptors (or memory for sockets). */
const EXHAUSTED = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/** How often one kind of accept failure may be logged. */
export const ACCEPT_LOG_INTERVAL_MS = 10_000;
const MIN_BACKOFF_MS = 10;
const MAX_BACKOFF_MS = 1000;

/** Options for {@linkcode acceptLoop}. */
export interface AcceptOptions {
  /** The listener's name in logs (`tcp://0.0.0.0:5000`). */
  name: string;
  /** Whether the server is stopping (a failure then ends the loop quietly). */
  stopping(): boolean;
}

/** Logs each kind of failure at most once per interval, with how many were not logged. */
class Throttled {
  readonly #last = new Map<string, { at: number; skipped: number }>();

  log(kind: string, write: (skipped: number) => void): void {
    const now = performance.now();
    const last = this.#last.get(kind);
    if (last !== undefined && now - last.at < ACCEPT_LOG_INTERVAL_MS) {
      last.skipped++;
      return;
    }
    write(last?.skipped ?? 0);
    this.#last.set(kind, { at: now, skipped: 0 });
  }
}

/**
 * Accepts connections from `listener` until it is closed, handing each to `onConn` (which must
 * not throw and must not wait: it starts the connection's own task).
 *
 * @param listener the listening socket
 * @param onConn takes one accepted connection
 * @param options the listener's name and the server's state
 */
export async function acceptLoop<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  onConn: (conn: C) => void,
  options: AcceptOptions,
): Promise<void> {
  const logs = new Throttled();
  let backoff = 0;
  for (;;) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (options.stopping() || error instanceof Deno.errors.BadResource) return;
      const code = errorCode(error);
      if (PEER_GONE.has(code) || error instanceof Deno.errors.ConnectionAborted) {
        logs.log(
          code,
          (skipped) =>
            log.debug("A connection to {listener} was gone before it was accepted ({code})", {
              listener: options.name,
              code,
              skipped,
            }),
        );
        continue;
      }
      backoff = Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, backoff * 2));
      if (EXHAUSTED.has(code)) {
        logs.log(code, (skipped) =>
          log.warn(
            "Cannot accept on {listener}: out of file descriptors ({code}); backing off, " +
              "{skipped} more since the last report",
            { listener: options.name, code, skipped },
          ));
      } else {
        logs.log(
          code,
          (skipped) =>
            log.error(
              "Cannot accept on {listener}: {error}; {skipped} more since the last report",
              {
                listener: options.name,
                error,
                skipped,
              },
            ),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, backoff));
      continue;
    }
    backoff = 0;
    onConn(conn);
  }
}

/** The POSIX error code of an I/O error (`EMFILE`), or its class name. */
function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error) {
    return String((error as { code: unknown }).code);
  }
  return error instanceof Error ? error.name : "unknown";
}
