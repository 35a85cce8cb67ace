/**
 * HTTP(S) to the server's web port, for file transfer: `fetch` for plain HTTP and for verified
 * TLS (with `caCerts` through `Deno.createHttpClient`), and `node:https` with
 * `rejectUnauthorized: false` for `insecure` (Deno's fetch has no per-client switch to skip
 * verification, as `Deno.connectTls` has none either).
 *
 * @module
 */

import * as https from "node:https";
import { Readable } from "node:stream";
import { tlsError } from "./_dial.ts";
import { FileTransferError } from "./errors.ts";

/** Where the web port is and how to trust it: the chat connection's TLS settings. */
export interface HttpEndpoint {
  /** The server's host name or address (with TLS, the name its certificate must carry). */
  hostname: string;
  /** The web port. */
  port: number;
  /** Use HTTPS. */
  tls: boolean;
  /** Extra trusted certificates (PEM). */
  caCerts?: string[];
  /** HTTPS without verifying the certificate. */
  insecure?: boolean;
}

/** One request: the subset of `RequestInit` file transfer needs. */
export interface HttpRequest {
  method: "GET" | "HEAD" | "POST";
  headers: Record<string, string>;
  body?: ReadableStream<Uint8Array>;
  signal?: AbortSignal;
}

/** Requests to one server's web port; close it to release its connections. */
export class HttpTransport implements Disposable {
  /** `http://host:port` or `https://host:port`. */
  readonly base: string;
  readonly #endpoint: HttpEndpoint;
  #client: Deno.HttpClient | undefined;

  /** @param endpoint where the web port is and how to trust it */
  constructor(endpoint: HttpEndpoint) {
    this.#endpoint = endpoint;
    const host = endpoint.hostname.includes(":") ? `[${endpoint.hostname}]` : endpoint.hostname;
    this.base = `${endpoint.tls ? "https" : "http"}://${host}:${endpoint.port}`;
  }

  /**
   * Sends a request to `path` (with its query) and resolves with the response, whose body
   * streams.
   *
   * @throws {TlsVerificationError} when the server's certificate does not verify
   * @throws {FileTransferError} `unreachable` when the server cannot be reached
   */
  async fetch(path: string, request: HttpRequest): Promise<Response> {
    request.signal?.throwIfAborted();
    try {
      return await this.#fetch(this.base + path, request);
    } catch (error) {
      if (request.signal?.aborted) throw request.signal.reason;
      // Deno's fetch says "fetch failed"; what happened is in its cause.
      const detail = error instanceof Error && error.cause instanceof Error
        ? error.cause.message
        : error instanceof Error
        ? error.message
        : String(error);
      throw tlsError(new Error(detail), this.#endpoint.hostname) ??
        new FileTransferError(
          "unreachable",
          `Cannot reach the server's web port at ${this.base}: ${detail.replace(/^.*: /s, "")}`,
          { cause: error },
        );
    }
  }

  #fetch(url: string, request: HttpRequest): Promise<Response> {
    if (this.#endpoint.tls && this.#endpoint.insecure) return insecureFetch(url, request);
    const init: RequestInit & { client?: Deno.HttpClient } = {
      method: request.method,
      headers: request.headers,
    };
    if (request.body !== undefined) init.body = request.body;
    if (request.signal !== undefined) init.signal = request.signal;
    const caCerts = this.#endpoint.caCerts;
    if (this.#endpoint.tls && caCerts !== undefined) {
      init.client = this.#client ??= Deno.createHttpClient({ caCerts });
    }
    return fetch(url, init);
  }

  /** Releases the connections kept for verified TLS with `caCerts`. Idempotent. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  /** Same as {@linkcode HttpTransport.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A fetch over `node:https` that does not verify the certificate; bodies stream both ways. */
function insecureFetch(url: string, request: HttpRequest): Promise<Response> {
  const target = new URL(url);
  const { signal } = request;
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: target.hostname.replace(/^\[|\]$/g, ""),
      port: Number(target.port),
      path: target.pathname + target.search,
      method: request.method,
      headers: request.headers,
      rejectUnauthorized: false,
      // Nothing is verified, so no CA is needed; naming none also keeps Deno's node:https from
      // loading the system's (which needs --allow-sys=ca).
      ca: [],
      agent: false, // one connection per request, closed after it: nothing lingers
    }, (res) => {
      const headers = new Headers();
      for (const [key, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const one of Array.isArray(value) ? value : [value]) headers.append(key, one);
      }
      const status = res.statusCode ?? 502;
      const empty = request.method === "HEAD" || status === 204 || status === 304;
      if (empty) res.resume();
      const body = empty ? null : Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
      resolve(new Response(body, { status, headers }));
    });
    const onAbort = () => req.destroy(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    req.on("close", () => signal?.removeEventListener("abort", onAbort));
    req.on("error", (error: Error) => reject(signal?.aborted ? signal.reason : error));
    if (request.body === undefined) req.end();
    else void pump(request.body, req);
  });
}

/** Writes `body` into `req` with backpressure, then ends it; stops if the request closes. */
async function pump(
  body: ReadableStream<Uint8Array>,
  req: ReturnType<typeof https.request>,
): Promise<void> {
  const reader = body.getReader();
  let closed = false;
  req.once("close", () => {
    closed = true;
    reader.cancel().catch(() => {});
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || closed) break;
      if (!req.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            req.off("drain", go);
            req.off("close", go);
            resolve();
          };
          req.on("drain", go);
          req.on("close", go);
        });
      }
    }
    if (!closed) req.end();
  } catch (error) {
    req.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}
