/** @jsxImportSource preact */
/**
 * Text that must read as it is written: file names and the text of links. Bidi controls and
 * invisible characters are shown as their code points (`⟨U+202E⟩`) instead of acting, and the
 * whole is isolated, left to right, so neither it nor the text around it can reorder the
 * other: `invoice\u202efdp.exe` shows as `invoice⟨U+202E⟩fdp.exe`, never as `invoiceexe.pdf`.
 *
 * @module
 */

import { revealParts } from "./format.ts";

/** `text` with its hidden characters shown as marked code points. */
export function Revealed({ text }: { text: string }) {
  return (
    <>
      {revealParts(text).map((p, i) =>
        p.kind === "text"
          ? p.text
          : (
            <span key={i} class="hidden-char" title={`Hidden character ${p.code}`}>
              {`⟨${p.code}⟩`}
            </span>
          )
      )}
    </>
  );
}

/**
 * A file name, isolated left to right, its hidden characters shown; `inline` for one within a
 * sentence (no styling of its own).
 */
export function FileName({ name, inline = false }: { name: string; inline?: boolean }) {
  return (
    <bdi class={inline ? "name-inline" : "file-name"} dir="ltr" data-testid="file-name">
      <Revealed text={name} />
    </bdi>
  );
}
