/**
 * Small helpers shared by the subcommands' flag parsing (node:util parseArgs underneath).
 *
 * @module
 */

/** A command-line mistake: printed as one line with a hint, exit code 2. */
export class UsageError extends Error {
  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** How a usage error names what was given: `'abc'`. */
export function quote(value: string): string {
  return `'${value}'`;
}

/**
 * Reads an integer flag, checking its range. `name` is the flag without its dashes (`port`), or
 * a positional argument's name in capitals (`PORT`).
 *
 * @throws {UsageError} when the value is not an integer in `[min, max]`
 */
export function intFlag(
  value: string | undefined,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  const flag = /^[A-Z]/.test(name) ? name : `--${name}`;
  if (!/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${flag} must be a number, got ${quote(value)}`);
  }
  if (n < min || n > max) {
    throw new UsageError(`${flag} must be a number from ${min} to ${max}, got ${quote(value)}`);
  }
  return n;
}

/**
 * Reads a flag that must be one of `choices`.
 *
 * @throws {UsageError} when it is not
 */
export function choiceFlag<const T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got ${quote(value)}`);
  }
  return value as T;
}
