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

/**
 * Reads an integer flag, checking its range.
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
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${value}`);
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
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, not ${value}`);
  }
  return value as T;
}
