/**
 * Conversation commands: `edit`, `delete`, `react`, `typing`, `search` (replies are `send` with
 * `replyTo`, in src/commands/messages.ts). The conversation service does the work.
 *
 * @module
 */

import type { CommandGroup } from "./command.ts";

/** The most results one search answers. */
export const MAX_SEARCH = 50;

/** The conversation commands. */
export const conversationCommands: CommandGroup<
  "edit" | "delete" | "react" | "typing" | "search" | "read" | "unread"
> = {
  edit: {
    guard: { needs: "account" },
    async run(request, caller, { conversation }) {
      const edited = await conversation.edit(caller, request.id, request.text);
      return { result: { command: "edit", reply: { type: "ack", id: request.id, edited } } };
    },
  },
  delete: {
    guard: { needs: "account" },
    async run(request, caller, { conversation }) {
      await conversation.remove(caller, request.id);
      return { result: { command: "delete", reply: { type: "ack", id: request.id } } };
    },
  },
  react: {
    guard: { needs: "account" },
    async run(request, caller, { conversation }) {
      const reactions = await conversation.react(
        caller,
        request.id,
        request.emoji,
        request.off !== true,
      );
      return {
        result: { command: "react", reply: { type: "ack", id: request.id, reactions } },
      };
    },
  },
  typing: {
    guard: { needs: "online" },
    run(request, caller, { conversation }) {
      const where: { room?: string; to?: string } = {};
      if (request.room !== undefined) where.room = request.room;
      else if (request.to !== undefined) where.to = request.to;
      conversation.typing(caller, where);
      return { result: { command: "typing", reply: { type: "ack" } } };
    },
  },
  read: {
    guard: { needs: "account" },
    async run(request, caller, { conversation }) {
      const where: { room?: string; with?: string } = {};
      if (request.room !== undefined) where.room = request.room;
      else if (request.with !== undefined) where.with = request.with;
      const id = await conversation.markRead(caller, where, request.id);
      return { result: { command: "read", reply: { type: "ack", id } } };
    },
  },
  unread: {
    // Counting reads every room the account is in: a few at once, then one every 2 s.
    guard: { needs: "account", rate: { burst: 5, perSecond: 0.5 } },
    async run(_request, caller, { conversation }) {
      const state = await conversation.unread(caller);
      return { result: { command: "unread", reply: { type: "ack", ...state } } };
    },
  },
  search: {
    // Each search reads the full-text index: a few at once, then one a second.
    guard: { needs: "online", rate: { burst: 5, perSecond: 1 } },
    async run(request, caller, { conversation }) {
      const limit = Math.min(Math.max(1, Math.floor(request.limit ?? 20)), MAX_SEARCH);
      const where: { room?: string; with?: string } = {};
      if (request.room !== undefined) where.room = request.room;
      else if (request.with !== undefined) where.with = request.with;
      const messages = await conversation.search(caller, request.text, where, limit);
      return {
        result: { command: "search", reply: { type: "ack", messages }, text: request.text },
      };
    },
  },
};
