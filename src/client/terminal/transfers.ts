/**
 * The terminal client's `/send` and `/get`: checks the permissions and paths first (so Deno
 * never prompts in the middle of the chat), runs the transfer through {@linkcode ChatClient}
 * with a progress view, and reports in one line how it ended.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { formatSize } from "../../protocol/text_mode.ts";
import type { ChatClient } from "../chat_client.ts";
import { ConnectionClosedError, FileTransferError, ServerError } from "../errors.ts";
import type { FileRef, TransferProgress } from "../file_transfer.ts";
import type { FileCommand } from "./file_commands.ts";
import { freeName, safeFileName } from "./file_commands.ts";
import type { Formatter, Line } from "./format.ts";
import type { TerminalIO } from "./console.ts";
import { formatRate, TransferView } from "./progress.ts";
import type { TransferStats } from "./progress.ts";

/** What a file command needs from the terminal session. */
export interface TransferContext {
  client: ChatClient;
  io: TerminalIO;
  format: Formatter;
  /** Prints lines. */
  show(lines: Line[]): void;
}

const LOGIN_HINT = "log in first (/login NAME PASSWORD or /register NAME PASSWORD)";

/** Whether this process holds `descriptor` without asking (a query never prompts). */
function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/** `~/x` as the home folder's `x`, when HOME may be read; other paths as they are. */
export function expandHome(path: string): string {
  if (!/^~(\/|$)/.test(path) || !granted({ name: "env", variable: "HOME" })) return path;
  const home = Deno.env.get("HOME");
  return home === undefined ? path : home + path.slice(1);
}

/** An environment variable when it may be read without asking and is not empty. */
function envVar(name: string): string | undefined {
  if (!granted({ name: "env", variable: name })) return undefined;
  const value = Deno.env.get(name);
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Where `/get ID` saves when no PATH is typed: `$XDG_DOWNLOAD_DIR`, else `~/Downloads`, when
 * that folder exists and may be written; else the working folder (`.`).
 */
export function downloadsFolder(): string {
  const home = envVar("HOME");
  const candidates = [envVar("XDG_DOWNLOAD_DIR"), home && join(home, "Downloads")];
  for (const dir of candidates) {
    if (dir === undefined || dir === "") continue;
    const full = expandHome(dir);
    if (granted({ name: "write", path: full }) && isDirectory(full)) return full;
  }
  return ".";
}

/** Whether `path` is an existing file, asking nothing when it may not be read. */
export function isReadableFile(path: string): boolean {
  const full = expandHome(path);
  if (!granted({ name: "read", path: full })) return false;
  try {
    return Deno.statSync(full).isFile;
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function why(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function took(stats: TransferStats): string {
  return `in ${(stats.ms / 1000).toFixed(1)} s (${formatRate(stats.rate)})`;
}

/**
 * Runs a file command, showing its progress and outcome; refusals and failures are shown,
 * not thrown.
 *
 * @returns whether it worked
 * @throws {ConnectionClosedError} when the message carrying an uploaded file could not be
 * sent because the chat connection is down
 */
export function runFileCommand(ctx: TransferContext, command: FileCommand): Promise<boolean> {
  return command.type === "upload" ? sendFile(ctx, command) : getFile(ctx, command);
}

async function sendFile(
  ctx: TransferContext,
  command: Extract<FileCommand, { type: "upload" }>,
): Promise<boolean> {
  const { client, format: fmt, show } = ctx;
  const path = expandHome(command.path);
  const fail = (text: string) => (show([fmt.error(text)]), false);
  if (client.token === undefined) return fail(`Cannot send a file as a guest: ${LOGIN_HINT}`);
  if (!granted({ name: "read", path })) {
    return fail(`Cannot send ${path}: no permission to read it (run the client with --allow-read)`);
  }
  let size: number;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return fail(`Cannot send ${path}: it is not a file`);
    size = info.size;
  } catch (error) {
    return fail(
      error instanceof Deno.errors.NotFound
        ? `Cannot send ${path}: no such file`
        : `Cannot send ${path}: ${why(error)}`,
    );
  }
  const name = path.split(/[\\/]/).at(-1) || "file";
  const view = new TransferView(ctx.io, `Uploading ${name}`, () => {
    show([fmt.info(`Uploading ${name} (${formatSize(size)}) to ${command.to}`)]);
  });
  let file: FileRef;
  try {
    file = await client.upload(path, { onProgress: view.update });
  } catch (error) {
    view.stop();
    if (client.state === "closed") return false;
    return fail(uploadFailure(name, error));
  }
  const stats = view.stop();
  show([fmt.info(`Uploaded ${name} (${formatSize(file.size)}) ${took(stats)}`)]);
  await client.whenConnected();
  try {
    const ack = await client.sendFile(command.to, file);
    const m = { from: client.name, text: "", ts: ack.ts, file };
    show([
      fmt.message(
        command.to.startsWith("#") ? { ...m, room: command.to } : { ...m, to: command.to },
        client.name,
      ),
    ]);
    return true;
  } catch (error) {
    if (error instanceof ServerError) return fail(`Cannot send ${name}: ${error.message}`);
    throw error;
  }
}

function uploadFailure(name: string, error: unknown): string {
  if (error instanceof FileTransferError) {
    if (error.code === "login_required") return `Cannot send a file as a guest: ${LOGIN_HINT}`;
    if (error.code === "auth_failed") {
      return `Cannot send ${name}: the server no longer accepts this session; ${LOGIN_HINT}`;
    }
  }
  const text = why(error);
  return text.startsWith("Cannot ") ? text : `Cannot send ${name}: ${text}`;
}

async function getFile(
  ctx: TransferContext,
  command: Extract<FileCommand, { type: "download" }>,
): Promise<boolean> {
  const { client, format: fmt, show } = ctx;
  const { id } = command;
  const fail = (text: string) => (show([fmt.error(text)]), false);
  if (client.token === undefined) return fail(`Cannot download as a guest: ${LOGIN_HINT}`);
  let file: FileRef;
  try {
    file = await client.fileInfo(id);
  } catch (error) {
    if (client.state === "closed") return false;
    return fail(downloadFailure(id, error));
  }
  // Where: a folder (the downloads folder by default, else the current one) and the file's own
  // name made safe, or the path typed; never over an existing file.
  let dir = command.path === undefined ? downloadsFolder() : ".";
  let name = safeFileName(file.name);
  if (command.path !== undefined) {
    const path = expandHome(command.path);
    if (/[\\/]$/.test(path) || isDirectory(path)) {
      dir = path;
    } else {
      dir = dirname(path);
      name = path.split(/[\\/]/).at(-1)!;
    }
  }
  const where = resolve(dir);
  if (!granted({ name: "write", path: where }) || !granted({ name: "read", path: where })) {
    return fail(
      `Cannot save to ${where}: no permission to write there (run the client with ` +
        `--allow-write=${where}, or /get ${id} PATH into a folder it may write to)`,
    );
  }
  if (!isDirectory(where)) return fail(`Cannot save to ${where}: no such folder`);
  name = freeName(name, (n) => exists(join(where, n)));
  const dest = dir === "." ? name : join(dir, name);
  const view = new TransferView(ctx.io, `Downloading ${name}`, (p: TransferProgress) => {
    const resuming = p.resumedFrom > 0 ? `, resuming at ${formatSize(p.resumedFrom)}` : "";
    show([fmt.info(`Downloading ${file.name} (${formatSize(file.size)}) to ${dest}${resuming}`)]);
  });
  const retry = `/get ${id}${command.path === undefined ? "" : ` ${quote(command.path)}`}`;
  try {
    const got = await client.download(id, dest, { onProgress: view.update });
    const stats = view.stop();
    const resumed = got.resumedFrom > 0 ? `, resumed at ${formatSize(got.resumedFrom)}` : "";
    show([
      fmt.info(
        `Saved ${dest} (${formatSize(got.size)}, SHA-256 checked${resumed}) ${took(stats)}`,
      ),
    ]);
    return true;
  } catch (error) {
    view.stop();
    if (
      client.state === "closed" || (error instanceof DOMException && error.name === "AbortError")
    ) {
      show([fmt.error(`Download of ${name} interrupted; ${retry} resumes it`)]);
      return false;
    }
    const again = error instanceof FileTransferError && error.code === "hash_mismatch"
      ? ""
      : exists(`${dest}.part`)
      ? `; ${retry} resumes it`
      : "";
    return fail(downloadFailure(id, error) + again);
  }
}

function downloadFailure(id: string, error: unknown): string {
  if (error instanceof FileTransferError) {
    if (error.code === "login_required") return `Cannot download as a guest: ${LOGIN_HINT}`;
    if (error.code === "auth_failed") {
      return `Cannot download ${id}: the server no longer accepts this session; ${LOGIN_HINT}`;
    }
  }
  if (error instanceof ConnectionClosedError) return `Cannot download ${id}: ${error.message}`;
  const text = why(error);
  return text.startsWith("Cannot ") ? text : `Cannot download ${id}: ${text}`;
}

/** A path as it can be typed again: in quotes when it has spaces or quotes. */
function quote(path: string): string {
  return /[\s"']/.test(path) ? (path.includes('"') ? `'${path}'` : `"${path}"`) : path;
}

function isDirectory(path: string): boolean {
  if (!granted({ name: "read", path })) return false;
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
