/**
 * Message commands: `send` (to a room or a person) and `history`. Text is checked here, in one
 * place, before anything is stored: what is stored is what is delivered.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import type { FileRef, HistoryFrame } from "../protocol/frames.ts";
import { replyQuote } from "../protocol/frames.ts";
import { checkName, nameKey } from "../protocol/names.ts";
import { checkedText } from "../services/messages.ts";
import type { Draft } from "../services/messages.ts";
import type { HistoryTarget } from "../store/store.ts";
import type { CommandGroup } from "./command.ts";

/** The most messages one history page holds. */
export const MAX_HISTORY_PAGE = 200;

/** The message commands. */
export const messageCommands: CommandGroup<"send" | "history"> = {
  send: {
    guard: { needs: "online" },
    pipelined: true,
    async run(request, caller, { messages, dms, files, conversation, config }) {
      const withFile = request.file !== undefined;
      const text = checkedText(request.text, config.maxText, "send", withFile);
      let { room, to } = request;
      const draft: Draft = { text };
      if (request.replyTo !== undefined) {
        // A reply goes where the message it answers is (given, the place must be the same).
        const answered = await conversation.visible(caller, request.replyTo, "reply");
        const place = answered.room !== undefined
          ? { room: answered.room }
          : { to: nameKey(answered.from) === nameKey(caller.name) ? answered.to! : answered.from };
        const same = "room" in place
          ? room === undefined ? to === undefined : nameKey(room) === nameKey(place.room)
          : to === undefined
          ? room === undefined
          : nameKey(to) === nameKey(place.to);
        if (!same) {
          throw new ChatError("bad_frame", "Cannot reply: the message answered is elsewhere");
        }
        ({ room, to } = { room: undefined, to: undefined, ...place });
        draft.replyTo = request.replyTo;
        draft.quote = replyQuote(answered);
      }
      if (room === undefined && to === undefined) {
        throw new ChatError("bad_frame", "Frame 'send' needs 'room' or 'to'");
      }
      if (request.action) draft.action = true;
      if (withFile) {
        if (files === undefined) throw new ChatError("no_such_file", "This server keeps no files");
        const { id, name, size, type, sha256 } = await files.attachable(caller.user, request.file!);
        draft.file = { id, name, size, type, sha256 } satisfies FileRef;
      }
      const { message, waiting } = room !== undefined
        ? { message: await messages.toRoom(caller, room, draft), waiting: false }
        : await dms.send(caller, to!, draft);
      return {
        result: {
          command: "send",
          reply: { type: "ack", id: message.id, ts: message.ts, ...waiting ? { waiting } : {} },
          message,
        },
      };
    },
  },
  history: {
    guard: {
      needs: "online",
      inRoom: { room: (request) => request.room, verb: "show history" },
    },
    async run(request, caller, { hub, messages, conversation }) {
      const limit = Math.min(Math.max(1, Math.floor(request.limit ?? 50)), MAX_HISTORY_PAGE);
      const { before, after, around } = request;
      if ([before, after, around].filter((v) => v !== undefined).length > 1) {
        throw new ChatError(
          "bad_frame",
          "Frame 'history' takes one of 'before', 'after' and 'around'",
        );
      }
      for (const [field, value] of [["after", after], ["around", around]] as const) {
        if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
          throw new ChatError("bad_frame", `Field '${field}' must be a message id`);
        }
      }
      let room = request.room;
      let other = request.with;
      if (around !== undefined) {
        // The page is the conversation the message is in: given, it must be that one.
        const message = await conversation.visible(caller, around, "show history around it");
        const place = message.room !== undefined
          ? { room: message.room }
          : { with: nameKey(message.from) === nameKey(caller.name) ? message.to! : message.from };
        const elsewhere = "room" in place
          ? other !== undefined || (room !== undefined && nameKey(room) !== nameKey(place.room))
          : room !== undefined || (other !== undefined && nameKey(other) !== nameKey(place.with));
        if (elsewhere) {
          throw new ChatError(
            "no_such_message",
            `Cannot show history around it: message ${around} is not in ${room ?? other}`,
          );
        }
        if ("room" in place) room = place.room;
        else other = place.with;
      }
      let target: HistoryTarget;
      let frame: HistoryFrame;
      if (room !== undefined) {
        target = { room };
        frame = { type: "history", room: hub.who(room).room, messages: [], more: false };
      } else if (other !== undefined) {
        if (caller.user === undefined) {
          throw new ChatError(
            "login_required",
            "Only logged-in accounts have direct message history",
          );
        }
        checkName(other);
        target = { between: [caller.user.name, other] };
        frame = { type: "history", with: other, messages: [], more: false };
      } else {
        throw new ChatError("bad_frame", "Frame 'history' needs 'room' or 'with'");
      }
      if (around !== undefined) {
        frame.around = around;
        Object.assign(frame, await messages.pageAround(target, around, limit));
      } else if (after !== undefined) {
        Object.assign(frame, await messages.pageAfter(target, after, limit));
      } else {
        Object.assign(frame, await messages.page(target, before, limit));
      }
      return { result: { command: "history", reply: frame } };
    },
  },
};
