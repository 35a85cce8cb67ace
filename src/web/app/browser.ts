/// <reference lib="dom" />
/**
 * The browser features the controller uses beside the WebSocket: desktop notifications, file
 * uploads (with progress) and downloads.
 *
 * @module
 */

import type { FileRef } from "../../protocol/frames.ts";

/** Whether this browser has notifications and they are allowed for the page. */
export function notificationsAllowed(): boolean {
  return "Notification" in globalThis && Notification.permission === "granted";
}

/**
 * Asks the browser's permission to notify (a prompt the first time).
 *
 * @returns why notifications cannot be used, or undefined when they can
 */
export async function requestNotifications(): Promise<string | undefined> {
  if (!("Notification" in globalThis)) return "This browser cannot show notifications";
  const permission = Notification.permission === "granted"
    ? "granted"
    : await Notification.requestPermission();
  return permission === "granted"
    ? undefined
    : "Notifications are blocked: allow them in the browser's site settings";
}

/** Shows a desktop notification; clicking it focuses the tab and calls `onClick`. */
export function notify(title: string, body: string, tag: string, onClick: () => void): void {
  if (!notificationsAllowed()) return;
  try {
    const n = new Notification(title, {
      body: body.length > 200 ? `${body.slice(0, 200)}…` : body,
      tag,
    });
    n.onclick = () => {
      focus();
      onClick();
      n.close();
    };
  } catch {
    // Some platforms only allow notifications from a service worker: nothing to do.
  }
}

/** A refusal from the server's file endpoints, with its `message` (shown to the user). */
export class FileError extends Error {
  /** The HTTP status (0 when no answer came). */
  readonly status: number;
  /** The server's error code (`too_large`, `quota_exceeded`, `rate_limited`, …), if any. */
  readonly code: string;

  constructor(message: string, status: number, code = "") {
    super(message);
    this.name = "FileError";
    this.status = status;
    this.code = code;
  }
}

/** The user gave up an upload (Cancel): nothing to report. */
export class UploadCancelled extends Error {
  constructor() {
    super("Upload cancelled");
    this.name = "UploadCancelled";
  }
}

/** The error a refused file request stands for: the server's own message when it sent one. */
function refusal(status: number, body: string): FileError {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed.message === "string" && parsed.message !== "") {
      return new FileError(parsed.message, status, String(parsed.error ?? ""));
    }
  } catch {
    // not JSON: a proxy's page, say
  }
  return new FileError(`The server answered ${status}`, status);
}

/** An upload under way: its result, and how to stop it. */
export interface UploadTask {
  /** The stored file; rejects with {@linkcode FileError} or {@linkcode UploadCancelled}. */
  done: Promise<FileRef>;
  /** Stops the upload (`done` then rejects with {@linkcode UploadCancelled}). */
  cancel(): void;
}

/**
 * Uploads `file` to `POST /files?…&upload=ID` with the session token. How far it has got comes
 * from the server (`upload_progress` frames on the chat connection, for `uploadId`), not from
 * the browser, whose upload progress counts bytes handed to its socket, not bytes received.
 */
export function uploadFile(file: File, token: string, uploadId: string): UploadTask {
  const xhr = new XMLHttpRequest();
  const done = new Promise<FileRef>((resolve, reject) => {
    xhr.open(
      "POST",
      `/files?name=${encodeURIComponent(file.name)}&upload=${encodeURIComponent(uploadId)}`,
    );
    xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.setRequestHeader("content-type", file.type === "" ? "application/octet-stream" : file.type);
    xhr.onload = () => {
      if (xhr.status !== 201) return reject(refusal(xhr.status, xhr.responseText));
      try {
        resolve(JSON.parse(xhr.responseText) as FileRef);
      } catch {
        reject(new FileError("The server's answer made no sense", xhr.status));
      }
    };
    xhr.onerror = () =>
      reject(new FileError("The upload was cut off: check the connection and try again", 0));
    xhr.onabort = () => reject(new UploadCancelled());
    xhr.send(file);
  });
  return { done, cancel: () => xhr.abort() };
}

/** A fresh id for an upload (`?upload=ID`): 16 random base64url characters. */
export function newUploadId(): string {
  return crypto.getRandomValues(new Uint8Array(12)).reduce(
    (id, b) => id + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[b & 63],
    "",
  );
}

/**
 * Fetches an attached file with the session token (the server checks who may read it) and
 * checks its SHA-256 against the one the server announced.
 *
 * @throws {FileError} when the server refuses or the content does not match its checksum
 */
export async function fetchFile(file: FileRef, token: string): Promise<Blob> {
  const res = await fetch(`/files/${encodeURIComponent(file.id)}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!res.ok) throw refusal(res.status, await res.text().catch(() => ""));
  const blob = await res.blob();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (file.sha256 !== "" && hex !== file.sha256.toLowerCase()) {
    throw new FileError("the file arrived damaged (checksum mismatch)", res.status);
  }
  return blob;
}

/** Saves `blob` as `name` through a temporary object URL and a download link. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
