/**
 * Argon2id off the event loop at the lowest CPU priority.
 *
 * WebCrypto already runs `deriveBits` on a blocking thread, but at the same priority as the
 * event loop: on a busy machine a burst of password logins takes CPU from every chat message.
 * {@linkcode LowPriorityHasher} runs the derivations in a worker started by a worker that first
 * lowered its own priority to nice 19. Linux threads inherit their creator's niceness, so the
 * inner worker's thread and every blocking thread its runtime starts for `deriveBits` are born at
 * nice 19 (a thread a worker starts while it boots, before its code can lower its priority,
 * stays at normal priority: hence the second worker). The event loop then takes the CPU whenever
 * it has work, and hashing gets whatever is left.
 *
 * Both workers' code is a string loaded from a `blob:` URL: it imports nothing from disk, so a
 * compiled binary needs no extra files.
 *
 * @module
 */

import type { Derive } from "./password.ts";

/** The niceness hashing runs at: the lowest priority an unprivileged process can set. */
export const HASH_NICENESS = 19;

const HASHER_SOURCE = `
self.postMessage({ ready: true });
self.onmessage = async ({ data }) => {
  const { id, password, salt, params, bytes } = data;
  try {
    const key = await crypto.subtle.importKey("raw-secret", password, "Argon2id", false, ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits({ name: "Argon2id", nonce: salt, ...params }, key, bytes * 8);
    self.postMessage({ id, bits }, [bits]);
  } catch (error) {
    self.postMessage({ id, error: String(error) });
  }
};
`;

const WORKER_SOURCE = `
import { setPriority } from "node:os";
let niced = true;
try { setPriority(0, ${HASH_NICENESS}); } catch { niced = false; }
const source = new Blob([${JSON.stringify(HASHER_SOURCE)}], { type: "text/javascript" });
const hasher = new Worker(URL.createObjectURL(source), { type: "module" });
// Ready once the inner worker runs (its runtime needs file descriptors: it must not start late).
hasher.onmessage = ({ data }) => {
  if (data.ready) self.postMessage({ niced });
  else self.postMessage(data, data.bits ? [data.bits] : []);
};
self.onmessage = ({ data }) => hasher.postMessage(data);
`;

const encoder = new TextEncoder();

interface Pending {
  resolve(bits: Uint8Array): void;
  reject(error: Error): void;
}

/**
 * Derives Argon2id hashes in a worker at nice 19.
 *
 * Lowering the priority needs `--allow-sys=setPriority`; without it the hashes still run in
 * the worker at normal priority, and {@linkcode LowPriorityHasher.niced} says so.
 */
export class LowPriorityHasher {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  readonly #ready: Promise<boolean>;
  #nextId = 0;
  #closed = false;

  constructor() {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    this.#worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
    const { promise, resolve } = Promise.withResolvers<boolean>();
    this.#ready = promise;
    this.#worker.onmessage = ({ data }) => {
      if ("niced" in data) return resolve(data.niced);
      const pending = this.#pending.get(data.id);
      this.#pending.delete(data.id);
      if (data.error !== undefined) pending?.reject(new Error(data.error));
      else pending?.resolve(new Uint8Array(data.bits));
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(new Error(`Hashing worker failed: ${event.message}`));
      resolve(false);
    };
  }

  /** Whether the worker runs at nice 19 (false when `setPriority` was not allowed). */
  niced(): Promise<boolean> {
    return this.#ready;
  }

  /** Derives `bytes` bytes of Argon2id from `password` and `salt`. */
  derive: Derive = (password, salt, params, bytes) => {
    if (this.#closed) return Promise.reject(new Error("Hashing worker closed"));
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<Uint8Array>();
    this.#pending.set(id, { resolve, reject });
    const message = { id, password: encoder.encode(password), salt, params: { ...params }, bytes };
    this.#worker.postMessage(message);
    return promise;
  };

  /** Stops the worker; hashes in progress fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    this.#fail(new Error("Hashing worker closed"));
  }

  #fail(error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
