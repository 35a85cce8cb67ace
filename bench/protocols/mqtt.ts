/**
 * A minimal MQTT 3.1.1 client for the driver, QoS 0 only: CONNECT (clean session, no
 * keepalive) settles on CONNACK (§3.2), SUBSCRIBE on SUBACK (§3.9), PUBLISH (§3.3) payloads are
 * deliveries. A room `#x` is the topic `room/x`; a direct message to NAME goes to the topic
 * `dm/NAME`, which its recipient subscribes to by joining the "room" `dm/NAME`.
 *
 * @module
 */

import type { ByteSink } from "../byte_sink.ts";
import type { BenchConn, BenchLogin, LoginSpec, Protocol, SendTarget } from "../conn.ts";
import { RequestError } from "../conn.ts";

const encoder = new TextEncoder();

const CONNECT = 0x10;
const CONNACK = 0x20;
const PUBLISH = 0x30;
const SUBSCRIBE = 0x82;
const SUBACK = 0x90;

/** Appends a remaining-length varint (§2.2.3). */
function varint(out: number[], n: number): void {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
}

/** A packet: type byte, remaining length, body. */
export function packet(type: number, body: number[]): Uint8Array {
  const head: number[] = [type];
  varint(head, body.length);
  return Uint8Array.from([...head, ...body]);
}

function utf8Field(s: string): number[] {
  const b = encoder.encode(s);
  return [b.length >> 8, b.length & 0xff, ...b];
}

/** The CONNECT packet for `clientId`. */
export function connectPacket(clientId: string): Uint8Array {
  return packet(CONNECT, [...utf8Field("MQTT"), 4, 0x02, 0, 0, ...utf8Field(clientId)]);
}

/** A SUBSCRIBE packet for one topic at QoS 0. */
export function subscribePacket(packetId: number, topic: string): Uint8Array {
  return packet(SUBSCRIBE, [packetId >> 8, packetId & 0xff, ...utf8Field(topic), 0]);
}

/** The topic for a room name: `#x` is `room/x` (`#` is a wildcard in MQTT); others as they are. */
export function topicOf(room: string): string {
  return room.startsWith("#") ? `room/${room.slice(1)}` : room;
}

/** The topic of direct messages to `name`. */
export function dmTopic(name: string): string {
  return `dm/${name}`;
}

/** MQTT 3.1.1, QoS 0. */
export const mqttProtocol: Protocol = {
  name: "mqtt",

  consume(conn: BenchConn, buf: Uint8Array, len: number): number {
    let pos = 0;
    for (;;) {
      if (pos + 2 > len) return pos;
      let rl = 0;
      let mult = 1;
      let i = pos + 1;
      let b: number;
      do {
        if (i >= len) return pos;
        b = buf[i++]!;
        rl += (b & 0x7f) * mult;
        mult *= 128;
      } while (b & 0x80);
      const end = i + rl;
      if (end > len) return pos;
      const type = buf[pos]! & 0xf0;
      if (type === PUBLISH) {
        const topicLen = (buf[i]! << 8) | buf[i + 1]!;
        const qos = (buf[pos]! >> 1) & 3;
        conn.message(buf, i + 2 + topicLen + (qos > 0 ? 2 : 0), end);
      } else if (type === CONNACK) {
        const rc = buf[i + 1];
        conn.settle(rc === 0, rc === 0 ? "CONNACK" : `CONNACK refused: code ${rc}`);
      } else if (type === SUBACK) {
        const rc = buf[i + 2];
        conn.settle(rc !== 0x80, rc === 0x80 ? "SUBACK: refused" : "SUBACK");
      }
      pos = end;
    }
  },

  async login(conn: BenchConn, spec: LoginSpec, timeoutMs: number): Promise<BenchLogin> {
    if (spec.kind !== "guest" || spec.nick === undefined) {
      throw new TypeError("Cannot connect to MQTT: only a client id (nick) is supported");
    }
    await conn.request(connectPacket(spec.nick), timeoutMs);
    return { name: spec.nick };
  },

  async join(conn: BenchConn, room: string, timeoutMs: number): Promise<void> {
    const reply = await conn.request(subscribePacket(1, topicOf(room)), timeoutMs);
    if (reply !== "SUBACK") throw new RequestError(reply);
  },

  encodeSend(out: ByteSink, target: SendTarget, text: string): void {
    const topic = "room" in target ? topicOf(target.room) : dmTopic(target.to);
    // Topics and stamps are ASCII: string length is byte length.
    const rl = 2 + topic.length + text.length;
    out.byte(PUBLISH);
    let n = rl;
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      out.byte(b);
    } while (n > 0);
    out.byte(topic.length >> 8);
    out.byte(topic.length & 0xff);
    out.str(topic);
    out.str(text);
  },
};
