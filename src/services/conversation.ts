/**
 * What people do with messages once sent: reply to them, edit and delete them, react to them,
 * say they are typing, and search them (docs/protocol.md, "Replies, edits, reactions, typing
 * and search"). Everything but typing is stored first, then announced to everyone who can see
 * the message: its room, or both parties of its direct conversation.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Hub } from "../hub/hub.ts";
import { ChatError } from "../protocol/errors.ts";
import type { MessageFrame, MessagePlace } from "../protocol/frames.ts";
import { REACTIONS } from "../protocol/frames.ts";
import { checkName, nameKey } from "../protocol/names.ts";
import type { MessageStore, StoredMessage } from "../store/store.ts";
import { checkedText } from "./messages.ts";
import type { Actor, Moderation } from "./moderation.ts";

/** Typing is announced at most this often per session and conversation. */
export const TYPING_EVERY_MS = 3000;
/** The most words a search takes, and the longest word. */
const MAX_WORDS = 10;
const MAX_WORD = 64;
/** How many of its rooms `unread` counts (each count reads up to 1,000 rows). */
const MAX_COUNTED_ROOMS = 200;
/** How many direct conversations `unread` lists (the most recent). */
const MAX_CONVERSATIONS = 50;
/** How many typing stamps are kept before they are forgotten all at once. */
const MAX_TYPING_STAMPS = 10_000;

/** The conversation service. */
export class Conversation {
  readonly #hub: Hub;
  readonly #store: MessageStore;
  readonly #moderation: Moderation;
  readonly #clock: Clock;
  readonly #maxText: number;
  readonly #typing = new Map<string, number>();

  /**
   * @param hub who is where
   * @param store the messages
   * @param moderation who may delete others' messages, and send where
   * @param clock stamps edits
   * @param maxText the longest text, in UTF-8 bytes
   */
  constructor(
    hub: Hub,
    store: MessageStore,
    moderation: Moderation,
    clock: Clock,
    maxText: number,
  ) {
    this.#hub = hub;
    this.#store = store;
    this.#moderation = moderation;
    this.#clock = clock;
    this.#maxText = maxText;
  }

  /**
   * The message `id` if `actor` can see it: it is in the actor's room, or a direct message of
   * the actor's account.
   *
   * @throws {ChatError} `no_such_message` otherwise (whether or not it exists)
   */
  async visible(actor: Actor, id: number, verb: string): Promise<StoredMessage> {
    const message = await this.#store.get(id);
    if (message !== undefined && this.#canSee(actor, message)) return message;
    throw new ChatError("no_such_message", `Cannot ${verb}: there is no message ${id} you can see`);
  }

  /**
   * Replaces the text of one of the actor's own messages.
   *
   * @returns when it was edited
   * @throws {ChatError} `no_such_message`, `forbidden`, `bad_frame`, `text_too_long`
   */
  async edit(actor: Actor, id: number, text: string): Promise<number> {
    const message = await this.visible(actor, id, "edit");
    if (message.deleted) {
      throw new ChatError("no_such_message", `Cannot edit: message ${id} was deleted`);
    }
    if (message.fromAccount === undefined || message.fromAccount !== actor.user?.id) {
      throw new ChatError("forbidden", "Cannot edit: it is not your message");
    }
    checkedText(text, this.#maxText, "edit");
    const edited = this.#clock.now();
    await this.#store.edit(id, text, edited);
    this.#announce(message, {
      type: "edited",
      id,
      text,
      edited,
      by: actor.name,
      ...placeOf(message),
    });
    return edited;
  }

  /**
   * Deletes a message: the actor's own, or (operators and above in its room, administrators
   * anywhere) anyone's.
   *
   * @throws {ChatError} `no_such_message`, `forbidden`
   */
  async remove(actor: Actor, id: number): Promise<void> {
    const message = await this.visible(actor, id, "delete");
    if (message.deleted) return;
    const mine = message.fromAccount !== undefined && message.fromAccount === actor.user?.id;
    if (!mine) {
      await this.#moderation.require(actor, message.room, "op", "delete someone else's message");
    }
    await this.#store.remove(id);
    this.#announce(message, { type: "deleted", id, by: actor.name, ...placeOf(message) });
  }

  /**
   * Adds or takes back the actor's reaction to a message.
   *
   * @returns the message's reactions after it
   * @throws {ChatError} `no_such_message`, `bad_frame` (an emoji outside the set)
   */
  async react(
    actor: Actor,
    id: number,
    emoji: string,
    on: boolean,
  ): Promise<Record<string, number>> {
    if (!REACTIONS.includes(emoji)) {
      throw new ChatError("bad_frame", `Cannot react with that: use one of ${REACTIONS.join(" ")}`);
    }
    const message = await this.visible(actor, id, "react");
    if (message.deleted) {
      throw new ChatError("no_such_message", `Cannot react: message ${id} was deleted`);
    }
    const reactions = await this.#store.react(id, emoji, `u:${actor.user!.id}`, on);
    this.#announce(message, { type: "reactions", id, reactions, ...placeOf(message) });
    return reactions;
  }

  /**
   * Tells a room, or one person, that the actor is typing: at most once per
   * {@linkcode TYPING_EVERY_MS} per conversation (more often is answered but not passed on).
   * Never stored.
   *
   * @throws {ChatError} `not_in_room`, `no_such_user`, `bad_frame`
   */
  typing(actor: Actor, where: { room?: string; to?: string }): void {
    const now = this.#clock.now();
    let key: string;
    if (where.room !== undefined) {
      const { room } = this.#hub.roomSender(actor, where.room);
      key = `${nameKey(actor.name)} ${nameKey(room)}`;
      if (!this.#due(key, now)) return;
      this.#hub.announce(room, { type: "typing", room, name: actor.name }, undefined, actor);
    } else if (where.to !== undefined) {
      checkName(where.to);
      const to = this.#hub.user(where.to);
      if (to === undefined) {
        throw new ChatError("no_such_user", `Cannot say so: no user named ${where.to} is online`);
      }
      key = `${nameKey(actor.name)} @${nameKey(to.name)}`;
      if (!this.#due(key, now)) return;
      this.#hub.announceDirect(to.name, to.name, { type: "typing", to: to.name, name: actor.name });
    } else {
      throw new ChatError("bad_frame", "Frame 'typing' needs 'room' or 'to'");
    }
  }

  /**
   * Searches what the actor may read: one room it is in, its direct messages with one person,
   * or (neither given) every room it is in and all its direct messages. Newest first.
   *
   * @throws {ChatError} `not_in_room`, `login_required`, `bad_frame`
   */
  async search(
    actor: Actor,
    text: string,
    where: { room?: string; with?: string },
    limit: number,
  ): Promise<MessageFrame[]> {
    const words = text.split(/\s+/).filter((w) => w !== "");
    if (words.length === 0) throw new ChatError("bad_frame", "Cannot search: give some words");
    if (words.length > MAX_WORDS || words.some((w) => w.length > MAX_WORD)) {
      throw new ChatError(
        "bad_frame",
        `Cannot search: at most ${MAX_WORDS} words of ${MAX_WORD} characters`,
      );
    }
    if (where.room !== undefined) {
      if (!this.#hub.isIn(actor, where.room)) {
        throw new ChatError("not_in_room", `Cannot search: you are not in ${where.room}`);
      }
      return await this.#store.search(words, { rooms: [where.room] }, limit);
    }
    const me = actor.user?.name;
    if (where.with !== undefined) {
      checkName(where.with);
      if (me === undefined) {
        throw new ChatError(
          "login_required",
          "Only logged-in accounts have direct message history",
        );
      }
      const other = nameKey(where.with);
      // The store searches all of the account's direct messages; keep this conversation's.
      const found = await this.#store.search(
        words,
        { rooms: [], dmsOf: me },
        Math.min(250, limit * 5),
      );
      return found.filter((m) => nameKey(m.from) === other || nameKey(m.to ?? "") === other)
        .slice(0, limit);
    }
    const scope = me === undefined
      ? { rooms: this.#hub.roomsOf(actor) }
      : { rooms: this.#hub.roomsOf(actor), dmsOf: me };
    return await this.#store.search(words, scope, limit);
  }

  /**
   * Moves the actor's read marker in a room it is in, or in its direct messages with someone,
   * forward to `id` (undefined: the conversation's latest message); its other sessions are told.
   *
   * @returns the marker after it
   * @throws {ChatError} `not_in_room`, `invalid_name`, `bad_frame`
   */
  async markRead(
    actor: Actor,
    where: { room?: string; with?: string },
    id: number | undefined,
  ): Promise<number> {
    if (id !== undefined && (!Number.isSafeInteger(id) || id < 0)) {
      throw new ChatError("bad_frame", "Field 'id' must be a message id");
    }
    const user = actor.user!;
    let place: { room: string } | { with: string };
    if (where.room !== undefined) {
      if (!this.#hub.isIn(actor, where.room)) {
        throw new ChatError("not_in_room", `Cannot mark as read: you are not in ${where.room}`);
      }
      place = { room: this.#hub.who(where.room).room };
    } else if (where.with !== undefined) {
      checkName(where.with);
      place = { with: where.with };
    } else {
      throw new ChatError("bad_frame", "Frame 'read' needs 'room' or 'with'");
    }
    if (id === undefined) {
      const target = "room" in place
        ? place
        : { between: [user.name, place.with] as [string, string] };
      id = (await this.#store.history(target, undefined, 1))[0]?.id ?? 0;
    }
    const read = await this.#store.markRead(user.id, place, id);
    this.#hub.announceDirect(user.name, user.name, { type: "read", id: read, ...place }, actor);
    return read;
  }

  /** Where the actor stands: unread counts in its rooms, and its direct conversations. */
  unread(actor: Actor): Promise<Awaited<ReturnType<MessageStore["unread"]>>> {
    const user = actor.user!;
    const rooms = this.#hub.roomsOf(actor).slice(0, MAX_COUNTED_ROOMS);
    return this.#store.unread(user.id, user.name, rooms, MAX_CONVERSATIONS);
  }

  #canSee(actor: Actor, message: StoredMessage): boolean {
    if (message.room !== undefined) return this.#hub.isIn(actor, message.room);
    const me = actor.user?.name;
    if (me === undefined) return false; // a guest's name is anyone's later: no DM history
    const key = nameKey(me);
    return nameKey(message.from) === key || nameKey(message.to ?? "") === key;
  }

  #announce(
    message: StoredMessage,
    frame: Parameters<Hub["announce"]>[1],
  ): void {
    if (message.room !== undefined) this.#hub.announce(message.room, frame);
    else this.#hub.announceDirect(message.from, message.to!, frame);
  }

  #due(key: string, now: number): boolean {
    const last = this.#typing.get(key);
    if (last !== undefined && now - last < TYPING_EVERY_MS) return false;
    if (this.#typing.size >= MAX_TYPING_STAMPS) this.#typing.clear();
    this.#typing.set(key, now);
    return true;
  }
}

/** Where a message lives, as its events say it. */
function placeOf(message: StoredMessage): MessagePlace {
  return message.room !== undefined
    ? { room: message.room }
    : { from: message.from, to: message.to! };
}
