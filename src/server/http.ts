/**
 * The HTTP side of the server: the embedded web client, `/healthz`, `/metrics` (for
 * administrators), `/ws`, which upgrades to a WebSocket served by the same session code as
 * TCP, and `/irc`, IRC over WebSocket (the IRCv3 binding) for web IRC clients.
 *
 * @module
 */

import type { FileService } from "../files/files.ts";
import type { Connection } from "../transport/connection.ts";
import type { HttpRequestInfo } from "./http_server.ts";
import { isLoopback } from "../net.ts";
import { ChatError } from "../protocol/errors.ts";
import { METRICS_CONTENT_TYPE, type MetricsEndpoint } from "./metrics.ts";
import type { Asset } from "../web/asset.ts";
import { ASSETS } from "../web/assets.gen.ts";
import { MAX_LINE_BYTES, MAX_TAG_BYTES } from "../irc/message.ts";
import type { WebSocketLimits } from "../transport/websocket.ts";
import { chooseProtocol } from "./websocket_upgrade.ts";

/** What the HTTP handler needs from the chat server. */
export interface HttpContext {
  /** Origins (`https://chat.example`) allowed to open `/ws`, beyond loopback and IP pages. */
  allowOrigins: readonly string[];
  /** Told of each WebSocket refused for its Origin (to hint at `--allow-origin`). */
  originRefused(origin: string): void;
  /** The largest WebSocket frame accepted, in bytes. */
  maxLine: number;
  /** Serves a WebSocket session until it ends (its HTTP connection holds its place in the caps). */
  serve(conn: Connection): void;
  /**
   * IRC over WebSocket at `/irc` (absent with `--no-irc`: `/irc` is then 404): serves an IRC
   * session until it ends, like `serve`.
   */
  irc?: { serve(conn: Connection): void };
  /** The body of `/healthz`: the numbers when `detailed` (for administrators), else the status. */
  health(detailed: boolean): Record<string, unknown>;
  /** File transfer, when the server has a data folder. */
  files: FileService | undefined;
  /** `/metrics` for administrators; absent: 404. */
  metrics?: MetricsEndpoint;
}

/** Headers every response carries. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
    "worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; " +
    "frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};

interface Served {
  asset: Asset;
  body: Uint8Array<ArrayBuffer>;
  /** The body compressed, when that saves something worth a header. */
  br: Uint8Array<ArrayBuffer> | undefined;
  gzip: Uint8Array<ArrayBuffer> | undefined;
}

function decode(asset: Asset): Served {
  // The build compressed the bodies (src/web/build.ts): here they are only read back.
  const bytes = (base64: string | undefined) =>
    base64 === undefined ? undefined : Uint8Array.fromBase64(base64) as Uint8Array<ArrayBuffer>;
  return { asset, body: bytes(asset.body)!, br: bytes(asset.br), gzip: bytes(asset.gzip) };
}

/** The encoding to send `served` in, from the request's `Accept-Encoding`. */
function encodingFor(req: Request, served: Served): "br" | "gzip" | undefined {
  const accepted = (req.headers.get("accept-encoding") ?? "").toLowerCase().split(",")
    .map((part) => part.trim().split(";"))
    .filter(([, q]) => q === undefined || !/^\s*q=0(?:\.0*)?\s*$/.test(q))
    .map(([name]) => name);
  if (served.br !== undefined && accepted.includes("br")) return "br";
  if (served.gzip !== undefined && accepted.includes("gzip")) return "gzip";
  return undefined;
}

const STATIC = new Map(ASSETS.map((a) => [a.path, decode(a)]));

function respond(body: BodyInit | null, status: number, headers: Record<string, string> = {}) {
  return new Response(body, { status, headers: { ...SECURITY_HEADERS, ...headers } });
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** Whether a URL host name cannot be rebound by DNS: a loopback name or an IP literal. */
function pinnedHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || IPV4.test(h) || h.startsWith("[");
}

/**
 * Whether a WebSocket request's Origin may drive a session: an origin listed with
 * `--allow-origin`, or the page's own origin when the page was loaded from a loopback name or an
 * IP address. The `Host` header alone proves nothing: after DNS rebinding, a hostile page's
 * origin and the Host its requests carry both name the attacker's domain, now pointing here.
 * A server reached by a domain name lists that name's origin.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { originAllowed } from "./http.ts";
 * const ws = (origin: string, host: string) =>
 *   new Request("http://x/ws", { headers: { origin, host } });
 * assert.equal(originAllowed(ws("http://127.0.0.1:8080", "127.0.0.1:8080"), []), true);
 * assert.equal(originAllowed(ws("http://evil.example:8080", "evil.example:8080"), []), false);
 * assert.equal(
 *   originAllowed(ws("https://chat.example", "chat.example"), ["https://chat.example"]),
 *   true,
 * );
 * ```
 */
export function originAllowed(req: Request, allowed: readonly string[]): boolean {
  const origin = req.headers.get("origin");
  if (origin === null) return true; // not a browser: nothing to protect against
  if (allowed.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return url.host === req.headers.get("host") && pinnedHost(url.hostname);
}

/** Whether a request came from this machine directly (not through a proxy on it). */
export function fromLocalAdmin(req: Request, ip: string): boolean {
  return isLoopback(ip) && !req.headers.has("x-forwarded-for") &&
    !req.headers.has("forwarded") && !req.headers.has("x-real-ip");
}

/**
 * Makes the request handler for `serveHttp` (./http_server.ts), parley's own HTTP/1.1 server;
 * not for `Deno.serve`, whose `info` has no `upgradeWebSocket`.
 *
 * @example
 * ```ts ignore
 * import { type HttpContext, httpHandler } from "./http.ts";
 * import { serveHttp } from "./http_server.ts";
 * declare const ctx: HttpContext; // what the chat server provides
 * const handler = httpHandler(ctx);
 * for await (const conn of Deno.listen({ port: 8080 })) {
 *   serveHttp(conn, { remoteAddr: conn.remoteAddr, secure: false, handler });
 * }
 * ```
 */
export function httpHandler(
  ctx: HttpContext,
): (req: Request, info: HttpRequestInfo) => Response | Promise<Response> {
  return (req, info) => {
    const url = new URL(req.url);
    if (url.pathname === "/ws") return upgrade(ctx, req, info);
    if (url.pathname === "/irc" && ctx.irc !== undefined) {
      return upgradeIrc(ctx, ctx.irc, req, info);
    }
    if (url.pathname === "/files" || url.pathname.startsWith("/files/")) {
      return files(ctx, req, url, info.remoteAddr.hostname);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return respond("Method not allowed\n", 405, { allow: "GET, HEAD" });
    }
    if (url.pathname === "/healthz") {
      const detailed = fromLocalAdmin(req, info.remoteAddr.hostname);
      return respond(JSON.stringify(ctx.health(detailed)), 200, {
        "content-type": "application/json",
        "cache-control": "no-store",
      });
    }
    if (url.pathname === "/metrics" && ctx.metrics !== undefined) {
      return metrics(ctx.metrics, req, info.remoteAddr.hostname);
    }
    const served = STATIC.get(url.pathname);
    if (served === undefined) return respond("Not found\n", 404, { "content-type": "text/plain" });
    const { asset } = served;
    const encoding = encodingFor(req, served);
    // Each encoding is its own representation, with its own validator.
    const etag = encoding === undefined ? asset.etag : asset.etag.replace(/"$/, `-${encoding}"`);
    const headers: Record<string, string> = {
      "content-type": asset.type,
      etag,
      "cache-control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
      vary: "accept-encoding",
    };
    if (req.headers.get("if-none-match") === etag) return respond(null, 304, headers);
    if (encoding !== undefined) headers["content-encoding"] = encoding;
    const body = encoding === undefined ? served.body : served[encoding]!;
    headers["content-length"] = String(body.length);
    return respond(req.method === "HEAD" ? null : body, 200, headers);
  };
}

/**
 * `/metrics`, for administrators: a bearer session token of an account with the administrator
 * flag (401 for a token that is no session, 403 for one of another account), or, without a
 * token, a request made on this machine directly (not through a proxy on it).
 */
async function metrics(endpoint: MetricsEndpoint, req: Request, ip: string): Promise<Response> {
  const headers = { "cache-control": "no-store", "content-type": "text/plain; charset=utf-8" };
  const authorization = req.headers.get("authorization");
  if (authorization !== null) {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    if (token === undefined) {
      return respond("Use Authorization: Bearer TOKEN\n", 401, {
        ...headers,
        "www-authenticate": 'Bearer realm="parley"',
      });
    }
    try {
      if (await endpoint.authorize(token, ip) !== "admin") {
        return respond("Metrics are for administrators\n", 403, headers);
      }
    } catch (error) {
      if (!(error instanceof ChatError)) throw error;
      if (error.code === "rate_limited") {
        return respond(`${error.message}\n`, 429, {
          ...headers,
          "retry-after": String(error.retryAfter ?? 1),
        });
      }
      return respond("Unknown or expired session token\n", 401, {
        ...headers,
        "www-authenticate": 'Bearer realm="parley", error="invalid_token"',
      });
    }
  } else if (!fromLocalAdmin(req, ip)) {
    return respond("Metrics are for administrators: send Authorization: Bearer TOKEN\n", 401, {
      ...headers,
      "www-authenticate": 'Bearer realm="parley"',
    });
  }
  const body = endpoint.render();
  return respond(req.method === "HEAD" ? null : body, 200, {
    ...headers,
    "content-type": METRICS_CONTENT_TYPE,
  });
}

async function files(ctx: HttpContext, req: Request, url: URL, ip: string): Promise<Response> {
  let res: Response;
  const id = url.pathname.slice("/files/".length);
  if (ctx.files === undefined) res = respond("Not found\n", 404);
  else if (url.pathname === "/files") {
    res = req.method === "POST" || req.method === "PUT"
      ? await ctx.files.upload(req, ip)
      : respond("Method not allowed\n", 405, { allow: "POST, PUT" });
  } else if (req.method === "GET" || req.method === "HEAD") {
    res = await ctx.files.download(req, ip, id);
  } else res = respond("Method not allowed\n", 405, { allow: "GET, HEAD" });
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) {
    if (!res.headers.has(k)) res.headers.set(k, v);
  }
  return res;
}

/** The IRCv3 WebSocket subprotocols, text first: the one assumed when a client names none. */
export const IRC_SUBPROTOCOLS = ["text.ircv3.net", "binary.ircv3.net"] as const;

/**
 * `/irc`: IRC over WebSocket (https://ircv3.net/specs/extensions/websocket), one IRC line per
 * message without its CRLF; `binary.ircv3.net` gets binary frames, `text.ircv3.net` (or no
 * subprotocol) text frames. IRC's line limit (512 bytes and 8191 of tags) bounds each message;
 * the Origin policy is `/ws`'s.
 */
function upgradeIrc(
  ctx: HttpContext,
  irc: { serve(conn: Connection): void },
  req: Request,
  info: HttpRequestInfo,
): Response {
  const protocol = chooseProtocol(req.headers, IRC_SUBPROTOCOLS);
  if (req.headers.has("sec-websocket-protocol") && protocol === undefined) {
    return respond(`Offer one of the subprotocols ${IRC_SUBPROTOCOLS.join(", ")}\n`, 400, {
      "content-type": "text/plain",
    });
  }
  const maxMessage = MAX_LINE_BYTES + MAX_TAG_BYTES;
  return upgrade(ctx, req, info, {
    serve: (conn) => irc.serve(conn),
    limits: {
      maxMessage,
      maxInbound: 4 * maxMessage + 64 * 1024,
      ...protocol === undefined ? {} : { protocol },
      binary: protocol === "binary.ircv3.net",
      crlf: true,
    },
  });
}

function upgrade(
  ctx: HttpContext,
  req: Request,
  info: HttpRequestInfo,
  as: { serve(conn: Connection): void; limits: WebSocketLimits } = {
    serve: (conn) => ctx.serve(conn),
    limits: { maxMessage: ctx.maxLine, maxInbound: 4 * ctx.maxLine + 64 * 1024 },
  },
): Response {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return respond("Expected a WebSocket upgrade\n", 426, { upgrade: "websocket" });
  }
  if (!originAllowed(req, ctx.allowOrigins)) {
    ctx.originRefused(req.headers.get("origin") ?? "");
    return respond("Origin not allowed\n", 403, { "content-type": "text/plain" });
  }
  let upgraded: ReturnType<HttpRequestInfo["upgradeWebSocket"]>;
  try {
    upgraded = info.upgradeWebSocket(as.limits);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return respond(`${message}\n`, 400, { "content-type": "text/plain" });
  }
  as.serve(upgraded.connection);
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) upgraded.response.headers.set(k, v);
  return upgraded.response;
}
