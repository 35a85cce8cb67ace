/**
 * What every IRC session of one server shares: the server's IRC name and settings, the
 * encoders (one per set of negotiated capabilities that changes how events look), and the away
 * messages IRC users set (parley has no away state of its own: it lives here, per process).
 *
 * @module
 */

import type { Services } from "../commands/command.ts";
import type { Member } from "../hub/hub.ts";
import { nameKey } from "../protocol/names.ts";
import { EVENT_CAPS, IrcEncoder, IrcRenderer, type RenderContext } from "./render.ts";

/** What the world tells an IRC session. */
export interface IrcPeer {
  /** A name it monitors came online or went offline. */
  monitored(name: string, online: boolean): void;
  /** Someone sharing a room went away (text) or came back (undefined). */
  away(name: string, text: string | undefined): void;
}

/** The IRC side of one server. */
export class IrcWorld implements RenderContext {
  readonly serverName: string;
  /** The network name ISUPPORT announces. */
  readonly network: string;
  /** When the server started (RPL_CREATED). */
  readonly created: Date;
  /** The password every client must give (`PASS`, or `hello`'s `serverPassword`). */
  readonly serverPassword: string | undefined;
  /** The IRC listener's port, for the chat port's hand-off to mention. */
  ircPort: number | undefined;
  readonly services: Services;
  readonly #encoders = new Map<string, IrcEncoder>();
  /** Away messages by name key. */
  readonly #away = new Map<string, string>();
  /** Who MONITORs a name (by name key). */
  readonly #monitors = new Map<string, Set<IrcPeer>>();
  /** The IRC sessions of this process, by their session. */
  readonly #peers = new Map<Member, IrcPeer>();

  /**
   * @param services the server's services
   * @param options the server name and password
   */
  constructor(
    services: Services,
    options: { serverName: string; serverPassword?: string | undefined },
  ) {
    this.services = services;
    this.serverName = options.serverName;
    this.network = "parley";
    this.serverPassword = options.serverPassword;
    this.created = new Date();
    services.hub.watch((name, online) => {
      for (const peer of this.#monitors.get(nameKey(name)) ?? []) peer.monitored(name, online);
    });
  }

  /** Registers an IRC session (for away-notify and MONITOR). */
  join(member: Member, peer: IrcPeer): void {
    this.#peers.set(member, peer);
  }

  /** Forgets an IRC session and what it monitored. */
  leave(member: Member): void {
    const peer = this.#peers.get(member);
    if (peer === undefined) return;
    this.#peers.delete(member);
    for (const [key, set] of this.#monitors) {
      set.delete(peer);
      if (set.size === 0) this.#monitors.delete(key);
    }
  }

  /** `peer` is told when `name` comes online or goes offline. */
  monitor(peer: IrcPeer, name: string, on: boolean): void {
    const key = nameKey(name);
    let set = this.#monitors.get(key);
    if (on) {
      if (set === undefined) this.#monitors.set(key, set = new Set());
      set.add(peer);
    } else if (set !== undefined) {
      set.delete(peer);
      if (set.size === 0) this.#monitors.delete(key);
    }
  }

  /**
   * Tells the IRC sessions that share a room with `member`'s user and asked for away-notify
   * that it is away (or back), once each.
   */
  announceAway(member: Member, name: string, text: string | undefined): void {
    const { hub } = this.services;
    const told = new Set<IrcPeer>();
    for (const room of hub.roomsOf(member)) {
      for (const user of hub.members(room)) {
        for (const session of user.sessions) {
          const peer = this.#peers.get(session);
          if (peer === undefined || session === member || told.has(peer)) continue;
          told.add(peer);
          peer.away(name, text);
        }
      }
    }
  }

  /** The longest message text. */
  get maxText(): number {
    return this.services.config.maxText;
  }

  /** The account name of the online user `name`, when it is logged in. */
  accountOf(name: string): string | undefined {
    const user = this.services.hub.user(name);
    return user?.accountId === undefined ? undefined : user.name;
  }

  /** The shared encoder for a set of capabilities (only those that change events count). */
  encoder(caps: ReadonlySet<string>): IrcEncoder {
    const relevant = EVENT_CAPS.filter((c) => caps.has(c));
    const key = relevant.join(" ");
    let encoder = this.#encoders.get(key);
    if (encoder === undefined) {
      encoder = new IrcEncoder(new IrcRenderer(this, new Set(relevant)));
      this.#encoders.set(key, encoder);
    }
    return encoder;
  }

  /** The away message of `name`, if it is away. */
  away(name: string): string | undefined {
    return this.#away.get(nameKey(name));
  }

  /** Sets (or, with undefined, clears) the away message of `name`. */
  setAway(name: string, text: string | undefined): void {
    if (text === undefined) this.#away.delete(nameKey(name));
    else this.#away.set(nameKey(name), text);
  }
}
