/**
 * The broker: how the hub reaches sessions. Sessions subscribe to topics (a room, a user);
 * the hub publishes an event to topics and every subscriber gets it once. Names are claimed
 * through it, and whether a name is claimed is presence. The in-process broker
 * (`src/broker/in_process.ts`) is the only one today; a NATS one would implement the same
 * interface so several server processes share rooms, presence and names.
 *
 * A room message carries its per-room sequence number from the store, so a receiver on a bus
 * that sees a gap can refill it from the store instead of trusting the bus.
 *
 * @module
 */

import type { Outgoing } from "../protocol/outgoing.ts";
import { nameKey } from "../protocol/names.ts";

/** What receives events: a session. Must not throw and must not wait on I/O. */
export interface Subscriber {
  deliver(event: Outgoing): void;
}

/** A topic: everyone in a room, or every session of one user (keys are case-folded). */
export type Topic = `room:${string}` | `user:${string}`;

/** The topic of a room. */
export function roomTopic(room: string): Topic {
  return `room:${nameKey(room)}`;
}

/** The topic of a user (every session of that name). */
export function userTopic(name: string): Topic {
  return `user:${nameKey(name)}`;
}

/** Who is left out of a publication: one session, or several. */
export type Except = Subscriber | ReadonlySet<Subscriber> | undefined;

/** Routing between sessions, presence and name claims. */
export interface Broker {
  /** Adds `subscriber` to `topic` (idempotent). */
  subscribe(topic: Topic, subscriber: Subscriber): void;
  /** Removes `subscriber` from `topic` (idempotent). */
  unsubscribe(topic: Topic, subscriber: Subscriber): void;
  /**
   * Delivers `event` to every subscriber of any of `topics`, once each, except `except`. Never
   * waits: delivery only queues bytes.
   */
  publish(topics: readonly Topic[], event: Outgoing, except?: Except): void;
  /** How many subscribe to `topic`. */
  subscribers(topic: Topic): number;
  /** Claims a name for `owner`; false when someone else holds it. Idempotent for the holder. */
  claim(name: string, owner: object): boolean;
  /** Gives up a claim (only its holder can). */
  release(name: string, owner: object): void;
  /** Who holds a name, if anyone: presence. */
  holder(name: string): object | undefined;
}
