/**
 * parley: one entry point, one subcommand per job.
 *
 * @module
 */

import { UsageError } from "./src/cli/args.ts";
import { serverMain } from "./src/cli/server_cmd.ts";
import { VERSION } from "./src/version.ts";

const USAGE = `parley ${VERSION}: a secure, self-hostable chat server and client

Usage: parley <command> [options]

Commands:
  server            start the chat server (TCP text mode for nc, JSON lines for clients)
  client HOST [PORT] the terminal chat client (port 5000 by default)
  user ACTION NAME  manage accounts: add, list, passwd, disable, enable, delete, admin,
                    unadmin; 'user audit' prints the audit log
  backup --out FILE copy the database to FILE, safe while the server runs
  cert --host NAME  make a self-signed TLS certificate and key for development

Run 'parley <command> --help' for a command's options.
  -h, --help        show this help
  -V, --version     print the version`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  server: () => Promise.resolve(serverMain),
  client: async () => (await import("./src/cli/client_cmd.ts")).clientMain,
  user: async () => (await import("./src/cli/user_cmd.ts")).userMain,
  backup: async () => (await import("./src/cli/backup_cmd.ts")).backupMain,
  cert: async () => (await import("./src/cli/cert_cmd.ts")).certMain,
};

/** Dispatches `args` to a subcommand; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === "-V" || name === "--version") {
    console.log(VERSION);
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    console.error(`parley: unknown command '${name}'; run 'parley --help'`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (error) {
    if (error instanceof UsageError || (error instanceof TypeError && "code" in error)) {
      console.error(`parley ${name}: ${error.message}; run 'parley ${name} --help'`);
      return 2;
    }
    const refusal = permissionRefusal(error);
    if (refusal !== undefined) {
      console.error(`parley ${name}: ${refusal}`);
      return 1;
    }
    throw error;
  }
}

/**
 * One line for a permission refused, by Deno (`Deno.errors.NotCapable`: what to allow) or by the
 * operating system (`Deno.errors.PermissionDenied`); `undefined` for any other error.
 */
export function permissionRefusal(error: unknown): string | undefined {
  if (error instanceof Deno.errors.NotCapable) {
    const m = /^Requires (\w+) access to "?([^",]+?)"?,/.exec(error.message);
    if (m === null) return `not allowed: ${error.message}`;
    const [, kind, what] = m;
    const verb = kind === "read" || kind === "write" ? kind : `use ${kind} for`;
    return `this run may not ${verb} ${what}: run it ` +
      `with --allow-${kind}=${what} (or add it to the permission set the task uses in deno.json)`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `permission denied: ${error.message}`;
  }
  return undefined;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
