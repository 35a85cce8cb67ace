/**
 * The client core shared by the terminal/library client ({@linkcode ChatClient}) and the web
 * app: a transport-neutral {@linkcode FrameChannel} (TCP/TLS lines or a WebSocket),
 * {@linkcode Peer} for requests matched to typed replies by `ref` (with timeouts and
 * keepalive), one error hierarchy, one reconnect policy ({@linkcode Reconnector},
 * {@linkcode backoffDelay}: full jitter, base 500 ms, cap 10 s) and one {@linkcode restore}
 * step. No Deno or DOM APIs: it bundles for the browser as it is.
 *
 * @module
 */

export { channelPair, Inbox } from "./channel.ts";
export type { FrameChannel } from "./channel.ts";
export { BACKOFF_DEFAULTS, backoffDelay } from "./backoff.ts";
export type { BackoffOptions } from "./backoff.ts";
export {
  ConnectionClosedError,
  describe,
  ProtocolError,
  RequestTimeoutError,
  ServerError,
  SessionRefusedError,
} from "./errors.ts";
export { exchange, isEventType } from "./frames.ts";
export type {
  AckOf,
  ErrorFrame,
  Exchange,
  HistoryEvent,
  ModerationEvent,
  NoticeEvent,
  PongFrame,
  Reply,
  ReplyTo,
  RequestFrame,
  RequestType,
  ServerEvent,
  ShutdownEvent,
  TopicEvent,
  UnsolicitedErrorEvent,
  WallEvent,
  WelcomeFrame,
} from "./frames.ts";
export { Peer, PEER_DEFAULTS } from "./peer.ts";
export type { PeerOptions } from "./peer.ts";
export { Reconnector } from "./reconnect.ts";
export type { ReconnectPolicy, ReconnectResult, ReconnectState, RunOptions } from "./reconnect.ts";
export { restore } from "./restore.ts";
export type { Restored, RestorePlan } from "./restore.ts";
export { WebSocketChannel } from "./websocket_channel.ts";
