/**
 * Process accounting from Linux `/proc`: CPU seconds (utime + stime of `/proc/PID/stat`, in
 * clock ticks of 1/100 s) and resident memory (`VmRSS`, `VmHWM` of `/proc/PID/status`).
 * Without --allow-all, Deno refuses /proc/PID, so the files are read with `cat`.
 *
 * @module
 */

/**
 * Reads a /proc file (or any small text file). Deno grants /proc/PID only with --allow-all; without it, `cat` (with
 * --allow-run) reads it instead.
 */
export async function readProc(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied)
    ) {
      throw error;
    }
    const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .output();
    if (!out.success) throw new Deno.errors.NotFound(`Cannot read ${path}`);
    return new TextDecoder().decode(out.stdout);
  }
}

/** Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on). */
const TICKS = 100;

/**
 * CPU seconds (user + system) a process has used.
 *
 * @param pid the process
 * @throws {Deno.errors.NotFound} when the process is gone (or not on Linux)
 */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Resident memory of a process, bytes. */
export interface Memory {
  /** Resident now. */
  rss: number;
  /** Peak resident. */
  hwm: number;
}

/**
 * A process's resident memory.
 *
 * @param pid the process
 * @throws {Deno.errors.NotFound} when the process is gone
 */
export async function memory(pid: number): Promise<Memory> {
  const status = await readProc(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
}

/** How many CPUs this machine has. */
export function cpuCount(): number {
  return navigator.hardwareConcurrency;
}

/**
 * CPU time the hypervisor stole from this machine so far, seconds (all CPUs; 0 on bare metal).
 * A step that lost much to steal measured the host, not the server.
 */
export async function stolenSeconds(): Promise<number> {
  const line = (await readProc("/proc/stat").catch(() => "")).split("\n")[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal …
  return Number(line.trim().split(/\s+/)[8] ?? 0) / TICKS;
}
