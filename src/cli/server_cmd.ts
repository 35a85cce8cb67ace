/**
 * `parley server`: parse flags, start the server, print where it listens, stop cleanly on
 * SIGINT/SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { closeLogging, LOG_FORMATS, LOG_LEVELS, setupLogging } from "../log.ts";
import type { LoggingOptions } from "../log.ts";
import { DEFAULT_CONFIG } from "../server/config.ts";
import type { ServerConfig } from "../server/config.ts";
import { ChatServer } from "../server/server.ts";
import { choiceFlag, intFlag, UsageError } from "./args.ts";

const d = DEFAULT_CONFIG;

/** `server --help`. */
export const SERVER_USAGE = `Usage: parley server [options]

Starts the chat server. Text mode for nc and humans, JSON lines for clients, on one port.

Listening:
  --host HOST              interface to listen on (default ${d.host})
  --port PORT              TCP chat port; 0 picks a free one (default ${d.port})

Limits:
  --max-line BYTES         longest inbound line (default ${d.maxLine})
  --max-text BYTES         longest message text (default ${d.maxText})
  --max-sendq BYTES        queued output per connection before it is cut off (default ${d.maxSendq})
  --max-conns N            connections in total (default ${d.maxConns})
  --max-conns-per-ip N     concurrent connections per IP address (default ${d.maxConnsPerIp})
  --limit-loopback         apply per-IP limits to loopback too (default: loopback is exempt)
  --flood-burst N          lines a connection may send at once (default ${d.floodBurst})
  --flood-rate N           lines per second after the burst; 0 turns it off (default ${d.floodRate})

Logging (on stderr):
  --log-level LEVEL        ${LOG_LEVELS.join("|")} (default info)
  --log-format FORMAT      ${LOG_FORMATS.join("|")} (default text)

  -h, --help               show this help

On start it prints one line per listener: listening on tcp://HOST:PORT
SIGINT or SIGTERM: stop accepting, tell clients, flush (5 s at most), exit 0.`;

/** What `server` flags say: the server's config and the logging options. */
export interface ServerArgs {
  config: ServerConfig;
  logging: LoggingOptions;
}

/** Parses `server` flags; `undefined` when help was asked for. */
export function parseServerArgs(args: string[]): ServerArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      "max-line": { type: "string" },
      "max-text": { type: "string" },
      "max-sendq": { type: "string" },
      "max-conns": { type: "string" },
      "max-conns-per-ip": { type: "string" },
      "limit-loopback": { type: "boolean" },
      "flood-burst": { type: "string" },
      "flood-rate": { type: "string" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`Unexpected argument: ${positionals[0]}`);
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    host: values.host ?? d.host,
    port: intFlag(values.port, "port", d.port, 0, 65535),
    maxLine: intFlag(values["max-line"], "max-line", d.maxLine, 64, 16 * 1024 * 1024),
    maxText: intFlag(values["max-text"], "max-text", d.maxText, 1, 16 * 1024 * 1024),
    maxSendq: intFlag(values["max-sendq"], "max-sendq", d.maxSendq, 1024),
    maxConns: intFlag(values["max-conns"], "max-conns", d.maxConns, 1),
    maxConnsPerIp: intFlag(values["max-conns-per-ip"], "max-conns-per-ip", d.maxConnsPerIp, 1),
    limitLoopback: values["limit-loopback"] ?? d.limitLoopback,
    floodBurst: intFlag(values["flood-burst"], "flood-burst", d.floodBurst, 1),
    floodRate: intFlag(values["flood-rate"], "flood-rate", d.floodRate, 0),
  };
  const logging: LoggingOptions = {
    level: choiceFlag(values["log-level"], "log-level", LOG_LEVELS, "info"),
    format: choiceFlag(values["log-format"], "log-format", LOG_FORMATS, "text"),
  };
  return { config, logging };
}

/** Runs `parley server`; resolves to the exit code. */
export async function serverMain(args: string[]): Promise<number> {
  const parsed = parseServerArgs(args);
  if (parsed === undefined) {
    console.log(SERVER_USAGE);
    return 0;
  }
  const { config, logging } = parsed;
  await setupLogging(logging);
  let server: ChatServer;
  try {
    server = ChatServer.start(config);
  } catch (error) {
    console.error(`parley server: cannot listen on ${config.host}:${config.port}: ${error}`);
    await closeLogging();
    return 1;
  }
  for (const a of server.addresses) {
    console.log(`listening on ${a.scheme}://${a.hostname}:${a.port}`);
  }

  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => stop(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const signal = await stopped;
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  console.log(`received ${signal}, shutting down`);
  await server.shutdown();
  await closeLogging();
  return 0;
}
