/**
 * Summarises a V8 `.cpuprofile` (what `deno run --cpu-prof` writes): the functions with the
 * most self time, and with the most total time (self plus callees). Run on its own:
 * `deno run --allow-read bench/cpuprofile.ts FILE [N]`.
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** One function's share of a profile. */
export interface ProfileEntry {
  /** `name file:line`. */
  fn: string;
  /** Time in the function itself, ms, and as a share of the profile. */
  selfMs: number;
  selfShare: number;
  /** Time in the function and what it called, ms. */
  totalMs: number;
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(src|ext|node_modules)\//, "$1/").replace(/^file:\/\//, "");
  return `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`.trim();
}

/**
 * The functions of a profile, by self time, idle and GC included as V8 names them.
 *
 * @param profile the parsed `.cpuprofile`
 * @returns entries, most self time first
 */
export function summarize(profile: Profile): ProfileEntry[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    // Count each function once per sample stack, however deep it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(byId.get(at)!);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }
  return [...self.entries()]
    .map(([fn, us]) => ({
      fn,
      selfMs: us / 1000,
      selfShare: us / total,
      totalMs: (inclusive.get(fn) ?? us) / 1000,
    }))
    .sort((a, b) => b.selfMs - a.selfMs);
}

/**
 * The top of a profile file as Markdown rows.
 *
 * @param path a `.cpuprofile` file
 * @param n how many functions
 */
export async function topFunctions(path: string, n = 20): Promise<string> {
  const entries = summarize(JSON.parse(await Deno.readTextFile(path)));
  const rows = entries.slice(0, n).map((e) =>
    `| ${(e.selfShare * 100).toFixed(1)} % | ${e.selfMs.toFixed(0)} | ${
      e.totalMs.toFixed(0)
    } | \`${e.fn}\` |`
  );
  return ["| self | self ms | total ms | function |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

if (import.meta.main) {
  const [path, n] = Deno.args;
  if (path === undefined) {
    console.error("Usage: deno run --allow-read bench/cpuprofile.ts FILE [N]");
    Deno.exit(2);
  }
  console.log(await topFunctions(path, Number(n ?? 25)));
}
