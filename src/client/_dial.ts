/**
 * Opening the byte stream under a {@linkcode TcpChannel}: plain TCP, TLS verified by Deno (system roots
 * plus `caCerts`), or TLS without verification through `node:tls` (Deno has no per-connection
 * switch to skip it).
 *
 * @module
 */

import { isIP } from "node:net";
import * as tls from "node:tls";
import { TlsVerificationError } from "./errors.ts";
import type { TlsProblem } from "./errors.ts";
import { NodeSocketStream } from "./_node_stream.ts";

/** What a {@linkcode TcpChannel} reads and writes: satisfied by `Deno.Conn` and by a node socket adapter. */
export interface ByteStream {
  /** Reads into `p`; resolves with the byte count, or null at the end of the stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves with how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes the stream; pending reads end. */
  close(): void;
}

/** Where to connect and how. */
export interface Endpoint {
  /** The server's host name or address (also the name its TLS certificate must carry). */
  hostname: string;
  /** The server's port. */
  port: number;
  /** Connect with TLS. */
  tls: boolean;
  /** Extra trusted certificates (PEM) for TLS: a private CA or a self-signed certificate. */
  caCerts?: string[];
  /** TLS without verifying the server's certificate. */
  insecure?: boolean;
}

/**
 * Connects to `endpoint` within `timeoutMs`; with TLS, the handshake (and so the certificate
 * check) is part of connecting.
 *
 * @throws {TlsVerificationError} when the server's certificate does not verify
 * @throws {Deno.errors.TimedOut} after `timeoutMs`
 */
export async function dial(
  endpoint: Endpoint,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<ByteStream> {
  signal.throwIfAborted();
  const { hostname, port } = endpoint;
  let opened: ByteStream | undefined;
  let abandoned = false;
  const connecting = (async () => {
    const stream = await open(endpoint);
    if (abandoned) stream.close();
    opened = stream;
    return stream;
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Deno.errors.TimedOut(
            `Cannot connect to ${hostname}:${port}: no answer within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([connecting, stop]);
  } catch (error) {
    abandoned = true;
    opened?.close();
    connecting.catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}

async function open(endpoint: Endpoint): Promise<ByteStream> {
  const { hostname, port } = endpoint;
  if (!endpoint.tls) {
    const conn = await Deno.connect({ hostname, port });
    try {
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
    } catch {
      // Gone already: reading will notice.
    }
    return conn;
  }
  if (endpoint.insecure) return await openInsecure(hostname, port);
  const options: Deno.ConnectTlsOptions = { hostname, port };
  if (endpoint.caCerts !== undefined) options.caCerts = endpoint.caCerts;
  const conn = await Deno.connectTls(options);
  try {
    await conn.handshake();
  } catch (error) {
    try {
      conn.close();
    } catch {
      // closed already
    }
    throw tlsError(error, hostname) ?? error;
  }
  return conn;
}

/** TLS through `node:tls` with `rejectUnauthorized: false`: encrypted, but not authenticated. */
function openInsecure(hostname: string, port: number): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const options: tls.ConnectionOptions = { host: hostname, port, rejectUnauthorized: false };
    if (isIP(hostname) === 0) options.servername = hostname;
    const socket = tls.connect(options);
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      socket.off("error", fail);
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
      resolve(new NodeSocketStream(socket));
    });
  });
}

/**
 * Turns a failed TLS handshake into a {@linkcode TlsVerificationError} when the certificate was
 * the problem (Deno reports it as `invalid peer certificate: …`); undefined otherwise.
 *
 * @param error what `handshake()` threw
 * @param hostname the name the certificate was checked against
 */
export function tlsError(error: unknown, hostname: string): TlsVerificationError | undefined {
  const raw = error instanceof Error ? error.message : String(error);
  if (!/invalid peer certificate|certificate/i.test(raw)) return undefined;
  let problem: TlsProblem = "other";
  let message = `the server's certificate is not valid: ${raw.replace(/^.*?certificate: /, "")}`;
  if (/UnknownIssuer/i.test(raw)) {
    problem = "unknown_issuer";
    message = "the server's certificate is not signed by a trusted certificate authority";
  } else if (/not valid for name|NotValidForName/i.test(raw)) {
    problem = "wrong_host";
    const names = [...raw.matchAll(/(?:DnsName|IpAddress)\(([^)]*)\)/g)]
      .map((m) => m[1]!.replace(/^"|"$/g, ""));
    message = `the server's certificate is not valid for the host name ${hostname}` +
      (names.length > 0 ? ` (it is for ${names.join(", ")})` : "");
  } else if (/NotValidYet/i.test(raw)) {
    problem = "not_yet_valid";
    message = "the server's certificate is not valid yet (check this computer's clock)";
  } else if (/Expired/i.test(raw)) {
    problem = "expired";
    message = "the server's certificate has expired";
  }
  return new TlsVerificationError(problem, message, { cause: error });
}
