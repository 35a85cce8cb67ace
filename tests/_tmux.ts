/**
 * The terminal client in a real pseudo-terminal: a detached tmux session of a given size on a
 * private tmux socket, driven with `send-keys` and read with `capture-pane`.
 *
 * @module
 */

import { clientPermissions, MAIN } from "./_helpers.ts";

/** Whether tmux can be run here. */
export const HAVE_TMUX: boolean = (() => {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** A test that needs tmux: skipped (ignored) without it. */
export function tmuxTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !HAVE_TMUX, sanitizeResources: false, sanitizeOps: false, fn });
}

/** A terminal client running in a tmux pane. */
export class TmuxClient implements AsyncDisposable {
  readonly socket: string;
  readonly config: string;
  readonly columns: number;

  private constructor(socket: string, config: string, columns: number) {
    this.socket = socket;
    this.config = config;
    this.columns = columns;
  }

  /**
   * Starts `main.ts client 127.0.0.1 PORT …args` in a `columns`×`rows` pane and waits for its
   * prompt (a line ending in `> `).
   */
  static async start(
    port: number,
    args: string[],
    options: {
      columns?: number;
      rows?: number;
      env?: Record<string, string>;
      /** Prepares the client's config folder (its `XDG_CONFIG_HOME`) before it starts. */
      setup?: (config: string) => Promise<void>;
      /** Where to copy everything the client writes to its terminal, bytes as they are. */
      record?: string;
    } = {},
  ): Promise<TmuxClient> {
    const config = await Deno.makeTempDir({ prefix: "parley-tmux-" });
    await options.setup?.(config);
    const c = await TmuxClient.run(
      [Deno.execPath(), "run", ...clientPermissions(config), MAIN, "client", "127.0.0.1"].concat(
        String(port),
        ...args,
      ),
      { ...options, config, env: { NO_COLOR: "1", XDG_CONFIG_HOME: config, ...options.env } },
    );
    await c.waitFor((screen) => /> $/m.test(screen), "the prompt");
    return c;
  }

  /**
   * Runs any program (`argv`) in a `columns`×`rows` pane with `env` on a private tmux socket;
   * `config`: a folder of its own, removed when disposed (a fresh one by default); `record`: a
   * file that gets everything the program writes to its terminal. Real IRC clients run this way
   * (tests/irc_clients_test.ts).
   */
  static async run(
    argv: readonly string[],
    options: {
      columns?: number;
      rows?: number;
      env?: Record<string, string>;
      config?: string;
      record?: string;
    } = {},
  ): Promise<TmuxClient> {
    const columns = options.columns ?? 80;
    const config = options.config ?? await Deno.makeTempDir({ prefix: "parley-tmux-" });
    const socket = `parley-test-${crypto.randomUUID().slice(0, 8)}`;
    const command = [
      "env",
      ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ...argv,
    ].map(shellQuote).join(" ");
    const c = new TmuxClient(socket, config, columns);
    // Recording: the pane starts with a pause, for pipe-pane to be in place before the client.
    const record = options.record;
    await c.tmux(
      "new-session",
      "-d",
      "-x",
      String(columns),
      "-y",
      String(options.rows ?? 24),
      "-s",
      "t",
      // Keep the pane after the client exits, so what it printed can still be read.
      `${record === undefined ? "" : "sleep 0.5; "}${command}; sleep 30`,
    );
    if (record !== undefined) {
      await c.tmux("pipe-pane", "-o", "-t", "t", `cat >> ${shellQuote(record)}`);
    }
    return c;
  }

  /** Runs a tmux command on this client's socket; its stdout. */
  async tmux(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
    return new TextDecoder().decode(out.stdout);
  }

  /** Types `text` literally (no key names). */
  async type(text: string): Promise<void> {
    await this.tmux("send-keys", "-t", "t", "-l", text);
  }

  /** Presses keys by tmux name (`Enter`, `Tab`, `C-u`). */
  async keys(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", "-t", "t", ...keys);
  }

  /** The visible screen, one string per row (trailing spaces trimmed). */
  async screen(): Promise<string> {
    return await this.tmux("capture-pane", "-p", "-t", "t");
  }

  /** The visible screen with its colours and styles as escape sequences. */
  async styled(): Promise<string> {
    return await this.tmux("capture-pane", "-p", "-e", "-J", "-t", "t");
  }

  /** The visible screen with rows that wrapped joined back into one line each. */
  async joined(): Promise<string> {
    return await this.tmux("capture-pane", "-p", "-J", "-t", "t");
  }

  /** Waits until `ok(screen)` holds (screen: {@linkcode joined}); throws with the screen. */
  async waitFor(
    ok: (screen: string) => boolean,
    what: string,
    timeoutMs = 10_000,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let screen = "";
    while (Date.now() < deadline) {
      screen = await this.joined();
      if (ok(screen)) return screen;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`Timed out waiting for ${what}; the screen:\n${await this.screen()}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.tmux("kill-server").catch(() => {});
    await Deno.remove(this.config, { recursive: true }).catch(() => {});
  }
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
