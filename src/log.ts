/**
 * Logging setup: one logtape configuration for the whole process, text or JSON lines on
 * stderr (stdout is kept for what commands print, such as `listening on …`).
 *
 * @module
 */

import {
  configure,
  dispose,
  getJsonLinesFormatter,
  getStreamSink,
  getTextFormatter,
} from "@logtape/logtape";
import type { LogLevel } from "@logtape/logtape";

/** Accepted `--log-level` values. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

/** Accepted `--log-format` values. */
export const LOG_FORMATS = ["text", "json"] as const;

/** Options for {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** The lowest level written. @default "info" */
  level?: LogLevel;
  /** `text` for humans, `json` for one JSON object per line. @default "text" */
  format?: typeof LOG_FORMATS[number];
}

/** Configures logging for the process; call {@linkcode closeLogging} before exiting. */
export async function setupLogging(options: LoggingOptions = {}): Promise<void> {
  const formatter = options.format === "json" ? getJsonLinesFormatter() : getTextFormatter();
  await configure({
    reset: true,
    sinks: { stderr: getStreamSink(Deno.stderr.writable, { formatter }) },
    loggers: [
      { category: ["parley"], lowestLevel: options.level ?? "info", sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Flushes and closes the log sinks. */
export async function closeLogging(): Promise<void> {
  await dispose();
}
