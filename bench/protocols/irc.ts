/**
 * IRC (RFC 1459/2812 client side) for the driver: `NICK`/`USER` (done at the end of the MOTD,
 * `376` or `422`), `JOIN` (done at end of names, `366`), `OPER` (done at `381`), `PRIVMSG` out
 * and in, `PING` answered.
 * Numerics 400–599 and `ERROR` are refusals. Lines are classified from their bytes; only
 * replies someone waits for are decoded.
 *
 * @module
 */

import type { ByteSink } from "../byte_sink.ts";
import type { BenchConn, BenchLogin, LoginSpec, Protocol, SendTarget } from "../conn.ts";
import { RequestError } from "../conn.ts";
import { eachLine } from "./parley.ts";

const SPACE = 0x20;
const COLON = 0x3a;
const ZERO = 0x30;
const decoder = new TextDecoder();

function startsWith(buf: Uint8Array, at: number, ascii: string): boolean {
  for (let i = 0; i < ascii.length; i++) if (buf[at + i] !== ascii.charCodeAt(i)) return false;
  return true;
}

function digit(b: number | undefined): boolean {
  return b !== undefined && b >= ZERO && b <= ZERO + 9;
}

/** Whether `reply` (an end of names, `366`) is for `room`. */
function namesOf(reply: string, room: string): boolean {
  return reply.toLowerCase().includes(` ${room.toLowerCase()} `);
}

/** IRC client protocol. */
export const ircProtocol: Protocol = {
  name: "irc",

  consume(conn: BenchConn, buf: Uint8Array, len: number): number {
    return eachLine(buf, len, (b, s, e) => {
      let cmd = s;
      if (b[s] === COLON) {
        cmd = b.indexOf(SPACE, s);
        if (cmd < 0 || cmd >= e) return;
        cmd++;
      }
      const c0 = b[cmd];
      if (c0 === 0x50) { // P
        if (startsWith(b, cmd, "PRIVMSG ")) conn.message(b, cmd, e);
        else if (startsWith(b, cmd, "PING")) {
          conn.writeString(`PONG${decoder.decode(b.subarray(cmd + 4, e))}\r\n`);
        }
        return;
      }
      if (digit(c0) && digit(b[cmd + 1]) && digit(b[cmd + 2]) && b[cmd + 3] === SPACE) {
        const code = (c0! - ZERO) * 100 + (b[cmd + 1]! - ZERO) * 10 + (b[cmd + 2]! - ZERO);
        if (code === 376 || code === 422 || code === 366 || code === 381) {
          conn.settle(true, conn.text(b, s, e));
        } else if (code >= 400 && code < 600) conn.settle(false, conn.text(b, s, e));
        return;
      }
      if (startsWith(b, cmd, "ERROR")) conn.settle(false, conn.text(b, s, e));
    });
  },

  async login(conn: BenchConn, spec: LoginSpec, timeoutMs: number): Promise<BenchLogin> {
    if (spec.kind !== "guest" || spec.nick === undefined) {
      throw new TypeError("Cannot log in to IRC: only a nick is supported");
    }
    const nick = spec.nick;
    await conn.request(`NICK ${nick}\r\nUSER ${nick} 0 * :parley bench\r\n`, timeoutMs);
    return { name: nick };
  },

  async join(conn: BenchConn, room: string, timeoutMs: number): Promise<void> {
    let reply = await conn.request(`JOIN ${room}\r\n`, timeoutMs);
    // A server that puts its users in a room of its own (parley: #general) ends that room's
    // names first: wait for this room's.
    for (let i = 0; i < 4 && reply.includes(" 366 ") && !namesOf(reply, room); i++) {
      reply = await conn.expect(timeoutMs);
    }
    if (!reply.includes(" 366 ")) throw new RequestError(`Unexpected reply to JOIN: ${reply}`);
  },

  encodeSend(out: ByteSink, target: SendTarget, text: string): void {
    out.str(`PRIVMSG ${"room" in target ? target.room : target.to} :${text}\r\n`);
  },
};
