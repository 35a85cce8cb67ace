/**
 * parley's JSON mode for the driver (see docs/protocol.md): `hello`, `nick`, `login`,
 * `register`, `join` and `send` out; replies (`welcome`, `ack`, `error`) settle requests,
 * `message` events are deliveries, `ping` is answered with `pong`, the rest is skipped. Lines
 * are classified by the byte after `{"type":"` without decoding them.
 *
 * @module
 */

import type { ByteSink } from "../byte_sink.ts";
import type { BenchConn, BenchLogin, LoginSpec, Protocol, SendTarget } from "../conn.ts";
import { RequestError } from "../conn.ts";

const NL = 0x0a;
const CR = 0x0d;
const BRACE = 0x7b;
const BANG = 0x21;
const STAR = 0x2a;
/** `{"type":"` is 9 bytes: the type starts at offset 9. */
const TYPE_AT = 9;
const PONG = new TextEncoder().encode('{"type":"pong"}\n');

/** Splits `buf[0, len)` into lines and hands each to `line`; returns the bytes consumed. */
export function eachLine(
  buf: Uint8Array,
  len: number,
  line: (buf: Uint8Array, start: number, end: number) => void,
): number {
  const view = buf.subarray(0, len);
  let pos = 0;
  for (;;) {
    const nl = view.indexOf(NL, pos);
    if (nl < 0) return pos;
    line(buf, pos, nl > pos && buf[nl - 1] === CR ? nl - 1 : nl);
    pos = nl + 1;
  }
}

/** A JSON value as a string literal. */
function q(s: string): string {
  return JSON.stringify(s);
}

/** parley JSON mode. */
export const parleyProtocol: Protocol = {
  name: "parley",

  consume(conn: BenchConn, buf: Uint8Array, len: number): number {
    return eachLine(buf, len, (b, s, e) => {
      const first = b[s];
      if (first === BRACE) {
        switch (b[s + TYPE_AT]) {
          case 0x6d: // message
            conn.message(b, s, e);
            return;
          case 0x70: // ping, presence, pong
            if (b[s + TYPE_AT + 1] === 0x69) conn.write(PONG);
            return;
          case 0x61: // ack
          case 0x77: // welcome
            conn.settle(true, conn.text(b, s, e));
            return;
          case 0x65: // error
            conn.settle(false, conn.text(b, s, e));
            return;
          default: // history, notice, shutdown
            return;
        }
      }
      if (first === STAR && conn.wantsReplies) {
        const line = conn.text(b, s, e);
        if (line.startsWith("* Welcome")) conn.settle(true, line);
      } else if (first === BANG) {
        conn.settle(false, conn.text(b, s, e));
      }
    });
  },

  async login(conn: BenchConn, spec: LoginSpec, timeoutMs: number): Promise<BenchLogin> {
    // Speak first, as parley's own clients do: the server greets a silent client only after a
    // short wait (it listens for HTTP, TLS or IRC first). Replies queue until expected.
    let frame: string;
    switch (spec.kind) {
      case "guest": {
        conn.writeString('{"type":"hello","proto":1,"client":"parley-bench"}\n');
        await conn.expect(timeoutMs); // the banner
        const welcome = JSON.parse(await conn.expect(timeoutMs));
        if (spec.nick === undefined) return { name: welcome.name };
        await conn.request(`{"type":"nick","name":${q(spec.nick)}}\n`, timeoutMs);
        return { name: spec.nick };
      }
      case "token":
        frame = `{"type":"login","token":${q(spec.token)}}\n`;
        break;
      case "password":
        frame = `{"type":"login","name":${q(spec.name)},"password":${q(spec.password)}}\n`;
        break;
      case "register":
        frame = `{"type":"register","name":${q(spec.name)},"password":${q(spec.password)}}\n`;
        break;
    }
    conn.writeString(frame);
    await conn.expect(timeoutMs); // the banner
    const ack = JSON.parse(await conn.expect(timeoutMs));
    if (typeof ack.name !== "string") throw new RequestError(`Unexpected login reply ${ack}`);
    return { name: ack.name, token: ack.token };
  },

  async join(conn: BenchConn, room: string, timeoutMs: number): Promise<void> {
    await conn.request(`{"type":"join","room":${q(room)}}\n`, timeoutMs);
  },

  /** `text` is a stamp (payload.ts): nothing in it needs JSON escaping. */
  encodeSend(out: ByteSink, target: SendTarget, text: string): void {
    out.str(
      "room" in target
        ? `{"type":"send","room":${q(target.room)},"text":"${text}"}\n`
        : `{"type":"send","to":${q(target.to)},"text":"${text}"}\n`,
    );
  },
};
