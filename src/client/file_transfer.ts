/**
 * File transfer over the server's web port (docs/protocol.md, "Files"): streaming uploads, and
 * downloads that resume an interrupted transfer with `Range` and check the SHA-256. Neither
 * ever holds a whole file in memory. {@linkcode ChatClient.upload} and
 * {@linkcode ChatClient.download} are the usual way in; these functions are what they run.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import { basename } from "node:path";
import type { FileRef } from "../protocol/frames.ts";
import { FileTransferError } from "./errors.ts";
import type { HttpTransport } from "./_http.ts";

export type { FileRef };

/** How far a transfer is, as given to `onProgress`. */
export interface TransferProgress {
  /** Bytes of the file transferred so far; for a resumed download, counting those kept. */
  bytes: number;
  /** The file's size, when known. */
  total: number | undefined;
  /** For a resumed download, the bytes that were already on disk; else 0. */
  resumedFrom: number;
}

/** Options for {@linkcode uploadFile}. */
export interface UploadOptions {
  /** The file's name as recipients see it. @default the path's last segment, or "file" */
  name?: string;
  /** Its media type. @default guessed from the name's extension, else application/octet-stream */
  type?: string;
  /** Its size in bytes, for progress when uploading a stream. @default the file's size */
  size?: number;
  /** Called as bytes are sent. */
  onProgress?: (progress: TransferProgress) => void;
  /** Aborting it stops the upload (the server keeps nothing). */
  signal?: AbortSignal;
}

/** Options for {@linkcode downloadFile}. */
export interface DownloadOptions {
  /** The SHA-256 (hex) the file must have. @default the server's `ETag` */
  sha256?: string;
  /** Continue from `DEST.part` when one is there. @default true */
  resume?: boolean;
  /** Called as bytes arrive (first once the server answered, with the bytes kept). */
  onProgress?: (progress: TransferProgress) => void;
  /** Aborting it stops the download; `DEST.part` is kept to resume later. */
  signal?: AbortSignal;
}

/** What a finished download is. */
export interface Downloaded {
  /** Where the file now is (`dest`). */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Its SHA-256 (hex), checked. */
  sha256: string;
  /** How many bytes an earlier, interrupted download had left in `DEST.part` (0: none). */
  resumedFrom: number;
}

const TYPES: Record<string, string> = {
  txt: "text/plain",
  md: "text/markdown",
  csv: "text/csv",
  json: "application/json",
  pdf: "application/pdf",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  mp4: "video/mp4",
  webm: "video/webm",
};

/**
 * A media type for a file name, from its extension.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guessType } from "./file_transfer.ts";
 * assert.equal(guessType("Report.PDF"), "application/pdf");
 * assert.equal(guessType("notes"), "application/octet-stream");
 * ```
 */
export function guessType(name: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  return (ext !== undefined ? TYPES[ext] : undefined) ?? "application/octet-stream";
}

/**
 * Uploads a file (a path, streamed from disk, or a stream) with the session `token`.
 *
 * @param http the server's web port
 * @param token the session token from a login; undefined (a guest) is refused at once
 * @param source a file path, or the bytes as a stream
 * @param options name, type, size, progress, abort
 * @returns the server's description of the stored file, to attach to a message
 * @throws {FileTransferError} `login_required` (no token), and the server's refusals:
 * `auth_failed`, `too_large`, `quota_exceeded`, `rate_limited` (with `retryAfter`), …
 * @throws {TypeError} when `source` is a path to something that is not a file
 * @throws {Deno.errors.NotFound} and other file errors when `source` cannot be read
 */
export async function uploadFile(
  http: HttpTransport,
  token: string | undefined,
  source: string | ReadableStream<Uint8Array>,
  options: UploadOptions = {},
): Promise<FileRef> {
  options.signal?.throwIfAborted();
  if (token === undefined) {
    if (typeof source !== "string") await source.cancel().catch(() => {});
    throw new FileTransferError(
      "login_required",
      "Cannot upload: only logged-in accounts can send files; log in first",
    );
  }
  let { name, size } = options;
  let body: ReadableStream<Uint8Array>;
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (typeof source === "string") {
    const info = await Deno.stat(source);
    if (!info.isFile) throw new TypeError(`Cannot upload ${source}: it is not a file`);
    size ??= info.size;
    name ??= basename(source);
    body = (await Deno.open(source, { read: true })).readable;
    headers["content-length"] = String(info.size);
  } else {
    body = source;
  }
  name = name === undefined || name === "" ? "file" : name;
  headers["content-type"] = options.type ?? guessType(name);
  const total = size;
  let sent = 0;
  const counted = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sent += chunk.length;
        options.onProgress?.({ bytes: sent, total, resumedFrom: 0 });
        controller.enqueue(chunk);
      },
    }),
  );
  options.onProgress?.({ bytes: 0, total, resumedFrom: 0 });
  const request = {
    method: "POST" as const,
    headers,
    body: counted,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  let res: Response;
  try {
    res = await http.fetch(`/files?name=${encodeURIComponent(name)}`, request);
  } catch (error) {
    await counted.cancel().catch(() => {});
    throw error;
  }
  if (res.status !== 201) throw await refusal(res, "Cannot upload");
  const ref = toFileRef(await res.json().catch(() => undefined));
  if (ref === undefined) {
    throw new FileTransferError("bad_response", "Cannot upload: the server's answer is not a file");
  }
  return ref;
}

/**
 * Downloads the file `id` to `dest` with the session `token`, through `DEST.part`: when a
 * `.part` is there (an earlier download was interrupted), only the rest is asked for
 * (`Range: bytes=SIZE-`) and appended. The whole file's SHA-256 is then checked against
 * `sha256` (or the server's `ETag`); if it matches, `.part` is renamed to `dest` (replacing a
 * file there). If it does not, `.part` is deleted (resuming it would only repeat the mistake);
 * when the download had resumed, it is tried once more from the start (the `.part` may have
 * been another file's), otherwise it fails with `hash_mismatch`. When the transfer breaks
 * (network, abort), `.part` is kept for next time.
 *
 * @param http the server's web port
 * @param token the session token from a login; undefined (a guest) is refused at once
 * @param id the file's id (from a message's `file`)
 * @param dest where to put it; `DEST.part` is used on the way
 * @param options expected hash, resume, progress, abort
 * @returns where the file is, its size and hash, and how much was resumed
 * @throws {FileTransferError} `login_required` (no token), `hash_mismatch`, `incomplete` (the
 * server ended the body early; `.part` kept), `bad_response`, and the server's refusals:
 * `not_found` (no such file, or not yours to see), `auth_failed`, `rate_limited`, …
 */
export async function downloadFile(
  http: HttpTransport,
  token: string | undefined,
  id: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<Downloaded> {
  options.signal?.throwIfAborted();
  if (token === undefined) {
    throw new FileTransferError(
      "login_required",
      "Cannot download: only logged-in accounts can fetch files; log in first",
    );
  }
  const part = `${dest}.part`;
  let resume = options.resume ?? true;
  for (;;) {
    const offset = resume ? await sizeOf(part) : 0;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const request = {
      method: "GET" as const,
      headers,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const res = await http.fetch(`/files/${encodeURIComponent(id)}`, request);
    let total: number | undefined;
    let kept = 0;
    if (res.status === 206 && offset > 0) {
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
      if (range === null || Number(range[1]) !== offset) {
        await res.body?.cancel();
        throw new FileTransferError(
          "bad_response",
          `Cannot download ${id}: the server sent another part of the file than asked for`,
        );
      }
      total = Number(range[3]);
      kept = offset;
    } else if (res.status === 416 && offset > 0) {
      await res.body?.cancel();
      total = Number(/^bytes \*\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1]);
      if (total !== offset) {
        // Longer than the file: not a part of it. Start over.
        await Deno.remove(part).catch(() => {});
        resume = false;
        continue;
      }
      kept = offset; // complete already: only the check is left
    } else if (res.status === 200) {
      const length = res.headers.get("content-length");
      if (length !== null) total = Number(length);
    } else {
      throw await refusal(res, `Cannot download ${id}`);
    }
    const expected = (options.sha256 ?? etagHash(res.headers.get("etag")))?.toLowerCase();
    if (expected === undefined) {
      await res.body?.cancel();
      throw new FileTransferError(
        "bad_response",
        `Cannot download ${id}: the server gave no SHA-256 to check it against`,
      );
    }
    const hash = createHash("sha256");
    if (kept > 0) await hashFile(part, hash);
    let bytes = kept;
    options.onProgress?.({ bytes, total, resumedFrom: kept });
    if (res.status !== 416) {
      const file = await Deno.open(
        part,
        kept > 0 ? { write: true, append: true } : { write: true, create: true, truncate: true },
      );
      try {
        if (res.body !== null) {
          for await (const chunk of res.body) {
            hash.update(chunk);
            for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
            bytes += chunk.length;
            options.onProgress?.({ bytes, total, resumedFrom: kept });
          }
        }
      } catch (error) {
        throw options.signal?.aborted ? options.signal.reason : error;
      } finally {
        file.close();
      }
    }
    if (total !== undefined && bytes < total) {
      throw new FileTransferError(
        "incomplete",
        `Cannot download ${id}: the transfer ended after ${bytes} of ${total} bytes; ` +
          "try again to resume",
      );
    }
    const actual = hash.digest("hex");
    if (actual !== expected) {
      await Deno.remove(part).catch(() => {});
      if (kept > 0) {
        resume = false;
        continue;
      }
      throw new FileTransferError(
        "hash_mismatch",
        `Cannot download ${id}: the file received does not have the expected SHA-256 ` +
          `(${expected.slice(0, 12)}…); it was deleted`,
      );
    }
    await Deno.rename(part, dest);
    return { path: dest, size: bytes, sha256: actual, resumedFrom: kept };
  }
}

/**
 * Asks the server about the file `id` (`HEAD /files/ID`) without downloading it: its name (from
 * `Content-Disposition`), size, type and SHA-256 (from `ETag`).
 *
 * @param http the server's web port
 * @param token the session token from a login; undefined (a guest) is refused at once
 * @param id the file's id
 * @param signal aborting it stops the request
 * @throws {FileTransferError} `login_required` (no token), `not_found`, `bad_response`, …
 */
export async function statFile(
  http: HttpTransport,
  token: string | undefined,
  id: string,
  signal?: AbortSignal,
): Promise<FileRef> {
  const what = `Cannot download ${id}`;
  if (token === undefined) {
    throw new FileTransferError(
      "login_required",
      `${what}: only logged-in accounts can fetch files; log in first`,
    );
  }
  const res = await http.fetch(`/files/${encodeURIComponent(id)}`, {
    method: "HEAD",
    headers: { authorization: `Bearer ${token}` },
    ...(signal ? { signal } : {}),
  });
  if (!res.ok) throw await refusal(res, what);
  const sha256 = etagHash(res.headers.get("etag"));
  const size = Number(res.headers.get("content-length"));
  if (sha256 === undefined || !Number.isSafeInteger(size)) {
    throw new FileTransferError("bad_response", `${what}: the server did not describe the file`);
  }
  const disposition = res.headers.get("content-disposition") ?? "";
  const encoded = /filename\*=UTF-8''([^;\s]+)/i.exec(disposition)?.[1];
  let name = /filename="([^"]*)"/i.exec(disposition)?.[1] ?? "file";
  if (encoded !== undefined) {
    try {
      name = decodeURIComponent(encoded);
    } catch {
      // keep the plain one
    }
  }
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  return { id, name, size, type: type || "application/octet-stream", sha256 };
}

/** The size of the file at `path`, 0 when there is none. */
async function sizeOf(path: string): Promise<number> {
  try {
    const info = await Deno.stat(path);
    return info.isFile ? info.size : 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
}

/** Feeds the file at `path` into `hash`, streaming. */
async function hashFile(path: string, hash: Hash): Promise<void> {
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
}

/** The SHA-256 in an `ETag: "HEX"` header, if it is one. */
function etagHash(etag: string | null): string | undefined {
  return /^(?:W\/)?"([0-9a-f]{64})"$/i.exec(etag ?? "")?.[1];
}

/** A `FileRef` from parsed JSON, or undefined when it is not one. */
export function toFileRef(value: unknown): FileRef | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    typeof v.id !== "string" || typeof v.name !== "string" || typeof v.size !== "number" ||
    typeof v.sha256 !== "string"
  ) {
    return undefined;
  }
  return {
    id: v.id,
    name: v.name,
    size: v.size,
    type: typeof v.type === "string" ? v.type : "application/octet-stream",
    sha256: v.sha256,
  };
}

/** The server's refusal as a {@linkcode FileTransferError} (its JSON `error` and `message`). */
async function refusal(res: Response, what: string): Promise<FileTransferError> {
  // A HEAD answer has no body: the statuses the protocol names still get their words.
  const known: Record<number, [string, string]> = {
    401: ["auth_failed", "Invalid or expired token"],
    404: ["not_found", "No such file"],
    429: ["rate_limited", "Too many requests"],
  };
  let code = known[res.status]?.[0] ?? `http_${res.status}`;
  let message = known[res.status] !== undefined
    ? `${what}: ${known[res.status]![1]}`
    : `${what}: the server answered ${res.status} ${res.statusText}`.trim();
  try {
    const body = await res.json();
    if (typeof body?.error === "string") code = body.error;
    if (typeof body?.message === "string") message = `${what}: ${body.message}`;
  } catch {
    // not JSON: keep the status line
  }
  const wait = Number(res.headers.get("retry-after"));
  const options: { status: number; retryAfter?: number } = { status: res.status };
  if (Number.isFinite(wait) && wait > 0) options.retryAfter = wait;
  return new FileTransferError(code, message, options);
}
