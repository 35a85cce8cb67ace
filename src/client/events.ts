/**
 * What `for await (const event of client)` yields: events the server sent, and events the
 * client itself reports about its connection.
 *
 * @module
 */

import type { ErrorCode } from "../protocol/errors.ts";
import type { ServerEvent } from "./core/frames.ts";

export type {
  HistoryEvent,
  ModerationEvent,
  NoticeEvent,
  ServerEvent,
  ShutdownEvent,
  TopicEvent,
  UnsolicitedErrorEvent,
  WallEvent,
} from "./core/frames.ts";
export type { ModerationAction, Role, RoomState } from "../protocol/frames.ts";

/**
 * The connection dropped. `reconnecting` says whether the client will try again; when it is
 * false, this is the last event before the iteration ends.
 */
export interface DisconnectedEvent {
  type: "disconnected";
  /** Why, in a few words. */
  reason: string;
  /** Whether the client is going to reconnect. */
  reconnecting: boolean;
}

/** The connection is back: the session was restored as far as the server allowed. */
export interface ReconnectedEvent {
  type: "reconnected";
  /** The name now in use. */
  name: string;
  /** The rooms now joined. */
  rooms: string[];
  /** How many attempts it took (1 when the first one worked). */
  attempts: number;
  /** The chosen name, when it could not be taken back (e.g. someone else took it meanwhile). */
  lostName?: string;
  /** Rooms that could not be re-joined. */
  lostRooms?: string[];
  /**
   * The session token was refused when logging in again, with this error code (`auth_failed`:
   * it expired or was revoked); the client is a guest now and has forgotten the token.
   */
  lostSession?: ErrorCode;
}

/** The caller did not read events fast enough and the oldest `dropped` ones were discarded. */
export interface LaggedEvent {
  type: "lagged";
  /** How many events were discarded. */
  dropped: number;
}

/** An event the client reports about itself. */
export type ClientEvent = DisconnectedEvent | ReconnectedEvent | LaggedEvent;

/** Anything `for await (const event of client)` yields. */
export type ChatEvent = ServerEvent | ClientEvent;
