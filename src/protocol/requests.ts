/**
 * What a session works with once a dialect has read the wire: typed requests in, typed results
 * out. A handler returns a {@linkcode Result}; the connection's dialect renders it (a JSON
 * frame, text lines, and later IRC numerics). No handler formats text for a mode.
 *
 * @module
 */

import type {
  AckFields,
  ClientFrame,
  HistoryFrame,
  MessageFrame,
  ModerationAction,
  WelcomeFrame,
} from "./frames.ts";

/** A request: a client frame, or (text mode only) a request for help. */
export type Request = ClientFrame | { type: "help"; ref?: string };

/** The `type` of a request. */
export type RequestType = Request["type"];

/** The request of type `K`. */
export type RequestOf<K extends RequestType> = Extract<Request, { type: K }>;

/** The `ack` frame answering a request of type `K`. */
export type Ack<K extends keyof AckFields> = { type: "ack" } & AckFields[K];

/**
 * What a request achieved, by request type: the reply frame the protocol defines for it, plus
 * what a dialect needs to say it in words (text mode) that the frame does not carry.
 */
export type Result =
  | { command: "hello"; reply: WelcomeFrame; online: boolean }
  | { command: "ping"; reply: { type: "pong" } }
  | { command: "pong" }
  | { command: "history"; reply: HistoryFrame }
  | { command: "nick"; reply: Ack<"nick"> }
  | { command: "join"; reply: Ack<"join"> }
  /** `current`: the session's current room after leaving, when leaving changed it. */
  | { command: "part"; reply: Ack<"part">; current?: string | null }
  | { command: "rooms"; reply: Ack<"rooms"> }
  | { command: "who"; reply: Ack<"who"> }
  /** `message`: the message as stored and delivered. */
  | { command: "send"; reply: Ack<"send">; message: MessageFrame }
  | { command: "login" | "register"; reply: Ack<"login"> }
  /** `name`: who is leaving. */
  | { command: "logout" | "quit"; reply: Ack<"quit">; name: string }
  | { command: "passwd" | "help"; reply: Ack<"help"> }
  | { command: "topic"; reply: Ack<"topic"> }
  | { command: ModerationAction | "wall"; reply: Ack<"wall"> }
  | { command: "mode"; reply: Ack<"mode"> }
  | { command: "edit"; reply: Ack<"edit"> }
  | { command: "delete"; reply: Ack<"delete"> }
  | { command: "react"; reply: Ack<"react"> }
  | { command: "typing"; reply: Ack<"typing"> }
  | { command: "search"; reply: Ack<"search">; text: string }
  | { command: "read"; reply: Ack<"read"> }
  | { command: "unread"; reply: Ack<"unread"> }
  | { command: "voice_join"; reply: Ack<"voice_join"> }
  | { command: "voice_leave"; reply: Ack<"voice_leave"> }
  | { command: "voice_answer" | "voice_ice"; reply: Ack<"voice_ice"> }
  | { command: "voice_mute"; reply: Ack<"voice_mute"> }
  | { command: "voice_moderate"; reply: Ack<"voice_moderate"> }
  | { command: "call"; reply: Ack<"call"> }
  | { command: "voice_servers"; reply: Ack<"voice_servers"> }
  | { command: "call_accept" | "call_decline" | "call_hangup"; reply: Ack<"call_hangup"> }
  /** `web`: the web app's address, for the link to join from a browser. */
  | { command: "voice_who"; reply: Ack<"voice_who">; web?: string };

/** What a server-built reply holds: pages of history, and direct messages that waited. */
export type ReplayItem = HistoryFrame | MessageFrame;

/**
 * A handler's whole answer: its result (none for a replay the server starts by itself), what to
 * replay after it, and whether to close.
 */
export interface Outcome {
  result?: Result;
  /** Bytes a dialect made itself (IRC's answers of its own), written before anything else. */
  raw?: Uint8Array | null;
  /** Built by the server after the reply (history, waiting DMs): written page by page. */
  replay?: ReplayItem[];
  /** End the session once the reply is written. */
  close?: boolean;
}
