/**
 * The typed view of protocol v1 a client needs: which reply each request gets (from
 * `src/protocol/frames.ts`: `AckFields`, `ServerFrame`, `HistoryFrame`), and which frames are
 * events. `request({ type: "join", … })` resolves to {@linkcode AckOf}`<"join">`, `hello` to a
 * {@linkcode WelcomeFrame}, `history` to a `HistoryFrame`, `ping` to a {@linkcode PongFrame}.
 *
 * @module
 */

import type {
  AckFields,
  CallStateFrame,
  ClientFrame,
  DeletedFrame,
  EditedFrame,
  HistoryFrame,
  MessageFrame,
  ModerationFrame,
  PresenceFrame,
  ReactionsFrame,
  ReadFrame,
  ServerFrame,
  TopicFrame,
  TypingFrame,
  UploadProgressFrame,
  VoiceOfferFrame,
  VoiceStateFrame,
  WallFrame,
} from "../../protocol/frames.ts";

/** The server's `welcome`, the reply to `hello` (with the limits it announces). */
export type WelcomeFrame = Extract<ServerFrame, { type: "welcome" }>;

/** The reply to `ping`. */
export type PongFrame = Extract<ServerFrame, { type: "pong" }>;

/** An `error` frame. */
export type ErrorFrame = Extract<ServerFrame, { type: "error" }>;

/** The `ack` of request type `T`, with that request's fields. */
export type AckOf<T extends keyof AckFields> = { type: "ack"; ref?: string } & AckFields[T];

/** A client frame the server answers (every one but `pong`). */
export type RequestFrame = Exclude<ClientFrame, { type: "pong" }>;

/** The `type` of a {@linkcode RequestFrame}. */
export type RequestType = RequestFrame["type"];

/** The reply to a request of type `T` (a union when `T` is). */
export type ReplyTo<T extends RequestType> = T extends "hello" ? WelcomeFrame
  : T extends "ping" ? PongFrame
  : T extends "history" ? HistoryFrame
  : T extends keyof AckFields ? AckOf<T>
  : never;

/** Any reply: `welcome`, an `ack`, `pong` or `history`. */
export type Reply = ReplyTo<RequestType>;

/** A request and its reply, paired so that switching on `type` narrows both. */
export type Exchange = {
  [T in RequestType]: { type: T; frame: Extract<RequestFrame, { type: T }>; reply: ReplyTo<T> };
}[RequestType];

/**
 * Pairs a request with the reply it got (from {@linkcode Peer.request}, which matched them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exchange } from "./frames.ts";
 * const ex = exchange({ type: "nick", name: "al" }, { type: "ack", name: "al" });
 * if (ex.type === "nick") assert.equal(ex.reply.name, "al");
 * ```
 */
export function exchange<F extends RequestFrame>(frame: F, reply: ReplyTo<F["type"]>): Exchange {
  return { type: frame.type, frame, reply } as Exchange;
}

/** A server notice. */
export type NoticeEvent = Extract<ServerFrame, { type: "notice" }>;

/** The server is going away; `permanent: true` means the client will not reconnect. */
export type ShutdownEvent = Extract<ServerFrame, { type: "shutdown" }>;

/** An `error` frame that answers no request of this client (e.g. a line it could not read). */
export type UnsolicitedErrorEvent = ErrorFrame;

/** Recent messages of a room, sent when it is joined (oldest first). */
export type HistoryEvent = HistoryFrame;

/** A room's topic changed (`topic` absent: cleared) and who changed it. */
export type TopicEvent = TopicFrame;

/**
 * A moderation action in a room (kick, ban, unban, mute, unmute, op, deop, invite: with `name`
 * and maybe `reason`; or `mode`, with the room's `modes` after it). A kick or a ban naming you
 * means you are out of the room (no `left` presence follows).
 */
export type ModerationEvent = ModerationFrame;

/** An administrator's message to everyone on the server. */
export type WallEvent = WallFrame;

/** An event the server sent. Replies (`welcome`, `ack`, `pong`, errors with a `ref`) never appear. */
export type ServerEvent =
  | MessageFrame
  | HistoryEvent
  | PresenceFrame
  | NoticeEvent
  | ShutdownEvent
  | UnsolicitedErrorEvent
  | TopicEvent
  | ModerationEvent
  | WallEvent
  | EditedFrame
  | DeletedFrame
  | ReactionsFrame
  | TypingFrame
  | ReadFrame
  | UploadProgressFrame
  | VoiceEvent;

/** A voice event: who is in a room's voice, an offer to answer, or your voice ended. */
export type VoiceEvent =
  | VoiceStateFrame
  | VoiceOfferFrame
  | Extract<ServerFrame, { type: "voice_ended" }>
  | CallStateFrame;

const EVENT_TYPES: ReadonlySet<string> = new Set<ServerEvent["type"]>([
  "message",
  "history",
  "presence",
  "notice",
  "shutdown",
  "error",
  "topic",
  "moderation",
  "wall",
  "edited",
  "deleted",
  "reactions",
  "typing",
  "read",
  "upload_progress",
  "voice_state",
  "voice_offer",
  "voice_ended",
  "call_state",
]);

/** Whether a frame with this `type` is an event (when it answers no request). */
export function isEventType(type: string): type is ServerEvent["type"] {
  return EVENT_TYPES.has(type);
}
