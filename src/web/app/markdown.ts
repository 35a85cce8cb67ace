/**
 * The small Markdown subset message text is shown with: `**bold**`, `*italic*` or `_italic_`,
 * `` `inline code` ``, fenced code blocks (```` ``` ````), and http(s) links (written out:
 * a link's text is always where it goes). The result is plain data for the message list to turn
 * into Preact nodes: no HTML is ever parsed or produced from message text.
 *
 * @module
 */

import { segments } from "./format.ts";

/** A piece of formatted message text. */
export type MdNode =
  | { kind: "text"; text: string }
  | { kind: "link"; text: string; href: string }
  | { kind: "code"; text: string }
  | { kind: "pre"; text: string }
  | { kind: "strong"; children: MdNode[] }
  | { kind: "em"; children: MdNode[] };

/** A fence line: three backticks, maybe a language word (ignored). */
const FENCE = /^```[\w+-]*\s*$/;

/**
 * Parses message text into {@linkcode MdNode}s.
 *
 * @example
 * ```ts
 * /// <reference lib="deno.ns" />
 * import assert from "node:assert/strict";
 * import { markdown } from "./markdown.ts";
 * assert.deepEqual(markdown("**hi** `x`"), [
 *   { kind: "strong", children: [{ kind: "text", text: "hi" }] },
 *   { kind: "text", text: " " },
 *   { kind: "code", text: "x" },
 * ]);
 * ```
 */
export function markdown(text: string): MdNode[] {
  const out: MdNode[] = [];
  const lines = text.split("\n");
  let prose: string[] = [];
  const flush = (last: boolean) => {
    if (prose.length === 0) return;
    out.push(...inline(prose.join("\n") + (last ? "" : "\n")));
    prose = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const close = FENCE.test(line) ? lines.findIndex((l, j) => j > i && /^```\s*$/.test(l)) : -1;
    if (close < 0) {
      prose.push(line);
      continue;
    }
    flush(false);
    out.push({ kind: "pre", text: lines.slice(i + 1, close).join("\n") });
    i = close;
    // The line break after the block is the block's own.
  }
  flush(true);
  return merge(out);
}

/** Inline code first (nothing inside it is formatted), then links and emphasis. */
function inline(text: string): MdNode[] {
  const out: MdNode[] = [];
  let at = 0;
  for (const m of text.matchAll(/`([^`\n]+)`/g)) {
    if (m.index > at) out.push(...links(text.slice(at, m.index)));
    out.push({ kind: "code", text: m[1]! });
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(...links(text.slice(at)));
  return out;
}

function links(text: string): MdNode[] {
  return segments(text).flatMap((s) =>
    s.kind === "link" ? [{ kind: "link" as const, text: s.text, href: s.href }] : emphasis(s.text)
  );
}

/** `**bold**`, and `*italic*` or `_italic_` not inside a word (so snake_case stays). */
const EMPHASIS =
  /\*\*(?=\S)([\s\S]*?\S)\*\*|(?<![\p{L}\p{N}*\\])\*(?=[^\s*])([^*]*?[^\s*\\])\*(?![\p{L}\p{N}*])|(?<![\p{L}\p{N}_\\])_(?=[^\s_])([^_]*?[^\s_\\])_(?![\p{L}\p{N}_])/u;

function emphasis(text: string): MdNode[] {
  const m = EMPHASIS.exec(text);
  if (m === null) return text === "" ? [] : [{ kind: "text", text }];
  const before = text.slice(0, m.index);
  const after = text.slice(m.index + m[0].length);
  const node: MdNode = m[1] !== undefined
    ? { kind: "strong", children: emphasis(m[1]) }
    : { kind: "em", children: emphasis(m[2] ?? m[3]!) };
  return [
    ...(before === "" ? [] : [{ kind: "text" as const, text: before }]),
    node,
    ...emphasis(after),
  ];
}

/** Joins neighbouring text nodes. */
function merge(nodes: MdNode[]): MdNode[] {
  const out: MdNode[] = [];
  for (const n of nodes) {
    const last = out.at(-1);
    if (n.kind === "text" && last?.kind === "text") {
      out[out.length - 1] = { kind: "text", text: last.text + n.text };
    } else out.push(n);
  }
  return out;
}
