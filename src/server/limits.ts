/**
 * The connection caps every listener shares: connections in total, connections per IP, and new
 * connections per IP per window. A socket counts from the moment it is accepted (a TLS
 * connection still in its handshake, an HTTP connection between requests, a WebSocket) until it
 * is closed.
 *
 * @module
 */

import { KeyedThrottle } from "../auth/limiter.ts";
import { isLoopback } from "../net.ts";

/** Settings for {@linkcode ConnectionLimits}. */
export interface ConnectionLimitOptions {
  /** Connections in total. */
  maxConns: number;
  /** Concurrent connections from one IP address. */
  maxConnsPerIp: number;
  /** New connections per IP allowed at once… */
  connRate: number;
  /** …then `connRate` more per this many ms. */
  connWindowMs: number;
  /** Apply the per-IP limits to loopback addresses too. */
  limitLoopback: boolean;
}

/** Why a connection was refused: what to tell the peer, and whether the peer is to blame. */
export interface Refusal {
  reason: string;
  /** `full` is the server's state; the others are the peer's doing. */
  kind: "full" | "per_ip" | "rate";
}

/** An admitted connection's place under the caps; release it when the socket is closed. */
export interface Admission {
  /** Gives the place back; idempotent. */
  release(): void;
}

/**
 * Counts open connections and admits or refuses new ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConnectionLimits } from "./limits.ts";
 * const limits = new ConnectionLimits({
 *   maxConns: 10, maxConnsPerIp: 1, connRate: 10, connWindowMs: 1000, limitLoopback: true,
 * });
 * const first = limits.admit("127.0.0.1");
 * assert.ok(!("reason" in first));
 * assert.equal((limits.admit("127.0.0.1") as { kind: string }).kind, "per_ip");
 * first.release();
 * assert.ok(!("reason" in limits.admit("127.0.0.1")));
 * ```
 */
export class ConnectionLimits {
  readonly #options: ConnectionLimitOptions;
  readonly #perIp = new Map<string, number>();
  readonly #rate: KeyedThrottle;
  #open = 0;

  /** @param options the caps */
  constructor(options: ConnectionLimitOptions) {
    this.#options = options;
    this.#rate = new KeyedThrottle(options.connRate, options.connWindowMs / options.connRate);
  }

  /** Connections open now, on every listener. */
  get open(): number {
    return this.#open;
  }

  /** A place was released (by {@linkcode Place.release}, once): it is no longer counted. */
  released(ip: string): void {
    this.#open--;
    const left = (this.#perIp.get(ip) ?? 1) - 1;
    if (left <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, left);
  }

  /** Admits (and counts) a new connection from `ip`, or says why not. */
  admit(ip: string): Admission | Refusal {
    const o = this.#options;
    if (this.#open >= o.maxConns) {
      return { kind: "full", reason: "Too many connections: the server is full, try again later" };
    }
    if (o.limitLoopback || !isLoopback(ip)) {
      if ((this.#perIp.get(ip) ?? 0) >= o.maxConnsPerIp) {
        return { kind: "per_ip", reason: "Too many connections from your address" };
      }
      const wait = this.#rate.retryAfter(ip);
      if (wait > 0) {
        return {
          kind: "rate",
          reason: `Too many new connections from your address: try again in ${wait} s`,
        };
      }
      this.#rate.hit(ip);
    }
    this.#open++;
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    return new Place(this, ip);
  }
}

/**
 * One connection's place under the caps: an object with a method, not a closure (one is held by
 * every connection for its whole life).
 */
class Place implements Admission {
  readonly #limits: ConnectionLimits;
  readonly #ip: string;
  #released = false;

  constructor(limits: ConnectionLimits, ip: string) {
    this.#limits = limits;
    this.#ip = ip;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#limits.released(this.#ip);
  }
}
