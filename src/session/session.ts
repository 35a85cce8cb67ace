/**
 * The session loop: one per connection, whatever the transport. It reads messages, decides the
 * mode from the first line, checks limits, runs commands against the hub and answers in the
 * connection's mode through a bounded {@linkcode Outbox}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ChatError } from "../protocol/errors.ts";
import type { ClientFrame, ServerFrame } from "../protocol/frames.ts";
import { parseClientFrame, ParseError, PROTO } from "../protocol/frames.ts";
import type { LineEvent } from "../protocol/line_splitter.ts";
import { encodeLine, Outgoing } from "../protocol/outgoing.ts";
import type { Mode } from "../protocol/outgoing.ts";
import { parseTextLine, sanitize, TEXT_HELP } from "../protocol/text_mode.ts";
import type { TextCommand } from "../protocol/text_mode.ts";
import type { Hub, Member } from "../hub/hub.ts";
import type { Connection } from "../transport/connection.ts";
import { Outbox } from "./outbox.ts";
import { TokenBucket } from "./token_bucket.ts";

const log = getLogger(["parley", "session"]);

/** Limits and identity a session needs. */
export interface SessionOptions {
  /** The server's name, sent in `welcome`. */
  serverName: string;
  /** The server's version, sent in `welcome`. */
  version: string;
  /** The longest message text, in UTF-8 bytes. */
  maxText: number;
  /** The most bytes that may wait in a connection's outbox before it is cut off. */
  maxSendq: number;
  /** Flood control: lines allowed at once. */
  floodBurst: number;
  /** Flood control: lines per second refilled (0 disables). */
  floodRate: number;
}

/** The plain-text line every connection receives first. */
export const BANNER = `* Welcome to parley. Type a message, or /help for commands. ` +
  `(Clients: send {"type":"hello","proto":${PROTO}} for JSON mode.)`;

const encoder = new TextEncoder();

/** What a command answers: fields for the JSON `ack`, lines for text mode. */
interface Reply {
  ack?: Record<string, unknown>;
  frame?: ServerFrame;
  text?: string[];
  close?: boolean;
}

/** One connected client. */
export class Session implements Member {
  name = "";
  readonly #conn: Connection;
  readonly #hub: Hub;
  readonly #options: SessionOptions;
  readonly #outbox: Outbox;
  readonly #bucket: TokenBucket;
  readonly #abort = new AbortController();
  #mode: Mode | undefined;
  #online = false;
  #current: string | undefined;

  /**
   * @param conn the connection to serve
   * @param hub the hub to route through
   * @param options limits and identity
   */
  constructor(conn: Connection, hub: Hub, options: SessionOptions) {
    this.#conn = conn;
    this.#hub = hub;
    this.#options = options;
    this.#bucket = new TokenBucket(options.floodBurst, options.floodRate);
    this.#outbox = new Outbox({
      maxBytes: options.maxSendq,
      write: (data) => conn.write(data),
      onOverflow: () => {
        log.warn("Closing {remote} ({name}): send queue exceeded {max} bytes", {
          remote: conn.remote,
          name: this.name,
          max: options.maxSendq,
        });
        this.close();
      },
      onError: () => this.close(),
    });
  }

  /** The connection's peer, for logs. */
  get remote(): string {
    return this.#conn.remote;
  }

  /** Queues an event in this connection's mode. Never blocks, never throws. */
  deliver(event: Outgoing): void {
    const bytes = event.bytes(this.#mode ?? "text");
    if (bytes !== null) this.#outbox.push(bytes);
  }

  /**
   * Serves the connection until the peer leaves, quits, or the session is closed. Never
   * rejects: whatever goes wrong ends this session only.
   */
  async run(): Promise<void> {
    try {
      this.#outbox.push(encodeLine(BANNER));
      for await (const event of this.#conn.messages()) {
        if (this.#abort.signal.aborted) break;
        const wait = this.#bucket.take();
        if (wait > 0) await sleep(wait, this.#abort.signal);
        if (this.#abort.signal.aborted) break;
        if (!this.#handle(event)) break;
      }
    } catch (error) {
      log.error("Session {remote} failed: {error}", { remote: this.#conn.remote, error });
    } finally {
      this.#goOffline();
      await this.#flush(1000);
      this.close();
    }
  }

  /**
   * Tells the client the server is going away, flushes what is queued (up to `deadlineMs`),
   * and closes.
   */
  async shutdown(reason: string, deadlineMs: number): Promise<void> {
    this.deliver(new Outgoing({ type: "shutdown", reason, permanent: false }));
    this.#abort.abort();
    this.#goOffline();
    await this.#flush(deadlineMs);
    this.close();
  }

  /** Closes the connection at once; idempotent. */
  close(): void {
    this.#abort.abort();
    this.#conn.close();
  }

  /** Handles one inbound message; returns false when the session should end. */
  #handle(event: LineEvent): boolean {
    if ("error" in event) {
      const message = event.error === "line_too_long"
        ? "Line too long: it was discarded"
        : "Invalid UTF-8: the line was discarded";
      this.#sendError(undefined, new ChatError(event.error, message));
      return true;
    }
    const line = event.line;
    if (this.#mode === undefined) {
      this.#mode = line.startsWith("{") ? "json" : "text";
      this.#goOnline();
    }
    let command: TextCommand | undefined;
    let ref: string | undefined;
    try {
      if (this.#mode === "json") {
        const parsed = parseClientFrame(line);
        if (parsed instanceof ParseError) {
          this.#sendError(parsed.ref, parsed);
          return true;
        }
        command = parsed;
        ref = parsed.ref;
      } else {
        command = parseTextLine(line, this.#current);
        if (command === undefined) return true;
      }
      const reply = this.#run(command);
      this.#answer(ref, reply);
      return !reply.close;
    } catch (error) {
      if (error instanceof ChatError) {
        this.#sendError(ref, error);
      } else {
        log.error("Command {type} from {remote} failed: {error}", {
          type: command?.type,
          remote: this.#conn.remote,
          error,
        });
        this.#sendError(ref, new ChatError("internal", "Internal error: the command failed"));
      }
      return true;
    }
  }

  /** The command table: each client frame type and what it does. */
  #run(command: TextCommand): Reply {
    const hub = this.#hub;
    switch (command.type) {
      case "hello": {
        if (command.proto !== undefined && command.proto !== PROTO) {
          throw new ChatError("bad_frame", `Unsupported protocol version ${command.proto}`);
        }
        return {
          frame: {
            type: "welcome",
            server: this.#options.serverName,
            version: this.#options.version,
            proto: PROTO,
            name: this.name,
          },
          text: [`You are ${this.name}`],
        };
      }
      case "nick":
        hub.rename(this, command.name);
        return { ack: { name: this.name }, text: [`You are now ${this.name}`] };
      case "join": {
        const { room, members } = hub.join(this, command.room);
        this.#current = room;
        return {
          ack: { room, members },
          text: [`You joined ${room}; members (${members.length}): ${members.join(", ")}`],
        };
      }
      case "part": {
        const room = hub.part(this, command.room);
        const text = [`You left ${room}`];
        if (this.#current === room) {
          this.#current = hub.roomsOf(this).at(-1);
          text.push(
            this.#current ? `Current room: ${this.#current}` : "You are in no room; /join one",
          );
        }
        return { ack: { room }, text };
      }
      case "rooms": {
        const rooms = hub.rooms();
        return {
          ack: { rooms },
          text: [`Rooms: ${rooms.map((r) => `${r.name} (${r.members})`).join(", ")}`],
        };
      }
      case "who": {
        const { room, members } = hub.who(command.room);
        return {
          ack: { room, members },
          text: [`Members of ${room} (${members.length}): ${members.join(", ")}`],
        };
      }
      case "ping":
        return { frame: { type: "pong" }, text: ["pong"] };
      case "send":
        return this.#send(command);
      case "quit":
        return { ack: {}, text: [`Goodbye, ${this.name}`], close: true };
      case "help":
        return { ack: {}, text: [...TEXT_HELP] };
    }
  }

  #send(command: Extract<ClientFrame, { type: "send" }>): Reply {
    const { text } = command;
    if (text.trim() === "") throw new ChatError("bad_frame", "Cannot send an empty message");
    if (utf8Length(text, this.#options.maxText) > this.#options.maxText) {
      throw new ChatError(
        "text_too_long",
        `Message too long: the limit is ${this.#options.maxText} bytes`,
      );
    }
    if (command.room !== undefined) {
      const sent = this.#hub.sendToRoom(this, command.room, text, command.action);
      return { ack: { ...sent } };
    }
    if (command.to !== undefined) {
      const sent = this.#hub.sendDirect(this, command.to, text, command.action);
      return {
        ack: { id: sent.id, ts: sent.ts },
        text: [`[dm to ${sent.to}] <${this.name}> ${sanitize(text)}`],
      };
    }
    throw new ChatError("bad_frame", "Frame 'send' needs 'room' or 'to'");
  }

  #answer(ref: string | undefined, reply: Reply): void {
    if (this.#mode === "json") {
      const frame: ServerFrame = reply.frame ?? { type: "ack", ...reply.ack };
      this.#outbox.push(encodeLine(JSON.stringify(ref === undefined ? frame : { ...frame, ref })));
    } else {
      for (const line of reply.text ?? []) {
        this.#outbox.push(encodeLine(line.startsWith("[") ? line : `* ${line}`));
      }
    }
  }

  #sendError(ref: string | undefined, error: ChatError): void {
    const frame: ServerFrame = { type: "error", code: error.code, message: error.message };
    if (ref !== undefined) frame.ref = ref;
    const bytes = new Outgoing(frame).bytes(this.#mode ?? "text");
    if (bytes !== null) this.#outbox.push(bytes);
  }

  #goOnline(): void {
    this.#hub.connect(this);
    this.#online = true;
    this.#current = this.#hub.roomsOf(this)[0];
    log.info("{remote} is online as {name} ({mode} mode)", {
      remote: this.#conn.remote,
      name: this.name,
      mode: this.#mode,
    });
    if (this.#mode === "text") {
      this.#outbox.push(encodeLine(`* You are ${this.name}, in ${this.#current}`));
    }
  }

  #goOffline(): void {
    if (!this.#online) return;
    this.#online = false;
    this.#hub.disconnect(this);
    log.info("{remote} ({name}) went offline", { remote: this.#conn.remote, name: this.name });
  }

  async #flush(deadlineMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#outbox.drained(),
      new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs)),
    ]);
    clearTimeout(timer);
  }
}

/** The UTF-8 length of `text`, computed exactly only when it could exceed `limit`. */
function utf8Length(text: string, limit: number): number {
  return text.length * 3 <= limit ? text.length : encoder.encode(text).length;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
