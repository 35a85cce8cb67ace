/**
 * `parley client`: placeholder until the terminal client lands (issue 3).
 *
 * @module
 */

/** Runs `parley client`; resolves to the exit code. */
export function clientMain(_args: string[]): Promise<number> {
  console.error("parley client: not built yet; use nc HOST PORT meanwhile");
  return Promise.resolve(1);
}
