/**
 * `parley user`: manage accounts in a data folder (the server may be stopped). Every change is
 * written to the audit log (actor `admin`); the ones a running server must apply to live
 * sessions (a password changed, an account disabled or deleted, the admin flag) are also posted
 * as administrators' events, which servers sharing the database follow.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Accounts } from "../auth/accounts.ts";
import { passwordProblem } from "../auth/password.ts";
import { ChatError } from "../protocol/errors.ts";
import { DEFAULT_CONFIG } from "../server/config.ts";
import { openSqliteStore } from "../store/worker_store.ts";
import type { AdminEvent, UserRecord } from "../store/store.ts";
import { intFlag, UsageError } from "./args.ts";

/** How many audit entries `user audit` prints by default. */
const AUDIT_LIMIT = 50;

/** `user --help`. */
export const USER_USAGE = `Usage: parley user <action> [NAME] [options]

Manages accounts in the data folder's database, whether the server is stopped or running: a
running server applies a new password, a disabled or deleted account and the admin flag to the
account's live sessions within seconds. Every change is recorded in the audit log.

Actions:
  add NAME        create an account
  list            list accounts
  passwd NAME     set a new password (ends the account's sessions)
  disable NAME    refuse the account's logins and end its sessions
  enable NAME     allow the account again
  delete NAME     delete the account, its sessions, memberships and room roles (its messages stay)
  admin NAME      make the account a server administrator
  unadmin NAME    make it an ordinary account again
  audit           print the audit log, newest first: time, actor, action, room, target, detail

Options:
  --data DIR          the data folder (default ${DEFAULT_CONFIG.data})
  --password-stdin    read the password from the first line of stdin instead of prompting
  --limit N           audit: how many entries to print (default ${AUDIT_LIMIT})
  -h, --help          show this help`;

const ACTIONS = [
  "add",
  "list",
  "passwd",
  "disable",
  "enable",
  "delete",
  "admin",
  "unadmin",
  "audit",
] as const;
type Action = typeof ACTIONS[number];

/** The actions that take no NAME. */
const NAMELESS: readonly Action[] = ["list", "audit"];

/** Runs `parley user`; resolves to the exit code. */
export async function userMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      data: { type: "string" },
      "password-stdin": { type: "boolean" },
      limit: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USER_USAGE);
    return 0;
  }
  const [given, name, ...extra] = positionals;
  if (given === undefined) throw new UsageError(`Missing action: ${ACTIONS.join(", ")}`);
  if (!(ACTIONS as readonly string[]).includes(given)) {
    throw new UsageError(`unknown action '${given}'`);
  }
  const action = given as Action;
  const nameless = NAMELESS.includes(action);
  if (nameless && name !== undefined) throw new UsageError(`unexpected argument '${name}'`);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (!nameless && name === undefined) throw new UsageError(`Missing NAME for 'user ${action}'`);
  if (values.limit !== undefined && action !== "audit") {
    throw new UsageError("--limit is for 'user audit' only");
  }
  const limit = intFlag(values.limit, "limit", AUDIT_LIMIT, 1, 100_000);
  const data = values.data ?? DEFAULT_CONFIG.data;
  Deno.mkdirSync(data, { recursive: true, mode: 0o700 });
  await using store = await openSqliteStore(`${data}/parley.db`);
  const accounts = new Accounts(store.accounts, {
    ...DEFAULT_CONFIG,
    exemptLoopback: true,
    lowPriorityHashing: false,
  });
  const readPassword = () => password(values["password-stdin"] ?? false);
  const find = async (n: string): Promise<UserRecord> => {
    const user = await store.accounts.getUser(n);
    if (user === undefined) throw new ChatError("no_such_user", `No account named ${n}`);
    return user;
  };
  /** Records a change in the audit log, and for a running server's sake as an event. */
  const changed = async (user: UserRecord, event?: AdminEvent["kind"]): Promise<void> => {
    const ts = Date.now();
    if (event !== undefined) {
      await store.moderation.postAdminEvent({ ts, kind: event, userId: user.id, name: user.name });
    }
    await store.moderation.audit({
      ts,
      actor: "admin",
      action,
      room: undefined,
      target: user.name,
      detail: undefined,
    });
  };
  try {
    switch (action) {
      case "add": {
        const user = await accounts.create(name!, await readPassword());
        await changed(user);
        console.log(`created account ${user.name}`);
        return 0;
      }
      case "list": {
        for (const u of await store.accounts.listUsers()) {
          const created = new Date(u.created).toISOString().slice(0, 16).replace("T", " ");
          const status = `${u.disabled ? "disabled" : "active"}${u.admin ? ", admin" : ""}`;
          console.log(`${u.name}\t${status}\tcreated ${created}`);
        }
        return 0;
      }
      case "audit": {
        for (const e of await store.moderation.auditLog(limit)) {
          const fields = [e.actor, e.action, e.room, e.target, e.detail].map((f) =>
            f === undefined ? "-" : printable(f)
          );
          console.log([new Date(e.ts).toISOString(), ...fields].join("\t"));
        }
        return 0;
      }
      case "passwd": {
        const user = await find(name!);
        const pw = await readPassword();
        const problem = passwordProblem(pw);
        if (problem !== undefined) throw new ChatError("weak_password", problem);
        await store.accounts.setPasswordHash(user.id, await accounts.hash(pw));
        await store.accounts.deleteSessionsOf(user.id);
        await changed(user, "revoke");
        console.log(`password of ${user.name} changed; its sessions were ended`);
        return 0;
      }
      case "disable":
      case "enable": {
        const user = await find(name!);
        const disable = action === "disable";
        if (user.disabled === disable) {
          console.log(`${user.name} is already ${action}d`);
          return 0;
        }
        await store.accounts.setDisabled(user.id, disable);
        await changed(user, disable ? "revoke" : undefined);
        console.log(`${user.name} ${action}d`);
        return 0;
      }
      case "admin":
      case "unadmin": {
        const user = await find(name!);
        const admin = action === "admin";
        if (user.admin === admin) {
          console.log(
            `${user.name} is already ${admin ? "an administrator" : "not an administrator"}`,
          );
          return 0;
        }
        await store.accounts.setAdmin(user.id, admin);
        await changed(user, "role");
        console.log(`${user.name} is ${admin ? "now" : "no longer"} an administrator`);
        return 0;
      }
      case "delete": {
        const user = await find(name!);
        await store.accounts.deleteUser(user.id);
        await changed(user, "revoke");
        console.log(`deleted account ${user.name}`);
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof ChatError) {
      console.error(`parley user ${action}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

/** A stored text made safe for one line of a terminal: control and bidi characters become `?`. */
function printable(text: string): string {
  return text.replace(/[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, "?");
}

/** Reads a password: the first line of stdin, or a prompt without echo on a terminal. */
async function password(fromStdin: boolean): Promise<string> {
  if (fromStdin || !Deno.stdin.isTerminal()) {
    const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    reader.releaseLock();
    return text.split(/\r?\n/)[0]!;
  }
  const first = await prompt("Password: ");
  const again = await prompt("Again: ");
  if (first !== again) throw new ChatError("weak_password", "The passwords differ");
  return first;
}

/** Prompts on a terminal with echo off. */
async function prompt(label: string): Promise<string> {
  const encoder = new TextEncoder();
  await Deno.stdout.write(encoder.encode(label));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buf = new Uint8Array(64);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) return new TextDecoder().decode(new Uint8Array(bytes));
        if (b === 0x03) throw new ChatError("bad_frame", "Interrupted");
        if (b === 0x7f || b === 0x08) bytes.pop();
        else bytes.push(b);
      }
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stdout.write(encoder.encode("\n"));
  }
}
