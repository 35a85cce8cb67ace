/**
 * What an IRC client is told when its registration ends (RFC 2812 §5.1, the modern client
 * protocol's "Connection registration"): 001–004, ISUPPORT (005) that says honestly what parley
 * allows, LUSERS and the missing MOTD (422).
 *
 * @module
 */

import { MAX_TOPIC } from "../services/moderation.ts";
import { VERSION } from "../version.ts";
import type { OutMessage } from "./message.ts";
import { ERR, RPL } from "./numerics.ts";
import { userPrefix } from "./render.ts";
import type { IrcWorld } from "./world.ts";

/** The most channels or nicks one JOIN, PART, PRIVMSG, NOTICE, KICK or NAMES names. */
export const MAX_TARGETS = 10;
/** The most nicks a MONITOR list holds. */
export const MONITOR_MAX = 100;
/** The most history lines one CHATHISTORY request returns. */
export const CHATHISTORY_MAX = 200;

/** Makes a numeric addressed to the client: `:server NNN nick …params`. */
export type Numeric = (numeric: string, ...params: string[]) => OutMessage;

/** 001–005, LUSERS and 422, for the client `num` addresses. */
export function welcomeLines(world: IrcWorld, num: Numeric): OutMessage[] {
  const me = num(RPL.WELCOME).params?.[0] ?? "*";
  return [
    num(RPL.WELCOME, `Welcome to the ${world.network} IRC network, ${userPrefix(me)}`),
    num(RPL.YOURHOST, `Your host is ${world.serverName}, running version parley-${VERSION}`),
    num(RPL.CREATED, `This server was created ${world.created.toUTCString()}`),
    num(RPL.MYINFO, world.serverName, `parley-${VERSION}`, "i", "bimnot", "bo"),
    ...isupportLines(world, num),
    ...lusersLines(world, num),
    num(ERR.NOMOTD, "MOTD File is missing"),
  ];
}

/** ISUPPORT in two lines: parley's limits and modes, as clients read them. */
export function isupportLines(world: IrcWorld, num: Numeric): OutMessage[] {
  const targets = ["JOIN", "PART", "PRIVMSG", "NOTICE", "KICK", "NAMES"]
    .map((c) => `${c}:${MAX_TARGETS}`).join(",");
  const tokens = [
    "AWAYLEN=200",
    "CASEMAPPING=ascii",
    "CHANLIMIT=#:",
    "CHANMODES=b,,,imnt",
    "CHANNELLEN=65",
    "CHANTYPES=#",
    `CHATHISTORY=${CHATHISTORY_MAX}`,
    "ELIST=",
    "KICKLEN=300",
    `MAXTARGETS=${MAX_TARGETS}`,
    "MODES=4",
    `MONITOR=${MONITOR_MAX}`,
    `NETWORK=${world.network}`,
    "NICKLEN=32",
    "PREFIX=(qo)~@",
    `TARGMAX=${targets},MONITOR:${MONITOR_MAX}`,
    `TOPICLEN=${MAX_TOPIC}`,
    "USERLEN=32",
    "UTF8ONLY",
  ];
  const half = Math.ceil(tokens.length / 2);
  return [tokens.slice(0, half), tokens.slice(half)].map((part) =>
    num(RPL.ISUPPORT, ...part, "are supported by this server")
  );
}

/** LUSERS: this process's sessions and rooms (parley is one server, with no operators). */
export function lusersLines(world: IrcWorld, num: Numeric): OutMessage[] {
  const { hub } = world.services;
  const users = String(hub.size);
  const rooms = String(hub.rooms().length);
  return [
    num(RPL.LUSERCLIENT, `There are ${users} users and 0 invisible on 1 servers`),
    num(RPL.LUSEROP, "0", "operator(s) online"),
    num(RPL.LUSERUNKNOWN, "0", "unknown connection(s)"),
    num(RPL.LUSERCHANNELS, rooms, "channels formed"),
    num(RPL.LUSERME, `I have ${users} clients and 0 servers`),
    num(RPL.LOCALUSERS, users, users, `Current local users ${users}`),
    num(RPL.GLOBALUSERS, users, users, `Current global users ${users}`),
  ];
}
