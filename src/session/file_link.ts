/**
 * The download link a file message gets for a recipient who cannot send the token (text mode,
 * IRC): signed for that account, expiring (src/files/capability.ts). The only per-recipient
 * bytes of a fan-out, and only for file messages in those dialects.
 *
 * @module
 */

import { webUrl } from "../commands/connection.ts";
import type { Dialect } from "../dialects/dialect.ts";
import type { MessageFrame } from "../protocol/frames.ts";
import { encodeLine } from "../protocol/outgoing.ts";
import type { SessionContext } from "./session.ts";

/** Whether `dialect`'s recipients of a file message get a link of their own. */
export function wantsLink(dialect: Dialect, frame: MessageFrame): boolean {
  return frame.file !== undefined && (dialect.name === "text" || dialect.fileLink !== undefined);
}

/**
 * The line with `frame`'s file's link for the account `userId`, or undefined when there is none
 * to give (a guest, or no web port to fetch it from).
 *
 * @param localIp the address the client reached (for a server listening on every address)
 */
export function downloadLink(
  ctx: Pick<SessionContext, "files" | "web" | "config">,
  localIp: string | undefined,
  userId: number | undefined,
  frame: MessageFrame,
  dialect: Dialect,
): Uint8Array | undefined {
  const { files, web, config } = ctx;
  if (files === undefined || web === undefined || userId === undefined) return undefined;
  const wildcard = config.host === "0.0.0.0" || config.host === "::";
  const host = wildcard ? localIp ?? "localhost" : config.host;
  const url = files.links.url(webUrl(web, host), frame.file!.id, userId, Date.now());
  return dialect.fileLink?.(frame, url) ?? encodeLine(`* Download (24 h): ${url}`);
}
