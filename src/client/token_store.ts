/**
 * {@linkcode TokenStore}: session tokens kept on disk, per server and account, so a client can
 * log in again without the password. One JSON file, readable by its owner only.
 *
 * @module
 */

import { nameKey } from "../protocol/names.ts";

/** The file's shape (version 1). */
interface TokenFile {
  version: 1;
  /** `host:port` → case-folded account name → token. */
  servers: Record<string, Record<string, string>>;
}

const FILE_NAME = "tokens.json";

/**
 * The session tokens of one user, in `DIR/tokens.json` (mode 0600, in a 0700 directory), keyed
 * by server (`host:port`) and account name (case-insensitive). Every change rewrites the file
 * through a temporary file and a rename, so a crash never leaves half a file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TokenStore } from "./token_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = new TokenStore(`${dir}/parley`);
 * await store.set("127.0.0.1:5000", "Alice", "t0k3n");
 * assert.equal(await store.get("127.0.0.1:5000", "alice"), "t0k3n");
 * await store.delete("127.0.0.1:5000", "alice");
 * assert.equal(await store.get("127.0.0.1:5000", "alice"), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class TokenStore {
  /** The directory holding `tokens.json`. */
  readonly dir: string;
  /** The file's path. */
  readonly path: string;

  /** @param dir the directory for `tokens.json`; created (0700) on the first save */
  constructor(dir: string) {
    this.dir = dir;
    this.path = `${dir}/${FILE_NAME}`;
  }

  /**
   * The default directory: `$XDG_CONFIG_HOME/parley`, else `$HOME/.config/parley`, else (Windows)
   * `%APPDATA%\parley`; undefined when none of these is set (or readable).
   *
   * @param env where to read variables @default Deno.env
   */
  static defaultDir(env: { get(key: string): string | undefined } = Deno.env): string | undefined {
    const read = (key: string) => {
      try {
        const value = env.get(key);
        return value === undefined || value === "" ? undefined : value;
      } catch {
        return undefined; // no permission to read it: as if unset
      }
    };
    const xdg = read("XDG_CONFIG_HOME");
    if (xdg !== undefined) return `${xdg}/parley`;
    const home = read("HOME");
    if (home !== undefined) return `${home}/.config/parley`;
    const appData = Deno.build.os === "windows" ? read("APPDATA") : undefined;
    return appData === undefined ? undefined : `${appData}\\parley`;
  }

  /**
   * The saved token for `name` on `server`, if any.
   *
   * @param server the server as `host:port`
   * @param name the account name (any case)
   * @throws {SyntaxError} when the file is not a token file
   */
  async get(server: string, name: string): Promise<string | undefined> {
    const file = await this.#load();
    return file.servers[server]?.[nameKey(name)];
  }

  /**
   * Saves the token for `name` on `server`, replacing an earlier one.
   *
   * @param server the server as `host:port`
   * @param name the account name (any case)
   * @param token the session token
   */
  async set(server: string, name: string, token: string): Promise<void> {
    const file = await this.#load();
    (file.servers[server] ??= {})[nameKey(name)] = token;
    await this.#save(file);
  }

  /**
   * Forgets the token for `name` on `server`.
   *
   * @returns whether there was one
   */
  async delete(server: string, name: string): Promise<boolean> {
    const file = await this.#load();
    const tokens = file.servers[server];
    const key = nameKey(name);
    if (tokens === undefined || !(key in tokens)) return false;
    delete tokens[key];
    if (Object.keys(tokens).length === 0) delete file.servers[server];
    await this.#save(file);
    return true;
  }

  async #load(): Promise<TokenFile> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return { version: 1, servers: {} };
      throw error;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new SyntaxError(`Cannot read ${this.path}: it is not JSON`, { cause: error });
    }
    const file = value as Partial<TokenFile> | null;
    if (typeof file !== "object" || file === null || typeof file.servers !== "object") {
      throw new SyntaxError(`Cannot read ${this.path}: it is not a parley token file`);
    }
    return { version: 1, servers: file.servers ?? {} };
  }

  async #save(file: TokenFile): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (Deno.build.os !== "windows") {
      const { mode } = await Deno.stat(this.dir);
      if (mode !== null && (mode & 0o077) !== 0) await Deno.chmod(this.dir, 0o700);
    }
    const random = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16);
    const temp = `${this.path}.${random}.tmp`;
    try {
      await Deno.writeTextFile(temp, JSON.stringify(file, null, 2) + "\n", {
        mode: 0o600,
        createNew: true,
      });
      await Deno.rename(temp, this.path);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
  }
}
