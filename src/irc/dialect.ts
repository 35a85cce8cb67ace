/**
 * The IRC dialect: one per IRC connection, because IRC is stateful (registration, negotiated
 * capabilities, SASL, labels). It reads IRC lines into parley's typed requests, which run
 * through the same command table as every other dialect, and renders their results, errors and
 * the server's events as IRC lines. Events are encoded by an encoder shared by every session
 * with the same capabilities (src/irc/world.ts), once per fan-out.
 *
 * What IRC has and parley's requests do not (CAP, SASL, PING, AWAY, ISON, USERHOST, WHOIS,
 * MONITOR, LUSERS, MOTD) is answered here, from the hub, the accounts and the store: reads,
 * except SASL, which checks the password with `Accounts.login` and logs in at the end of
 * registration with the session token it got (a `hello`, through the command table).
 *
 * @module
 */

import type { Caller } from "../commands/command.ts";
import type { Dialect, Parsed, SessionView, Start } from "../dialects/dialect.ts";
import type { ChatError } from "../protocol/errors.ts";
import type { HistoryFrame, MessageFrame, RoomState, WelcomeFrame } from "../protocol/frames.ts";
import { isValidName, nameKey } from "../protocol/names.ts";
import type { ReplayItem, Request, Result } from "../protocol/requests.ts";
import type { EventEncoder } from "../protocol/outgoing.ts";
import { samePassword } from "../session/server_password.ts";
import { formatIrcLine, type OutMessage, parseIrcLine, stripFormatting } from "./message.ts";
import { ERR, RPL } from "./numerics.ts";
import { type IrcRenderer, USER_HOST, userPrefix } from "./render.ts";
import {
  CHATHISTORY_MAX,
  isupportLines,
  lusersLines,
  MAX_TARGETS,
  MONITOR_MAX,
  welcomeLines,
} from "./welcome.ts";
import type { IrcPeer, IrcWorld } from "./world.ts";
import { VERSION } from "../version.ts";

/** The capabilities parley offers, with their values (CAP LS 302). */
export const CAPS: ReadonlyMap<string, string> = new Map([
  ["account-notify", ""],
  ["account-tag", ""],
  ["away-notify", ""],
  ["batch", ""],
  ["cap-notify", ""],
  ["draft/chathistory", ""],
  ["echo-message", ""],
  ["extended-join", ""],
  ["labeled-response", ""],
  ["message-tags", ""],
  ["multi-prefix", ""],
  ["sasl", "PLAIN"],
  ["server-time", ""],
  ["setname", ""],
  ["standard-replies", ""],
]);

/** Events kept before registration ends (beyond them, the oldest are dropped). */
const HOLD_MAX = 500;
/** The longest SASL PLAIN payload (base64), in bytes. */
const SASL_MAX = 1200;

/** What an answer is for: how a result or an error is worded. */
interface Context {
  command: string;
  label: string | undefined;
  target?: string | undefined;
  /** NAMES, WHO or the names after registration (a `who` request). */
  as?: "names" | "who" | "burst" | undefined;
  /** A NICK: the name before. */
  before?: string | undefined;
  /** A NOTICE (never answered with an error, RFC 1459 §4.4.2). */
  quiet?: boolean | undefined;
  /** An INVITE: the room. */
  room?: string | undefined;
  /** A TOPIC or MODE that changes something: the event that follows says it. */
  sets?: boolean | undefined;
}

/** Whether a request changes a topic or modes (rather than showing them). */
function sets(request: Request): boolean {
  return (request.type === "topic" && request.text !== undefined) ||
    (request.type === "mode" && request.modes !== undefined);
}

const encoder = new TextEncoder();

/** One IRC connection's dialect. */
export class IrcDialect implements Dialect, IrcPeer {
  readonly name = "irc" as const;
  readonly registers = true;
  readonly #world: IrcWorld;
  readonly #caller: Caller;
  #caps = new Set<string>();
  #renderer: IrcRenderer;
  #negotiating = false;
  #nick: string | undefined;
  #user: string | undefined;
  #realname = "";
  #pass: string | undefined;
  #saslToken: string | undefined;
  #saslAccount: string | undefined;
  #sasl: "PLAIN" | undefined;
  #saslBuffer = "";
  /** Registration's hello has been sent: later NICK and USER are ordinary commands. */
  #registering = false;
  /** The welcome was written. */
  #welcomed = false;
  #held: Uint8Array[] = [];
  readonly #contexts = new Map<string, Context>();
  #next = 0;
  #follow: Parsed[] = [];
  readonly #monitor = new Set<string>();
  #batches = 0;

  /**
   * @param world what the server's IRC sessions share
   * @param caller the session this dialect reads and writes for
   */
  readonly #push: (bytes: Uint8Array) => void;
  #ended = false;

  /**
   * @param world what the server's IRC sessions share
   * @param caller the session this dialect reads and writes for
   * @param push queues bytes on the session's outbox (MONITOR and away-notify lines)
   */
  constructor(world: IrcWorld, caller: Caller, push: (bytes: Uint8Array) => void) {
    this.#world = world;
    this.#caller = caller;
    this.#push = push;
    this.#renderer = world.encoder(this.#caps).renderer;
    world.join(caller, this);
  }

  /** A monitored name came online or went offline: 730 or 731. */
  monitored(name: string, online: boolean): void {
    if (!this.#welcomed || this.#ended) return;
    const line = online
      ? this.#num(RPL.MONONLINE, userPrefix(name))
      : this.#num(RPL.MONOFFLINE, name);
    this.#push(encoder.encode(formatIrcLine(line)));
  }

  /** Someone in a shared room went away or came back: AWAY, with away-notify. */
  away(name: string, text: string | undefined): void {
    if (!this.#welcomed || this.#ended || !this.#caps.has("away-notify")) return;
    const line: OutMessage = {
      source: userPrefix(name),
      command: "AWAY",
      params: text === undefined ? [] : [text],
    };
    this.#push(encoder.encode(formatIrcLine(line)));
  }

  /** The encoder of this session's capabilities. */
  get events(): EventEncoder {
    return this.#world.encoder(this.#caps);
  }

  /** The nick to address lines to: the session's name once online, `*` before. */
  get #me(): string {
    return this.#caller.name !== "" ? this.#caller.name : this.#nick ?? "*";
  }

  // ---- reading -------------------------------------------------------------------------

  parse(line: string, _view: SessionView): Parsed {
    const m = parseIrcLine(line);
    if (m === "empty") return undefined;
    if (m === "too_long" || m === "tags_too_long") {
      return this.#local([this.#num(ERR.INPUTTOOLONG, "Input line was too long")]);
    }
    const label = this.#caps.has("labeled-response") ? m.tags.get("label") : undefined;
    const ctx: Context = { command: m.command, label: label?.slice(0, 64) };
    const p = m.params;
    const need = (n: number): Parsed | undefined =>
      p.length < n
        ? this.#local([this.#num(ERR.NEEDMOREPARAMS, m.command, "Not enough parameters")], ctx)
        : undefined;
    switch (m.command) {
      case "CAP":
        return need(1) ?? this.#cap(p, ctx);
      case "PASS":
        if (this.#registering) {
          return this.#local([this.#num(ERR.ALREADYREGISTERED, "You may not reregister")], ctx);
        }
        if (need(1)) return need(1);
        this.#pass = p.join(" "); // lenient: a password with spaces sent without its ':'

        return undefined;
      case "AUTHENTICATE":
        return need(1) ?? this.#authenticate(p[0]!);
      case "NICK":
        return this.#nickCommand(p, ctx);
      case "USER":
        if (this.#registering) {
          return this.#local([this.#num(ERR.ALREADYREGISTERED, "You may not reregister")], ctx);
        }
        if (need(4)) return need(4);
        this.#user = p[0]!.slice(0, 32);
        this.#realname = p[3]!.slice(0, 100);
        return this.#maybeRegister();
      case "PING":
        return need(1) ?? this.#local([{
          source: this.#world.serverName,
          command: "PONG",
          params: [this.#world.serverName, p[0]!],
        }], ctx);
      case "PONG":
        return undefined;
      case "QUIT":
        return this.#ask({ type: "quit", ...p[0] ? { reason: p[0] } : {} }, ctx);
    }
    if (!this.#registering) {
      return this.#local([this.#num(ERR.NOTREGISTERED, "You have not registered")]);
    }
    switch (m.command) {
      case "JOIN":
        return need(1) ?? this.#join(p, ctx);
      case "PART":
        return need(1) ??
          this.#many(p[0]!, ctx, (room) => ({ type: "part", room }));
      case "NAMES":
        if (p.length === 0) {
          return this.#local([this.#num(RPL.ENDOFNAMES, "*", "End of /NAMES list")], ctx);
        }
        return this.#many(p[0]!, { ...ctx, as: "names" }, (room) => ({ type: "who", room }));
      case "TOPIC": {
        if (need(1)) return need(1);
        const text = p[1] === undefined ? {} : { text: stripFormatting(p[1]) };
        return this.#ask({ type: "topic", room: p[0]!, ...text }, { ...ctx, target: p[0] });
      }
      case "LIST":
        return { local: this.#list(ctx) };
      case "WHO":
        return need(1) ?? this.#who(p[0]!, ctx);
      case "WHOIS":
        return need(1) ?? this.#whois(p.at(-1)!, ctx);
      case "MODE":
        return need(1) ?? this.#mode(p, ctx);
      case "KICK": {
        if (need(2)) return need(2);
        const reason = p[2] === undefined ? {} : { reason: stripFormatting(p[2]) };
        return this.#many(
          p[1]!,
          { ...ctx, target: p[0] },
          (name) => ({ type: "kick", room: p[0]!, name, ...reason }),
        );
      }
      case "INVITE":
        if (need(2)) return need(2);
        return this.#ask(
          { type: "invite", room: p[1]!, name: p[0]! },
          { ...ctx, target: p[0], room: p[1] },
        );
      case "PRIVMSG":
      case "NOTICE":
        return this.#privmsg(m.command, p, ctx);
      case "TAGMSG":
        return undefined;
      case "AWAY":
        return this.#away(p[0], ctx);
      case "ISON": {
        const on = p.join(" ").split(" ").filter((n) => n !== "" && this.#online(n));
        return this.#local([this.#num(RPL.ISON, on.map((n) => this.#nameOf(n)).join(" "))], ctx);
      }
      case "USERHOST":
        return need(1) ?? this.#userhost(p, ctx);
      case "MONITOR":
        return need(1) ?? this.#monitorCommand(p, ctx);
      case "SETNAME":
        if (need(1)) return need(1);
        this.#realname = p[0]!.slice(0, 100);
        return this.#local([{
          source: userPrefix(this.#me),
          command: "SETNAME",
          params: [this.#realname],
        }], ctx);
      case "LUSERS":
        return this.#local(lusersLines(this.#world, (n, ...p) => this.#num(n, ...p)), ctx);
      case "MOTD":
        return this.#local([this.#num(ERR.NOMOTD, "MOTD File is missing")], ctx);
      case "VERSION":
        return this.#local([
          this.#num("351", `parley-${VERSION}`, this.#world.serverName, "parley chat server"),
          ...isupportLines(this.#world, (n, ...p) => this.#num(n, ...p)),
        ], ctx);
      case "CHATHISTORY":
        return this.#chathistory(p, ctx);
      case "USERS":
      case "SUMMON":
        return this.#local([this.#num("446", `${m.command} has been disabled`)], ctx);
    }
    return this.#local(
      [this.#num(ERR.UNKNOWNCOMMAND, m.command.slice(0, 32), "Unknown command")],
      ctx,
    );
  }

  #cap(p: string[], ctx: Context): Parsed {
    const sub = p[0]!.toUpperCase();
    const me = this.#me;
    switch (sub) {
      case "LS": {
        if (!this.#registering) this.#negotiating = true;
        const v302 = Number(p[1] ?? 0) >= 302;
        if (v302) this.#caps.add("cap-notify");
        const items = [...CAPS].map(([k, v]) => v302 && v !== "" ? `${k}=${v}` : k);
        return this.#local([this.#raw("CAP", me, "LS", items.join(" "))], ctx);
      }
      case "LIST":
        return this.#local([this.#raw("CAP", me, "LIST", [...this.#caps].join(" "))], ctx);
      case "REQ": {
        if (!this.#registering) this.#negotiating = true;
        const asked = (p[1] ?? "").split(" ").filter((c) => c !== "");
        const ok = asked.every((c) => CAPS.has(c.replace(/^-/, "")));
        if (ok) {
          for (const c of asked) {
            if (c.startsWith("-")) this.#caps.delete(c.slice(1));
            else this.#caps.add(c);
          }
          this.#renderer = this.#world.encoder(this.#caps).renderer;
        }
        return this.#local([this.#raw("CAP", me, ok ? "ACK" : "NAK", asked.join(" "))], ctx);
      }
      case "END":
        if (this.#registering) return undefined;
        this.#negotiating = false;
        return this.#maybeRegister();
    }
    return this.#local(
      [this.#num(ERR.INVALIDCAPCMD, sub.slice(0, 16), "Invalid CAP command")],
      ctx,
    );
  }

  #authenticate(arg: string): Parsed {
    if (this.#saslToken !== undefined || this.#registering) {
      const why = this.#saslToken !== undefined
        ? "You have already authenticated"
        : "SASL is for registration: log in before CAP END";
      return this.#local([this.#num(ERR.SASLALREADY, why)]);
    }
    if (this.#sasl === undefined) {
      if (arg.toUpperCase() !== "PLAIN") {
        return this.#local([
          this.#num(RPL.SASLMECHS, "PLAIN", "are available SASL mechanisms"),
          this.#num(ERR.SASLFAIL, "SASL authentication failed"),
        ]);
      }
      this.#sasl = "PLAIN";
      this.#saslBuffer = "";
      return this.#local([{ command: "AUTHENTICATE", params: ["+"] }]);
    }
    if (arg === "*") {
      this.#sasl = undefined;
      return this.#local([this.#num(ERR.SASLABORTED, "SASL authentication aborted")]);
    }
    if (arg !== "+") this.#saslBuffer += arg;
    if (this.#saslBuffer.length > SASL_MAX) {
      this.#sasl = undefined;
      return this.#local([this.#num(ERR.SASLTOOLONG, "SASL message too long")]);
    }
    if (arg.length === 400) return undefined; // more to come
    this.#sasl = undefined;
    let fields: string[];
    try {
      const bytes = Uint8Array.from(atob(this.#saslBuffer), (c) => c.charCodeAt(0));
      fields = new TextDecoder("utf-8", { fatal: true }).decode(bytes).split("\0");
    } catch {
      fields = [];
    }
    const [authzid, authcid, password] = fields;
    if (fields.length !== 3 || authcid === undefined || password === undefined) {
      return this.#local([this.#num(ERR.SASLFAIL, "SASL authentication failed")]);
    }
    if (authzid !== "" && authzid !== undefined && nameKey(authzid) !== nameKey(authcid)) {
      return this.#local([this.#num(ERR.SASLFAIL, "SASL authentication failed")]);
    }
    const { accounts } = this.#world.services;
    return {
      local: accounts.login(authcid, password, this.#caller.remoteIp).then(
        (login) => {
          this.#saslToken = login.token;
          this.#saslAccount = login.user.name;
          const who = `${this.#me}!${this.#user ?? login.user.name}@${USER_HOST}`;
          return this.#lines([
            this.#num(
              RPL.LOGGEDIN,
              who,
              login.user.name,
              `You are now logged in as ${login.user.name}`,
            ),
            this.#num(RPL.SASLSUCCESS, "SASL authentication successful"),
          ]);
        },
        () => this.#lines([this.#num(ERR.SASLFAIL, "SASL authentication failed")]),
      ),
    };
  }

  #nickCommand(p: string[], ctx: Context): Parsed {
    if (p.length === 0 || p[0] === "") {
      return this.#local([this.#num(ERR.NONICKNAMEGIVEN, "No nickname given")], ctx);
    }
    const nick = p[0]!;
    if (!isValidName(nick)) {
      return this.#local(
        [this.#num(ERR.ERRONEUSNICKNAME, String(nick).slice(0, 40), "Erroneous nickname")],
        ctx,
      );
    }
    if (this.#registering) {
      if (nick === this.#caller.name) return undefined;
      return this.#ask({ type: "nick", name: nick }, { ...ctx, target: nick, before: this.#me });
    }
    if (this.#world.services.hub.isOnline(nick)) {
      return this.#local(
        [this.#num(ERR.NICKNAMEINUSE, nick, "Nickname is already in use")],
        ctx,
      );
    }
    this.#nick = nick;
    return this.#maybeRegister();
  }

  /** Ends registration when NICK, USER and CAP END (if CAP was used) have been given. */
  #maybeRegister(): Parsed {
    if (this.#registering || this.#negotiating) return undefined;
    if (this.#nick === undefined || this.#user === undefined) return undefined;
    const { serverPassword } = this.#world;
    if (serverPassword !== undefined && !samePassword(this.#pass, serverPassword)) {
      return {
        local: this.#lines([
          this.#num(ERR.PASSWDMISMATCH, "Password incorrect"),
          { command: "ERROR", params: ["Closing link: bad server password"] },
        ]),
        close: true,
      };
    }
    if (this.#saslToken !== undefined) {
      this.#registering = true;
      return this.#hello({ type: "hello", token: this.#saslToken });
    }
    const creds = serverPassword === undefined && this.#pass !== undefined
      ? /^([^:]+):(.+)$/s.exec(this.#pass)
      : null;
    if (creds !== null) {
      this.#registering = true;
      return this.#hello({ type: "hello", name: creds[1]!, password: creds[2]! });
    }
    // A guest: its nick must not be an account's name.
    const nick = this.#nick;
    return {
      local: this.#world.services.store.accounts.getUser(nick).then((account) => {
        if (account !== undefined || this.#world.services.hub.isOnline(nick)) {
          this.#nick = undefined;
          return this.#lines([this.#num(
            ERR.NICKNAMEINUSE,
            nick,
            account !== undefined
              ? "Nickname is a registered account: log in with SASL or PASS name:password"
              : "Nickname is already in use",
          )]);
        }
        this.#registering = true;
        this.#caller.name = nick;
        this.#follow.push(this.#hello({ type: "hello" }));
        return null;
      }),
    };
  }

  #hello(request: Request): Parsed {
    const ref = this.#ref({ command: "REGISTER", label: undefined });
    return { request, ref, opens: true };
  }

  #join(p: string[], ctx: Context): Parsed {
    if (p[0] === "0") {
      const rooms = this.#world.services.hub.roomsOf(this.#caller);
      return this.#requests(rooms.map((room) => ({ type: "part", room })), ctx);
    }
    // Joining a room one is in already says nothing (as IRC servers do).
    const { hub } = this.#world.services;
    const rooms = p[0]!.split(",").filter((r) => r !== "" && !hub.isIn(this.#caller, r));
    if (rooms.length === 0) return undefined;
    return this.#many(rooms.join(","), ctx, (room) => ({ type: "join", room }));
  }

  /** LIST: every room with its member count and topic (the `rooms` request has no topics). */
  async #list(ctx: Context): Promise<Uint8Array | null> {
    const { hub, moderation } = this.#world.services;
    const rooms = hub.rooms();
    const states = await Promise.all(rooms.map((r) => moderation.state(r.name)));
    return this.#lines([
      this.#num(RPL.LISTSTART, "Channel", "Users  Name"),
      ...rooms.map((r, i) =>
        this.#num(RPL.LIST, r.name, String(r.members), states[i]!.topic ?? "")
      ),
      this.#num(RPL.LISTEND, "End of /LIST"),
    ], ctx);
  }

  #who(mask: string, ctx: Context): Parsed {
    if (mask.startsWith("#")) return this.#ask({ type: "who", room: mask }, { ...ctx, as: "who" });
    const user = this.#world.services.hub.user(mask);
    const lines: OutMessage[] = [];
    if (user !== undefined) lines.push(this.#whoLine("*", user.name, ""));
    lines.push(this.#num(RPL.ENDOFWHO, mask, "End of WHO list"));
    return this.#local(lines, ctx);
  }

  #whoLine(room: string, name: string, prefix: string): OutMessage {
    const away = this.#world.away(name) === undefined ? "H" : "G";
    return this.#num(
      RPL.WHOREPLY,
      room,
      name,
      USER_HOST,
      this.#world.serverName,
      name,
      away + prefix,
      `0 ${name}`,
    );
  }

  #whois(nick: string, ctx: Context): Parsed {
    const { hub } = this.#world.services;
    const user = hub.user(nick);
    if (user === undefined) {
      return this.#local([
        this.#num(ERR.NOSUCHNICK, nick.slice(0, 40), "No such nick/channel"),
        this.#num(RPL.ENDOFWHOIS, nick.slice(0, 40), "End of /WHOIS list"),
      ], ctx);
    }
    const session = user.sessions[0];
    const rooms = session === undefined ? [] : hub.roomsOf(session);
    const lines = [
      this.#num(RPL.WHOISUSER, user.name, user.name, USER_HOST, "*", user.name),
      this.#num(RPL.WHOISSERVER, user.name, this.#world.serverName, "parley"),
    ];
    if (rooms.length > 0) lines.push(this.#num(RPL.WHOISCHANNELS, user.name, rooms.join(" ")));
    if (user.accountId !== undefined) {
      lines.push(this.#num(RPL.WHOISACCOUNT, user.name, user.name, "is logged in as"));
    }
    const away = this.#world.away(user.name);
    if (away !== undefined) lines.push(this.#num(RPL.AWAY, user.name, away));
    lines.push(this.#num(RPL.ENDOFWHOIS, user.name, "End of /WHOIS list"));
    return this.#local(lines, ctx);
  }

  #mode(p: string[], ctx: Context): Parsed {
    const target = p[0]!;
    if (!target.startsWith("#")) {
      if (nameKey(target) !== nameKey(this.#me)) {
        return this.#local(
          [this.#num(ERR.USERSDONTMATCH, "Cannot change mode for other users")],
          ctx,
        );
      }
      return this.#local([this.#num(RPL.UMODEIS, "+")], ctx);
    }
    const change = p[1];
    if (change === undefined) return this.#ask({ type: "mode", room: target }, { ...ctx, target });
    if (/^[+-]?b$/.test(change) && p[2] === undefined) {
      return this.#local([this.#num(RPL.ENDOFBANLIST, target, "End of channel ban list")], ctx);
    }
    const requests: Request[] = [];
    let on = true;
    let arg = 2;
    let flags = "";
    for (const c of change) {
      if (c === "+" || c === "-") {
        on = c === "+";
        continue;
      }
      if (c === "o" || c === "b") {
        const value = p[arg++];
        if (value === undefined) continue;
        const name = c === "b" ? value.replace(/!.*$/, "") : value;
        const type = c === "o" ? (on ? "op" : "deop") : (on ? "ban" : "unban");
        requests.push({ type, room: target, name });
      } else if (c === "i" || c === "m") {
        flags += (on ? "+" : "-") + c;
      } else if ((c === "t" || c === "n") && on) {
        // Always set: topics need an operator, and only members send.
      } else {
        return this.#local([this.#num(ERR.UNKNOWNMODE, c, "is unknown mode char to me")], ctx);
      }
    }
    if (flags !== "") requests.unshift({ type: "mode", room: target, modes: flags });
    if (requests.length === 0) return this.#local([], ctx);
    return this.#requests(requests, { ...ctx, target });
  }

  #privmsg(command: "PRIVMSG" | "NOTICE", p: string[], ctx: Context): Parsed {
    const quiet = command === "NOTICE";
    if (p.length === 0 || p[0] === "") {
      return quiet ? undefined : this.#local([
        this.#num(ERR.NORECIPIENT, `No recipient given (${command})`),
      ], ctx);
    }
    let text = p[1] ?? "";
    let action = false;
    if (text.startsWith("\x01")) {
      // deno-lint-ignore no-control-regex
      const m = /^\x01ACTION ?(.*?)\x01?$/s.exec(text);
      if (m === null) return undefined; // another CTCP: parley has none
      text = m[1]!;
      action = true;
    }
    text = stripFormatting(text);
    if (text.trim() === "") {
      return quiet ? undefined : this.#local([this.#num(ERR.NOTEXTTOSEND, "No text to send")], ctx);
    }
    return this.#many(p[0]!, { ...ctx, quiet }, (target) => {
      const where = target.startsWith("#") ? { room: target } : { to: target };
      return { type: "send", ...where, text, ...action ? { action } : {} };
    });
  }

  #away(text: string | undefined, ctx: Context): Parsed {
    if (text === undefined || text === "") {
      this.#world.setAway(this.#me, undefined);
      this.#world.announceAway(this.#caller, this.#me, undefined);
      return this.#local([this.#num(RPL.UNAWAY, "You are no longer marked as being away")], ctx);
    }
    this.#world.setAway(this.#me, text.slice(0, 200));
    this.#world.announceAway(this.#caller, this.#me, text.slice(0, 200));
    return this.#local([this.#num(RPL.NOWAWAY, "You have been marked as being away")], ctx);
  }

  #userhost(p: string[], ctx: Context): Parsed {
    const replies = p.slice(0, 5).filter((n) => this.#online(n)).map((n) => {
      const name = this.#nameOf(n);
      const away = this.#world.away(name) === undefined ? "+" : "-";
      return `${name}=${away}${name}@${USER_HOST}`;
    });
    return this.#local([this.#num(RPL.USERHOST, replies.join(" "))], ctx);
  }

  #monitorCommand(p: string[], ctx: Context): Parsed {
    const op = p[0]!;
    const names = (p[1] ?? "").split(",").filter((n) => n !== "");
    const status = (list: string[]): OutMessage[] => {
      const on = list.filter((n) => this.#online(n)).map((n) => userPrefix(this.#nameOf(n)));
      const off = list.filter((n) => !this.#online(n));
      const out: OutMessage[] = [];
      if (on.length > 0) out.push(this.#num(RPL.MONONLINE, on.join(",")));
      if (off.length > 0) out.push(this.#num(RPL.MONOFFLINE, off.join(",")));
      return out;
    };
    switch (op) {
      case "+": {
        const added: string[] = [];
        for (const name of names) {
          if (this.#monitor.size >= MONITOR_MAX) {
            return this.#local([
              ...status(added),
              this.#num(
                ERR.MONLISTFULL,
                String(MONITOR_MAX),
                names.join(","),
                "Monitor list is full",
              ),
            ], ctx);
          }
          if (!isValidName(name)) continue;
          this.#monitor.add(nameKey(name));
          this.#world.monitor(this, name, true);
          added.push(name);
        }
        return this.#local(status(added), ctx);
      }
      case "-":
        for (const name of names) {
          this.#monitor.delete(nameKey(name));
          this.#world.monitor(this, name, false);
        }
        return this.#local([], ctx);
      case "C":
        for (const name of this.#monitor) this.#world.monitor(this, name, false);
        this.#monitor.clear();
        return this.#local([], ctx);
      case "L":
        return this.#local([
          ...this.#monitor.size > 0 ? [this.#num(RPL.MONLIST, [...this.#monitor].join(","))] : [],
          this.#num(RPL.ENDOFMONLIST, "End of MONITOR list"),
        ], ctx);
      case "S":
        return this.#local(status([...this.#monitor]), ctx);
    }
    return this.#local([], ctx);
  }

  /** `CHATHISTORY LATEST target *|msgid=ID limit` and `CHATHISTORY BEFORE target msgid=ID limit`. */
  #chathistory(p: string[], ctx: Context): Parsed {
    const [sub, target, point, count] = p;
    if (sub === undefined || target === undefined || point === undefined) {
      return this.#fail(ctx, "NEED_MORE_PARAMS", "Missing parameters");
    }
    const verb = sub.toUpperCase();
    if (verb !== "LATEST" && verb !== "BEFORE") {
      return this.#fail(ctx, "INVALID_PARAMS", "Only LATEST and BEFORE are supported");
    }
    const m = /^msgid=(\d{1,15})$/.exec(point);
    if (m === null && (point !== "*" || verb === "BEFORE")) {
      return this.#fail(ctx, "INVALID_PARAMS", "Give msgid=ID (or * with LATEST)");
    }
    const limit = Math.min(Math.max(1, Math.floor(Number(count ?? 50)) || 50), CHATHISTORY_MAX);
    const place = target.startsWith("#") ? { room: target } : { with: target };
    const before = verb === "BEFORE" && m !== null ? { before: Number(m[1]) } : {};
    return this.#ask({ type: "history", ...place, ...before, limit }, { ...ctx, target });
  }

  // ---- writing -------------------------------------------------------------------------

  result(result: Result, ref: string | undefined): Uint8Array | null {
    const ctx = this.#take(ref);
    return this.#lines(this.#resultLines(result, ctx), ctx, result.command === "hello");
  }

  #resultLines(result: Result, ctx: Context): OutMessage[] {
    const me = this.#me;
    switch (result.command) {
      case "hello":
        return this.#welcome(result.reply);
      case "join": {
        const { room, members } = result.reply;
        return [this.#renderer.join(me, room), ...this.#names(room, members, result.reply, true)];
      }
      case "part":
        return [{ source: userPrefix(me), command: "PART", params: [result.reply.room] }];
      case "who": {
        const { room, members } = result.reply;
        if (ctx.as === "who") {
          // Capped, so that a huge room's WHO cannot push the asker past its send queue.
          const limit = whoLimit(this.#world.services.config.maxSendq);
          const shown = members.slice(0, limit);
          return [
            ...shown.map((n) => this.#whoLine(room, n, this.#prefixes(result.reply.roles[n]))),
            ...members.length > limit
              ? [this.#num(
                ERR.TOOMANYMATCHES,
                "WHO",
                `Too many matches: ${limit} of ${members.length} shown; NAMES lists them all`,
              )]
              : [],
            this.#num(RPL.ENDOFWHO, room, "End of WHO list"),
          ];
        }
        return this.#names(room, members, result.reply, ctx.as === "burst");
      }
      case "topic": {
        const { room, topic } = result.reply;
        if (ctx.sets) return []; // every member, this one too, gets the TOPIC event
        return topic === undefined
          ? [this.#num(RPL.NOTOPIC, room, "No topic is set")]
          : [this.#num(RPL.TOPIC, room, topic)];
      }
      case "mode":
        if (ctx.sets) return []; // every member gets the MODE event
        return [
          this.#num(RPL.CHANNELMODEIS, result.reply.room, `+nt${result.reply.modes.slice(1)}`),
        ];
      case "nick":
        return [{
          source: userPrefix(ctx.before ?? me),
          command: "NICK",
          params: [result.reply.name],
        }];
      case "send": {
        const out: OutMessage[] = [];
        if (this.#caps.has("echo-message")) out.push(...this.#renderer.message(result.message));
        if (result.reply.waiting) {
          out.push({
            source: this.#world.serverName,
            command: "NOTICE",
            params: [me, `${result.message.to} is offline: it will be delivered when they log in`],
          });
        }
        return out;
      }
      case "history":
        return this.#historyLines(result.reply, ctx.target ?? "*", false);
      case "invite":
        return [this.#num(RPL.INVITING, ctx.target ?? "*", ctx.room ?? "*")];
      case "quit":
      case "logout":
        return [{ command: "ERROR", params: ["Closing link: quit"] }];
      default:
        return [];
    }
  }

  /** The welcome burst (001–005, LUSERS, MOTD), then what was held, and the rooms' JOINs. */
  #welcome(reply: WelcomeFrame): OutMessage[] {
    if (this.#welcomed) return [];
    const out = this.#burst();
    if (reply.login !== undefined) {
      if (this.#saslAccount === undefined) {
        out.unshift(this.#num(
          RPL.LOGGEDIN,
          `${reply.name}!${this.#user ?? reply.name}@${USER_HOST}`,
          reply.name,
          `You are now logged in as ${reply.name}`,
        ));
      }
      const rooms = reply.login.rooms;
      for (const room of rooms) out.push(this.#renderer.join(reply.name, room));
      if (rooms.length > 0) {
        const ctx: Context = { command: "NAMES", label: undefined, as: "burst" };
        this.#follow.push(this.#requests(rooms.map((room) => ({ type: "who", room })), ctx));
      }
    }
    return out;
  }

  #burst(): OutMessage[] {
    this.#welcomed = true;
    return welcomeLines(this.#world, (n, ...params) => this.#num(n, ...params));
  }

  /** The topic (when `withTopic`), then NAMES in lines that fit 512 bytes, then its end. */
  #names(room: string, members: string[], state: RoomState, withTopic: boolean): OutMessage[] {
    const out: OutMessage[] = [];
    if (withTopic && state.topic !== undefined) out.push(this.#num(RPL.TOPIC, room, state.topic));
    let line: string[] = [];
    let size = 0;
    const flush = () => {
      if (line.length > 0) out.push(this.#num(RPL.NAMREPLY, "=", room, line.join(" ")));
      line = [];
      size = 0;
    };
    for (const name of members) {
      const entry = this.#prefixes(state.roles[name]) + name;
      if (size + entry.length + 1 > 400) flush();
      line.push(entry);
      size += entry.length + 1;
    }
    flush();
    out.push(this.#num(RPL.ENDOFNAMES, room, "End of /NAMES list"));
    return out;
  }

  /** A role as NAMES prefixes: `~` owner or administrator, `@` operator (both with multi-prefix). */
  #prefixes(role: string | undefined): string {
    if (role === undefined) return "";
    if (role === "op") return "@";
    return this.#caps.has("multi-prefix") ? "~@" : "~";
  }

  error(error: ChatError, ref: string | undefined): Uint8Array {
    const ctx = this.#take(ref);
    if (ctx.quiet) return new Uint8Array(0);
    return this.#lines(this.#errorLines(error, ctx), ctx) ?? new Uint8Array(0);
  }

  #errorLines(error: ChatError, ctx: Context): OutMessage[] {
    const t = (ctx.target ?? "*").slice(0, 70);
    const msg = error.message;
    switch (error.code) {
      case "line_too_long":
        return [this.#num(ERR.INPUTTOOLONG, "Input line was too long")];
      case "timeout":
        return [{ command: "ERROR", params: [`Closing link: ${msg}`] }];
      case "name_taken":
        return [this.#num(ERR.NICKNAMEINUSE, t, "Nickname is already in use")];
      case "invalid_name":
        return ctx.command === "NICK"
          ? [this.#num(ERR.ERRONEUSNICKNAME, t, "Erroneous nickname")]
          : [this.#num(ERR.NOSUCHNICK, t, "No such nick/channel")];
      case "no_such_user":
        return [this.#num(ERR.NOSUCHNICK, t, "No such nick/channel")];
      case "invalid_room":
        return [this.#num(ctx.command === "JOIN" ? ERR.BADCHANMASK : ERR.NOSUCHCHANNEL, t, msg)];
      case "no_such_room":
        return ctx.command === "PRIVMSG" || ctx.command === "NOTICE"
          ? [this.#num(ERR.NOSUCHNICK, t, "No such nick/channel")]
          : [this.#num(ERR.NOSUCHCHANNEL, t, "No such channel")];
      case "not_in_room":
        if (ctx.command === "PRIVMSG" || ctx.command === "NOTICE") {
          return [this.#num(ERR.CANNOTSENDTOCHAN, t, "Cannot send to channel")];
        }
        if (ctx.command === "KICK") return [this.#num(ERR.USERNOTINCHANNEL, "*", t, msg)];
        return [this.#num(ERR.NOTONCHANNEL, t, "You're not on that channel")];
      case "auth_failed":
        return [this.#num(ERR.PASSWDMISMATCH, msg)];
      case "forbidden":
        switch (ctx.command) {
          case "JOIN":
            return /invite/i.test(msg)
              ? [this.#num(ERR.INVITEONLYCHAN, t, "Cannot join channel (+i)")]
              : [this.#num(ERR.BANNEDFROMCHAN, t, "Cannot join channel (+b)")];
          case "PRIVMSG":
          case "NOTICE":
            return [this.#num(ERR.CANNOTSENDTOCHAN, t, msg)];
          case "NICK":
            return [this.#num(ERR.NICKLOCKED, msg)];
          default:
            return [this.#num(ERR.CHANOPRIVSNEEDED, t, msg)];
        }
        break;
      case "login_required":
        return [this.#num(ERR.NOTREGISTERED, msg)];
      default:
        return this.#failLines(ctx, error.code.toUpperCase(), msg);
    }
  }

  /** A FAIL line with standard-replies, else a NOTICE. */
  #failLines(ctx: Context, code: string, text: string): OutMessage[] {
    if (this.#caps.has("standard-replies")) {
      return [{
        source: this.#world.serverName,
        command: "FAIL",
        params: [ctx.command, code, text],
      }];
    }
    return [{ source: this.#world.serverName, command: "NOTICE", params: [this.#me, text] }];
  }

  #fail(ctx: Context, code: string, text: string): Parsed {
    return this.#local(this.#failLines(ctx, code, text), ctx);
  }

  event(): Uint8Array | null {
    return null; // events go through the shared encoder (see `events`)
  }

  start(start: Start): Uint8Array | null {
    const out = this.#burst();
    if (start.kind === "guest") {
      const { hub } = this.#world.services;
      out.push(this.#renderer.join(start.name, start.room));
      const { members } = hub.who(start.room);
      out.push(...this.#names(start.room, members, { modes: "", roles: {} }, false));
    } else {
      out.push({
        source: this.#world.serverName,
        command: "NOTICE",
        params: [this.#me, "This server requires an account: log in with SASL"],
      });
    }
    return this.#lines(out, undefined, true);
  }

  *replayUnits(item: ReplayItem): Iterable<{ bytes: Uint8Array; waiting?: number }> {
    if (item.type === "message") {
      const bytes = this.#lines(this.#renderer.message(item, { replayed: true }));
      if (bytes !== null) yield item.offline ? { bytes, waiting: item.id } : { bytes };
      return;
    }
    if (this.#caps.has("draft/chathistory")) return; // the client asks for what it wants
    for (const line of this.#historyLines(item, item.room ?? item.with ?? "*", true)) {
      yield { bytes: encoder.encode(formatIrcLine(line)) };
    }
  }

  /** A page of history, in a `chathistory` batch when the client has batch. */
  #historyLines(frame: HistoryFrame, target: string, replayed: boolean): OutMessage[] {
    const batch = this.#caps.has("batch") ? `h${++this.#batches}` : undefined;
    const extra: [string, string][] = batch === undefined ? [] : [["batch", batch]];
    const body = frame.messages.flatMap((m: MessageFrame) =>
      this.#renderer.message(m, { replayed: replayed || !this.#caps.has("server-time"), extra })
    );
    if (batch === undefined) return body;
    return [
      { command: "BATCH", params: [`+${batch}`, "chathistory", target] },
      ...body,
      { command: "BATCH", params: [`-${batch}`] },
    ];
  }

  hold(bytes: Uint8Array): boolean {
    if (this.#welcomed) return false;
    if (this.#held.length >= HOLD_MAX) this.#held.shift();
    this.#held.push(bytes);
    return true;
  }

  fileLink(frame: MessageFrame, url: string): Uint8Array {
    const target = frame.room ??
      (nameKey(frame.to!) === nameKey(this.#me) ? frame.from : frame.to!);
    return encoder.encode(formatIrcLine({
      source: this.#world.serverName,
      command: "NOTICE",
      params: [target, `Download ${frame.file?.name ?? "the file"} (24 h): ${url}`],
    }));
  }

  followUp(): Parsed {
    return this.#follow.shift();
  }

  ended(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#world.leave(this.#caller);
    if (this.#caller.name !== "" && this.#welcomed) {
      const { hub } = this.#world.services;
      if (!hub.isOnline(this.#caller.name)) this.#world.setAway(this.#caller.name, undefined);
    }
  }

  // ---- helpers -------------------------------------------------------------------------

  #ask(request: Request, ctx: Context): Parsed {
    return { request, ref: this.#ref({ ...ctx, sets: sets(request) }) };
  }

  /** A request per comma-separated target (at most {@linkcode MAX_TARGETS}). */
  #many(list: string, ctx: Context, make: (target: string) => Request): Parsed {
    const targets = list.split(",").filter((t) => t !== "").slice(0, MAX_TARGETS);
    if (targets.length === 1) return this.#ask(make(targets[0]!), { ...ctx, target: targets[0] });
    return this.#requests(targets.map(make), ctx, targets);
  }

  #requests(requests: Request[], ctx: Context, targets?: string[]): Parsed {
    if (requests.length === 0) return this.#local([], ctx);
    // The label goes on the first answer only.
    return {
      requests: requests.map((request, i) => {
        const one: Context = { ...ctx, target: targets?.[i] ?? ctx.target, sets: sets(request) };
        if (i > 0) one.label = undefined;
        return { request, ref: this.#ref(one) };
      }),
    };
  }

  #ref(ctx: Context): string {
    const ref = String(++this.#next);
    this.#contexts.set(ref, ctx);
    return ref;
  }

  #take(ref: string | undefined): Context {
    if (ref === undefined) return { command: "*", label: undefined };
    const ctx = this.#contexts.get(ref);
    this.#contexts.delete(ref);
    return ctx ?? { command: "*", label: undefined };
  }

  #local(lines: OutMessage[], ctx?: Context): Parsed {
    return { local: this.#lines(lines, ctx) };
  }

  /**
   * Lines as bytes, labelled (labeled-response): one line gets the label, several go in a
   * `labeled-response` batch, none become an ACK. With `release`, what was held follows.
   */
  #lines(lines: OutMessage[], ctx?: Context, release = false): Uint8Array | null {
    let out = lines;
    const label = ctx?.label;
    if (label !== undefined && label !== "") {
      if (out.length === 0) {
        out = [{ tags: [["label", label]], source: this.#world.serverName, command: "ACK" }];
      } else if (out.length === 1 || !this.#caps.has("batch")) {
        const [first, ...rest] = out;
        out = [{ ...first!, tags: [["label", label], ...first!.tags ?? []] }, ...rest];
      } else {
        const id = `l${++this.#batches}`;
        out = [
          {
            tags: [["label", label]],
            source: this.#world.serverName,
            command: "BATCH",
            params: [`+${id}`, "labeled-response"],
          },
          ...out.map((l) => ({ ...l, tags: [["batch", id] as [string, string], ...l.tags ?? []] })),
          { source: this.#world.serverName, command: "BATCH", params: [`-${id}`] },
        ];
      }
    }
    const text = out.map(formatIrcLine).join("");
    let bytes = text === "" ? null : encoder.encode(text);
    if (release && this.#welcomed && this.#held.length > 0) {
      const held = this.#held;
      this.#held = [];
      const parts = bytes === null ? held : [bytes, ...held];
      const size = parts.reduce((n, p) => n + p.length, 0);
      const all = new Uint8Array(size);
      let at = 0;
      for (const part of parts) {
        all.set(part, at);
        at += part.length;
      }
      bytes = all;
    }
    return bytes;
  }

  /** A numeric from the server to this client. */
  #num(numeric: string, ...params: string[]): OutMessage {
    return { source: this.#world.serverName, command: numeric, params: [this.#me, ...params] };
  }

  #raw(command: string, ...params: string[]): OutMessage {
    return { source: this.#world.serverName, command, params };
  }

  #online(name: string): boolean {
    return isValidName(name) && this.#world.services.hub.isOnline(name);
  }

  #nameOf(name: string): string {
    return this.#world.services.hub.user(name)?.name ?? name;
  }
}

/** The most `352` lines a channel's WHO answers. */
export const WHO_MAX_LINES = 1000;

/** The longest a `352` line gets (32-character names, the longest channel, server and prefixes). */
const WHO_LINE_BYTES = 320;

/**
 * How many members a channel's WHO lists: {@linkcode WHO_MAX_LINES}, or fewer when a quarter of
 * the send queue (`--max-sendq`) could not hold that many of the longest lines (at least 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { whoLimit } from "./dialect.ts";
 * assert.equal(whoLimit(1024 * 1024), 819);
 * assert.equal(whoLimit(16 * 1024 * 1024), 1000);
 * assert.equal(whoLimit(1024), 1);
 * ```
 */
export function whoLimit(maxSendq: number): number {
  return Math.max(1, Math.min(WHO_MAX_LINES, Math.floor(maxSendq / 4 / WHO_LINE_BYTES)));
}
