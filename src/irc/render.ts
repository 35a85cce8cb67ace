/**
 * Parley's events and messages as IRC lines, for one set of negotiated capabilities. An
 * {@linkcode IrcEncoder} is shared by every IRC session with the same set (see
 * {@linkcode IrcWorld.encoder}), so an event fanned out to a thousand IRC users is encoded once
 * per set, as {@linkcode Outgoing} caches it.
 *
 * @module
 */

import type { MessageFrame, ServerFrame } from "../protocol/frames.ts";
import type { EventEncoder } from "../protocol/outgoing.ts";
import { formatIrcLine, type OutMessage, splitUtf8 } from "./message.ts";

/** The host part of every user's prefix: parley does not show addresses. */
export const USER_HOST = "parley";

/** The capabilities that change how an event is rendered. */
export const EVENT_CAPS = [
  "account-notify",
  "account-tag",
  "extended-join",
  "message-tags",
  "server-time",
] as const;

/** What rendering needs of the server. */
export interface RenderContext {
  /** The server's IRC name (the source of server lines). */
  serverName: string;
  /** The account a user of that name is logged in as, if any (for account-tag). */
  accountOf(name: string): string | undefined;
  /** The longest message text, to cut a message's lines. */
  maxText: number;
}

/** `nick!user@host` for a parley user. */
export function userPrefix(name: string): string {
  return `${name}!${name}@${USER_HOST}`;
}

/** An ISO 8601 time with milliseconds, UTC, as server-time wants it. */
export function isoTime(ts: number): string {
  return new Date(ts).toISOString();
}

/** `[2026-12-01 21:35] `: the time in front of replayed text for a client without server-time. */
export function timePrefix(ts: number): string {
  return `[${new Date(ts).toISOString().slice(0, 16).replace("T", " ")}] `;
}

/** The lines for a set of capabilities. */
export class IrcRenderer {
  readonly caps: ReadonlySet<string>;
  readonly #ctx: RenderContext;

  /**
   * @param ctx the server's name and lookups
   * @param caps the negotiated capabilities
   */
  constructor(ctx: RenderContext, caps: ReadonlySet<string>) {
    this.#ctx = ctx;
    this.caps = caps;
  }

  /** The server's name. */
  get server(): string {
    return this.#ctx.serverName;
  }

  /** Formats lines into one chunk. */
  bytes(lines: readonly OutMessage[]): Uint8Array | null {
    if (lines.length === 0) return null;
    return new TextEncoder().encode(lines.map(formatIrcLine).join(""));
  }

  /** A line from the server. */
  fromServer(command: string, params: string[]): OutMessage {
    return { source: this.#ctx.serverName, command, params };
  }

  /**
   * A message as PRIVMSG (or NOTICE for a file or a deleted message) lines: one per line of its
   * text, each cut to fit 512 bytes. `replayed`: put the time in front of the text when the
   * client lacks server-time. `extra`: tags to add (batch, label).
   */
  message(
    m: MessageFrame,
    options: { replayed?: boolean; extra?: [string, string][] } = {},
  ): OutMessage[] {
    const target = m.room ?? m.to!;
    const tags = this.#tags(m.ts, m.from, options.extra ?? []);
    if (this.caps.has("message-tags")) {
      tags.push(["msgid", String(m.id)]);
      if (m.replyTo !== undefined) tags.push(["+draft/reply", String(m.replyTo)]);
    }
    const source = userPrefix(m.from);
    const before = options.replayed && !this.caps.has("server-time") ? timePrefix(m.ts) : "";
    const out: OutMessage[] = [];
    // The room of a line, the prefix and the command take at most this many bytes of the 512.
    const room = 512 - 2 - (source.length + 2) - 10 - (target.length + 2) - 16;
    const texts = m.deleted ? [] : m.text.split("\n").filter((t) => t !== "");
    for (const text of texts) {
      const body = m.action ? `${before}${text}` : before + text;
      for (const piece of splitUtf8(body, Math.max(32, room))) {
        const line = m.action ? `\x01ACTION ${piece}\x01` : piece;
        out.push({ tags, source, command: "PRIVMSG", params: [target, line] });
      }
    }
    if (m.file !== undefined) {
      const note = `${before}[file] ${m.file.name} (${m.file.size} bytes, ${m.file.type})`;
      out.push({ tags, source, command: "NOTICE", params: [target, note] });
    }
    if (m.deleted) {
      out.push({ tags, source, command: "NOTICE", params: [target, `${before}[deleted message]`] });
    }
    return out;
  }

  /** The tags of a line from `from` at `ts`: server-time, account-tag, then `extra`. */
  #tags(ts: number | undefined, from: string | undefined, extra: [string, string][]) {
    const tags: [string, string][] = [...extra];
    if (ts !== undefined && this.caps.has("server-time")) tags.push(["time", isoTime(ts)]);
    if (from !== undefined && this.caps.has("account-tag")) {
      const account = this.#ctx.accountOf(from);
      if (account !== undefined) tags.push(["account", account]);
    }
    return tags;
  }

  /** A JOIN line (extended-join adds the account and the real name). */
  join(name: string, room: string): OutMessage {
    const params = [room];
    if (this.caps.has("extended-join")) params.push(this.#ctx.accountOf(name) ?? "*", name);
    return {
      tags: this.#tags(undefined, name, []),
      source: userPrefix(name),
      command: "JOIN",
      params,
    };
  }

  /** An event's lines (none when IRC shows nothing of it). */
  event(frame: ServerFrame): OutMessage[] {
    const now = Date.now();
    switch (frame.type) {
      case "message":
        return this.message(frame);
      case "presence": {
        const source = userPrefix(frame.name);
        const tags = this.#tags(now, frame.name, []);
        switch (frame.event) {
          case "joined":
            return [this.join(frame.name, frame.room!)];
          case "left":
            return [{ tags, source, command: "PART", params: [frame.room!] }];
          case "quit":
            return [{ tags, source, command: "QUIT", params: ["Quit"] }];
          case "renamed": {
            const newName = frame.newName!;
            const out: OutMessage[] = [{ tags, source, command: "NICK", params: [newName] }];
            const account = this.#ctx.accountOf(newName);
            if (this.caps.has("account-notify") && account !== undefined) {
              out.push({ source: userPrefix(newName), command: "ACCOUNT", params: [account] });
            }
            return out;
          }
        }
        return [];
      }
      case "topic":
        return [{
          tags: this.#tags(now, frame.by, []),
          source: userPrefix(frame.by),
          command: "TOPIC",
          params: [frame.room, frame.topic ?? ""],
        }];
      case "moderation": {
        const source = userPrefix(frame.by);
        const tags = this.#tags(now, frame.by, []);
        const mode = (change: string, ...args: string[]): OutMessage => ({
          tags,
          source,
          command: "MODE",
          params: [frame.room, change, ...args],
        });
        if (frame.action === "mode") return [mode(modeChange(frame.modes))];
        const why = frame.reason ?? "";
        switch (frame.action) {
          case "kick":
            return [{ tags, source, command: "KICK", params: [frame.room, frame.name, why] }];
          case "ban":
            return [
              mode("+b", `${frame.name}!*@*`),
              { tags, source, command: "KICK", params: [frame.room, frame.name, why || "Banned"] },
            ];
          case "unban":
            return [mode("-b", `${frame.name}!*@*`)];
          case "op":
            return [mode("+o", frame.name)];
          case "deop":
            return [mode("-o", frame.name)];
          case "invite":
            return [{ tags, source, command: "INVITE", params: [frame.name, frame.room] }];
          case "mute":
          case "unmute": {
            const text = `${frame.by} ${frame.action}d ${frame.name}${why ? `: ${why}` : ""}`;
            return [{ source: this.server, command: "NOTICE", params: [frame.room, text] }];
          }
        }
        return [];
      }
      case "edited": {
        const target = "room" in frame ? frame.room : undefined;
        const text = `[edited message ${frame.id}] ${frame.text.replace(/\n/g, " ")}`;
        return this.#notice(frame.by, target, "to" in frame ? frame : undefined, text, now);
      }
      case "deleted": {
        const target = "room" in frame ? frame.room : undefined;
        const text = `[deleted message ${frame.id}]`;
        return this.#notice(frame.by, target, "to" in frame ? frame : undefined, text, now);
      }
      case "wall":
        return [{
          source: this.server,
          command: "NOTICE",
          params: ["*", `[wall from ${frame.from}] ${frame.text.replace(/\n/g, " ")}`],
        }];
      case "notice":
        return [{ source: this.server, command: "NOTICE", params: ["*", frame.text] }];
      case "ping":
        return [{ command: "PING", params: [this.server] }];
      case "shutdown":
        return [{ command: "ERROR", params: [`Closing link: ${frame.reason}`] }];
      default:
        // reactions, typing, read markers: IRC has nothing for them.
        return [];
    }
  }

  /** A NOTICE from `by` to a room, or in a direct conversation (to the other of the two). */
  #notice(
    by: string,
    room: string | undefined,
    dm: { from: string; to: string } | undefined,
    text: string,
    ts: number,
  ): OutMessage[] {
    const target = room ?? (dm === undefined ? "*" : dm.from === by ? dm.to : dm.from);
    const params = [target, splitUtf8(text, 380)[0]!];
    return [{ tags: this.#tags(ts, by, []), source: userPrefix(by), command: "NOTICE", params }];
  }
}

/** A room's modes after a change (`+im`, `""`) as an IRC mode change: `+m-i`. */
export function modeChange(after: string): string {
  const on = [..."im"].filter((c) => after.includes(c)).join("");
  const off = [..."im"].filter((c) => !after.includes(c)).join("");
  return (on === "" ? "" : `+${on}`) + (off === "" ? "" : `-${off}`);
}

/** An {@linkcode EventEncoder} for one set of capabilities. */
export class IrcEncoder implements EventEncoder {
  readonly renderer: IrcRenderer;

  /** @param renderer the lines for this set of capabilities */
  constructor(renderer: IrcRenderer) {
    this.renderer = renderer;
  }

  /** An event's bytes for every IRC session with this set. */
  event(frame: ServerFrame): Uint8Array | null {
    return this.renderer.bytes(this.renderer.event(frame));
  }
}
