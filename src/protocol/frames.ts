/**
 * The frames of wire protocol v1 (docs/protocol.md): what clients send, what the server
 * sends, and the parser that turns one JSON line into a checked {@linkcode ClientFrame}.
 *
 * @module
 */

import { ChatError } from "./errors.ts";
import type { ErrorCode } from "./errors.ts";

/** The protocol version this code speaks. */
export const PROTO = 1;

/** Fields every client frame may carry: `ref` is echoed on the reply. */
interface Ref {
  ref?: string;
}

/** A frame a client sends. Text-mode commands are translated into these too. */
export type ClientFrame =
  | Ref & {
    type: "hello";
    client?: string;
    proto?: number;
    /** Log in at once (a session token, or name and password), before the session is announced. */
    token?: string;
    name?: string;
    password?: string;
    /** The server's password, when it has one (`--server-password`). */
    serverPassword?: string;
  }
  | Ref & { type: "nick"; name: string }
  | Ref & { type: "join"; room: string }
  | Ref & { type: "part"; room: string }
  | Ref & { type: "rooms" }
  | Ref & { type: "who"; room: string }
  | Ref & { type: "ping" }
  | Ref & { type: "pong" }
  | Ref & {
    type: "send";
    room?: string;
    to?: string;
    text: string;
    action?: boolean;
    file?: string;
    replyTo?: number;
  }
  | Ref & { type: "quit"; reason?: string }
  | Ref & { type: "register"; name: string; password: string }
  | Ref & { type: "login"; name?: string; password?: string; token?: string }
  | Ref & { type: "logout" }
  | Ref & { type: "passwd"; old: string; new: string }
  | Ref & {
    type: "history";
    room?: string;
    with?: string;
    before?: number;
    after?: number;
    around?: number;
    limit?: number;
  }
  | Ref & { type: "topic"; room: string; text?: string }
  | Ref & { type: ModerationAction; room: string; name: string; reason?: string }
  | Ref & { type: "mode"; room: string; modes?: string }
  | Ref & { type: "wall"; text: string }
  | Ref & { type: "edit"; id: number; text: string }
  | Ref & { type: "delete"; id: number }
  | Ref & { type: "react"; id: number; emoji: string; off?: boolean }
  | Ref & { type: "typing"; room?: string; to?: string }
  | Ref & { type: "search"; text: string; room?: string; with?: string; limit?: number }
  /** `id` left out: up to the conversation's latest message. */
  | Ref & { type: "read"; room?: string; with?: string; id?: number }
  | Ref & { type: "unread" }
  | VoiceClientFrame;

/** The voice signalling requests (docs/voice.md, docs/protocol.md "Voice"). */
export type VoiceClientFrame =
  | Ref & { type: "voice_join"; room: string }
  | Ref & { type: "voice_leave"; room: string }
  | Ref & { type: "voice_answer"; room: string; sdp: string }
  | Ref & { type: "voice_ice"; room: string; candidate: string; mid?: string }
  | Ref & { type: "voice_mute"; room: string; muted?: boolean; deafened?: boolean }
  | Ref & { type: "voice_who"; room: string }
  | Ref & { type: "voice_moderate"; room: string; name: string; action: VoiceModeration }
  | Ref & { type: "voice_servers" }
  | Ref & { type: "call"; to: string }
  | Ref & { type: "call_accept"; call: string }
  | Ref & { type: "call_decline"; call?: string }
  | Ref & { type: "call_hangup"; call: string };

/** What an operator may do to someone in a room's voice. */
export type VoiceModeration = "mute" | "unmute" | "remove";

/** One person in a room's voice, as `voice_state` lists them. */
export interface VoiceParticipant {
  name: string;
  muted: boolean;
  deafened: boolean;
  /** Muted by an operator (cannot unmute themselves). */
  silenced?: true;
}

/** What changed, when a `voice_state` says: who and what. */
export type VoiceChange = "joined" | "left" | "muted" | "unmuted" | "removed";

/** The emoji a message may be reacted to with. */
export const REACTIONS: readonly string[] = [
  "👍",
  "👎",
  "😂",
  "❤️",
  "🎉",
  "😮",
  "😢",
  "🙏",
  "👀",
  "🔥",
];

/** The moderation requests that name a target (docs/protocol.md, "Rooms, roles and moderation"). */
export type ModerationAction =
  | "kick"
  | "ban"
  | "unban"
  | "mute"
  | "unmute"
  | "op"
  | "deop"
  | "invite";

/** A member's role in a room, as `join` and `who` report it (members without one are left out). */
export type Role = "admin" | "owner" | "op";

/** What `join` and `who` say of a room besides its members. */
export interface RoomState {
  /** The topic, when one is set. */
  topic?: string;
  /** The modes: `"+i"`, `"+m"`, `"+im"`, or `""` for none. */
  modes: string;
  /** The members with a role, by name. */
  roles: Record<string, Role>;
}

/** The `type` of a client frame. */
export type ClientFrameType = ClientFrame["type"];

/** A room and how many members it has. */
export interface RoomInfo {
  name: string;
  members: number;
}

/** A sender and how many of their direct messages waited for you. */
export interface UnreadCount {
  from: string;
  count: number;
}

/**
 * What the `ack` of each request carries (docs/protocol.md, "Client frames and their replies");
 * requests answered otherwise (`hello`, `ping`, `history`) or not at all (`pong`) are absent.
 */
export interface AckFields extends Record<ModerationAction, Record<never, never>> {
  nick: { name: string };
  join: { room: string; members: string[] } & RoomState;
  part: { room: string };
  rooms: { rooms: RoomInfo[] };
  who: { room: string; members: string[] } & RoomState;
  topic: { room: string; topic?: string };
  mode: { room: string; modes: string };
  wall: Record<never, never>;
  edit: { id: number; edited: number };
  delete: { id: number };
  react: { id: number; reactions: Record<string, number> };
  typing: Record<never, never>;
  search: { messages: MessageFrame[] };
  read: { id: number };
  unread: {
    rooms: { room: string; read: number; unread: number }[];
    conversations: { with: string; read: number; unread: number; last: MessageFrame }[];
  };
  send: { id: number; ts: number; waiting?: true };
  login: { name: string; token: string; rooms: string[]; unread: UnreadCount[] };
  register: AckFields["login"];
  logout: Record<never, never>;
  passwd: Record<never, never>;
  quit: Record<never, never>;
  help: Record<never, never>;
  voice_join: { room: string; participants: VoiceParticipant[] };
  voice_leave: { room: string };
  voice_answer: Record<never, never>;
  voice_ice: Record<never, never>;
  voice_mute: { room: string; muted: boolean; deafened: boolean };
  voice_who: { room: string; participants: VoiceParticipant[]; enabled: boolean };
  voice_moderate: { room: string; name: string; action: VoiceModeration };
  voice_servers: { iceServers: { urls: string[]; username: string; credential: string }[] };
  call: { call: string; to: string };
  call_accept: Record<never, never>;
  call_decline: Record<never, never>;
  call_hangup: Record<never, never>;
}

/** An `ack`: the reply of one request type, with its fields. */
export type AckFrame = { type: "ack"; ref?: string } & AckFields[keyof AckFields];

/** The limits a server announces in `welcome`, so that clients check input before sending it. */
export interface ServerLimits {
  /** The longest line (frame) the server reads, in bytes. */
  maxLine: number;
  /** The longest message text, in UTF-8 bytes. */
  maxText: number;
  /** The largest file accepted, in bytes; 0 when the server keeps no files. */
  maxFileSize: number;
  /** Flood control: lines that may be sent at once… */
  floodBurst: number;
  /** …then this many per second (0: no flood control). */
  floodRate: number;
}

/** A file attached to a message: download it from `GET /files/{id}` on the web port. */
export interface FileRef {
  id: string;
  name: string;
  size: number;
  type: string;
  sha256: string;
}

/** A chat message as recipients see it: `room` for a room message, `to` for a direct one. */
export interface MessageFrame {
  type: "message";
  id: number;
  room?: string;
  to?: string;
  from: string;
  text: string;
  ts: number;
  action?: boolean;
  /** Set on direct messages that waited for you while you were offline. */
  offline?: boolean;
  /** The attached file, if any. */
  file?: FileRef;
  /** The id of the message this one answers (in the same room or conversation). */
  replyTo?: number;
  /** With `replyTo`: who wrote the message answered, and its first line ({@linkcode replyQuote}). */
  quote?: ReplyQuote;
  /** When its author last edited it (ms since the epoch). */
  edited?: number;
  /** Deleted: its text is gone (`""`), and so is its file. */
  deleted?: true;
  /** Reactions, counted per emoji (only emoji someone used). */
  reactions?: Record<string, number>;
}

/** What a reply shows of the message it answers. */
export interface ReplyQuote {
  /** Who wrote it. */
  from: string;
  /** Its first non-blank line, at most {@linkcode MAX_QUOTE} characters (`""`: none, e.g. a file). */
  text: string;
  /** It was deleted (`text` is then `""`). */
  deleted?: true;
}

/** The most characters of a quoted line (a longer one is cut, ending with `…`). */
export const MAX_QUOTE = 80;

/**
 * The quote a reply to `m` carries: its sender and first non-blank line, cut to
 * {@linkcode MAX_QUOTE} characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { replyQuote } from "./frames.ts";
 * assert.deepEqual(replyQuote({ from: "al", text: "\n hi there \nmore" }), { from: "al", text: "hi there" });
 * assert.deepEqual(replyQuote({ from: "al", text: "", deleted: true }), { from: "al", text: "", deleted: true });
 * ```
 */
export function replyQuote(m: Pick<MessageFrame, "from" | "text" | "deleted">): ReplyQuote {
  if (m.deleted) return { from: m.from, text: "", deleted: true };
  const line = m.text.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
  const chars = [...line];
  const text = chars.length > MAX_QUOTE ? `${chars.slice(0, MAX_QUOTE - 1).join("")}…` : line;
  return { from: m.from, text };
}

/**
 * A page of stored messages, oldest first: sent on joining a room (the latest page) and as the
 * reply to `history`. `more` says whether older messages exist (page on with `before`).
 */
export interface HistoryFrame {
  type: "history";
  ref?: string;
  room?: string;
  with?: string;
  messages: MessageFrame[];
  more: boolean;
  /** With `after` or `around`: whether later messages exist (page on with `after`). */
  newer?: boolean;
  /** The message a page asked for with `around` is centred on. */
  around?: number;
}

/** What a presence event says happened. */
export type PresenceEvent = "joined" | "left" | "quit" | "renamed";

/**
 * A presence event. `room` is set for `joined` and `left`; `quit` and `renamed` concern every
 * room the recipient shares with `name` and carry no room.
 */
export interface PresenceFrame {
  type: "presence";
  room?: string;
  name: string;
  event: PresenceEvent;
  newName?: string;
}

/** The reply to `hello`: who the server is, the name you have, and the limits it enforces. */
export interface WelcomeFrame {
  type: "welcome";
  ref?: string;
  server: string;
  version: string;
  proto: number;
  name: string;
  limits: ServerLimits;
  /**
   * The web port as a URL, `http://HOST:PORT` or `https://HOST:PORT`, when the server has one:
   * where files go (`POST /files`, `GET /files/ID`) whichever port the chat connection is on.
   * HOST is the address the server listens on (perhaps `0.0.0.0`): clients use the host they
   * connected to, with this scheme and port.
   */
  web?: string;
  /** When `hello` logged in: what a `login` ack says. */
  login?: { name: string; token: string; rooms: string[]; unread: UnreadCount[] };
}

/** A room's topic changed (`topic` absent: cleared). */
export interface TopicFrame {
  type: "topic";
  room: string;
  topic?: string;
  by: string;
}

/** A moderation action in a room, announced to its members and its target. */
export type ModerationFrame =
  | {
    type: "moderation";
    room: string;
    action: ModerationAction;
    by: string;
    name: string;
    reason?: string;
  }
  | { type: "moderation"; room: string; action: "mode"; by: string; modes: string };

/** Where a message lives: its room, or the two names of its direct conversation. */
export type MessagePlace = { room: string } | { from: string; to: string };

/** A message was edited (everyone who can see it gets this). */
export type EditedFrame =
  & { type: "edited"; id: number; text: string; edited: number; by: string }
  & MessagePlace;

/** A message was deleted. */
export type DeletedFrame = { type: "deleted"; id: number; by: string } & MessagePlace;

/** A message's reactions changed. */
export type ReactionsFrame =
  & { type: "reactions"; id: number; reactions: Record<string, number> }
  & MessagePlace;

/** Another session of your account read up to a message. */
export type ReadFrame = { type: "read"; id: number } & ({ room: string } | { with: string });

/** Someone is typing in a room, or to you. */
export type TypingFrame = { type: "typing"; name: string } & ({ room: string } | { to: string });

/**
 * How much of an upload (`POST /files?upload=ID`) the server has received and written to disk,
 * sent to the chat sessions logged in with the token that uploads it; `size` is the declared
 * `Content-Length` (absent for a chunked body).
 */
export interface UploadProgressFrame {
  type: "upload_progress";
  upload: string;
  received: number;
  size?: number;
}

/** An administrator's message to everyone. */
export interface WallFrame {
  type: "wall";
  from: string;
  text: string;
}

/** A frame the server sends. */
export type ServerFrame =
  | WelcomeFrame
  | AckFrame
  | {
    type: "error";
    ref?: string;
    code: ErrorCode;
    message: string;
    retryAfter?: number;
    /** `serverPassword`: the server wants its password in `hello` (`auth_failed`). */
    need?: "serverPassword";
  }
  | { type: "pong"; ref?: string }
  | { type: "ping" }
  | MessageFrame
  | HistoryFrame
  | PresenceFrame
  | { type: "notice"; text: string }
  | TopicFrame
  | ModerationFrame
  | WallFrame
  | EditedFrame
  | DeletedFrame
  | ReactionsFrame
  | TypingFrame
  | ReadFrame
  | UploadProgressFrame
  | { type: "shutdown"; reason: string; permanent: boolean }
  | VoiceStateFrame
  | VoiceOfferFrame
  | { type: "voice_ended"; room: string; reason: string }
  | CallStateFrame;

/**
 * A direct call changed, sent to every session of both people: `ringing` (ring, if you are
 * `to`), `active` (accepted: its voice room is `call:` and the call's id), `ended` (with why).
 */
export interface CallStateFrame {
  type: "call_state";
  call: string;
  from: string;
  to: string;
  state: "ringing" | "active" | "ended";
  reason?: string;
}

/** Who is in a room's voice, sent to its members on every change (`name` and `change`: what). */
export interface VoiceStateFrame {
  type: "voice_state";
  room: string;
  participants: VoiceParticipant[];
  name?: string;
  change?: VoiceChange;
  by?: string;
}

/**
 * The server's SDP offer to one participant (first on joining, again when someone joins or
 * leaves): answer it with `voice_answer`. `streams` names whose audio each m-line (by mid) carries.
 */
export interface VoiceOfferFrame {
  type: "voice_offer";
  room: string;
  sdp: string;
  streams: Record<string, string>;
}

type FieldKind = "string" | "number" | "boolean";
interface FieldSpec {
  readonly required: Readonly<Record<string, FieldKind>>;
  readonly optional: Readonly<Record<string, FieldKind>>;
}

/** The fields of a moderation request that names a target. */
const TARGETED: FieldSpec = {
  required: { room: "string", name: "string" },
  optional: { reason: "string" },
};

/** The fields each client frame type takes, checked in one place by {@linkcode parseClientFrame}. */
const SPECS: Readonly<Record<ClientFrameType, FieldSpec>> = {
  hello: {
    required: {},
    optional: {
      client: "string",
      proto: "number",
      token: "string",
      name: "string",
      password: "string",
      serverPassword: "string",
    },
  },
  nick: { required: { name: "string" }, optional: {} },
  join: { required: { room: "string" }, optional: {} },
  part: { required: { room: "string" }, optional: {} },
  rooms: { required: {}, optional: {} },
  who: { required: { room: "string" }, optional: {} },
  ping: { required: {}, optional: {} },
  pong: { required: {}, optional: {} },
  send: {
    required: { text: "string" },
    optional: {
      room: "string",
      to: "string",
      action: "boolean",
      file: "string",
      replyTo: "number",
    },
  },
  quit: { required: {}, optional: { reason: "string" } },
  register: { required: { name: "string", password: "string" }, optional: {} },
  login: { required: {}, optional: { name: "string", password: "string", token: "string" } },
  logout: { required: {}, optional: {} },
  passwd: { required: { old: "string", new: "string" }, optional: {} },
  history: {
    required: {},
    optional: {
      room: "string",
      with: "string",
      before: "number",
      after: "number",
      around: "number",
      limit: "number",
    },
  },
  topic: { required: { room: "string" }, optional: { text: "string" } },
  kick: TARGETED,
  ban: TARGETED,
  unban: TARGETED,
  mute: TARGETED,
  unmute: TARGETED,
  op: TARGETED,
  deop: TARGETED,
  invite: TARGETED,
  mode: { required: { room: "string" }, optional: { modes: "string" } },
  wall: { required: { text: "string" }, optional: {} },
  edit: { required: { id: "number", text: "string" }, optional: {} },
  delete: { required: { id: "number" }, optional: {} },
  react: { required: { id: "number", emoji: "string" }, optional: { off: "boolean" } },
  typing: { required: {}, optional: { room: "string", to: "string" } },
  search: {
    required: { text: "string" },
    optional: { room: "string", with: "string", limit: "number" },
  },
  read: { required: {}, optional: { id: "number", room: "string", with: "string" } },
  unread: { required: {}, optional: {} },
  voice_join: { required: { room: "string" }, optional: {} },
  voice_leave: { required: { room: "string" }, optional: {} },
  voice_answer: { required: { room: "string", sdp: "string" }, optional: {} },
  voice_ice: { required: { room: "string", candidate: "string" }, optional: { mid: "string" } },
  voice_mute: { required: { room: "string" }, optional: { muted: "boolean", deafened: "boolean" } },
  voice_who: { required: { room: "string" }, optional: {} },
  voice_moderate: {
    required: { room: "string", name: "string", action: "string" },
    optional: {},
  },
  voice_servers: { required: {}, optional: {} },
  call: { required: { to: "string" }, optional: {} },
  call_accept: { required: { call: "string" }, optional: {} },
  call_decline: { required: {}, optional: { call: "string" } },
  call_hangup: { required: { call: "string" }, optional: {} },
};

/** Each frame's fields as lists, made once (a frame is checked against them on every line). */
const FIELDS = Object.fromEntries(
  Object.entries(SPECS).map(([type, spec]) => [type, {
    required: Object.entries(spec.required),
    optional: Object.entries(spec.optional),
  }]),
) as Record<ClientFrameType, { required: [string, string][]; optional: [string, string][] }>;

/** Whether `type` names a client frame. */
export function isClientFrameType(type: string): type is ClientFrameType {
  return Object.hasOwn(SPECS, type);
}

/**
 * Parses one JSON-mode line into a client frame, checking every field's type. Unknown fields
 * are ignored (forward compatibility); a missing or mistyped field is `bad_frame`.
 *
 * @returns the frame, or a {@linkcode ChatError} with the `ref` recovered when there was one
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseClientFrame } from "./frames.ts";
 * const frame = parseClientFrame('{"type":"join","ref":"1","room":"#ops"}');
 * assert.deepEqual(frame, { type: "join", ref: "1", room: "#ops" });
 * ```
 */
export function parseClientFrame(line: string): ClientFrame | ParseError {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return new ParseError("bad_frame", "Invalid JSON: send one JSON object per line");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return new ParseError("bad_frame", "A frame must be a JSON object");
  }
  const obj = value as Record<string, unknown>;
  const ref = typeof obj.ref === "string" ? obj.ref.slice(0, 64) : undefined;
  if (obj.ref !== undefined && typeof obj.ref !== "string") {
    return new ParseError("bad_frame", "Field 'ref' must be a string", ref);
  }
  if (typeof obj.type !== "string") {
    return new ParseError("bad_frame", "A frame needs a string field 'type'", ref);
  }
  if (!isClientFrameType(obj.type)) {
    return new ParseError(
      "unknown_type",
      `Unknown frame type ${JSON.stringify(obj.type.slice(0, 32))}`,
      ref,
    );
  }
  const spec = FIELDS[obj.type];
  const frame: Record<string, unknown> = { type: obj.type };
  if (ref !== undefined) frame.ref = ref;
  for (const [field, kind] of spec.required) {
    if (kindOf(obj[field]) !== kind) {
      return new ParseError("bad_frame", `Frame '${obj.type}' needs a ${kind} '${field}'`, ref);
    }
    frame[field] = obj[field];
  }
  for (const [field, kind] of spec.optional) {
    if (obj[field] === undefined) continue;
    if (kindOf(obj[field]) !== kind) {
      return new ParseError("bad_frame", `Field '${field}' must be a ${kind}`, ref);
    }
    frame[field] = obj[field];
  }
  return frame as unknown as ClientFrame;
}

function kindOf(value: unknown): string {
  return typeof value;
}

/** A line that is not a valid client frame; `ref` is kept so the error can answer it. */
export class ParseError extends ChatError {
  /** The frame's `ref`, when it could be read. */
  readonly ref: string | undefined;

  /**
   * @param code why the frame was refused
   * @param message one human-readable sentence
   * @param ref the frame's `ref`, when known
   */
  constructor(code: ErrorCode, message: string, ref?: string) {
    super(code, message);
    this.name = "ParseError";
    this.ref = ref;
  }
}
