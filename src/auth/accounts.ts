/**
 * Accounts: registration, password and token logins, logout and password changes, with the
 * throttles that keep brute force slow and never lock the real owner out for long.
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import { isLoopback } from "../net.ts";
import { checkName, nameKey } from "../protocol/names.ts";
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import type { AccountStore, UserRecord } from "../store/store.ts";
import { KeyedThrottle, Semaphore } from "./limiter.ts";
import { LowPriorityHasher } from "./hasher.ts";
import {
  DEFAULT_PARAMS,
  deriveHere,
  hashPassword,
  passwordProblem,
  verifyPassword,
} from "./password.ts";
import type { Argon2Params, Derive } from "./password.ts";
import { hashToken, newToken } from "./tokens.ts";

/** What {@linkcode Accounts} counts (reported on `/metrics`). */
export interface AccountsStats {
  /** Password hashes running, and waiting for a slot. */
  hashRunning: number;
  hashWaiting: number;
  /** Password hashes refused `busy` because too many waited. */
  hashBusy: number;
  /** Failed logins (password or session token) by why they failed. */
  loginFailures: { auth_failed: number; rate_limited: number; busy: number };
}

/** Settings for {@linkcode Accounts}. */
export interface AccountsOptions {
  /** Whether new accounts may be registered over the network. */
  registration: boolean;
  /** Failed logins allowed at once, per IP and per account. */
  loginBurst: number;
  /** One more failed login allowed every this many ms. */
  loginIntervalMs: number;
  /** Registrations allowed at once per IP. */
  registerBurst: number;
  /** One more registration allowed every this many ms, per IP. */
  registerIntervalMs: number;
  /** How long an unused session token stays valid, in ms. */
  sessionTtlMs: number;
  /** Password hashes computed at once. */
  hashConcurrency: number;
  /** Exempt loopback addresses from the registration throttle unless false. */
  exemptLoopback: boolean;
  /** Argon2id parameters for new hashes. */
  params?: Argon2Params;
  /** Hash in a worker at nice 19 ({@linkcode LowPriorityHasher}) unless false. */
  lowPriorityHashing?: boolean;
  /** Where the time comes from (token expiry, account creation). @default the system clock */
  clock?: Clock;
}

/** A successful login: the account and its session token (the token is shown only once). */
export interface AccountLogin {
  user: UserRecord;
  token: string;
  tokenHash: Uint8Array;
}

const GUEST_PREFIX = "guest-";
const KNOWN_IPS_PER_ACCOUNT = 16;

function authFailed(): ChatError {
  return new ChatError("auth_failed", "Login failed: wrong name or password");
}

/**
 * The account service over an {@linkcode AccountStore}.
 *
 * Failed logins are throttled per IP and per account (a token bucket each: `loginBurst`
 * failures, then one per `loginIntervalMs`), answered `rate_limited` with a retry time. Every
 * password attempt is charged before its hash is checked, and refunded when it succeeds, so
 * attempts made at the same time get no more hash checks than the same attempts one after
 * another. The per-account throttle does not apply from an address the owner has logged in
 * from before, so an attacker hammering one account cannot keep its owner out.
 */
export class Accounts {
  readonly #store: AccountStore;
  readonly #options: AccountsOptions;
  readonly #clock: Clock;
  readonly #hashing: Semaphore;
  readonly #hasher: LowPriorityHasher | undefined;
  readonly #derive: Derive;
  readonly #ipFailures: KeyedThrottle;
  readonly #accountFailures: KeyedThrottle;
  readonly #registrations: KeyedThrottle;
  readonly #knownIps = new Map<number, Set<string>>();
  readonly #loginFailures = { auth_failed: 0, rate_limited: 0, busy: 0 };

  /**
   * @param store where accounts live
   * @param options throttles and policies
   */
  constructor(store: AccountStore, options: AccountsOptions) {
    this.#store = store;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#hashing = new Semaphore(options.hashConcurrency, 64);
    this.#hasher = options.lowPriorityHashing === false ? undefined : new LowPriorityHasher();
    this.#derive = this.#hasher?.derive ?? deriveHere;
    this.#ipFailures = new KeyedThrottle(options.loginBurst, options.loginIntervalMs);
    this.#accountFailures = new KeyedThrottle(options.loginBurst, options.loginIntervalMs);
    this.#registrations = new KeyedThrottle(options.registerBurst, options.registerIntervalMs);
  }

  /** Whether password hashing runs at nice 19 (needs `--allow-sys=setPriority`). */
  async lowPriorityHashing(): Promise<boolean> {
    return await this.#hasher?.niced() ?? false;
  }

  /** Stops the hashing worker; call when the accounts are no longer used. */
  close(): void {
    this.#hasher?.close();
  }

  /** Hashes a password with the configured parameters, within the concurrency cap. */
  hash(password: string): Promise<string> {
    return this.#hashing.run(() =>
      hashPassword(password, this.#options.params ?? DEFAULT_PARAMS, this.#derive)
    );
  }

  /**
   * Creates an account without throttles (for administrators).
   *
   * @throws {ChatError} `invalid_name`, `weak_password`, `name_taken`
   */
  async create(name: string, password: string): Promise<UserRecord> {
    checkName(name);
    if (name.toLowerCase().startsWith(GUEST_PREFIX)) {
      throw new ChatError(
        "invalid_name",
        `Invalid name ${name}: names starting with guest- are for guests`,
      );
    }
    const problem = passwordProblem(password);
    if (problem !== undefined) throw new ChatError("weak_password", problem);
    if (await this.#store.getUser(name) !== undefined) {
      throw new ChatError("name_taken", `Cannot register: the name ${name} is taken`);
    }
    const user = await this.#store.createUser(name, await this.hash(password), this.#clock.now());
    if (user === undefined) {
      throw new ChatError("name_taken", `Cannot register: the name ${name} is taken`);
    }
    return user;
  }

  /**
   * Registers an account over the network and logs it in.
   *
   * @throws {ChatError} `registration_closed`, `rate_limited`, and as {@linkcode Accounts.create}
   */
  async register(name: string, password: string, ip: string): Promise<AccountLogin> {
    if (!this.#options.registration) {
      throw new ChatError("registration_closed", "Registration is closed on this server");
    }
    if (!(this.#options.exemptLoopback && isLoopback(ip))) {
      const wait = this.#registrations.retryAfter(ip);
      if (wait > 0) {
        throw new ChatError("rate_limited", `Too many registrations: try again in ${wait} s`, wait);
      }
      this.#registrations.hit(ip);
    }
    const user = await this.create(name, password);
    return await this.#startSession(user, ip);
  }

  /**
   * Logs in with a name and password.
   *
   * @throws {ChatError} `auth_failed` (whether or not the name exists), `rate_limited`
   */
  login(name: string, password: string, ip: string): Promise<AccountLogin> {
    return this.#counted(this.#login(name, password, ip));
  }

  async #login(name: string, password: string, ip: string): Promise<AccountLogin> {
    // A throttled address is refused before it costs a lookup; the charge itself comes after.
    const ipWait = this.#ipFailures.retryAfter(ip);
    if (ipWait > 0) throw rateLimited(ipWait);
    const user = await this.#store.getUser(name);
    const known = user !== undefined && this.#knownIps.get(user.id)?.has(ip) === true;
    const refund = this.#charge(ip, known ? undefined : nameKey(name));
    const result = await this.#check(user?.passwordHash, password, refund);
    if (!result.ok || user === undefined || user.disabled) throw authFailed();
    refund();
    if (result.rehash) await this.#store.setPasswordHash(user.id, await this.hash(password));
    return await this.#startSession(user, ip);
  }

  /**
   * Logs in with a session token from an earlier login.
   *
   * @throws {ChatError} `auth_failed`, `rate_limited`
   */
  resume(token: string, ip: string): Promise<AccountLogin> {
    return this.#counted(this.#resume(token, ip));
  }

  async #resume(token: string, ip: string): Promise<AccountLogin> {
    // Unlike a password, a token costs no hash and cannot be guessed (256 bits): failures are
    // counted, but concurrent good tokens from one address (a reconnect storm) are not charged.
    const wait = this.#ipFailures.retryAfter(ip);
    if (wait > 0) throw rateLimited(wait);
    const tokenHash = hashToken(token);
    const now = this.#clock.now();
    const user = await this.#store.useSession(tokenHash, now, now + this.#options.sessionTtlMs);
    if (user === undefined || user.disabled) {
      this.#ipFailures.hit(ip);
      throw authFailed();
    }
    this.#remember(user.id, ip);
    return { user, token, tokenHash };
  }

  /** Counts a login that fails (for `/metrics`). */
  async #counted(login: Promise<AccountLogin>): Promise<AccountLogin> {
    try {
      return await login;
    } catch (error) {
      const code = error instanceof ChatError ? error.code : undefined;
      if (code === "auth_failed" || code === "rate_limited" || code === "busy") {
        this.#loginFailures[code]++;
      }
      throw error;
    }
  }

  /** Password hashes running and waiting, and failed logins by why, since start. */
  get stats(): AccountsStats {
    return {
      hashRunning: this.#hashing.running,
      hashWaiting: this.#hashing.waiting,
      hashBusy: this.#hashing.refused,
      loginFailures: { ...this.#loginFailures },
    };
  }

  /** The account of that id (for a signed download link). */
  user(id: number): Promise<UserRecord | undefined> {
    return this.#store.getUserById(id);
  }

  /** Revokes a session token. */
  logout(tokenHash: Uint8Array): Promise<void> {
    return this.#store.deleteSession(tokenHash);
  }

  /**
   * Changes a password after checking the old one; revokes every other session token.
   *
   * @throws {ChatError} `auth_failed`, `weak_password`, `rate_limited`
   */
  async changePassword(
    user: UserRecord,
    oldPassword: string,
    newPassword: string,
    ip: string,
    keep?: Uint8Array,
  ): Promise<void> {
    const problem = passwordProblem(newPassword);
    if (problem !== undefined) throw new ChatError("weak_password", problem);
    const known = this.#knownIps.get(user.id)?.has(ip) === true;
    const refund = this.#charge(ip, known ? undefined : nameKey(user.name));
    const current = await this.#store.getUserById(user.id);
    const result = await this.#check(current?.passwordHash, oldPassword, refund);
    if (!result.ok || current === undefined) {
      throw new ChatError("auth_failed", "Cannot change password: the old password is wrong");
    }
    refund();
    const hash = await this.hash(newPassword);
    await Promise.all([
      this.#store.setPasswordHash(user.id, hash),
      this.#store.deleteSessionsOf(user.id, keep),
    ]);
  }

  /**
   * Charges a password attempt before its hash is checked: a token of `ip`'s bucket and, unless
   * `account` is undefined (an address the owner has used), one of the account's. Checked and
   * taken in one synchronous step, so concurrent attempts cannot all pass the check first.
   *
   * @returns the refund, for an attempt that succeeds or never reaches a hash check
   * @throws {ChatError} `rate_limited` when either bucket is empty (nothing is charged)
   */
  #charge(ip: string, account: string | undefined): () => void {
    const ipWait = this.#ipFailures.retryAfter(ip);
    if (ipWait > 0) throw rateLimited(ipWait);
    if (account !== undefined) {
      const accountWait = this.#accountFailures.take(account);
      if (accountWait > 0) throw rateLimited(accountWait);
    }
    this.#ipFailures.hit(ip);
    let refunded = false;
    return () => {
      if (refunded) return;
      refunded = true;
      this.#ipFailures.refund(ip);
      if (account !== undefined) this.#accountFailures.refund(account);
    };
  }

  /** Checks a password against a stored hash (or the dummy); refunds when no check was made. */
  async #check(
    stored: string | undefined,
    password: string,
    refund: () => void,
  ): Promise<{ ok: boolean; rehash: boolean }> {
    try {
      return await this.#hashing.run(() =>
        verifyPassword(stored, password, this.#options.params ?? DEFAULT_PARAMS, this.#derive)
      );
    } catch (error) {
      refund(); // `busy` or a failure of the hasher: the password was not checked
      throw error;
    }
  }

  async #startSession(user: UserRecord, ip: string): Promise<AccountLogin> {
    const { token, hash } = newToken();
    const now = this.#clock.now();
    await this.#store.createSession(user.id, hash, now, now + this.#options.sessionTtlMs);
    this.#remember(user.id, ip);
    return { user, token, tokenHash: hash };
  }

  #remember(userId: number, ip: string): void {
    let ips = this.#knownIps.get(userId);
    if (ips === undefined) this.#knownIps.set(userId, ips = new Set());
    ips.add(ip);
    if (ips.size > KNOWN_IPS_PER_ACCOUNT) ips.delete(ips.values().next().value!);
  }
}

function rateLimited(seconds: number): ChatError {
  return new ChatError(
    "rate_limited",
    `Too many failed logins: try again in ${seconds} s`,
    seconds,
  );
}
