/**
 * Room messages: checked against the room's moderation (mutes, `+m`), stored (the store gives
 * the id and the room's sequence number), then published through the hub, so nothing is
 * delivered or acknowledged before it is durable.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Hub } from "../hub/hub.ts";
import { ChatError } from "../protocol/errors.ts";
import { isBlank, textProblem, utf8Length } from "../protocol/unicode.ts";
import type { Actor, Moderation } from "./moderation.ts";
import type { FileRef, HistoryFrame, MessageFrame, ReplyQuote } from "../protocol/frames.ts";
import type { HistoryTarget, MessageStore, NewMessage } from "../store/store.ts";

/** What a message says: its text, whether it is an action (`/me`), its attachment, and what it answers. */
export interface Draft {
  text: string;
  action?: boolean;
  file?: FileRef;
  replyTo?: number;
  /** What the reply shows of the message it answers (delivered, not stored: read back live). */
  quote?: ReplyQuote;
}

/**
 * The text rules of every message, sent or edited (what is stored is what is delivered): no text
 * a store or client could not keep whole, not blank (unless a file carries the message: then
 * blank text is stored as ""), at most `maxText` UTF-8 bytes.
 *
 * @returns the text to store
 * @throws {ChatError} `bad_frame`, `text_too_long`
 */
export function checkedText(
  text: string,
  maxText: number,
  verb: string,
  blankAllowed = false,
): string {
  const problem = textProblem(text);
  if (problem !== undefined) throw new ChatError("bad_frame", `Cannot ${verb}: ${problem}`);
  if (isBlank(text)) {
    if (!blankAllowed) throw new ChatError("bad_frame", `Cannot ${verb} an empty message`);
    text = "";
  }
  if (utf8Length(text) > maxText) {
    throw new ChatError("text_too_long", `Message too long: the limit is ${maxText} bytes`);
  }
  return text;
}

/** Builds the stored form of a message. */
export function newMessage(
  where: { room: string } | { to: string },
  from: { name: string; accountId: number | undefined },
  draft: Draft,
  ts: number,
): NewMessage {
  const message: NewMessage = { ...where, from: from.name, text: draft.text, ts };
  if (draft.action) message.action = true;
  if (draft.file !== undefined) message.file = draft.file;
  if (draft.replyTo !== undefined) message.replyTo = draft.replyTo;
  if (draft.quote !== undefined) message.quote = draft.quote;
  if (from.accountId !== undefined) message.fromAccount = from.accountId;
  return message;
}

/** The message as recipients see it, once stored with `id`. */
export function messageFrame(id: number, stored: NewMessage): MessageFrame {
  const { pendingFor: _, fromAccount: _account, ...fields } = stored;
  return { type: "message", id, ...fields };
}

/** Sending to rooms, and reading history. */
export class Messages {
  readonly #hub: Hub;
  readonly #store: MessageStore;
  readonly #clock: Clock;
  readonly #moderation: Moderation;

  /**
   * @param hub who is in which room
   * @param store where messages are kept
   * @param moderation who may send where (mutes, moderated rooms)
   * @param clock stamps messages
   */
  constructor(hub: Hub, store: MessageStore, moderation: Moderation, clock: Clock) {
    this.#hub = hub;
    this.#store = store;
    this.#moderation = moderation;
    this.#clock = clock;
  }

  /**
   * Stores a message from `sender` to a room it is in, then delivers it to the room.
   *
   * @throws {ChatError} `invalid_room`, `no_such_room`, `not_in_room`
   */
  async toRoom(sender: Actor, room: string, draft: Draft): Promise<MessageFrame> {
    const { from, room: name } = this.#hub.roomSender(sender, room);
    await this.#moderation.checkSend(sender, name);
    const author = { name: from, accountId: sender.user?.id };
    const stored = newMessage({ room: name }, author, draft, this.#clock.now());
    const { id } = await this.#store.append(stored);
    const frame = messageFrame(id, stored);
    this.#hub.publish(sender, frame);
    return frame;
  }

  /** A page of history: up to `limit` messages before `before`, and whether there are more. */
  async page(
    target: HistoryTarget,
    before: number | undefined,
    limit: number,
  ): Promise<Pick<HistoryFrame, "messages" | "more">> {
    const rows = await this.#store.history(target, before, limit + 1);
    const more = rows.length > limit;
    return { messages: more ? rows.slice(1) : rows, more };
  }

  /**
   * A page after `after`, oldest first: up to `limit` messages; `newer` says whether later ones
   * exist, `more` whether earlier ones do (before the page's first).
   */
  async pageAfter(
    target: HistoryTarget,
    after: number,
    limit: number,
  ): Promise<Pick<HistoryFrame, "messages" | "more" | "newer">> {
    const rows = await this.#store.historyAfter(target, after, limit + 1);
    const newer = rows.length > limit;
    const messages = newer ? rows.slice(0, limit) : rows;
    const first = messages[0]?.id ?? after + 1;
    const more = (await this.#store.history(target, first, 1)).length > 0;
    return { messages, more, newer };
  }

  /**
   * A page of at most `limit` messages around message `id` (which must be in `target`), oldest
   * first: about half before it, it, and the rest after (one side short, the other side gets
   * the room). `more` and `newer` say whether messages exist before and after the page.
   */
  async pageAround(
    target: HistoryTarget,
    id: number,
    limit: number,
  ): Promise<Pick<HistoryFrame, "messages" | "more" | "newer">> {
    // The message itself and what came before it, then what came after.
    const [upTo, after] = await Promise.all([
      this.#store.history(target, id + 1, limit + 1),
      this.#store.historyAfter(target, id, limit),
    ]);
    const before = upTo.at(-1)?.id === id ? upTo.slice(0, -1) : upTo;
    const self = upTo.at(-1)?.id === id ? [upTo.at(-1)!] : [];
    const room = limit - self.length;
    const half = Math.floor(room / 2);
    const takeBefore = Math.min(before.length, Math.max(half, room - after.length));
    const takeAfter = Math.min(after.length, room - takeBefore);
    return {
      messages: [
        ...before.slice(before.length - takeBefore),
        ...self,
        ...after.slice(0, takeAfter),
      ],
      more: before.length > takeBefore,
      newer: after.length > takeAfter,
    };
  }

  /** The latest page of each room (empty rooms left out), for replaying on join. */
  async latest(rooms: readonly string[], limit: number): Promise<HistoryFrame[]> {
    if (limit <= 0) return [];
    const pages = await Promise.all(rooms.map(async (room): Promise<HistoryFrame> => ({
      type: "history",
      room,
      ...await this.page({ room }, undefined, limit),
    })));
    return pages.filter((p) => p.messages.length > 0);
  }
}
