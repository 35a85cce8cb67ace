/**
 * What sessions count, for the server's metrics (`src/server/metrics.ts` reads them).
 *
 * @module
 */

/** What sessions count: integer fields, bumped in place. */
export interface SessionCounters {
  /** Lines (and frames) read from clients. */
  lines: number;
  /** Events queued to a session. */
  deliveries: number;
  /** Sessions closed because their send queue overflowed. */
  sendQueueCutoffs: number;
  /** Messages accepted, to rooms and to people. */
  roomMessages: number;
  directMessages: number;
}

/** Counters starting at zero (for a session nobody reads the counts of). */
export function newCounters(): SessionCounters {
  return { lines: 0, deliveries: 0, sendQueueCutoffs: 0, roomMessages: 0, directMessages: 0 };
}
