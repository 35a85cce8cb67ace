/**
 * `parley client`: the terminal chat client. Parses flags, connects a
 * {@linkcode ChatClient} (over TCP or TLS), and runs the terminal session on stdin/stdout.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ChatClient } from "../client/chat_client.ts";
import type { ChatClientOptions } from "../client/chat_client.ts";
import { ServerError, SessionRefusedError, TlsVerificationError } from "../client/errors.ts";
import { TokenStore } from "../client/token_store.ts";
import { openConsole } from "../client/terminal/console.ts";
import { Formatter } from "../client/terminal/format.ts";
import { runTerminal } from "../client/terminal/run.ts";
import type { TerminalOptions } from "../client/terminal/run.ts";
import { VERSION } from "../version.ts";
import { intFlag, quote, UsageError } from "./args.ts";

/** The port used when none is given. */
export const DEFAULT_CLIENT_PORT = 5000;

/** The port used with `--tls` when none is given. */
export const DEFAULT_CLIENT_TLS_PORT = 5443;

/** The server's web port (for files) when `--http-port` is not given. */
export const DEFAULT_HTTP_PORT = 8080;

/** What `--insecure` prints to stderr, every time. */
export const INSECURE_WARNING =
  "WARNING: --insecure: the server's certificate is NOT verified; anyone on the network path " +
  "can read and change this chat";

/** `client --help`. */
export const CLIENT_USAGE = `Usage: parley client HOST [PORT] [options]
       parley client PORT HOST [options]

The terminal chat client (port ${DEFAULT_CLIENT_PORT} by default, ${DEFAULT_CLIENT_TLS_PORT} with --tls). Type a line
to send it to your current room; events from others appear as they arrive.

Options:
  --name NAME        log in as the account NAME, or take NAME as a guest name:
                       1. with the session token saved for this server and NAME, if any;
                       2. else with --password-stdin, with that password (failure: exit 1);
                       3. else as a guest (/nick NAME); at a terminal, when NAME is taken
                          (e.g. it is an account), you are asked for its password (no echo;
                          Enter skips)
  --password-stdin   the first line of stdin is NAME's password (the rest is chat input)
  --server-password-stdin
                     the first line of stdin is the server's password (a server started
                       with --server-password; before NAME's password with --password-stdin);
                       else the environment variable PARLEY_SERVER_PASSWORD, if set. Sent in
                       every hello (reconnects too), never shown or logged
  --room #ROOM       join this room and make it the current one
  --tls              connect with TLS, verifying the server's certificate and host name
  --ca FILE          trust this CA or self-signed certificate (PEM) for TLS (implies --tls;
                       repeatable)
  --insecure         TLS WITHOUT verifying the certificate (implies --tls; warns every time)
  --http-port PORT   the server's web port, for /send and /get (default: the one the server
                       announces, with its scheme; else ${DEFAULT_HTTP_PORT}, HTTPS with --tls),
                       trusted like the chat connection
  --no-token-file    do not read or save session tokens
  --no-color         no colors (also when NO_COLOR is set or stdout is not a terminal)
  --bell             ring the terminal bell when a message mentions your name
  -h, --help         show this help

Session tokens from logins (--name, /login, /register) are saved in
$XDG_CONFIG_HOME/parley/tokens.json or ~/.config/parley/tokens.json (mode 0600), per server
(HOST:PORT) and account, and removed by /logout or when the server refuses them.

Commands (as in the server's text mode):
  /nick NAME  /join #room  /part [#room]  /msg NAME TEXT  /me TEXT
  /who [#room]  /rooms  /history [#room|NAME] [N]  /ping  /help  /quit [reason]
  /register NAME PASS  /login NAME PASS  /logout  /passwd OLD NEW
  /reply ID TEXT  /edit ID TEXT  /delete ID  /react ID EMOJI  /unreact ID EMOJI
  /search [#room|NAME:] WORDS  /context ID [N]  /unread  /read [#room|NAME]
  logout, bye, quit, Ctrl-C or end of input (Ctrl-D) leave cleanly.
Who is typing shows above the prompt; typing a message tells the others (at most every 3 s).
With an account, what is shown is marked read on the server (other devices agree).
Files (logged-in accounts; a progress bar at a terminal):
  /send [#room|NAME] PATH   upload PATH and send it (default: to the current room)
  /get ID [PATH]            download to PATH (a file or a folder), else into
                              $XDG_DOWNLOAD_DIR or ~/Downloads if it exists, else the current
                              folder; resumes, checks the SHA-256, never overwrites

Piped: printf '/join #ops\\nhello\\n' | parley client 127.0.0.1 --name bot
sends each line in order, waits for every reply, and exits.

Exit codes: 0 after a clean quit; 1 when the server cannot be reached, its TLS certificate does
not verify, it refuses the session (a missing or wrong server password too), a --password-stdin
login fails, or the connection is lost
for good (or, when piped, a line could not be delivered); 2 on a command-line mistake
(including an unreadable --ca FILE).`;

/** What `client` flags say. */
export interface ClientArgs {
  /** The server's host. */
  host: string;
  /** The server's port. */
  port: number;
  /** An account or name to take at start. */
  name?: string;
  /** Read the password for `name` from the first line of stdin. */
  passwordStdin?: boolean;
  /** Read the server's password from the first line of stdin (before `name`'s). */
  serverPasswordStdin?: boolean;
  /** A room to join and make current at start. */
  room?: string;
  /** Whether colors may be used (still only on a terminal, and never with NO_COLOR). */
  color: boolean;
  /** Connect with TLS. */
  tls?: boolean;
  /** Files of certificates (PEM) to trust for TLS. */
  ca?: string[];
  /** TLS without verification. */
  insecure?: boolean;
  /** Ring the bell on mentions. */
  bell?: boolean;
  /** Neither read nor save session tokens. */
  noTokenFile?: boolean;
  /** The server's web port, for file transfer, when given (else {@linkcode DEFAULT_HTTP_PORT}). */
  httpPort?: number;
}

/**
 * Parses `client` arguments; `undefined` when help was asked for. Accepts `HOST [PORT]`, and
 * `PORT HOST` when the first argument is a number.
 *
 * @throws {UsageError} on a missing host, a bad port, an extra argument, or flags that
 * contradict each other
 */
export function parseClientArgs(args: string[]): ClientArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      "password-stdin": { type: "boolean" },
      "server-password-stdin": { type: "boolean" },
      room: { type: "string" },
      tls: { type: "boolean" },
      ca: { type: "string", multiple: true },
      insecure: { type: "boolean" },
      "http-port": { type: "string" },
      "no-token-file": { type: "boolean" },
      "no-color": { type: "boolean" },
      bell: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  if (positionals.length > 2) throw new UsageError(`unexpected argument ${quote(positionals[2]!)}`);
  let [host, port] = positionals;
  if (host !== undefined && /^\d+$/.test(host)) {
    if (port === undefined) throw new UsageError(`Missing HOST: use client HOST [PORT]`);
    [host, port] = [port, host];
  }
  if (host === undefined || host === "") {
    throw new UsageError("Missing HOST: use client HOST [PORT]");
  }
  if (values["password-stdin"] && values.name === undefined) {
    throw new UsageError("--password-stdin needs --name NAME");
  }
  if (values.insecure && values.ca !== undefined) {
    throw new UsageError("--insecure and --ca contradict each other: --ca verifies");
  }
  const tls = values.tls === true || values.ca !== undefined || values.insecure === true;
  const parsed: ClientArgs = {
    host,
    port: intFlag(port, "PORT", tls ? DEFAULT_CLIENT_TLS_PORT : DEFAULT_CLIENT_PORT, 1, 65535),
    color: !values["no-color"],
  };
  if (values.name !== undefined) parsed.name = values.name;
  if (values["password-stdin"]) parsed.passwordStdin = true;
  if (values["server-password-stdin"]) parsed.serverPasswordStdin = true;
  if (values.room !== undefined) parsed.room = values.room;
  if (values.bell) parsed.bell = true;
  if (tls) parsed.tls = true;
  if (values.ca !== undefined) parsed.ca = values.ca;
  if (values.insecure) parsed.insecure = true;
  if (values["no-token-file"]) parsed.noTokenFile = true;
  if (values["http-port"] !== undefined) {
    parsed.httpPort = intFlag(values["http-port"], "http-port", DEFAULT_HTTP_PORT, 1, 65535);
  }
  return parsed;
}

/**
 * Reads `--ca` files: each must hold at least one PEM certificate.
 *
 * @returns the PEM texts, or a one-line reason
 */
async function readCaFiles(files: string[]): Promise<string[] | string> {
  const certs: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      return `cannot read --ca ${file}: ${error instanceof Error ? error.message : error}`;
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      return `cannot use --ca ${file}: it holds no PEM certificate (-----BEGIN CERTIFICATE-----)`;
    }
    certs.push(text);
  }
  return certs;
}

/** The one line explaining why the TLS certificate was refused, with what to do about it. */
function tlsReason(error: TlsVerificationError, usedCa: boolean): string {
  switch (error.problem) {
    case "unknown_issuer":
      return `${error.message}${
        usedCa
          ? " (not by --ca either)"
          : "; for a private CA or a self-signed certificate use --ca FILE"
      }`;
    default:
      return error.message;
  }
}

/**
 * Whether this process may read and write the token folder without asking: Deno would
 * otherwise prompt on the terminal in the middle of the chat (or fail when not interactive).
 */
function mayUse(dir: string): boolean {
  const granted = (descriptor: Deno.PermissionDescriptor) => {
    try {
      return Deno.permissions.querySync(descriptor).state === "granted";
    } catch {
      return false;
    }
  };
  return granted({ name: "read", path: dir }) && granted({ name: "write", path: dir });
}

/** Whether to color output: stdout is a terminal, NO_COLOR is unset or empty, no --no-color. */
function useColor(allowed: boolean): boolean {
  return allowed && Deno.stdout.isTerminal() && (Deno.env.get("NO_COLOR") ?? "") === "";
}

/** Runs `parley client`; resolves to the exit code. */
export async function clientMain(args: string[]): Promise<number> {
  const parsed = parseClientArgs(args);
  if (parsed === undefined) {
    console.log(CLIENT_USAGE);
    return 0;
  }
  const { host, port } = parsed;
  const options: ChatClientOptions = {
    clientName: `parley-cli/${VERSION}`,
  };
  // Without --http-port, the web port (and its scheme) comes from the server's welcome.
  if (parsed.httpPort !== undefined) options.httpPort = parsed.httpPort;
  if (parsed.tls) options.tls = true;
  if (parsed.ca !== undefined) {
    const certs = await readCaFiles(parsed.ca);
    if (typeof certs === "string") {
      console.error(`parley client: ${certs}`);
      return 2;
    }
    options.caCerts = certs;
  }
  if (parsed.insecure) {
    options.insecure = true;
    console.error(INSECURE_WARNING);
  }
  // Tokens and the password first: the first hello logs in with them, so the session never
  // shows as a guest before it is the account.
  const dir = parsed.noTokenFile ? undefined : TokenStore.defaultDir();
  const tokens = dir !== undefined && mayUse(dir) ? new TokenStore(dir) : undefined;
  let client: ChatClient | undefined;
  let interrupts = 0;
  const interrupt = () => {
    if (++interrupts > 1 || client === undefined) {
      io.close(); // a second Ctrl-C does not wait (nor one while connecting)
      Deno.exit(130);
    }
    void client.quit();
  };
  const io = openConsole({ onInterrupt: interrupt });
  const serverPassword = parsed.serverPasswordStdin
    ? await io.readSecret("Server password: ")
    : serverPasswordFromEnv();
  if (serverPassword !== undefined && serverPassword !== "") {
    options.serverPassword = serverPassword;
  }
  let password: string | undefined;
  if (parsed.passwordStdin) password = await io.readSecret(`Password for ${parsed.name}: `);
  const token = parsed.name === undefined
    ? undefined
    : await tokens?.get(`${host}:${port}`, parsed.name).catch(() => undefined);
  if (token !== undefined) options.login = { token };
  else if (password !== undefined && password !== "") {
    options.login = { name: parsed.name!, password };
  }
  try {
    client = await connectAsking(host, port, options, (wrong) =>
      // At a terminal, a server that wants its password gets it asked for (echo off).
      parsed.serverPasswordStdin || !Deno.stdin.isTerminal()
        ? Promise.resolve(undefined)
        : io.readSecret(wrong ? "Wrong server password. Server password: " : "Server password: "));
  } catch (error) {
    io.close();
    const why = error instanceof ServerError && error.need === "serverPassword"
      ? `the server refused the session: ${
        options.serverPassword === undefined
          ? "it needs its password (--server-password-stdin or PARLEY_SERVER_PASSWORD)"
          : "wrong server password"
      }`
      : error instanceof SessionRefusedError
      ? `the server refused the session: ${error.message}`
      : error instanceof TlsVerificationError
      ? `cannot connect to ${host}:${port}: ${tlsReason(error, parsed.ca !== undefined)}`
      : `cannot connect to ${host}:${port}: ${error instanceof Error ? error.message : error}`;
    console.error(`parley client: ${why}`);
    return 1;
  }

  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, interrupt);
  try {
    const session: TerminalOptions = {
      format: new Formatter(useColor(parsed.color), Date.now, { bell: parsed.bell ?? false }),
    };
    if (parsed.name !== undefined) session.name = parsed.name;
    if (parsed.passwordStdin) {
      session.passwordFromInput = true;
      if (password !== undefined) session.password = password;
    }
    if (parsed.room !== undefined) session.room = parsed.room;
    if (tokens !== undefined) session.tokens = tokens;
    else if (dir !== undefined) {
      session.note = `Session tokens are not kept: no permission to read and write ${dir}`;
    }
    return await runTerminal(client, io, session);
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, interrupt);
    io.close();
    await client.close();
  }
}

/** The environment variable holding the server's password for `parley client`. */
export const SERVER_PASSWORD_ENV = "PARLEY_SERVER_PASSWORD";

/**
 * `PARLEY_SERVER_PASSWORD`, when it is set and the client may read it (without asking for the
 * permission: a client run without `--allow-env=PARLEY_SERVER_PASSWORD` has none).
 */
function serverPasswordFromEnv(): string | undefined {
  const granted = Deno.permissions.querySync({ name: "env", variable: SERVER_PASSWORD_ENV });
  if (granted.state !== "granted") return undefined;
  return Deno.env.get(SERVER_PASSWORD_ENV);
}

/**
 * Connects; when the server wants its password (none given, or a wrong one), asks `ask` for it
 * and tries again, up to three times; `ask` resolving to undefined or "" gives up.
 */
async function connectAsking(
  host: string,
  port: number,
  options: ChatClientOptions,
  ask: (wrong: boolean) => Promise<string | undefined>,
): Promise<ChatClient> {
  for (let tries = 0;; tries++) {
    try {
      return await ChatClient.connect(host, port, options);
    } catch (error) {
      if (!(error instanceof ServerError) || error.need !== "serverPassword" || tries >= 3) {
        throw error;
      }
      const given = await ask(options.serverPassword !== undefined);
      if (given === undefined || given === "") throw error;
      options.serverPassword = given;
    }
  }
}
