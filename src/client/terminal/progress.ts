/**
 * Progress of a file transfer in the terminal client. At a terminal, a `cli-progress` bar
 * (bytes, percent, rate, ETA) is drawn on a status line above the prompt, so events printed
 * meanwhile and what is being typed stay intact; otherwise nothing is drawn (the caller prints
 * one line at the start and one at the end).
 *
 * @module
 */

// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import { formatSize, sanitize } from "../../protocol/text_mode.ts";
import type { TransferProgress } from "../file_transfer.ts";
import type { TerminalIO } from "./console.ts";

/** What a finished (or failed) transfer moved, and how fast. */
export interface TransferStats {
  /** Bytes moved by this transfer (not counting those resumed from disk). */
  bytes: number;
  /** How long it took, in ms. */
  ms: number;
  /** Bytes per second. */
  rate: number;
}

/**
 * A byte rate for people: `512 B/s`, `12.0 MiB/s`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatRate } from "./progress.ts";
 * assert.equal(formatRate(3 * 1024 * 1024), "3.0 MiB/s");
 * ```
 */
export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(Math.round(bytesPerSecond))}/s`;
}

/**
 * `cli-progress` renders through a terminal object (its `options.terminal`, as its own
 * `MultiBar` does): this one hands each rendered line to the console's status line instead of
 * moving the cursor itself.
 */
class StatusTerminal {
  readonly #io: TerminalIO;
  constructor(io: TerminalIO) {
    this.#io = io;
  }
  write(text: string): void {
    this.#io.status(text.slice(0, Math.max(20, this.getWidth() - 1)));
  }
  isTTY(): boolean {
    return true;
  }
  getWidth(): number {
    return Deno.stdout.isTerminal() ? Deno.consoleSize().columns : 80;
  }
  cursorSave(): void {}
  cursorRestore(): void {}
  cursor(): void {}
  cursorTo(): void {}
  cursorRelative(): void {}
  cursorRelativeReset(): void {}
  clearRight(): void {}
  clearLine(): void {}
  clearBottom(): void {}
  newline(): void {}
  lineWrapping(): void {}
}

/**
 * Shows one transfer's progress: pass {@linkcode TransferView.update} as `onProgress`, and call
 * {@linkcode TransferView.stop} when it ends (either way).
 */
export class TransferView {
  readonly #io: TerminalIO;
  readonly #label: string;
  readonly #announce: (progress: TransferProgress) => void;
  #bar: cliProgress.SingleBar | undefined;
  #started: { at: number; bytes: number } | undefined;
  #bytes = 0;

  /**
   * @param io the console: a bar only when it is interactive
   * @param label what is going on, e.g. "Uploading report.pdf" (sanitized here)
   * @param announce called once with the first progress report when no bar is drawn (to
   * print a line saying the transfer started)
   */
  constructor(io: TerminalIO, label: string, announce: (progress: TransferProgress) => void) {
    this.#io = io;
    this.#label = sanitize(label).replace(/[{}]/g, "");
    this.#announce = announce;
  }

  /** Takes a progress report (an `onProgress` callback). */
  update = (progress: TransferProgress): void => {
    this.#bytes = progress.bytes;
    const total = progress.total ?? progress.bytes;
    if (this.#started === undefined) {
      this.#started = { at: performance.now(), bytes: progress.bytes };
      if (!this.#io.interactive) {
        this.#announce(progress);
        return;
      }
      this.#bar = new cliProgress.SingleBar({
        terminal: new StatusTerminal(this.#io),
        format:
          `${this.#label} [{bar}] {percentage}% | {value}/{total} | {rate} | ETA {eta_formatted}`,
        formatValue: (value: number, _options: unknown, type: string) =>
          type === "value" || type === "total" ? formatSize(value) : String(value),
        barsize: 20,
        fps: 8,
        hideCursor: null,
        linewrap: null,
        etaBuffer: 50,
      } as cliProgress.Options);
      this.#bar.start(total, progress.bytes, { rate: "…" });
      return;
    }
    if (this.#bar !== undefined) {
      if (this.#bar.getTotal() !== total) this.#bar.setTotal(total);
      this.#bar.update(progress.bytes, { rate: formatRate(this.#stats().rate) });
    }
  };

  /** Ends the display (the bar is removed); returns what was moved, and how fast. */
  stop(): TransferStats {
    this.#bar?.stop();
    if (this.#bar !== undefined) this.#io.status(undefined);
    this.#bar = undefined;
    return this.#stats();
  }

  #stats(): TransferStats {
    const started = this.#started;
    if (started === undefined) return { bytes: 0, ms: 0, rate: 0 };
    const ms = performance.now() - started.at;
    const bytes = this.#bytes - started.bytes;
    return { bytes, ms, rate: ms > 0 ? bytes / (ms / 1000) : 0 };
  }
}
