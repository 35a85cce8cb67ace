/**
 * The coordinator's side of the workers: spawns worker processes (optionally pinned with
 * `taskset`), sends them commands and matches their replies.
 *
 * @module
 */

import type { Command, Reply } from "./control.ts";
import { cpuSeconds } from "./proc.ts";

const WORKER = new URL("./worker.ts", import.meta.url);
const encoder = new TextEncoder();

/** Options for {@linkcode WorkerPool.spawn}. */
export interface PoolOptions {
  /** How many worker processes. */
  workers: number;
  /** Host the workers may connect to (their only permission). */
  host: string;
  /** CPU list for `taskset -c` (e.g. `"1"`); undefined: not pinned. */
  cpus?: string | undefined;
}

/** Worker processes running (killed on SIGINT by the CLI). */
export const LIVE_WORKERS: Set<Deno.ChildProcess> = new Set();

class WorkerProcess {
  readonly child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly #reading: Promise<void>;
  #nextId = 1;
  #exited = false;

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    LIVE_WORKERS.add(child);
    child.status.then(() => LIVE_WORKERS.delete(child));
    this.#writer = child.stdin.getWriter();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of this.child.stdout.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
          if (line === "") continue;
          const reply = JSON.parse(line) as Reply;
          const waiter = this.#pending.get(reply.id);
          this.#pending.delete(reply.id);
          if (reply.ok) waiter?.resolve(reply.result);
          else waiter?.reject(new Error(`Worker command failed: ${reply.error}`));
        }
      }
    } finally {
      this.#exited = true;
      for (const waiter of this.#pending.values()) {
        waiter.reject(new Error("Cannot finish command: the worker exited"));
      }
      this.#pending.clear();
    }
  }

  request<T>(command: Command): Promise<T> {
    if (this.#exited) return Promise.reject(new Error("Cannot send command: the worker exited"));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#writer.write(encoder.encode(JSON.stringify({ ...command, id }) + "\n")).catch(
        (error) => {
          this.#pending.delete(id);
          reject(error);
        },
      );
    });
  }

  async stop(): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // gone already
    }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // exited
      }
    }, 5000);
    await this.child.status;
    clearTimeout(timer);
    await this.#reading.catch(() => {});
  }
}

/**
 * A set of worker processes.
 *
 * @example
 * ```ts ignore
 * import { WorkerPool } from "./pool.ts";
 * await using pool = await WorkerPool.spawn({ workers: 2, host: "127.0.0.1" });
 * await pool.all(() => ({ cmd: "reset", step: 1 }));
 * ```
 */
export class WorkerPool implements AsyncDisposable {
  readonly #workers: WorkerProcess[];

  private constructor(workers: WorkerProcess[]) {
    this.#workers = workers;
  }

  /**
   * Starts the workers.
   *
   * @param options how many, where they connect, where they run
   */
  static spawn(options: PoolOptions): Promise<WorkerPool> {
    const workers: WorkerProcess[] = [];
    for (let i = 0; i < options.workers; i++) {
      const deno = [Deno.execPath(), "run", `--allow-net=${options.host}`, WORKER.href];
      const [cmd, ...args] = options.cpus === undefined
        ? deno
        : ["taskset", "-c", options.cpus, ...deno];
      const child = new Deno.Command(cmd!, {
        args,
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      workers.push(new WorkerProcess(child));
    }
    return Promise.resolve(new WorkerPool(workers));
  }

  /** How many workers there are. */
  get size(): number {
    return this.#workers.length;
  }

  /**
   * Sends a command to one worker.
   *
   * @param index the worker
   * @param command what to do
   * @returns its result
   */
  request<T>(index: number, command: Command): Promise<T> {
    return this.#workers[index]!.request<T>(command);
  }

  /**
   * Sends each worker its command (or none, when `make` returns undefined) at once.
   *
   * @param make the command for worker `index`
   * @returns the results, by worker (undefined where no command was sent)
   */
  all<T>(make: (index: number) => Command | undefined): Promise<(T | undefined)[]> {
    return Promise.all(this.#workers.map((w, i) => {
      const command = make(i);
      return command === undefined ? Promise.resolve(undefined) : w.request<T>(command);
    }));
  }

  /** CPU seconds the workers have used so far. */
  async cpuSeconds(): Promise<number> {
    let total = 0;
    for (const w of this.#workers) total += await cpuSeconds(w.child.pid).catch(() => 0);
    return total;
  }

  /** Stops every worker (closing their connections). */
  async stop(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.stop()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
