/**
 * {@linkcode ChatClient}: a parley client over TCP or TLS in JSON mode, with typed requests, an event
 * stream, and reconnection that restores the session.
 *
 * @module
 */

import type {
  FileRef,
  HistoryFrame,
  ModerationAction,
  Role,
  RoomInfo,
  RoomState,
  ServerLimits,
} from "../protocol/frames.ts";
import { PROTO } from "../protocol/frames.ts";
import { DEFAULT_ROOM, nameKey } from "../protocol/names.ts";
import { VERSION } from "../version.ts";
import type { BackoffOptions } from "./core/backoff.ts";
import { ConnectionClosedError, ServerError } from "./core/errors.ts";
import { exchange } from "./core/frames.ts";
import type { AckOf, Reply, ReplyTo, RequestFrame, WelcomeFrame } from "./core/frames.ts";
import { PEER_DEFAULTS } from "./core/peer.ts";
import type { Peer } from "./core/peer.ts";
import { Reconnector } from "./core/reconnect.ts";
import { restore } from "./core/restore.ts";
import type {
  ChatEvent,
  ModerationEvent,
  ReconnectedEvent,
  ServerEvent,
  TopicEvent,
} from "./events.ts";
import { downloadFile, statFile, uploadFile } from "./file_transfer.ts";
import type { Downloaded, DownloadOptions, UploadOptions } from "./file_transfer.ts";
import { EventQueue } from "./_event_queue.ts";
import { HttpTransport } from "./_http.ts";
import { openPeer } from "./_tcp_channel.ts";
import type { Endpoint } from "./_dial.ts";

/** A reply to a request: `welcome`, an `ack` (typed by its request), `pong` or `history`. */
export type ReplyFrame = Reply;

/** Options for {@linkcode ChatClient.connect}. */
export interface ChatClientOptions {
  /** Aborting it closes the client (like disposing it). */
  signal?: AbortSignal;
  /** Sent in `hello` as `client`. @default "parley-client/VERSION" */
  clientName?: string;
  /** Reconnect when the connection drops. @default true */
  reconnect?: boolean;
  /**
   * Delays between reconnect attempts: full jitter, the client core's policy shared with the
   * web app. @default { baseMs: 500, capMs: 10000 }
   */
  backoff?: BackoffOptions;
  /** Give up reconnecting after this many failed attempts in a row. @default Infinity */
  maxReconnectAttempts?: number;
  /** How long connecting and receiving the banner may take, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * How long a request may wait for its reply, in ms (0: for ever); one that times out rejects
   * with `RequestTimeoutError` and drops the connection (then the client reconnects).
   * @default 20000
   */
  requestTimeoutMs?: number;
  /**
   * Probe an idle connection with `ping` this often (ms); one unanswered probe drops the
   * connection (and reconnects). 0 turns it off. @default 30000
   */
  pingIntervalMs?: number;
  /** Events held for a caller that is not iterating; beyond it the oldest are dropped. @default 1000 */
  maxEvents?: number;
  /** The longest line accepted from the server, in bytes. @default 4194304 */
  maxLine?: number;
  /**
   * Connect with TLS, verifying the server's certificate against the trusted roots (Deno's
   * store) plus `caCerts`, and that it is valid for `hostname`. @default false
   */
  tls?: boolean;
  /**
   * More certificates to trust (PEM), e.g. a private CA or a self-signed one: for the chat
   * connection with `tls`, and for the HTTPS web port (files) either way.
   */
  caCerts?: string[];
  /**
   * With `tls`: do NOT verify the server's certificate. The connection is encrypted but anyone
   * on the network path can impersonate the server. For tests and emergencies only.
   * @default false
   */
  insecure?: boolean;
  /**
   * The server's web port, for file transfer (HTTPS with `tls`, trusted the same way as the
   * chat connection). @default the port (and scheme) the server's `welcome` announces in `web`;
   * 8080 before it arrives or from a server that announces none
   */
  httpPort?: number;
  /**
   * Log in with the first `hello` (a session token, or a name and password), so the session
   * comes online as the account and never as a guest first. The outcome is
   * {@linkcode ChatClient.helloLogin}; a refusal leaves the client connected as a guest.
   */
  login?: { token: string } | { name: string; password: string };
  /**
   * The server's password (a server started with `--server-password`): sent in every `hello`,
   * the first one and the one after each reconnect. Without it (or with a wrong one) such a
   * server refuses the session: `connect` rejects with a `ServerError` `auth_failed` whose
   * `need` is `serverPassword`.
   */
  serverPassword?: string;
}

/** How the login in the first `hello` went (see {@linkcode ChatClientOptions.login}). */
export interface HelloLogin {
  /** What it was tried with. */
  by: "token" | "password";
  /** The account's login, or the server's refusal (`auth_failed`, `rate_limited`, …). */
  result: LoggedIn | ServerError;
}

/** What `hello` returns. */
export interface Welcome {
  /** The server's software name. */
  server: string;
  /** The server's version. */
  version: string;
  /** The protocol version spoken. */
  proto: number;
  /** The name this connection has. */
  name: string;
  /** The server's limits, when it announces them (parley 0.1 servers before them do not). */
  limits: ServerLimits | undefined;
  /** The server's web port as a URL (`https://HOST:PORT`), when it announces one. */
  web?: string;
}

/** A room in its canonical case and its members, sorted. */
export interface RoomMembers {
  room: string;
  members: string[];
}

/** What a sent message became: its id and the server's timestamp (ms since the epoch). */
export interface SentMessage {
  id: number;
  ts: number;
}

/** What `login` and `register` return. */
export interface LoggedIn {
  /** The account's name, now this client's name. */
  name: string;
  /** A session token: {@linkcode ChatClient} logs in with it again after a reconnect. */
  token: string;
  /** The rooms this client is now in (the account's rooms). */
  rooms: string[];
  /** Direct messages that waited while the account was offline, per sender. */
  unread: { from: string; count: number }[];
}

/** Where a client stands: online, re-establishing its session, or finished for good. */
export type ClientState = "connected" | "reconnecting" | "closed";

/** How many file descriptions from messages the client remembers (for their SHA-256). */
const KNOWN_FILES = 1000;

/** How long {@linkcode ChatClient.quit} waits for the server's ack. */
const QUIT_TIMEOUT_MS = 5000;

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  pingIntervalMs: 30_000,
  maxEvents: 1000,
  maxLine: 4 * 1024 * 1024,
};

/**
 * A parley client. Every request resolves on the server's reply or rejects with a
 * {@linkcode ServerError} carrying the server's error code (or {@linkcode ConnectionClosedError}
 * when the connection ends first). Events arrive by iterating the client; one consumer at a
 * time. Events are buffered up to `maxEvents`; when the caller falls behind, the oldest are
 * dropped and a `lagged` event says how many (reading never stalls, so replies always flow).
 *
 * When the connection drops, the client emits `disconnected`, reconnects with exponential
 * backoff and full jitter, takes back its chosen name and rooms, and emits `reconnected`. It
 * does not reconnect after {@linkcode ChatClient.quit}, {@linkcode ChatClient.close}, an abort,
 * or a `shutdown` with `permanent: true`; then iteration ends.
 *
 * @example
 * ```ts ignore
 * import { ChatClient } from "./chat_client.ts";
 * await using client = await ChatClient.connect("127.0.0.1", 5000);
 * await client.nick("alice");
 * await client.join("#ops");
 * await client.send("#ops", "hello");
 * for await (const event of client) {
 *   if (event.type === "message") console.log(`<${event.from}> ${event.text}`);
 * }
 * ```
 */
export class ChatClient implements AsyncDisposable, AsyncIterable<ChatEvent> {
  /** The server's host. */
  readonly hostname: string;
  /** The server's port. */
  readonly port: number;
  readonly #options: ChatClientOptions;
  readonly #events: EventQueue;
  readonly #abort = new AbortController();
  readonly #closed = Promise.withResolvers<string>();
  #state: ClientState = "reconnecting";
  #peer: Peer | undefined;
  #supervisor: Promise<void> = Promise.resolve();
  #welcome: Welcome | undefined;
  #name = "";
  #chosenName: string | undefined;
  #token: string | undefined;
  #rooms: string[] = [];
  /** What the `join`/`who` acks and later events said of each joined room, by room key. */
  readonly #roomStates = new Map<string, RoomState>();
  #quitting = false;
  readonly #endpoint: Endpoint;
  #http: HttpTransport;
  /** Files seen in messages (and uploaded), oldest first, at most {@linkcode KNOWN_FILES}. */
  readonly #files = new Map<string, FileRef>();
  #readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  #helloLogin: HelloLogin | undefined;
  readonly #onAbort = () => void this.close("aborted");

  private constructor(hostname: string, port: number, options: ChatClientOptions) {
    this.hostname = hostname;
    this.port = port;
    this.#options = options;
    this.#endpoint = { hostname, port, tls: options.tls === true };
    if (options.caCerts !== undefined) this.#endpoint.caCerts = options.caCerts;
    if (options.insecure === true) this.#endpoint.insecure = true;
    this.#http = new HttpTransport({ ...this.#endpoint, port: options.httpPort ?? 8080 });
    this.#events = new EventQueue(options.maxEvents ?? DEFAULTS.maxEvents);
    this.#closed.promise.catch(() => {});
  }

  /**
   * Connects to a parley server, reads its banner and says `hello`.
   *
   * @param hostname the server's host name or address (with TLS, the name its certificate must
   * be valid for)
   * @param port the server's port (its TLS port with `tls`)
   * @param options TLS, reconnecting, timeouts, limits, abort signal
   * @returns the connected client; dispose it (or `quit()`) when done
   * @throws {SessionRefusedError} when the server refused the connection
   * @throws {TlsVerificationError} when the server's TLS certificate does not verify
   * @throws {Deno.errors.ConnectionRefused} and other network errors when it cannot be reached
   * @throws {TypeError} when `insecure` is given without `tls`, or both are given
   */
  static async connect(
    hostname: string,
    port: number,
    options: ChatClientOptions = {},
  ): Promise<ChatClient> {
    options.signal?.throwIfAborted();
    // caCerts without tls trust the HTTPS web port a plain chat connection sends files to.
    if (!options.tls && options.insecure) {
      throw new TypeError("Cannot connect: insecure needs tls: true");
    }
    if (options.insecure && options.caCerts !== undefined) {
      throw new TypeError("Cannot connect: caCerts has no use with insecure: true");
    }
    const client = new ChatClient(hostname, port, options);
    options.signal?.addEventListener("abort", client.#onAbort, { once: true });
    let peer: Peer | undefined;
    try {
      const login = options.login;
      const hello = { ...client.#helloFrame(), ...login };
      const opened = await client.#open(hello);
      peer = opened.peer;
      let welcome: WelcomeFrame;
      try {
        welcome = await opened.greeted;
      } catch (error) {
        if (login === undefined || !(error instanceof ServerError)) throw error;
        if (error.need === "serverPassword") throw error; // the server closes the connection
        // The login was refused: the session is a guest's (or waits for a login). Greet again.
        client.#helloLogin = { by: "token" in login ? "token" : "password", result: error };
        welcome = await peer.request(client.#helloFrame());
      }
      client.#track(hello, welcome);
      if (login !== undefined && welcome.login !== undefined) {
        client.#helloLogin = {
          by: "token" in login ? "token" : "password",
          result: toLoggedIn(welcome.login),
        };
      } else {
        // Online at once in #general, unless the server wants a login first (no name yet).
        client.#rooms = client.#name === "" ? [] : [DEFAULT_ROOM];
      }
    } catch (error) {
      peer?.close("connecting failed");
      await peer?.closed;
      client.#shut("connecting failed");
      throw options.signal?.aborted ? options.signal.reason : error;
    }
    client.#peer = peer;
    client.#setState("connected");
    client.#supervisor = client.#supervise(peer);
    return client;
  }

  /** Where the client stands. */
  get state(): ClientState {
    return this.#state;
  }

  /** Whether requests can be sent now. */
  get connected(): boolean {
    return this.#state === "connected";
  }

  /** The name the server knows this client by. */
  get name(): string {
    return this.#name;
  }

  /** The rooms this client is in, in the order joined (canonical case). */
  get joinedRooms(): readonly string[] {
    return this.#rooms;
  }

  /**
   * What the client knows of a joined room's settings: its topic, modes and the members with a
   * role, as the last `join` or `who` ack said and kept current by `topic` and `moderation`
   * events (`mode`, `op`, `deop`, and kicks and bans, which drop the target's role). Undefined
   * for a room not joined, or joined without an ack that carried them (an account's rooms at
   * login: call {@linkcode ChatClient.who} to learn them). A copy: changing it changes nothing.
   */
  roomState(room: string): RoomState | undefined {
    const state = this.#roomStates.get(nameKey(room));
    return state === undefined ? undefined : { ...state, roles: { ...state.roles } };
  }

  /**
   * How the login in the first `hello` went, when {@linkcode ChatClientOptions.login} asked
   * for one: the login (the client is the account), or the refusal (it is a guest).
   */
  get helloLogin(): HelloLogin | undefined {
    return this.#helloLogin;
  }

  /** The session token after `login` or `register` (keep it secret), else undefined. */
  get token(): string | undefined {
    return this.#token;
  }

  /** Whether the connection uses TLS. */
  get tls(): boolean {
    return this.#endpoint.tls;
  }

  /** Whether TLS is used without verifying the server's certificate (`insecure`). */
  get insecure(): boolean {
    return this.#endpoint.insecure === true;
  }

  /** The server's web port as a URL (`http://HOST:PORT`, `https://` with TLS): files go there. */
  get httpBase(): string {
    return this.#http.base;
  }

  /** The server's `welcome` on the current connection. */
  get server(): Welcome | undefined {
    return this.#welcome;
  }

  /** Resolves with the reason once the client is closed for good. */
  get closed(): Promise<string> {
    return this.#closed.promise;
  }

  /**
   * Resolves when the client is connected (at once if it is); rejects with
   * {@linkcode ConnectionClosedError} if it closes for good first.
   */
  whenConnected(): Promise<void> {
    if (this.#state === "connected") return Promise.resolve();
    if (this.#state === "closed") {
      return Promise.reject(new ConnectionClosedError("Cannot send: the client is closed"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#readyWaiters.push({ resolve, reject });
    return promise;
  }

  /**
   * Sends any client frame that gets a reply and resolves with that reply, typed by the
   * request (`hello` → `welcome`, `history` → `history`, `ping` → `pong`, the rest → their
   * `ack`). The typed methods below are built on it; it keeps the client's name and rooms up
   * to date.
   *
   * @throws {ServerError} when the server refuses the request
   * @throws {RequestTimeoutError} when no reply came within `requestTimeoutMs`
   * @throws {ConnectionClosedError} when not connected, or the connection drops before the reply
   */
  async request<F extends RequestFrame>(frame: F): Promise<ReplyTo<F["type"]>> {
    const peer = this.#state === "connected" ? this.#peer : undefined;
    if (peer === undefined) {
      throw new ConnectionClosedError(
        this.#state === "closed"
          ? "Cannot send: the client is closed"
          : "Cannot send: the connection dropped; reconnecting",
      );
    }
    const reply = await peer.request(frame);
    this.#track(frame, reply);
    return reply;
  }

  /** Says `hello` again; resolves with the server's `welcome`. */
  async hello(): Promise<Welcome> {
    return toWelcome(await this.request(this.#helloFrame()));
  }

  /**
   * Changes name; it is taken back after a reconnect.
   *
   * @returns the name as the server now shows it
   * @throws {ServerError} `invalid_name`, `name_taken`
   */
  async nick(name: string): Promise<string> {
    return (await this.request({ type: "nick", name })).name;
  }

  /**
   * Joins a room (created if needed); it is re-joined after a reconnect.
   *
   * @throws {ServerError} `invalid_room`
   */
  async join(room: string): Promise<RoomMembers> {
    return toMembers(await this.request({ type: "join", room }));
  }

  /**
   * Leaves a room.
   *
   * @returns the room's canonical name
   * @throws {ServerError} `invalid_room`, `no_such_room`, `not_in_room`
   */
  async part(room: string): Promise<string> {
    return (await this.request({ type: "part", room })).room;
  }

  /**
   * Sends a message: to a room when `to` starts with `#`, else directly to the user `to`.
   * The server does not echo it back: the returned id and timestamp are what to show.
   *
   * @param to `#room` or a user name
   * @param text the message (newlines allowed)
   * @param options `action: true` for a `/me`-style action
   * @throws {ServerError} `no_such_room`, `not_in_room`, `no_such_user`, `text_too_long`, …
   */
  async send(to: string, text: string, options: { action?: boolean } = {}): Promise<SentMessage> {
    const frame: Extract<RequestFrame, { type: "send" }> = to.startsWith("#")
      ? { type: "send", room: to, text }
      : { type: "send", to, text };
    if (options.action) frame.action = true;
    const { id, ts } = await this.request(frame);
    return { id, ts };
  }

  /**
   * Lists a room's members.
   *
   * @throws {ServerError} `invalid_room`, `no_such_room`
   */
  async who(room: string): Promise<RoomMembers> {
    return toMembers(await this.request({ type: "who", room }));
  }

  /** Lists every room with its member count, sorted by name. */
  async rooms(): Promise<RoomInfo[]> {
    return (await this.request({ type: "rooms" })).rooms;
  }

  /**
   * Fetches a page of stored messages of a room (`#room`) or of your direct messages with a
   * user, oldest first; page back with `before` (a message id).
   *
   * @throws {ServerError} `not_in_room`, `login_required` (direct messages), …
   */
  async history(
    target: string,
    options: { before?: number; after?: number; around?: number; limit?: number } = {},
  ): Promise<HistoryFrame> {
    const frame: Extract<RequestFrame, { type: "history" }> = target.startsWith("#")
      ? { type: "history", room: target }
      : { type: "history", with: target };
    if (options.before !== undefined) frame.before = options.before;
    if (options.after !== undefined) frame.after = options.after;
    if (options.around !== undefined) frame.around = options.around;
    if (options.limit !== undefined) frame.limit = options.limit;
    const { ref: _, ...page } = await this.request(frame);
    for (const m of page.messages) if (m.file !== undefined) this.#remember(m.file);
    return page;
  }

  /**
   * Shows a room's topic, or sets it (`""` clears it; operators and above).
   *
   * @returns the topic now, undefined when there is none
   * @throws {ServerError} `forbidden`, `no_such_room`, `text_too_long`, …
   */
  async topic(room: string, text?: string): Promise<string | undefined> {
    const frame: Extract<RequestFrame, { type: "topic" }> = text === undefined
      ? { type: "topic", room }
      : { type: "topic", room, text };
    return (await this.request(frame)).topic;
  }

  /**
   * Shows a room's modes, or changes them (`"+i"`, `"-m"`, `"+i-m"`; operators and above).
   *
   * @returns the modes now (`""` for none)
   * @throws {ServerError} `forbidden`, `no_such_room`, `bad_frame` (malformed modes)
   */
  async mode(room: string, modes?: string): Promise<string> {
    const frame: Extract<RequestFrame, { type: "mode" }> = modes === undefined
      ? { type: "mode", room }
      : { type: "mode", room, modes };
    return (await this.request(frame)).modes;
  }

  /**
   * Acts on someone in a room: `kick`, `ban` (both with an optional reason), `unban`, `mute`,
   * `unmute`, `invite` (operators and above), `op`, `deop` (the owner and administrators).
   *
   * @throws {ServerError} `forbidden`, `no_such_user`, `not_in_room`, `no_such_room`
   */
  async moderate(
    action: ModerationAction,
    room: string,
    name: string,
    reason?: string,
  ): Promise<void> {
    const frame: Extract<RequestFrame, { type: ModerationAction }> = { type: action, room, name };
    if (reason !== undefined && reason !== "") frame.reason = reason;
    await this.request(frame);
  }

  /**
   * Sends a message to every connected session (administrators only).
   *
   * @throws {ServerError} `forbidden`, `login_required`, `text_too_long`
   */
  async wall(text: string): Promise<void> {
    await this.request({ type: "wall", text });
  }

  /**
   * Creates an account and logs in; after a reconnect the client logs in again with the token.
   *
   * @throws {ServerError} `name_taken`, `weak_password`, `registration_closed`, …
   */
  async register(name: string, password: string): Promise<LoggedIn> {
    return toLoggedIn(await this.request({ type: "register", name, password }));
  }

  /**
   * Logs in to an account (joining its rooms); after a reconnect the client logs in again with
   * the session token.
   *
   * @throws {ServerError} `auth_failed`, `rate_limited`, …
   */
  async login(name: string, password: string): Promise<LoggedIn> {
    return toLoggedIn(await this.request({ type: "login", name, password }));
  }

  /**
   * Logs in with the session token of an earlier `login` or `register` (no password needed);
   * like {@linkcode ChatClient.login} otherwise.
   *
   * @throws {ServerError} `auth_failed` (the token expired or was revoked), `rate_limited`, …
   */
  async resume(token: string): Promise<LoggedIn> {
    return toLoggedIn(await this.request({ type: "login", token }));
  }

  /** Logs out (ending the session token); the server closes the connection, as after `quit`. */
  async logout(): Promise<void> {
    await this.request({ type: "logout" });
    await this.close("quit");
  }

  /**
   * Uploads a file to the server's web port with this session's token (logged-in accounts
   * only), streaming it (from disk for a path: never read whole). Attach the result to a
   * message with {@linkcode ChatClient.sendFile}.
   *
   * @param source a file path (needs read permission), or the bytes as a stream
   * @param options `name` (default: the path's last segment), `type` (default: from the
   * extension), `size` (for progress with a stream), `onProgress`, `signal`
   * @returns the stored file: `{ id, name, size, type, sha256 }`
   * @throws {FileTransferError} `login_required` (a guest: log in first), `auth_failed`,
   * `too_large`, `quota_exceeded`, `rate_limited` (with `retryAfter`), …
   * @throws {TlsVerificationError} when the web port's certificate does not verify
   *
   * @example
   * ```ts ignore
   * const file = await client.upload("report.pdf", { onProgress: (p) => console.log(p.bytes) });
   * await client.sendFile("#ops", file, "the report");
   * ```
   */
  async upload(
    source: string | ReadableStream<Uint8Array>,
    options: UploadOptions = {},
  ): Promise<FileRef> {
    const file = await uploadFile(this.#http, this.#token, source, {
      ...options,
      signal: this.#transferSignal(options.signal),
    });
    this.#remember(file);
    return file;
  }

  /**
   * Sends a message carrying an uploaded file (a `send` with `file`); recipients may then
   * download it.
   *
   * @param to `#room` or a user name
   * @param file what {@linkcode ChatClient.upload} returned, or its id
   * @param text words to go with it (may be empty)
   * @throws {ServerError} `no_such_file` (not your upload), `no_such_room`, `not_in_room`, …
   */
  async sendFile(to: string, file: FileRef | string, text = ""): Promise<SentMessage> {
    const id = typeof file === "string" ? file : file.id;
    const frame: Extract<RequestFrame, { type: "send" }> = to.startsWith("#")
      ? { type: "send", room: to, text, file: id }
      : { type: "send", to, text, file: id };
    const ack = await this.request(frame);
    return { id: ack.id, ts: ack.ts };
  }

  /**
   * Downloads a file to `dest` with this session's token, resuming an interrupted download
   * from `DEST.part` (with `Range`) and checking the SHA-256: against `options.sha256`, else the
   * one in the message that carried the file (the client remembers the last 1000 it saw),
   * else the server's `ETag`. See {@linkcode downloadFile} for what happens to `.part`.
   *
   * @param id the file's id (`message.file.id`)
   * @param dest the path to write (needs write permission for it and `DEST.part`); a file
   * there is replaced
   * @param options `sha256`, `resume` (default true), `onProgress`, `signal`
   * @throws {FileTransferError} `login_required` (a guest), `not_found` (no such file, or not
   * yours to see), `hash_mismatch` (deleted), `incomplete` (kept to resume), …
   *
   * @example
   * ```ts ignore
   * for await (const event of client) {
   *   if (event.type === "message" && event.file) {
   *     await client.download(event.file.id, event.file.name);
   *   }
   * }
   * ```
   */
  async download(id: string, dest: string, options: DownloadOptions = {}): Promise<Downloaded> {
    const known = this.#files.get(id)?.sha256;
    const settings = { ...options, signal: this.#transferSignal(options.signal) };
    if (options.sha256 === undefined && known !== undefined) settings.sha256 = known;
    return await downloadFile(this.#http, this.#token, id, dest, settings);
  }

  /** The description of file `id` from a message this client saw (or its own upload), if any. */
  fileRef(id: string): FileRef | undefined {
    return this.#files.get(id);
  }

  /**
   * Describes file `id`: from a message this client saw, else by asking the server
   * (`HEAD /files/ID`: name, size, type and SHA-256), which it then remembers.
   *
   * @throws {FileTransferError} `login_required` (a guest), `not_found`, …
   */
  async fileInfo(id: string, options: { signal?: AbortSignal } = {}): Promise<FileRef> {
    const known = this.#files.get(id);
    if (known !== undefined) return known;
    const file = await statFile(this.#http, this.#token, id, this.#transferSignal(options.signal));
    this.#remember(file);
    return file;
  }

  /** Aborts when `signal` does or when the client closes: transfers end with the client. */
  #transferSignal(signal: AbortSignal | undefined): AbortSignal {
    return signal === undefined
      ? this.#abort.signal
      : AbortSignal.any([signal, this.#abort.signal]);
  }

  /** Pings the server; resolves with the round trip time in milliseconds. */
  async ping(): Promise<number> {
    const start = performance.now();
    await this.request({ type: "ping" });
    return performance.now() - start;
  }

  /**
   * Leaves politely: sends `quit` after whatever was sent before it, waits for the ack (at most
   * 5 s) and for the server to close the connection (at most 2 s more), then closes the
   * client. Never reconnects afterwards; never rejects.
   */
  async quit(reason?: string): Promise<void> {
    if (this.#state === "closed") return;
    this.#quitting = true;
    const peer = this.#state === "connected" ? this.#peer : undefined;
    if (peer !== undefined) {
      const frame: Extract<RequestFrame, { type: "quit" }> = reason === undefined
        ? { type: "quit" }
        : { type: "quit", reason };
      await timeout(
        peer.request(frame, { timeoutMs: QUIT_TIMEOUT_MS }).then(() => timeout(peer.closed, 2000)),
        QUIT_TIMEOUT_MS,
      );
    }
    await this.close("quit");
  }

  /**
   * Closes the connection at once and for good: pending requests reject with
   * {@linkcode ConnectionClosedError}, buffered events can still be read, then iteration ends.
   * Idempotent.
   */
  async close(reason = "closed"): Promise<void> {
    this.#shut(reason);
    await this.#supervisor;
    await this.#peer?.closed;
  }

  /** Same as {@linkcode ChatClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The events (see the class description). One consumer at a time. */
  [Symbol.asyncIterator](): AsyncIterator<ChatEvent> {
    return this.#events;
  }

  #helloFrame(): Extract<RequestFrame, { type: "hello" }> {
    return {
      type: "hello",
      client: this.#options.clientName ?? `parley-client/${VERSION}`,
      proto: PROTO,
      ...this.#options.serverPassword === undefined
        ? {}
        : { serverPassword: this.#options.serverPassword },
    };
  }

  #open(
    hello = this.#helloFrame(),
  ): Promise<{ peer: Peer; greeted: Promise<WelcomeFrame> }> {
    const o = this.#options;
    return openPeer(this.#endpoint, {
      hello,
      maxLine: o.maxLine ?? DEFAULTS.maxLine,
      timeoutMs: o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      pingIntervalMs: o.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      requestTimeoutMs: o.requestTimeoutMs ?? PEER_DEFAULTS.requestTimeoutMs,
      signal: this.#abort.signal,
      onEvent: (event: ServerEvent) => {
        if (event.type === "message" && event.file !== undefined) this.#remember(event.file);
        if (event.type === "history") {
          for (const m of event.messages) if (m.file !== undefined) this.#remember(m.file);
        }
        if (event.type === "topic" || event.type === "moderation") this.#follow(event);
        this.#events.push(event);
      },
    });
  }

  /**
   * Keeps the rooms and their state in step with `topic` and `moderation` events. A kick or a
   * ban naming this client puts it out of the room (the server sends no `left` for it): the
   * room is dropped from {@linkcode ChatClient.joinedRooms}, so a reconnect does not re-join it.
   */
  #follow(event: TopicEvent | ModerationEvent): void {
    const key = nameKey(event.room);
    if (event.type === "moderation" && (event.action === "kick" || event.action === "ban")) {
      if (nameKey(event.name) === nameKey(this.#name)) {
        this.#rooms = this.#rooms.filter((r) => nameKey(r) !== key);
        this.#roomStates.delete(key);
        return;
      }
    }
    const state = this.#roomStates.get(key);
    if (state === undefined) return;
    if (event.type === "topic") {
      if (event.topic === undefined) delete state.topic;
      else state.topic = event.topic;
      return;
    }
    switch (event.action) {
      case "mode":
        state.modes = event.modes;
        break;
      case "op":
        if (state.roles[event.name] === undefined) state.roles[event.name] = "op";
        break;
      case "deop":
      case "kick":
      case "ban":
        if (event.action !== "deop" || state.roles[event.name] === "op") {
          delete state.roles[event.name];
        }
        break;
    }
  }

  /** Keeps what a `join` or `who` ack says of a joined room. */
  #keepState(ack: { room: string } & RoomState): void {
    const state: RoomState = { modes: typeof ack.modes === "string" ? ack.modes : "", roles: {} };
    if (typeof ack.topic === "string") state.topic = ack.topic;
    if (typeof ack.roles === "object" && ack.roles !== null) {
      state.roles = Object.assign(Object.create(null), ack.roles) as Record<string, Role>;
    }
    this.#roomStates.set(nameKey(ack.room), state);
  }

  /** Forgets the state of rooms no longer joined. */
  #pruneStates(): void {
    const joined = new Set(this.#rooms.map(nameKey));
    for (const key of this.#roomStates.keys()) if (!joined.has(key)) this.#roomStates.delete(key);
  }

  /** Keeps a file's description (for its SHA-256), forgetting the oldest beyond the limit. */
  #remember(file: FileRef): void {
    this.#files.delete(file.id);
    this.#files.set(file.id, file);
    if (this.#files.size > KNOWN_FILES) this.#files.delete(this.#files.keys().next().value!);
  }

  /**
   * Sends files to the web port `welcome` announced, with its scheme (a client on the plain
   * chat port of a server with TLS uploads over HTTPS), unless `httpPort` was given. The host
   * stays the one this client connected to: the URL's may be the server's wildcard address.
   */
  #followWeb(web: string | undefined): void {
    if (web === undefined || this.#options.httpPort !== undefined) return;
    let url: URL;
    try {
      url = new URL(web);
    } catch {
      return;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return;
    const tls = url.protocol === "https:";
    const port = Number(url.port || (tls ? 443 : 80));
    const current = this.#http.base;
    const next = new HttpTransport({ ...this.#endpoint, port, tls });
    if (next.base === current) return;
    this.#http.close();
    this.#http = next;
  }

  /** Keeps the name and the rooms in step with successful requests. */
  #track<F extends RequestFrame>(frame: F, reply: ReplyTo<F["type"]>): void {
    const ex = exchange(frame, reply);
    switch (ex.type) {
      case "hello":
        this.#welcome = toWelcome(ex.reply);
        this.#name = this.#welcome.name;
        this.#followWeb(this.#welcome.web);
        if (ex.reply.login !== undefined) {
          const login = toLoggedIn(ex.reply.login);
          this.#name = login.name;
          this.#chosenName = login.name;
          this.#token = login.token;
          this.#rooms = login.rooms;
          this.#pruneStates();
        }
        break;
      case "nick":
        this.#name = ex.reply.name;
        this.#chosenName = this.#name;
        break;
      case "login":
      case "register": {
        const login = toLoggedIn(ex.reply);
        this.#name = login.name;
        this.#chosenName = login.name;
        this.#token = login.token;
        this.#rooms = login.rooms;
        this.#pruneStates();
        break;
      }
      case "join": {
        const room = ex.reply.room;
        if (!this.#rooms.some((r) => nameKey(r) === nameKey(room))) {
          this.#rooms = [...this.#rooms, room];
        }
        this.#keepState(ex.reply);
        break;
      }
      case "who":
        if (this.#rooms.some((r) => nameKey(r) === nameKey(ex.reply.room))) {
          this.#keepState(ex.reply);
        }
        break;
      case "topic": {
        const state = this.#roomStates.get(nameKey(ex.reply.room));
        if (state !== undefined) {
          if (ex.reply.topic === undefined) delete state.topic;
          else state.topic = ex.reply.topic;
        }
        break;
      }
      case "mode": {
        const state = this.#roomStates.get(nameKey(ex.reply.room));
        if (state !== undefined) state.modes = ex.reply.modes;
        break;
      }
      case "part": {
        const key = nameKey(ex.reply.room);
        this.#rooms = this.#rooms.filter((r) => nameKey(r) !== key);
        this.#roomStates.delete(key);
        break;
      }
    }
  }

  #setState(state: ClientState): void {
    this.#state = state;
    if (state === "reconnecting") return;
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const w of waiters) {
      if (state === "connected") w.resolve();
      else w.reject(new ConnectionClosedError("Cannot send: the client is closed"));
    }
  }

  /** Whether the client is closed (a method, so that checks after an await are not narrowed). */
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  /** Ends the client for good (synchronously); the supervisor winds down on its own. */
  #shut(reason: string): void {
    if (this.#state === "closed") return;
    this.#setState("closed");
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    this.#abort.abort();
    this.#http.close();
    this.#peer?.close(reason);
    this.#events.end();
    this.#closed.resolve(reason);
  }

  /** Watches the connection; when it drops, reconnects or ends the client. */
  async #supervise(first: Peer): Promise<void> {
    let peer = first;
    for (;;) {
      const reason = await peer.closed;
      if (this.#state === "closed") return;
      const permanent = peer.shutdown?.permanent === true;
      const wanted = this.#quitting || peer.farewell;
      if (wanted || permanent || this.#options.reconnect === false) {
        if (!wanted) this.#events.push({ type: "disconnected", reason, reconnecting: false });
        this.#shut(wanted ? "quit" : reason);
        return;
      }
      this.#setState("reconnecting");
      this.#events.push({ type: "disconnected", reason, reconnecting: true });
      const next = await this.#reconnect(reason);
      if (next === undefined) return;
      peer = next;
    }
  }

  /**
   * Tries (with the core's {@linkcode Reconnector}) until a connection is restored (the peer),
   * or the client closes (undefined).
   */
  async #reconnect(reason: string): Promise<Peer | undefined> {
    const reconnector = new Reconnector({
      ...this.#options.backoff,
      maxAttempts: this.#options.maxReconnectAttempts ?? Infinity,
    });
    const result = await reconnector.run(async (attempt) => {
      const token = this.#token;
      const { peer, greeted } = await this.#open(
        token === undefined ? undefined : { ...this.#helloFrame(), token },
      );
      this.#peer = peer;
      try {
        if (this.#isClosed()) throw new ConnectionClosedError("closed");
        const restored = await this.#restore(peer, greeted);
        if (this.#isClosed()) throw new ConnectionClosedError("closed");
        return { peer, event: { type: "reconnected" as const, attempts: attempt, ...restored } };
      } catch (error) {
        peer.close(this.#isClosed() ? "closed" : "restoring the session failed");
        await peer.closed;
        throw error;
      }
    }, { signal: this.#abort.signal, reason });
    if (result.ok) {
      this.#setState("connected");
      this.#events.push(result.value.event);
      return result.value.peer;
    }
    if (result.aborted || this.#isClosed()) return undefined;
    this.#events.push({ type: "disconnected", reason: result.reason, reconnecting: false });
    this.#shut(result.reason);
    return undefined;
  }

  /**
   * Takes back the session with the core's {@linkcode restore}: hello, the token (or the chosen
   * name), the rooms. A name or room the server refuses is reported, not fatal.
   */
  async #restore(
    peer: Peer,
    greeted: Promise<WelcomeFrame>,
  ): Promise<Omit<ReconnectedEvent, "type" | "attempts">> {
    const token = this.#token;
    // The hello (sent by #open) carried the token, if any: a refusal fails it, and the session
    // is a guest's then. Greet again, and take back what a guest can.
    let refused: ServerError | undefined;
    let welcome: WelcomeFrame;
    try {
      welcome = await greeted;
    } catch (error) {
      if (token === undefined || !(error instanceof ServerError)) throw error;
      refused = error;
      welcome = await peer.request(this.#helloFrame());
    }
    const plan: Parameters<typeof restore>[1] = {
      hello: this.#helloFrame(),
      greeted: Promise.resolve(welcome),
      rooms: this.#rooms,
    };
    if (refused === undefined) {
      if (token !== undefined) {
        plan.token = token;
        plan.tokenInHello = true; // a server that ignored it is sent a login
      }
      if (this.#chosenName !== undefined) plan.name = this.#chosenName;
    }
    const done = await restore(peer, plan);
    if (refused !== undefined) {
      done.lostSession = refused.code;
      if (this.#chosenName !== undefined) done.lostName = this.#chosenName;
    }
    const result: Omit<ReconnectedEvent, "type" | "attempts"> = {
      name: done.name,
      rooms: [...done.rooms],
    };
    if (done.lostName !== undefined) result.lostName = done.lostName;
    if (done.lostSession !== undefined) {
      this.#token = undefined; // expired, revoked, or refused for now: a guest from here on
      result.lostSession = done.lostSession;
    }
    if (done.lostRooms.length > 0) result.lostRooms = done.lostRooms.map((l) => l.room);
    this.#welcome = { ...toWelcome(done.welcome), name: done.name };
    this.#followWeb(this.#welcome.web);
    this.#name = done.name;
    this.#rooms = done.rooms;
    this.#pruneStates();
    for (const ack of done.joined) this.#keepState(ack);
    return result;
  }
}

function toWelcome(reply: WelcomeFrame): Welcome {
  return {
    server: reply.server,
    version: reply.version,
    proto: reply.proto,
    name: reply.name,
    limits: toLimits(reply.limits),
    ...typeof reply.web === "string" ? { web: reply.web } : {},
  };
}

/** The limits of a `welcome`; undefined from a server that announces none (parley 0.1). */
function toLimits(value: ServerLimits | undefined): ServerLimits | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const n = (key: keyof ServerLimits) => Number.isFinite(value[key]) ? value[key] : 0;
  return {
    maxLine: n("maxLine"),
    maxText: n("maxText"),
    maxFileSize: n("maxFileSize"),
    floodBurst: n("floodBurst"),
    floodRate: n("floodRate"),
  };
}

function toLoggedIn(reply: Omit<AckOf<"login">, "type">): LoggedIn {
  return { name: reply.name, token: reply.token, rooms: reply.rooms, unread: reply.unread };
}

function toMembers(reply: AckOf<"join"> | AckOf<"who">): RoomMembers {
  return { room: reply.room, members: reply.members };
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
async function timeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise.catch(() => {}),
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}
