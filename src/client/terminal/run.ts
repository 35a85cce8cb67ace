/**
 * The terminal client's loop, a thin layer on {@linkcode ChatClient}: typed lines are parsed
 * with the server's own text-mode grammar and sent as JSON frames one after another (each
 * waits for its reply, so what was typed goes out in order), while events print concurrently.
 * Session tokens from logins are kept in a {@linkcode TokenStore} when one is given.
 *
 * @module
 */

import { ChatError } from "../../protocol/errors.ts";
import { nameKey } from "../../protocol/names.ts";
import { parseTextLine, TEXT_HELP } from "../../protocol/text_mode.ts";
import type { ChatClient } from "../chat_client.ts";
import { exchange } from "../core/frames.ts";
import type { Reply, RequestFrame } from "../core/frames.ts";
import type { ChatEvent } from "../events.ts";
import { ConnectionClosedError, ServerError } from "../errors.ts";
import type { TokenStore } from "../token_store.ts";
import type { Formatter } from "./format.ts";
import type { TerminalIO } from "./console.ts";
import { complete, SeenIds } from "./complete.ts";
import { KnownMessages, TYPING_SHOWN_MS, typingTarget, Typists } from "./known.ts";
import { FILE_HELP, parseFileCommand } from "./file_commands.ts";
import type { FileCommand } from "./file_commands.ts";
import { isReadableFile, runFileCommand } from "./transfers.ts";

/** What the terminal session needs besides the client and the I/O. */
export interface TerminalOptions {
  /** Formats output lines. */
  format: Formatter;
  /**
   * An account or a name to take at start (`--name`): logged in with a saved token or the
   * password, else taken as a guest name (see {@linkcode runTerminal}).
   */
  name?: string;
  /** A room to join and make current at start (`--room`). */
  room?: string;
  /** The first input line is the password for `name` (`--password-stdin`). */
  passwordFromInput?: boolean;
  /**
   * With `passwordFromInput`: the password, when it was read already (to log in with the first
   * `hello`, see {@linkcode ChatClient.helloLogin}).
   */
  password?: string;
  /** Where session tokens are kept; without it none are used or saved. */
  tokens?: TokenStore;
  /** A notice shown after the first line when `name` is given (e.g. why tokens are not kept). */
  note?: string;
}

/** The server's `/help`, with the client's file commands before its `/help` line. */
const HELP: readonly string[] = (() => {
  const at = TEXT_HELP.findIndex((line) => line.startsWith("  /help"));
  return at < 0
    ? [...TEXT_HELP, ...FILE_HELP]
    : [...TEXT_HELP.slice(0, at), ...FILE_HELP, ...TEXT_HELP.slice(at)];
})();

/** The command words Tab completes: every `/word` the help names. */
const COMMANDS: readonly string[] = [
  ...new Set(HELP.flatMap((line) => [...line.matchAll(/(?<![\w/])\/[a-z]+/g)].map((m) => m[0]))),
];

/** Where a message is, with its id: the key history is deduplicated by. */
const messageKey = (m: { id: number; room?: string; from: string; to?: string }): string =>
  m.room !== undefined ? `${nameKey(m.room)}:${m.id}` : `dm:${m.id}`;

/** `typing` is sent at most this often per conversation (the server passes on no more). */
export const TYPING_EVERY_MS = 3000;

/** How long after a message is shown its conversation is marked read (one `read` for a burst). */
const READ_DELAY_MS = 500;

/** Requests whose reply the server follows with `history` (and offline DM) frames. */
const REPLAYING = new Set<RequestFrame["type"]>(["join", "login", "register"]);

/**
 * Runs the terminal session until the user quits (a quit word, `/quit`, end of input, or
 * {@linkcode ChatClient.quit} from a signal handler) or the client closes for good.
 *
 * With `name`, the session starts by taking it: first with the session token saved for this
 * server and name, if any (one the server refuses with `auth_failed` is forgotten); then with
 * the password when `passwordFromInput` (a refusal is fatal); otherwise as a guest `nick`. At
 * a terminal, when the nick is refused (`name_taken`: someone, or an account, has it), the
 * user is asked for the account's password, without echo (Enter skips).
 *
 * @returns the exit code: 0 after a clean quit; 1 when the connection was lost for good, the
 * login with `passwordFromInput` failed, or, when not interactive, some typed lines could not
 * be delivered
 */
export async function runTerminal(
  client: ChatClient,
  io: TerminalIO,
  options: TerminalOptions,
): Promise<number> {
  const fmt = options.format;
  const server = `${client.hostname}:${client.port}`;
  let current: string | undefined = client.joinedRooms.at(-1);
  let undelivered = 0;
  let loggedOut = false;
  let failed = false;
  const isIn = (room: string | undefined) =>
    room !== undefined && client.joinedRooms.some((r) => nameKey(r) === nameKey(room));
  const show = (lines: { text: string; error: boolean }[]) => lines.forEach((l) => io.print(l));

  // The status line above the prompt: a transfer's progress bar, and who is typing.
  let transferStatus: string | undefined;
  let typingStatus = "";
  const renderStatus = () => {
    const rows = [transferStatus, typingStatus === "" ? undefined : fmt.status(typingStatus)]
      .filter((r) => r !== undefined);
    io.status(rows.length === 0 ? undefined : rows.join("\n"));
  };
  /** The console as file transfers see it: their progress bar is one row of the status line. */
  const transferIO: TerminalIO = {
    get interactive() {
      return io.interactive;
    },
    lines: () => io.lines(),
    readSecret: (prompt) => io.readSecret(prompt),
    print: (line) => io.print(line),
    setPrompt: (prompt) => io.setPrompt(prompt),
    setCompleter: (completer) => io.setCompleter(completer),
    status: (text) => {
      transferStatus = text;
      renderStatus();
    },
    onDraft: (listener) => io.onDraft(listener),
    close: () => io.close(),
  };

  /** Who is typing (from `typing` events), shown until {@linkcode TYPING_SHOWN_MS} after. */
  const typists = new Typists();
  let typingTimer: ReturnType<typeof setTimeout> | undefined;
  const refreshTyping = () => {
    clearTimeout(typingTimer);
    typingTimer = undefined;
    const now = Date.now();
    const next = typists.expire(now);
    const line = typists.line(current, now);
    if (line !== typingStatus) {
      typingStatus = line;
      renderStatus();
    }
    if (next !== undefined && client.state !== "closed") {
      typingTimer = setTimeout(refreshTyping, Math.max(0, next - now) + 10);
    }
  };
  /** Keeps {@linkcode typists} in step with an event. */
  const followTyping = (event: ChatEvent): void => {
    if (event.type === "typing") {
      if (nameKey(event.name) === nameKey(client.name)) return;
      typists.add(
        event.name,
        "room" in event ? event.room : undefined,
        Date.now() + TYPING_SHOWN_MS,
      );
    } else if (event.type === "message") {
      // Their message arrived: they are done typing it.
      if (event.room !== undefined) typists.remove(event.from, event.room);
      else typists.remove(event.from, undefined, true);
    } else if (event.type === "presence") {
      if (event.event === "left" && event.room !== undefined) {
        typists.remove(event.name, event.room);
      } else if (event.event !== "joined") typists.remove(event.name);
    } else {
      return;
    }
    refreshTyping();
  };

  /** When `typing` was last sent, per conversation. */
  const typingSent = new Map<string, number>();
  io.onDraft((draft) => {
    const where = typingTarget(draft, current);
    if (where === undefined || !client.connected || client.name === "") return;
    if ("to" in where && nameKey(where.to) === nameKey(client.name)) return;
    const key = "room" in where ? `#${nameKey(where.room)}` : `@${nameKey(where.to)}`;
    const now = Date.now();
    if (now - (typingSent.get(key) ?? -Infinity) < TYPING_EVERY_MS) return;
    typingSent.set(key, now);
    client.request({ type: "typing", ...where }).catch(() => {}); // a hint: failures do not matter
  });

  const prompt = () => {
    io.setPrompt(`${current ?? "(no room)"}> `);
    refreshTyping(); // who is typing depends on the current room
  };

  /** Messages shown, for the line a reply quotes. */
  const known = new KnownMessages();
  fmt.quoteWith((id) => known.quote(id));

  /**
   * Read markers (accounts): a conversation is marked read up to the latest message shown in
   * it, shortly after (one `read` for a burst), so that the account's other devices agree.
   */
  const readAt = new Map<string, { place: { room: string } | { with: string }; id: number }>();
  const readSent = new Map<string, number>();
  let readTimer: ReturnType<typeof setTimeout> | undefined;
  const flushRead = () => {
    readTimer = undefined;
    if (client.state === "reconnecting") {
      readTimer = setTimeout(flushRead, READ_DELAY_MS); // kept for when the session is back
      return;
    }
    const due = [...readAt.entries()];
    readAt.clear();
    if (!client.connected || client.token === undefined) return;
    for (const [key, { place, id }] of due) {
      readSent.set(key, Math.max(readSent.get(key) ?? 0, id));
      client.request({ type: "read", ...place, id }).catch(() => readSent.delete(key));
    }
  };
  const shown = (m: { id: number; room?: string; from: string; to?: string }) => {
    if (client.token === undefined) return; // guests have no read markers
    const other = nameKey(m.from) === nameKey(client.name) ? m.to : m.from;
    if (m.room === undefined && other === undefined) return;
    const place = m.room !== undefined ? { room: m.room } : { with: other! };
    const key = m.room !== undefined ? `#${nameKey(m.room)}` : `@${nameKey(other!)}`;
    const at = Math.max(readAt.get(key)?.id ?? 0, readSent.get(key) ?? 0);
    if (m.id <= at) return;
    readAt.set(key, { place, id: m.id });
    readTimer ??= setTimeout(flushRead, READ_DELAY_MS);
  };

  /** The members of each room (by key) as far as this session saw them, for Tab. */
  const members = new Map<string, Set<string>>();
  /** Rooms seen in `/rooms`, for Tab. */
  const knownRooms = new Set<string>();
  /** Messages already shown: history replayed on a reconnect or a re-join shows only new ones. */
  const seen = new SeenIds();
  io.setCompleter((line) =>
    complete(line, {
      commands: COMMANDS,
      rooms: [...client.joinedRooms, ...knownRooms],
      names: current === undefined
        ? []
        : [...members.get(nameKey(current)) ?? []].filter((n) => n !== client.name),
    })
  );
  /** Keeps {@linkcode members} in step with an event. */
  const track = (event: ChatEvent): void => {
    if (event.type === "presence") {
      const { room, name, newName } = event;
      if (event.event === "joined" && room !== undefined) {
        members.set(nameKey(room), (members.get(nameKey(room)) ?? new Set<string>()).add(name));
        return;
      }
      const sets = event.event === "left" && room !== undefined
        ? [members.get(nameKey(room))]
        : [...members.values()];
      for (const set of sets) {
        if (set?.delete(name) && event.event === "renamed" && newName !== undefined) {
          set.add(newName);
        }
      }
    } else if (event.type === "message" && event.room !== undefined) {
      members.get(nameKey(event.room))?.add(event.from);
    }
  };

  // Events wait while the session starts and while a request that replays history is out, so
  // that "Logged in as…" or "You joined…" comes before the history it brings.
  let holds = 0;
  let resume: PromiseWithResolvers<void> | undefined;
  const hold = (): () => void => {
    holds++;
    resume ??= Promise.withResolvers();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--holds === 0) {
        resume?.resolve();
        resume = undefined;
      }
    };
  };

  /** Token file writes under way: the session waits for them before it ends. */
  const writes = new Set<Promise<unknown>>();
  /** Runs a token store operation; a failure is shown, not fatal. */
  const tokenStore = <T>(
    what: string,
    op: (store: TokenStore) => Promise<T>,
  ): Promise<T | undefined> => {
    const store = options.tokens;
    if (store === undefined) return Promise.resolve(undefined);
    const done = op(store).catch((error) => {
      const why = error instanceof Error ? error.message : String(error);
      show([fmt.error(`Cannot ${what} the session token (${store.path}): ${why}`)]);
      return undefined;
    });
    writes.add(done);
    done.finally(() => writes.delete(done));
    return done;
  };

  const transport = client.insecure ? ", TLS NOT VERIFIED" : client.tls ? ", TLS" : "";
  show([
    fmt.info(
      `Connected to ${server} (${client.server?.server} ${client.server?.version}${transport}) ` +
        (client.name === ""
          ? "; log in to start"
          : `as ${client.name}, in ${client.joinedRooms.join(", ")}`),
    ),
  ]);
  if (io.interactive) show([fmt.info("Type /help for commands, /quit to leave")]);
  if (options.note !== undefined && options.name !== undefined) show([fmt.info(options.note)]);
  prompt();

  /**
   * Sends one frame and shows the reply; keeps the current room and the saved token in step.
   *
   * @throws {ServerError} when the server refuses it
   * @throws {ConnectionClosedError} when it could not be delivered
   */
  const perform = async (frame: RequestFrame): Promise<Reply> => {
    await client.whenConnected();
    const name = client.name;
    const release = REPLAYING.has(frame.type) ? hold() : undefined;
    try {
      const reply = await client.request(frame);
      const ex = exchange(frame, reply);
      if (ex.type === "history") {
        for (const m of ex.reply.messages) known.remember(m);
      } else if (ex.type === "search") {
        for (const m of ex.reply.messages) known.remember(m);
      }
      show(fmt.reply(ex, name, ex.type === "voice_who" ? client.httpBase : undefined));
      if (ex.type === "join" || ex.type === "who") {
        members.set(nameKey(ex.reply.room), new Set(ex.reply.members));
      } else if (ex.type === "rooms") {
        for (const r of ex.reply.rooms) knownRooms.add(r.name);
      } else if (ex.type === "send" && typeof ex.reply.id === "number") {
        const { room, to, text } = ex.frame;
        const sent = {
          id: ex.reply.id,
          from: name,
          text,
          ...room === undefined ? {} : { room },
          ...to === undefined ? {} : { to },
        };
        seen.add(messageKey(sent));
        known.remember(sent);
        shown(sent);
      } else if (ex.type === "history") {
        for (const m of ex.reply.messages) seen.add(messageKey(m));
      }
      if ((ex.type === "login" && ex.frame.token === undefined) || ex.type === "register") {
        const { name, token } = ex.reply;
        await tokenStore("save", (s) => s.set(server, name, token));
      }
      if (frame.type === "logout") {
        loggedOut = true;
        await tokenStore("remove", (s) => s.delete(server, name));
      }
      if (ex.type === "join") {
        current = ex.reply.room;
      } else if (!isIn(current)) {
        // Left the current room (or logging in changed the rooms): the latest joined is current.
        const left = current;
        current = client.joinedRooms.at(-1);
        if (frame.type === "part" && left !== undefined) {
          show([fmt.info(current ? `Current room: ${current}` : "You are in no room; /join one")]);
        }
      }
      prompt();
      return reply;
    } finally {
      release?.();
    }
  };

  /** Like {@linkcode perform}, showing a refusal instead of throwing it; whether it worked. */
  const execute = async (frame: RequestFrame, refusal = ""): Promise<boolean> => {
    try {
      await perform(frame);
      return true;
    } catch (error) {
      if (error instanceof ServerError) {
        show([fmt.error(refusal + error.message)]);
      } else if (error instanceof ConnectionClosedError) {
        undelivered++;
        show([fmt.error(`Not sent: ${error.message}`)]);
      } else {
        throw error;
      }
      return false;
    }
  };

  /**
   * File transfers. At a terminal they run in the background, one after another, so the chat
   * goes on meanwhile (and quitting interrupts them); piped, each finishes before the next line
   * is read, like every other line.
   */
  let transfers: Promise<void> = Promise.resolve();
  const transfer = async (command: FileCommand): Promise<void> => {
    if (client.state === "closed") return; // quit while it waited its turn
    try {
      await runFileCommand({ client, io: transferIO, format: fmt, show }, command);
    } catch (error) {
      if (error instanceof ConnectionClosedError) {
        undelivered++;
        show([fmt.error(`Not sent: ${error.message}`)]);
      } else {
        show([fmt.error(error instanceof Error ? error.message : String(error))]);
      }
    }
  };

  /** Takes `name` at start (see the function's description); false when that failed fatally. */
  const takeName = async (name: string): Promise<boolean> => {
    let password: string | undefined;
    if (options.passwordFromInput) {
      password = options.password ?? await io.readSecret(`Password for ${name}: `);
      if (password === undefined || password === "") {
        show([fmt.error(`Cannot log in as ${name}: no password on the first line of input`)]);
        return false;
      }
    }
    /** A saved token was refused: forget it. */
    const refusedToken = async (error: ServerError) => {
      if (error.code === "auth_failed") {
        await tokenStore("remove", (s) => s.delete(server, name));
        show([fmt.error(`The saved session for ${name} has expired or was revoked`)]);
      } else {
        show([fmt.error(error.message)]);
      }
    };
    // The first hello may have logged in already (with the saved token, else the password).
    const early = client.helloLogin;
    if (early !== undefined && !(early.result instanceof ServerError)) {
      const login = early.result;
      const frame: RequestFrame = early.by === "token"
        ? { type: "login", token: login.token }
        : { type: "login", name, password: password ?? "" };
      show(fmt.reply(exchange(frame, { type: "ack", ...login }), name));
      if (early.by === "password") {
        await tokenStore("save", (s) => s.set(server, login.name, login.token));
      }
      return true;
    }
    if (early?.by === "token") {
      await refusedToken(early.result as ServerError);
    } else if (early?.by === "password") {
      show([fmt.error(`Cannot log in as ${name}: ${(early.result as ServerError).message}`)]);
      return false;
    } else {
      const token = await tokenStore("read", (s) => s.get(server, name));
      if (token !== undefined) {
        try {
          await perform({ type: "login", token });
          return true;
        } catch (error) {
          if (!(error instanceof ServerError)) throw error;
          await refusedToken(error);
        }
      }
    }
    if (password !== undefined) {
      return await execute({ type: "login", name, password }, `Cannot log in as ${name}: `);
    }
    try {
      await perform({ type: "nick", name });
      return true;
    } catch (error) {
      if (!(error instanceof ServerError)) throw error;
      show([fmt.error(error.message)]);
      if (!io.interactive || !["name_taken", "login_required"].includes(error.code)) return true;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const typed = await io.readSecret(
        `Password for ${name}, if it is your account (Enter to skip): `,
      );
      if (typed === undefined || typed === "") return true;
      try {
        await perform({ type: "login", name, password: typed });
        return true;
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
        show([fmt.error(error.message)]);
        if (error.code !== "auth_failed") return true;
      }
    }
    return true;
  };

  const starting = hold();
  const printing = (async () => {
    for await (const event of client) {
      while (resume !== undefined) await resume.promise;
      track(event);
      followTyping(event);
      if (event.type === "message") {
        if (!seen.add(messageKey(event))) continue;
        known.remember(event);
        show(fmt.event(event, client.name));
        shown(event);
      } else if (event.type === "history") {
        for (const m of event.messages) known.remember(m);
        // Replayed on a (re-)join: what was shown already is not shown again.
        const fresh = event.messages.filter((m) => seen.add(messageKey(m)));
        if (fresh.length > 0 || event.messages.length === 0) {
          show(fmt.history({ ...event, messages: fresh }, client.name));
        }
        const last = fresh.at(-1);
        if (last !== undefined) shown(last);
      } else {
        if (event.type === "edited") known.edited(event.id, event.text);
        else if (event.type === "deleted") known.deleted(event.id);
        show(fmt.event(event, client.name));
      }
      if (event.type === "moderation" && current !== undefined && !isIn(current)) {
        // Kicked or banned from the current room (the client dropped it): the latest joined
        // room is current now.
        current = client.joinedRooms.at(-1);
        show([fmt.info(current ? `Current room: ${current}` : "You are in no room; /join one")]);
        prompt();
      }
      if (event.type === "reconnected") {
        if (event.lostSession === "auth_failed" && event.lostName !== undefined) {
          const lost = event.lostName;
          await tokenStore("remove", (s) => s.delete(server, lost));
        }
        if (!isIn(current)) current = client.joinedRooms.at(-1);
        prompt();
      }
    }
  })();

  /** Reads typed lines until a quit or the end of input; resolves with the quit reason. */
  const reading = (async (): Promise<string | undefined> => {
    try {
      if (options.name !== undefined && !(await takeName(options.name))) {
        failed = true;
        return undefined;
      }
      if (options.room !== undefined) {
        await execute({
          type: "join",
          room: options.room.startsWith("#") ? options.room : `#${options.room}`,
        });
      }
    } catch (error) {
      if (!(error instanceof ConnectionClosedError)) throw error;
      undelivered++;
      show([fmt.error(`Not sent: ${error.message}`)]);
    } finally {
      starting();
    }
    prompt();
    for await (const line of io.lines()) {
      if (client.state === "closed") break;
      let command;
      try {
        const file = parseFileCommand(line, current, isReadableFile);
        if (file !== undefined) {
          if (io.interactive) {
            transfers = transfers.then(() => transfer(file));
          } else {
            await transfer(file);
          }
          continue;
        }
        command = parseTextLine(line, current);
      } catch (error) {
        if (!(error instanceof ChatError)) throw error;
        show([fmt.error(error.message)]);
        continue;
      }
      if (command === undefined) continue;
      if (command.type === "help") {
        show(HELP.map((text) => fmt.info(text)));
        continue;
      }
      if (command.type === "quit") return command.reason;
      if (command.type === "pong") continue; // answers nothing; the client pongs by itself
      if (
        command.type === "send" && command.replyTo !== undefined && command.room === undefined &&
        command.to === undefined
      ) {
        // A reply goes where the message it answers is: say where, when known, to show it there.
        const place = known.place(command.replyTo);
        if (place !== undefined && "room" in place) command.room = place.room;
        else if (place !== undefined) {
          command.to = nameKey(place.from) === nameKey(client.name) ? place.to : place.from;
        }
      }
      await execute(command);
      if (loggedOut) return undefined; // the server ends the connection after a logout
    }
    return undefined;
  })();

  reading.then(
    (reason) => client.quit(reason),
    (error) => {
      show([fmt.error(`Input failed: ${error instanceof Error ? error.message : error}`)]);
      return client.quit();
    },
  );
  const reason = await client.closed;
  clearTimeout(typingTimer);
  clearTimeout(readTimer);
  await printing;
  clearTimeout(typingTimer);
  clearTimeout(readTimer);
  await transfers;
  await Promise.all(writes);
  if (reason === "quit") {
    if (io.interactive && !loggedOut && !failed) show([fmt.info(`Goodbye, ${client.name}`)]);
    io.close();
    if (failed) return 1;
    if (!io.interactive && undelivered > 0) {
      show([fmt.error(`${undelivered} typed line(s) were not delivered`)]);
      return 1;
    }
    return 0;
  }
  io.close();
  show([fmt.error(`Connection lost: ${reason}`)]);
  return 1;
}
