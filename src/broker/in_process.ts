/**
 * The broker for one process: topics are sets of sessions, claims a map.
 *
 * @module
 */

import type { Outgoing } from "../protocol/outgoing.ts";
import { nameKey } from "../protocol/names.ts";
import type { Broker, Except, Subscriber, Topic } from "./broker.ts";

/**
 * An in-process {@linkcode Broker}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InProcessBroker } from "./in_process.ts";
 * import { roomTopic } from "./broker.ts";
 * import { Outgoing } from "../protocol/outgoing.ts";
 * const broker = new InProcessBroker();
 * const got: string[] = [];
 * const bob = { deliver: (e: Outgoing) => got.push(e.frame.type) };
 * broker.subscribe(roomTopic("#a"), bob);
 * broker.publish([roomTopic("#A")], new Outgoing({ type: "notice", text: "hi" }));
 * assert.deepEqual(got, ["notice"]);
 * ```
 */
export class InProcessBroker implements Broker {
  readonly #topics = new Map<Topic, Set<Subscriber>>();
  readonly #claims = new Map<string, object>();

  subscribe(topic: Topic, subscriber: Subscriber): void {
    let set = this.#topics.get(topic);
    if (set === undefined) this.#topics.set(topic, set = new Set());
    set.add(subscriber);
  }

  unsubscribe(topic: Topic, subscriber: Subscriber): void {
    const set = this.#topics.get(topic);
    if (set === undefined) return;
    set.delete(subscriber);
    if (set.size === 0) this.#topics.delete(topic);
  }

  publish(topics: readonly Topic[], event: Outgoing, except?: Except): void {
    const skip = except instanceof Set ? except : undefined;
    const one = skip === undefined ? except as Subscriber | undefined : undefined;
    if (topics.length === 1) {
      for (const s of this.#topics.get(topics[0]!) ?? []) {
        if (s !== one && !skip?.has(s)) s.deliver(event);
      }
      return;
    }
    const seen = new Set<Subscriber>();
    for (const topic of topics) {
      for (const s of this.#topics.get(topic) ?? []) {
        if (s === one || skip?.has(s) || seen.has(s)) continue;
        seen.add(s);
        s.deliver(event);
      }
    }
  }

  subscribers(topic: Topic): number {
    return this.#topics.get(topic)?.size ?? 0;
  }

  claim(name: string, owner: object): boolean {
    const key = nameKey(name);
    const holder = this.#claims.get(key);
    if (holder !== undefined && holder !== owner) return false;
    this.#claims.set(key, owner);
    return true;
  }

  release(name: string, owner: object): void {
    const key = nameKey(name);
    if (this.#claims.get(key) === owner) this.#claims.delete(key);
  }

  holder(name: string): object | undefined {
    return this.#claims.get(nameKey(name));
  }
}
