/**
 * The command table's types. A command declares its guards (what the session must be before
 * it runs: online, logged in, in the room; how often it may run) and a handler that does the
 * work through the services and returns a typed {@linkcode Outcome}. The session checks the
 * guards in one place and hands the outcome to its dialect; no handler writes to a socket or
 * formats text.
 *
 * To add a command: its request in `src/protocol/frames.ts` (`ClientFrame`, and the field
 * table) and `src/protocol/text_mode.ts` (the text grammar), its result in
 * `src/protocol/requests.ts` (`Result`) and both dialects (`src/dialects/`), and its entry in
 * the module of its group here; `src/commands/table.ts` will not compile until it is there.
 *
 * @module
 */

import type { AccountLogin, Accounts } from "../auth/accounts.ts";
import type { FileService } from "../files/files.ts";
import type { Hub, Member } from "../hub/hub.ts";
import type { ServerLimits } from "../protocol/frames.ts";
import type { WebPort } from "../protocol/sniff.ts";
import type { Outcome, RequestOf, RequestType } from "../protocol/requests.ts";
import type { ServerConfig } from "../server/config.ts";
import type { Conversation } from "../services/conversation.ts";
import type { DirectMessages } from "../services/direct_messages.ts";
import type { Messages } from "../services/messages.ts";
import type { Moderation, Rank } from "../services/moderation.ts";
import type { Store, UserRecord } from "../store/store.ts";
import type { Calls } from "../voice/calls.ts";
import type { Voice } from "../voice/voice.ts";

/** What a handler sees of the session that made the request. */
export interface Caller extends Member {
  /** The peer, for logs. */
  readonly remote: string;
  /** The peer's address, for throttles. */
  readonly remoteIp: string;
  /** Whether the session is online (always, unless `--require-login` and not logged in). */
  readonly online: boolean;
  /** The account, once logged in. */
  readonly user: UserRecord | undefined;
  /** The hash of the session token it logged in with. */
  readonly tokenHash: Uint8Array | undefined;
  /** Whether the session has ended (a handler that waited should stop). */
  readonly closed: boolean;
  /** The current room: text mode sends plain lines there. */
  current: string | undefined;
  /** Whether #general is only the room every guest starts in (not chosen by this user). */
  autoGeneral: boolean;
  /** Records a login and brings the session online; `joined`: rooms new to it. */
  loggedIn(login: AccountLogin, joined: readonly string[]): void;
  /** Brings the session online (once) and picks its current room; `joined`: rooms new to it. */
  comeOnline(joined: readonly string[]): void;
  /** Told that its user was put out of a room. */
  removed(room: string): void;
  /** Comes online as a guest (see `arrive`), if it has not arrived yet. */
  arrive(): void;
}

/** What handlers work with: the server's services and settings. */
export interface Services {
  hub: Hub;
  store: Store;
  accounts: Accounts;
  messages: Messages;
  dms: DirectMessages;
  moderation: Moderation;
  conversation: Conversation;
  /** File transfer, when the server has a data folder. */
  files: FileService | undefined;
  config: Readonly<ServerConfig>;
  /** The server's version, sent in `welcome`. */
  version: string;
  /** The limits `welcome` announces. */
  limits: ServerLimits;
  /** The web port, which `welcome` announces as its `web` URL. */
  web?: WebPort | undefined;
  /** Voice, unless `--no-voice`. */
  voice?: Voice | undefined;
  /** Direct calls, with voice. */
  calls?: Calls | undefined;
}

/** What a session must be, and may do, before a command runs. */
export interface Guard<K extends RequestType> {
  /**
   * `nothing`: works before the session is online (with `--require-login`, before logging in);
   * `online`: needs the session online; `account`: needs a logged-in account.
   */
  needs: "nothing" | "online" | "account";
  /** The room the request must be in (`not_in_room` otherwise), and the verb for the error. */
  inRoom?: { room: (request: RequestOf<K>) => string | undefined; verb: string };
  /** How often one session may run it: `burst` at once, then `perSecond`. */
  rate?: { burst: number; perSecond: number };
  /**
   * The role it needs (in `room`, or server-wide without one), and what it is called in the
   * refusal; undefined when this request needs none (showing a topic, say).
   */
  role?: (request: RequestOf<K>) => { room?: string; least: Rank; what: string } | undefined;
}

/** One entry of the command table. */
export interface Command<K extends RequestType> {
  guard: Guard<K>;
  /**
   * Whether it may run while earlier replies still wait (their acks wait for a commit). Every
   * other command waits for the replies before it, so it sees what they did.
   */
  pipelined?: boolean;
  run(request: RequestOf<K>, caller: Caller, services: Services): Outcome | Promise<Outcome>;
}

/** Every request type's command. */
export type CommandTable = { readonly [K in RequestType]: Command<K> };

/** Part of the table: one module's group of commands. */
export type CommandGroup<K extends RequestType> = { readonly [T in K]: Command<T> };
