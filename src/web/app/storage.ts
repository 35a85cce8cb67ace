/// <reference lib="dom" />
/**
 * What the web client keeps in the browser's localStorage: the session token (to log back in
 * on reload), the notifications choice, the last conversation shown, and the people each
 * account had direct messages with; and in sessionStorage (this tab only, gone when it closes)
 * the server's password. Every access tolerates storage being unavailable (private modes,
 * disabled storage): the feature then lasts as long as the page.
 *
 * @module
 */

import { isValidName, nameKey } from "../../protocol/names.ts";

/** The keys used. */
export const KEYS = {
  token: "parley.token",
  notify: "parley.notify",
  active: "parley.active",
  dms: "parley.dms.",
  /** In sessionStorage: the server's password (`--server-password`), for this tab. */
  serverPassword: "parley.serverPassword",
} as const;

/** Reads `key` from this tab's sessionStorage, or null. */
export function loadForTab(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Writes `key` in this tab's sessionStorage, or removes it when `value` is null. */
export function saveForTab(key: string, value: string | null): void {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // Not stored: see the module note.
  }
}

/** Reads `key`, or null. */
export function load(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Writes `key`, or removes it when `value` is null. */
export function save(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Not stored: see the module note.
  }
}

/** The people `me` had direct messages with (the protocol has no list of them). */
export function partners(me: string): string[] {
  try {
    const list = JSON.parse(load(KEYS.dms + nameKey(me)) ?? "[]");
    return Array.isArray(list) ? list.filter(isValidName) : [];
  } catch {
    return [];
  }
}

/** Adds `name` to `me`'s partners (keeping the latest 100), or removes it. */
export function setPartner(me: string, name: string, keep: boolean): void {
  const list = partners(me);
  const rest = list.filter((n) => nameKey(n) !== nameKey(name));
  const listed = rest.length < list.length;
  if (keep === listed) return; // already so
  save(KEYS.dms + nameKey(me), JSON.stringify(keep ? [...rest, name].slice(-100) : rest));
}
