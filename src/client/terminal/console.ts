/**
 * The terminal's I/O: typed lines in, output lines out. On a terminal (stdin and stdout both
 * TTYs) a `node:readline` prompt keeps what is being typed on its own line while events print
 * above it, and a password can be asked for without echo; otherwise stdin is read line by line
 * and output is plain.
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";
import type { Line } from "./format.ts";
import { cursorAfter } from "./width.ts";

/** Where the terminal client reads and writes. */
export interface TerminalIO {
  /** Whether a human is typing at a prompt (stdin and stdout are terminals). */
  readonly interactive: boolean;
  /** The typed lines, in order; ends at end of input. Call once. */
  lines(): AsyncIterable<string>;
  /**
   * Reads one secret line (a password), before the lines {@linkcode TerminalIO.lines} yields:
   * at a prompt, `prompt` is shown and what is typed is not echoed nor kept in the history;
   * when not interactive, it is the next input line. Undefined at end of input, on Ctrl-C, or
   * when it cannot be read without echo.
   */
  readSecret(prompt: string): Promise<string | undefined>;
  /** Prints a line: above the prompt when interactive, to stderr for errors when not. */
  print(line: Line): void;
  /** Sets the prompt (interactive only). */
  setPrompt(prompt: string): void;
  /**
   * Sets what Tab completes (interactive only): given the line up to the cursor, the
   * candidates and the word they replace.
   */
  setCompleter(completer: (line: string) => [string[], string]): void;
  /**
   * Shows `text` on a status line kept just above the prompt (e.g. a progress bar, who is
   * typing), replacing the previous one; undefined removes it. Several rows are separated by
   * `\n`. Interactive only: otherwise nothing is shown.
   */
  status(text: string | undefined): void;
  /**
   * Calls `listener` with the draft (the line being typed, not yet entered) each time a key
   * changes it. Interactive only, and never while a secret is typed.
   */
  onDraft(listener: (draft: string) => void): void;
  /** Stops reading input and restores the terminal. Idempotent. */
  close(): void;
}

/** Options for {@linkcode openConsole}. */
export interface ConsoleOptions {
  /** Called on Ctrl-C at the prompt. */
  onInterrupt: () => void;
  /** The first prompt. @default "> " */
  prompt?: string;
}

const encoder = new TextEncoder();

/** Opens the process's stdin/stdout as a {@linkcode TerminalIO}. */
export function openConsole(options: ConsoleOptions): TerminalIO {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal()
    ? new PromptConsole(options)
    : new PlainConsole();
}

/** Lines typed, queued until read. */
class LineQueue {
  readonly #lines: string[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  push(line: string): void {
    this.#lines.push(line);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) {
        yield line;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }
}

/** Interactive: a readline prompt; events are printed above it and the prompt redrawn. */
class PromptConsole implements TerminalIO {
  readonly interactive = true;
  readonly #rl: readline.Interface;
  readonly #queue = new LineQueue();
  #closed = false;
  /** Set while a secret is being typed: where it goes, and its prompt. */
  #secret: { resolve: (line: string | undefined) => void; prompt: string } | undefined;
  /** Whether readline may echo (false while a secret is typed). */
  #echo = true;
  /** Whether readline's output could be intercepted (a secret can be read without echo). */
  readonly #canMute: boolean;
  /** The status line shown above the prompt, if any (one row: the caller keeps it short). */
  #status: string | undefined;
  #completer: ((line: string) => [string[], string]) | undefined;
  #onDraft: ((draft: string) => void) | undefined;
  #draft = "";

  constructor(options: ConsoleOptions) {
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      prompt: options.prompt ?? "> ",
      terminal: true,
      historySize: 200,
      completer: (line: string): [string[], string] => this.#completer?.(line) ?? [[], line],
    });
    // Readline writes what is typed through _writeToOutput (an internal of node:readline, as in
    // Node): silencing it is how a password is typed without echo.
    const internals = this.#rl as unknown as { _writeToOutput?: (text: string) => void };
    const write = internals._writeToOutput?.bind(this.#rl);
    this.#canMute = write !== undefined;
    if (write !== undefined) {
      internals._writeToOutput = (text: string) => {
        if (this.#echo) write(text);
      };
    }
    this.#rl.on("line", (line: string) => {
      if (this.#secret !== undefined) {
        this.#forget(line);
        this.#endSecret(line);
        return;
      }
      // A message is shown again, formatted, once the server accepts it: erase the echo.
      // A password is erased from the screen and from the history.
      const secret = /^\/(login|register|passwd)\s/i.test(line);
      if (secret) this.#forget(line);
      if (secret || isMessage(line)) this.#eraseEcho(line);
      else if (this.#status !== undefined) this.#keepStatusBelow(line);
      this.#queue.push(line);
      if (!this.#closed) this.#rl.prompt();
    });
    this.#rl.on("SIGINT", () => {
      if (this.#secret !== undefined) this.#endSecret(undefined);
      options.onInterrupt();
    });
    this.#rl.on("SIGTSTP", () => {}); // no job control: suspending would need --allow-run
    // Added after the line editor's own keypress handler: the draft is up to date here.
    process.stdin.on("keypress", () => {
      if (this.#closed || this.#secret !== undefined) return;
      const draft = (this.#rl as unknown as { line: string }).line;
      if (draft === this.#draft) return;
      this.#draft = draft;
      this.#onDraft?.(draft);
    });
    this.#rl.on("close", () => {
      this.#closed = true;
      this.#endSecret(undefined);
      this.#queue.end();
    });
    this.#rl.prompt();
  }

  lines(): AsyncIterable<string> {
    return this.#queue;
  }

  readSecret(prompt: string): Promise<string | undefined> {
    if (this.#closed || !this.#canMute || this.#secret !== undefined) {
      return Promise.resolve(undefined);
    }
    const { promise, resolve } = Promise.withResolvers<string | undefined>();
    this.#secret = { resolve, prompt };
    readline.cursorTo(process.stdout, 0);
    readline.clearLine(process.stdout, 0);
    process.stdout.write(prompt);
    this.#echo = false;
    return promise;
  }

  setCompleter(completer: (line: string) => [string[], string]): void {
    this.#completer = completer;
  }

  onDraft(listener: (draft: string) => void): void {
    this.#onDraft = listener;
  }

  print(line: Line): void {
    if (line.bell) process.stdout.write("\x07");
    if (this.#closed) {
      process.stdout.write(line.text + "\n");
      return;
    }
    if (this.#secret !== undefined) {
      readline.cursorTo(process.stdout, 0);
      readline.clearLine(process.stdout, 0);
      process.stdout.write(line.text + "\n" + this.#secret.prompt);
      return;
    }
    this.#clearBelow();
    process.stdout.write(
      line.text + "\n" + (this.#status === undefined ? "" : this.#status + "\n"),
    );
    this.#redraw();
  }

  status(text: string | undefined): void {
    if (this.#closed || this.#secret !== undefined) {
      this.#status = undefined;
      return;
    }
    if (text === this.#status) return;
    this.#clearBelow();
    this.#status = text;
    if (text !== undefined) process.stdout.write(text + "\n");
    this.#redraw();
  }

  /**
   * Moves to the start of the status line (or the prompt) and clears from there down: every
   * row the prompt and the draft (wrapped, wide characters counted as 2 columns) occupy.
   */
  #clearBelow(): void {
    readline.moveCursor(process.stdout, 0, -this.#cursorRow() - this.#statusRows());
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
  }

  /** How many rows the status line takes (each of its rows may wrap). */
  #statusRows(): number {
    if (this.#status === undefined) return 0;
    const columns = process.stdout.columns || 80;
    return this.#status.split("\n").reduce((rows, row) => {
      const { row: r, column } = cursorAfter(row, columns);
      return rows + Math.max(1, r + (column > 0 ? 1 : 0));
    }, 0);
  }

  /** The row of the cursor within the prompt and the draft (0: the prompt's first row). */
  #cursorRow(): number {
    const rl = this.#rl as unknown as { line: string; cursor: number };
    const before = this.#rl.getPrompt() + rl.line.slice(0, rl.cursor);
    return cursorAfter(before, process.stdout.columns || 80).row;
  }

  /**
   * Redraws the prompt and the draft from the cursor's row (cleared by {@linkcode #clearBelow}
   * and written below). The line editor would first move up by the rows the draft took before,
   * over what was just printed: it is told the cursor is on the draft's first row.
   */
  #redraw(): void {
    (this.#rl as unknown as { prevRows?: number }).prevRows = 0;
    this.#rl.prompt(true);
  }

  setPrompt(prompt: string): void {
    if (this.#rl.getPrompt() === prompt) return;
    this.#rl.setPrompt(prompt);
    if (!this.#closed && this.#secret === undefined) {
      readline.cursorTo(process.stdout, 0);
      readline.clearLine(process.stdout, 0);
      this.#rl.prompt(true);
    }
  }

  close(): void {
    if (this.#closed) return;
    if (this.#status !== undefined) this.#clearBelow();
    this.#status = undefined;
    this.#closed = true;
    readline.cursorTo(process.stdout, 0);
    readline.clearLine(process.stdout, 0);
    this.#rl.close();
  }

  /** Ends secret entry: echo back on, the answer delivered, the prompt redrawn. */
  #endSecret(line: string | undefined): void {
    const secret = this.#secret;
    if (secret === undefined) return;
    this.#secret = undefined;
    this.#echo = true;
    process.stdout.write("\n");
    secret.resolve(line);
    if (!this.#closed) this.#rl.prompt();
  }

  /** Removes `line` from the input history. */
  #forget(line: string): void {
    const history = (this.#rl as unknown as { history?: string[] }).history;
    if (history?.[0] === line) history.shift();
  }

  /** Moves up over the rows the just-entered line took and clears them. */
  #eraseEcho(line: string): void {
    readline.moveCursor(process.stdout, 0, -this.#echoRows(line));
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
  }

  /** The just-entered line stays on screen, above the status line (which it had pushed up). */
  #keepStatusBelow(line: string): void {
    readline.moveCursor(process.stdout, 0, -this.#echoRows(line) - this.#statusRows());
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
    process.stdout.write(`${this.#rl.getPrompt()}${line}\n${this.#status}\n`);
  }

  /** How many rows the prompt and the just-entered `line` took. */
  #echoRows(line: string): number {
    const { row, column } = cursorAfter(this.#rl.getPrompt() + line, process.stdout.columns || 80);
    return Math.max(1, row + (column > 0 ? 1 : 0));
  }
}

/** Whether a typed line becomes a chat message (shown formatted once it is acknowledged). */
function isMessage(line: string): boolean {
  if (line.trim() === "") return true;
  if (/^(logout|bye|quit)$/i.test(line.trim())) return false;
  return !line.startsWith("/") || line.startsWith("//") || /^\/(me|msg|dm)\s+\S/i.test(line);
}

/** Not interactive: stdin line by line, plain output, errors on stderr. */
class PlainConsole implements TerminalIO {
  readonly interactive = false;
  #reader: ReadableStreamDefaultReader<string> | undefined;
  #source: AsyncGenerator<string> | undefined;

  /** stdin's lines, read once and shared by readSecret() and lines(). */
  #input(): AsyncGenerator<string> {
    return this.#source ??= this.#read();
  }

  async readSecret(): Promise<string | undefined> {
    const { value, done } = await this.#input().next();
    return done ? undefined : value;
  }

  async *lines(): AsyncGenerator<string> {
    const input = this.#input();
    for (;;) {
      const { value, done } = await input.next();
      if (done) return;
      yield value;
    }
  }

  async *#read(): AsyncGenerator<string> {
    const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
    this.#reader = reader;
    let rest = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const parts = (rest + value).split("\n");
        rest = parts.pop()!;
        for (const part of parts) yield part.endsWith("\r") ? part.slice(0, -1) : part;
      }
    } catch {
      // stdin closed under us: end of input
    }
    if (rest !== "") yield rest;
  }

  print(line: Line): void {
    writeAll(line.error ? Deno.stderr : Deno.stdout, encoder.encode(line.text + "\n"));
  }

  setPrompt(): void {}

  setCompleter(): void {}

  status(): void {}

  onDraft(): void {}

  close(): void {
    this.#reader?.cancel().catch(() => {});
  }
}

function writeAll(out: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  try {
    let offset = 0;
    while (offset < bytes.length) offset += out.writeSync(bytes.subarray(offset));
  } catch {
    // The reader went away (broken pipe): nothing useful left to do with output.
  }
}
