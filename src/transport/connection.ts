/**
 * The one message-oriented connection every transport (TCP, TLS, WebSocket) provides, so the
 * session loop is written once.
 *
 * @module
 */

import type { LineEvent } from "../protocol/line_splitter.ts";

/**
 * What a connection yields: a line (or why one was dropped), or, as the very first event, word
 * that the peer opened with a TLS handshake on a plain port.
 */
export type InboundEvent = LineEvent | { readonly error: "tls_hello" };

/** Which transport carries a connection. */
export type TransportKind = "tcp" | "tls" | "ws";

/** A connected peer, seen through whichever transport carries it. */
export interface Connection {
  /** The transport under this connection. */
  readonly kind: TransportKind;
  /** The peer's IP address. */
  readonly remoteIp: string;
  /** The peer's address, for logs (`ip:port`). */
  readonly remote: string;
  /** The address the peer reached this server at, when known (for links it is sent). */
  readonly localIp?: string;
  /**
   * Whether messages arrive as frames (WebSocket): such a connection gets no banner and speaks
   * JSON mode from its first frame.
   */
  readonly framed: boolean;
  /**
   * Inbound messages, in order: one per line (TCP, TLS) or text frame (WebSocket), or the
   * reason one was dropped. Ends when the peer closes; never throws.
   */
  messages(): AsyncIterable<InboundEvent>;
  /** Writes all of `data`, in order; rejects when the connection is gone. */
  write(data: Uint8Array): Promise<void>;
  /** Closes the connection; idempotent. */
  close(): void;
}
