/**
 * The command table: every request type, its guards and its handler, gathered from one module
 * per group. The session looks commands up here and does no routing of its own.
 *
 * @module
 */

import type { CommandTable } from "./command.ts";
import { connectionCommands } from "./connection.ts";
import { conversationCommands } from "./conversation.ts";
import { identityCommands } from "./identity.ts";
import { messageCommands } from "./messages.ts";
import { moderationCommands } from "./moderation.ts";
import { roomCommands } from "./rooms.ts";
import { voiceCommands } from "./voice.ts";

/**
 * Every command.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { COMMANDS } from "./table.ts";
 * assert.equal(COMMANDS.logout.guard.needs, "account");
 * assert.equal(COMMANDS.send.pipelined, true);
 * ```
 */
export const COMMANDS: CommandTable = {
  ...connectionCommands,
  ...identityCommands,
  ...roomCommands,
  ...messageCommands,
  ...moderationCommands,
  ...conversationCommands,
  ...voiceCommands,
};
