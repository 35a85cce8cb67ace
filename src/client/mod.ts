/**
 * The parley client library: {@linkcode ChatClient} and what it yields and throws (file
 * transfer included: `upload`, `sendFile`, `download`), and {@linkcode TokenStore} for keeping
 * session tokens. Used by the terminal client, the tests,
 * and later the benchmark driver, the web and IRC parts.
 *
 * @example
 * ```ts ignore
 * import { ChatClient, ServerError } from "./mod.ts";
 * await using client = await ChatClient.connect("127.0.0.1", 5000);
 * try {
 *   await client.nick("alice");
 * } catch (error) {
 *   if (error instanceof ServerError && error.code === "name_taken") console.log("taken");
 * }
 * for await (const event of client) console.log(event);
 * ```
 *
 * @module
 */

export { ChatClient } from "./chat_client.ts";
export type {
  ChatClientOptions,
  ClientState,
  LoggedIn,
  ReplyFrame,
  RoomMembers,
  SentMessage,
  Welcome,
} from "./chat_client.ts";
export { backoffDelay } from "./backoff.ts";
export type { BackoffOptions } from "./backoff.ts";
export {
  ConnectionClosedError,
  FileTransferError,
  ProtocolError,
  ServerError,
  SessionRefusedError,
  TlsVerificationError,
} from "./errors.ts";
export type { TlsProblem } from "./errors.ts";
export { downloadFile, guessType, statFile, uploadFile } from "./file_transfer.ts";
export type {
  Downloaded,
  DownloadOptions,
  FileRef,
  TransferProgress,
  UploadOptions,
} from "./file_transfer.ts";
export { TokenStore } from "./token_store.ts";
export type {
  ChatEvent,
  ClientEvent,
  DisconnectedEvent,
  HistoryEvent,
  LaggedEvent,
  ModerationAction,
  ModerationEvent,
  NoticeEvent,
  ReconnectedEvent,
  Role,
  RoomState,
  ServerEvent,
  ShutdownEvent,
  TopicEvent,
  UnsolicitedErrorEvent,
  WallEvent,
} from "./events.ts";
