/**
 * `parley user`: manage accounts in a data folder (the server may be stopped).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Accounts } from "../auth/accounts.ts";
import { passwordProblem } from "../auth/password.ts";
import { ChatError } from "../protocol/errors.ts";
import { DEFAULT_CONFIG } from "../server/config.ts";
import { openSqliteStore } from "../store/worker_store.ts";
import type { UserRecord } from "../store/store.ts";
import { UsageError } from "./args.ts";

/** `user --help`. */
export const USER_USAGE = `Usage: parley user <action> [NAME] [options]

Manages accounts in the data folder's database. Works while the server is stopped (and while
it runs: SQLite allows it, but a running server notices a disabled account only at its next
login).

Actions:
  add NAME        create an account
  list            list accounts
  passwd NAME     set a new password (ends the account's sessions)
  disable NAME    refuse the account's logins and end its sessions
  enable NAME     allow the account again
  delete NAME     delete the account, its sessions and memberships (its messages stay)

Options:
  --data DIR          the data folder (default ${DEFAULT_CONFIG.data})
  --password-stdin    read the password from the first line of stdin instead of prompting
  -h, --help          show this help`;

/** Runs `parley user`; resolves to the exit code. */
export async function userMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      data: { type: "string" },
      "password-stdin": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USER_USAGE);
    return 0;
  }
  const [action, name, ...extra] = positionals;
  if (action === undefined) {
    throw new UsageError("Missing action: add, list, passwd, disable, enable or delete");
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const needsName = action !== "list";
  if (needsName && name === undefined) throw new UsageError(`Missing NAME for 'user ${action}'`);
  if (!["add", "list", "passwd", "disable", "enable", "delete"].includes(action)) {
    throw new UsageError(`Unknown action '${action}'`);
  }
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
  try {
    switch (action) {
      case "add": {
        const user = await accounts.create(name!, await readPassword());
        console.log(`created account ${user.name}`);
        return 0;
      }
      case "list": {
        for (const u of await store.accounts.listUsers()) {
          const created = new Date(u.created).toISOString().slice(0, 16).replace("T", " ");
          console.log(`${u.name}\t${u.disabled ? "disabled" : "active"}\tcreated ${created}`);
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
        console.log(`password of ${user.name} changed; its sessions were ended`);
        return 0;
      }
      case "disable":
      case "enable": {
        const user = await find(name!);
        await store.accounts.setDisabled(user.id, action === "disable");
        console.log(`${user.name} ${action}d`);
        return 0;
      }
      default: {
        const user = await find(name!);
        await store.accounts.deleteUser(user.id);
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
