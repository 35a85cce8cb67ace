/**
 * File transfer over HTTP: uploads stream to disk (content-addressed by SHA-256, never held in
 * memory whole), downloads stream back with Range support. Who may download follows the
 * messages that carry the file: members of those rooms, the parties of those direct messages,
 * and the uploader.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { getLogger } from "@logtape/logtape";
import type { AccountLogin, Accounts } from "../auth/accounts.ts";
import { KeyedThrottle } from "../auth/limiter.ts";
import { ChatError } from "../protocol/errors.ts";
import { nameKey } from "../protocol/names.ts";
import { sanitize } from "../protocol/text_mode.ts";
import { revealHidden, utf8Length } from "../protocol/unicode.ts";
import type { Clock } from "../clock.ts";
import { FileLinks } from "./capability.ts";
import { systemClock } from "../clock.ts";
import type { FileRecord, FileStore, MembershipStore, UserRecord } from "../store/store.ts";

const log = getLogger(["parley", "files"]);

/** Limits and places for {@linkcode FileService}. */
export interface FileOptions {
  /** The folder for blobs and partial uploads (under the data folder). */
  dir: string;
  /** The largest file accepted, in bytes. */
  maxFileSize: number;
  /** The most bytes one account may own. */
  quota: number;
  /** Uploads allowed at once per account. */
  uploadBurst: number;
  /** Then one more upload every this many ms. */
  uploadIntervalMs: number;
  /** Files older than this many ms are deleted; 0 keeps them. */
  retentionMs: number;
  /** Where the time comes from. @default the system clock */
  clock?: Clock;
  /**
   * Told how far each upload that named itself (`?upload=ID`) has got: at most every
   * {@linkcode PROGRESS_EVERY_MS} while its body arrives, and once more when all of it is on
   * disk. The server passes it to the uploader's chat sessions as `upload_progress`.
   */
  progress?: (progress: UploadProgress) => void;
}

/** How far an upload has got: the bytes of its body the server has received and written. */
export interface UploadProgress {
  /** The account uploading. */
  user: UserRecord;
  /** The SHA-256 of the session token the upload was made with (its chat sessions share it). */
  tokenHash: Uint8Array;
  /** The id the client gave the upload (`?upload=ID`). */
  upload: string;
  /** Bytes of the body received and written to disk so far. */
  received: number;
  /** The body's declared length (`Content-Length`); absent for a chunked body. */
  size?: number;
}

/** Progress of one upload is reported at most this often (and once more at its end). */
export const PROGRESS_EVERY_MS = 100;
/** What an upload's id (`?upload=ID`, chosen by the client) may be. */
const UPLOAD_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Files never sent in a message are deleted after this long. */
const ORPHAN_MS = 24 * 3600 * 1000;
const ID_RE = /^[A-Za-z0-9_-]{22}$/;
const TYPE_RE = /^[a-z0-9][a-z0-9.+-]*\/[a-z0-9][a-z0-9.+-]*$/i;

function json(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

function problem(status: number, code: string, message: string, headers?: Record<string, string>) {
  return json(status, { error: code, message }, headers);
}

/** The one answer for a file that does not exist and one the caller may not see. */
const notFound = () => problem(404, "not_found", "No such file");

/** The longest file name kept, in UTF-8 bytes. */
const MAX_NAME_BYTES = 255;

/**
 * A file name made safe: the last path segment; no control characters; bidi controls and
 * invisible characters shown as `_` (so `invoice\u202efdp.exe` cannot pass for a PDF);
 * well-formed UTF-16; at most 255 bytes of UTF-8, cut between characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cleanName } from "./files.ts";
 * assert.equal(cleanName("C:\\Users\\me\\invoice\u202efdp.exe"), "invoice_fdp.exe");
 * assert.equal(cleanName("../../etc/passwd"), "passwd");
 * ```
 */
export function cleanName(raw: string | null): string {
  const last = (raw ?? "").split(/[\\/]/).at(-1)!.toWellFormed();
  let name = sanitize(revealHidden(last)).trim();
  let bytes = 0;
  let end = 0;
  for (const ch of name) {
    bytes += utf8Length(ch);
    if (bytes > MAX_NAME_BYTES) break;
    end += ch.length;
  }
  name = name.slice(0, end).trim();
  return name === "" || name === "." || name === ".." ? "file" : name;
}

/** `X-File-Name`, percent-decoded; undefined when its percent-encoding is not valid UTF-8. */
function headerName(header: string): string | undefined {
  try {
    return decodeURIComponent(header);
  } catch {
    return undefined;
  }
}

/** RFC 8187 encoding for `filename*`: percent-encodes all but the attr-chars. */
function encodeRfc8187(text: string): string {
  return encodeURIComponent(text.toWellFormed()).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** A request body that failed to arrive: the client went away, or sent a broken body. */
class BodyError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "BodyError";
  }
}

/** Whether `error` is the disk being full (or the owner over a disk quota). */
function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    (error instanceof Error && /\(os error (28|122)\)/.test(error.message));
}

/** Gives up on a request body without waiting for it or caring how it ended. */
async function discard(req: Request): Promise<void> {
  if (req.body === null || req.body.locked) return;
  await req.body.cancel().catch(() => {});
}

/**
 * Bytes an account has stored or is uploading. Concurrent uploads of one account check and
 * add to the same record, so together they can never keep more than the quota; it exists
 * while the account has uploads in flight (then the store's figure is read afresh).
 */
interface Usage {
  /** Bytes of stored files (from the store when the first upload began, plus those since). */
  owned: number;
  /** Resolves once `owned` has been read from the store. */
  loaded: Promise<void>;
  /** Bytes reserved by the uploads in flight. */
  reserved: number;
  /** Uploads in flight. */
  active: number;
}

/** The HTTP side of file transfer. */
export class FileService {
  readonly #files: FileStore;
  readonly #memberships: MembershipStore;
  readonly #accounts: Accounts;
  readonly #clock: Clock;
  /** Signs the download links text-mode users get (see src/files/capability.ts). */
  readonly links = new FileLinks();
  readonly #options: FileOptions;
  readonly #uploads: KeyedThrottle;
  readonly #usage = new Map<number, Usage>();
  /** Uploads per SHA-256 between moving their blob into place and recording it. */
  readonly #placing = new Map<string, number>();
  /** Removals of unused blobs waiting for the store's answer, per SHA-256 (see #removeUnused). */
  readonly #checking = new Map<string, Set<{ touched: boolean }>>();

  /**
   * @param store file records and the messages that reference them
   * @param accounts to check session tokens
   * @param options limits and the folder
   */
  constructor(
    store: { files: FileStore; memberships: MembershipStore },
    accounts: Accounts,
    options: FileOptions,
  ) {
    this.#files = store.files;
    this.#memberships = store.memberships;
    this.#accounts = accounts;
    this.#clock = options.clock ?? systemClock;
    this.#options = options;
    this.#uploads = new KeyedThrottle(options.uploadBurst, options.uploadIntervalMs);
    Deno.mkdirSync(`${options.dir}/tmp`, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(`${options.dir}/blobs`, { recursive: true, mode: 0o700 });
  }

  /** Where a blob lives on disk. */
  blobPath(sha256: string): string {
    return `${this.#options.dir}/blobs/${sha256.slice(0, 2)}/${sha256}`;
  }

  /**
   * Handles `POST /files` or `PUT /files`; `ip` is the client's address. Never throws: what the
   * client did wrong is a 4xx (logged at debug), a full disk a 507 and anything else a 500
   * (logged as errors).
   */
  async upload(req: Request, ip: string): Promise<Response> {
    try {
      return await this.#upload(req, ip);
    } catch (error) {
      await discard(req);
      return this.#serverFault("Upload", error);
    }
  }

  async #upload(req: Request, ip: string): Promise<Response> {
    const login = await this.#authenticated(req, ip);
    if (login instanceof Response) return login;
    const { user } = login;
    const wait = this.#uploads.take(String(user.id));
    if (wait > 0) {
      log.debug("Upload by {user} refused: rate limited", { user: user.name });
      await discard(req);
      return problem(429, "rate_limited", `Too many uploads: try again in ${wait} s`, {
        "retry-after": String(wait),
      });
    }
    const url = new URL(req.url);
    const header = req.headers.get("x-file-name");
    const fromHeader = header === null ? undefined : headerName(header);
    if (header !== null && fromHeader === undefined && !url.searchParams.has("name")) {
      log.debug("Upload by {user} refused: X-File-Name is not valid percent-encoded UTF-8", {
        user: user.name,
      });
      await discard(req);
      return problem(400, "bad_request", "X-File-Name must be percent-encoded UTF-8");
    }
    const uploadId = url.searchParams.get("upload");
    if (uploadId !== null && !UPLOAD_ID_RE.test(uploadId)) {
      await discard(req);
      return problem(400, "bad_request", "upload must be 1-64 letters, digits, _ or -");
    }
    const name = cleanName(url.searchParams.get("name") ?? fromHeader ?? null);
    const rawType = (req.headers.get("content-type") ?? "").split(";")[0]!.trim();
    const type = TYPE_RE.test(rawType) ? rawType.toLowerCase() : "application/octet-stream";
    const { maxFileSize, quota } = this.#options;
    const tooBig = (size: number) => {
      log.debug("Upload by {user} refused: {size} bytes is over the size limit", {
        user: user.name,
        size,
      });
      return problem(413, "too_large", `File too large: the limit is ${maxFileSize} bytes`);
    };
    const overQuota = () => {
      log.debug("Upload by {user} refused: over the quota", { user: user.name });
      return problem(413, "quota_exceeded", `Over your quota of ${quota} bytes`);
    };
    const length = Number(req.headers.get("content-length") ?? 0);
    const declared = Number.isSafeInteger(length) && length > 0 ? length : 0;
    if (declared > maxFileSize) {
      await discard(req);
      return tooBig(declared);
    }
    if (req.body === null) return problem(400, "bad_request", "Send the file as the request body");

    // The space is reserved before it is used: a declared length at once, a streamed body as
    // it arrives, so the uploads of one account can never keep more than its quota together.
    const usage = await this.#usageOf(user.id);
    const reader = req.body.getReader();
    let reserved = 0;
    const reserve = (total: number): boolean => {
      if (total <= reserved) return true;
      if (usage.owned + usage.reserved + (total - reserved) > quota) return false;
      usage.reserved += total - reserved;
      reserved = total;
      return true;
    };
    const tmp = `${this.#options.dir}/tmp/${crypto.randomUUID()}`;
    const report = this.#options.progress;
    let reportedAt = -Infinity;
    let reported = -1;
    const progress = report === undefined || uploadId === null
      ? () => {}
      : (received: number, last: boolean) => {
        const now = performance.now();
        if (received === reported || (!last && now - reportedAt < PROGRESS_EVERY_MS)) return;
        reportedAt = now;
        reported = received;
        report({
          user,
          tokenHash: login.tokenHash,
          upload: uploadId,
          received,
          ...(declared > 0 ? { size: declared } : {}),
        });
      };
    let kept = false;
    let ended = false;
    try {
      if (!reserve(declared)) return overQuota();
      const hash = createHash("sha256");
      let size = 0;
      const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
      try {
        for (;;) {
          let next: ReadableStreamReadResult<Uint8Array>;
          try {
            next = await reader.read();
          } catch (error) {
            ended = true; // an errored stream has nothing to cancel
            throw new BodyError(error);
          }
          if (next.done) {
            ended = true;
            progress(size, true);
            break;
          }
          const chunk = next.value;
          size += chunk.length;
          if (size > maxFileSize) return tooBig(size);
          if (!reserve(size)) return overQuota();
          hash.update(chunk);
          for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
          progress(size, false);
        }
      } finally {
        file.close();
      }
      const record: FileRecord = {
        id: newId(),
        sha256: hash.digest("hex"),
        size,
        name,
        type,
        ownerId: user.id,
        created: this.#clock.now(),
      };
      await this.#keep(tmp, record);
      kept = true;
      usage.owned += size; // in the same step as the store, so no byte is counted twice or lost
      log.info("{user} uploaded a file of {size} bytes", { user: user.name, size });
      const { ownerId: _o, created: _c, ...ref } = record;
      return json(201, ref, { location: `/files/${record.id}` });
    } catch (error) {
      if (!(error instanceof BodyError)) throw error;
      log.debug("Upload by {user} did not complete: {error}", {
        user: user.name,
        error: error.message,
      });
      return problem(400, "upload_failed", "The upload did not complete");
    } finally {
      usage.reserved -= reserved;
      if (--usage.active === 0) this.#usage.delete(user.id);
      if (!ended) await reader.cancel().catch(() => {});
      if (!kept) await Deno.remove(tmp).catch(() => {});
    }
  }

  /**
   * Moves an uploaded blob from `tmp` into place, then records its file. When recording fails,
   * the blob is removed again unless a record or another upload in flight uses the same content:
   * no blob is left that no record points to.
   */
  async #keep(tmp: string, record: FileRecord): Promise<void> {
    const { sha256 } = record;
    const blob = this.blobPath(sha256);
    await Deno.mkdir(blob.slice(0, blob.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    this.#placing.set(sha256, (this.#placing.get(sha256) ?? 0) + 1);
    for (const check of this.#checking.get(sha256) ?? []) check.touched = true;
    let recorded = false;
    try {
      await Deno.rename(tmp, blob); // same content, same path: a duplicate simply replaces it
      await this.#files.create(record);
      recorded = true;
    } finally {
      const left = this.#placing.get(sha256)! - 1;
      if (left === 0) this.#placing.delete(sha256);
      else this.#placing.set(sha256, left);
      if (!recorded) await this.#removeUnused(sha256);
    }
  }

  /**
   * Removes the blob of `sha256` if no record and no upload in flight uses it. An upload of the
   * same content that begins while the store is asked marks the check, and the blob stays; the
   * removal itself is synchronous after the last check, so nothing can slip in between.
   */
  async #removeUnused(sha256: string): Promise<void> {
    if (this.#placing.has(sha256)) return;
    const check = { touched: false };
    let checks = this.#checking.get(sha256);
    if (checks === undefined) this.#checking.set(sha256, checks = new Set());
    checks.add(check);
    try {
      const inUse = await this.#files.blobInUse(sha256);
      if (inUse || check.touched || this.#placing.has(sha256)) return;
      Deno.removeSync(this.blobPath(sha256));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        log.error("Cannot remove the unused blob {sha256}: {error}", {
          sha256,
          error: String(error),
        });
      }
    } finally {
      checks.delete(check);
      if (checks.size === 0 && this.#checking.get(sha256) === checks) this.#checking.delete(sha256);
    }
  }

  /** The usage record of an account, counting one more upload in flight. */
  async #usageOf(userId: number): Promise<Usage> {
    let usage = this.#usage.get(userId);
    if (usage === undefined) {
      const fresh: Usage = { owned: 0, loaded: Promise.resolve(), reserved: 0, active: 0 };
      fresh.loaded = this.#files.bytesOwnedBy(userId).then((owned) => {
        fresh.owned += owned;
      });
      this.#usage.set(userId, usage = fresh);
    }
    usage.active++;
    try {
      await usage.loaded;
    } catch (error) {
      usage.active--;
      if (this.#usage.get(userId) === usage) this.#usage.delete(userId);
      throw error;
    }
    return usage;
  }

  /** The answer to a failure that is the server's, not the client's: logged as an error. */
  #serverFault(what: string, error: unknown): Response {
    if (isDiskFull(error)) {
      log.error("{what} failed: the disk is full: {error}", { what, error: String(error) });
      return problem(507, "insufficient_storage", "The server is out of storage space");
    }
    log.error("{what} failed: {error}", { what, error: String(error) });
    return problem(500, "internal_error", "Internal error");
  }

  /** Handles `GET` and `HEAD /files/:id`, with single-range requests. Never throws. */
  async download(req: Request, ip: string, id: string): Promise<Response> {
    try {
      return await this.#download(req, ip, id);
    } catch (error) {
      return this.#serverFault("Download", error);
    }
  }

  async #download(req: Request, ip: string, id: string): Promise<Response> {
    const user = (await this.#linked(req, id)) ?? await this.#authenticate(req, ip);
    if (user instanceof Response) return user;
    const file = ID_RE.test(id) ? await this.#files.get(id) : undefined;
    if (file === undefined || !(await this.canRead(user, file))) return notFound();
    let handle: Deno.FsFile;
    try {
      handle = await Deno.open(this.blobPath(file.sha256), { read: true });
    } catch {
      return notFound();
    }
    // Names stored before cleanName revealed hidden characters are revealed here too.
    const name = revealHidden(file.name.toWellFormed());
    const headers: Record<string, string> = {
      "content-type": file.type,
      "content-disposition":
        `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, "_")}"; ` +
        `filename*=UTF-8''${encodeRfc8187(name)}`,
      "accept-ranges": "bytes",
      etag: `"${file.sha256}"`,
      "cache-control": "private, no-cache",
      "content-security-policy": "sandbox; default-src 'none'",
    };
    const range = parseRange(req.headers.get("range"), file.size);
    if (range === "invalid") {
      handle.close();
      return new Response(null, {
        status: 416,
        headers: { ...headers, "content-range": `bytes */${file.size}` },
      });
    }
    const [start, end] = range ?? [0, file.size - 1];
    const length = Math.max(0, end - start + 1);
    headers["content-length"] = String(length);
    if (range !== undefined) headers["content-range"] = `bytes ${start}-${end}/${file.size}`;
    const status = range === undefined ? 200 : 206;
    if (req.method === "HEAD" || length === 0) {
      handle.close();
      return new Response(null, { status, headers });
    }
    try {
      await handle.seek(start, Deno.SeekMode.Start);
    } catch (error) {
      handle.close();
      throw error;
    }
    return new Response(handle.readable.pipeThrough(take(length)), { status, headers });
  }

  /** Whether `user` may download `file`: its uploader, or someone it was sent to. */
  async canRead(user: UserRecord, file: FileRecord): Promise<boolean> {
    if (file.ownerId === user.id) return true;
    const uses = await this.#files.uses(file.id);
    const me = nameKey(user.name);
    if (uses.dmKeys.some((key) => key.split(" ").includes(me))) return true;
    if (uses.rooms.length === 0) return false;
    const mine = new Set((await this.#memberships.of(user.id)).map(nameKey));
    return uses.rooms.some((room) => mine.has(nameKey(room)));
  }

  /**
   * The file `id` if `user` uploaded it (to attach to a message).
   *
   * @throws {ChatError} `no_such_file`
   */
  async attachable(user: UserRecord | undefined, id: string): Promise<FileRecord> {
    const file = user && ID_RE.test(id) ? await this.#files.get(id) : undefined;
    if (file === undefined || file.ownerId !== user!.id) {
      throw new ChatError("no_such_file", "Cannot attach: no file of yours has that id");
    }
    return file;
  }

  /** Deletes expired and never-sent files, and partial uploads left by a crash. */
  async sweep(now: number = this.#clock.now()): Promise<void> {
    const retention = this.#options.retentionMs;
    const before = retention > 0 ? now - retention : -Infinity;
    for (const sha of await this.#files.expire(before, now - ORPHAN_MS)) {
      await this.#removeUnused(sha);
    }
    for await (const entry of Deno.readDir(`${this.#options.dir}/tmp`)) {
      const path = `${this.#options.dir}/tmp/${entry.name}`;
      const info = await Deno.stat(path).catch(() => undefined);
      if (info?.mtime && now - info.mtime.getTime() > 3600_000) {
        await Deno.remove(path).catch(() => {});
      }
    }
  }

  /**
   * The account a signed download link (`?u=…&e=…&s=…`, see src/files/capability.ts) grants
   * file `id` to; undefined when the request carries none. A link that is forged, expired or for
   * another file answers 404, like a file that does not exist.
   */
  async #linked(req: Request, id: string): Promise<UserRecord | Response | undefined> {
    const query = new URL(req.url).searchParams;
    if (!query.has("s")) return undefined;
    const userId = ID_RE.test(id) ? this.links.check(id, query, this.#clock.now()) : undefined;
    const user = userId === undefined ? undefined : await this.#accounts.user(userId);
    return user === undefined || user.disabled ? notFound() : user;
  }

  async #authenticate(req: Request, ip: string): Promise<UserRecord | Response> {
    const login = await this.#authenticated(req, ip);
    return login instanceof Response ? login : login.user;
  }

  async #authenticated(req: Request, ip: string): Promise<AccountLogin | Response> {
    const auth = req.headers.get("authorization") ?? "";
    const m = /^Bearer ([A-Za-z0-9_-]{10,100})$/.exec(auth);
    const deny = async (status: number, code: string, message: string, headers = {}) => {
      await req.body?.cancel().catch(() => {});
      return problem(status, code, message, headers);
    };
    if (m === null) {
      return await deny(
        401,
        "login_required",
        "Log in: send your session token as a Bearer token",
        {
          "www-authenticate": "Bearer",
        },
      );
    }
    try {
      return await this.#accounts.resume(m[1]!, ip);
    } catch (error) {
      if (!(error instanceof ChatError)) throw error; // the store's failure, not the client's
      if (error.code === "rate_limited") {
        return await deny(429, "rate_limited", error.message, {
          "retry-after": String(error.retryAfter ?? 1),
        });
      }
      return await deny(401, "auth_failed", "Invalid or expired token", {
        "www-authenticate": "Bearer",
      });
    }
  }
}

function newId(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

/**
 * Parses a single `Range: bytes=…` header against a file of `size` bytes.
 *
 * @returns `[start, end]` inclusive, undefined for no (or an unsupported multi-) range, or
 * "invalid" when unsatisfiable
 */
export function parseRange(
  header: string | null,
  size: number,
): [number, number] | "invalid" | undefined {
  if (header === null) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return header.includes(",") ? undefined : "invalid";
  const [, a, b] = m;
  if (a === "" && b === "") return "invalid";
  let start: number;
  let end: number;
  if (a === "") {
    start = Math.max(0, size - Number(b));
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return "invalid";
  return [start, end];
}

/** Passes the first `n` bytes, then ends (and cancels the source). */
function take(n: number): TransformStream<Uint8Array, Uint8Array> {
  let left = n;
  return new TransformStream({
    transform(chunk, controller) {
      if (left <= 0) return;
      const part = chunk.length <= left ? chunk : chunk.subarray(0, left);
      left -= part.length;
      controller.enqueue(part);
      if (left === 0) controller.terminate();
    },
  });
}
