/**
 * Builds the browser client: bundles src/web/app/main.tsx with `deno bundle` (no CDN: every
 * dependency comes from npm at build time and is inlined), gives each file a content-hashed
 * name, and writes src/web/assets.gen.ts so the server (and the compiled binary) embed them as
 * an ordinary import.
 *
 * Usage: deno task build:web [--check]   (--check: fail if assets.gen.ts is out of date)
 *
 * @module
 */

import { brotliCompressSync, gzipSync } from "node:zlib";
import type { Asset } from "./asset.ts";
import { iconPng } from "./_icon_png.ts";

const here = new URL(".", import.meta.url);
const APP = new URL("app/", here);
const OUT = new URL("assets.gen.ts", here);

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return digest.toBase64({ alphabet: "base64url", omitPadding: true });
}

async function bundle(): Promise<Uint8Array<ArrayBuffer>> {
  const tmp = new URL(".build/", here).pathname;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    const out = `${tmp}app.js`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "--minify",
        "--output",
        out,
        new URL("main.tsx", APP).pathname,
      ],
      stdout: "inherit",
      stderr: "piped",
    }).output();
    if (code !== 0) throw new Error(`deno bundle failed: ${new TextDecoder().decode(stderr)}`);
    return await Deno.readFile(out);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Compressed bodies are kept only when they save at least this much. */
const MIN_SAVING = 256;

/** The body's Brotli and gzip forms, base64, each when it is worth a header. */
function compressed(body: Uint8Array<ArrayBuffer>): Pick<Asset, "br" | "gzip"> {
  const out: Pick<Asset, "br" | "gzip"> = {};
  const worth = (packed: Uint8Array) => packed.length + MIN_SAVING <= body.length;
  const br = new Uint8Array(brotliCompressSync(body));
  if (worth(br)) out.br = br.toBase64();
  const gzip = new Uint8Array(gzipSync(body, { level: 9 }));
  if (worth(gzip)) out.gzip = gzip.toBase64();
  return out;
}

async function asset(
  name: string,
  ext: string,
  type: string,
  body: Uint8Array<ArrayBuffer>,
): Promise<Asset> {
  const hash = await sha256(body);
  return {
    path: `/assets/${name}.${hash.slice(0, 12)}.${ext}`,
    type,
    body: body.toBase64(),
    ...compressed(body),
    etag: `"${hash}"`,
    immutable: true,
  };
}

/** The colours of the installed app (the page's own, light theme: see style.css). */
const THEME_COLOR = "#2453c4";
const BACKGROUND_COLOR = "#f4f5f8";

/** An asset at a stable path (the page, the manifest, the service worker): revalidated. */
async function stable(path: string, type: string, body: Uint8Array<ArrayBuffer>): Promise<Asset> {
  return {
    path,
    type,
    body: body.toBase64(),
    ...compressed(body),
    etag: `"${await sha256(body)}"`,
    immutable: false,
  };
}

/**
 * Builds every asset: the hashed files, then the web app manifest and the page that name them,
 * then the service worker, which keeps all of those (its cache is named after their hashes, so
 * a new build replaces the old cache).
 */
export async function build(): Promise<Asset[]> {
  const encoder = new TextEncoder();
  const js = await asset("app", "js", "text/javascript; charset=utf-8", await bundle());
  const css = await asset(
    "app",
    "css",
    "text/css; charset=utf-8",
    await Deno.readFile(new URL("style.css", APP)),
  );
  const icon = await asset(
    "icon",
    "svg",
    "image/svg+xml",
    await Deno.readFile(new URL("icon.svg", APP)),
  );
  const png192 = await asset("icon-192", "png", "image/png", iconPng(192));
  const png512 = await asset("icon-512", "png", "image/png", iconPng(512));
  const manifest = await stable(
    "/manifest.webmanifest",
    "application/manifest+json",
    encoder.encode(
      JSON.stringify(
        {
          id: "/",
          name: "parley",
          short_name: "parley",
          description: "Chat rooms and direct messages on your own parley server",
          start_url: "/",
          scope: "/",
          display: "standalone",
          theme_color: THEME_COLOR,
          background_color: BACKGROUND_COLOR,
          icons: [
            { src: icon.path, sizes: "any", type: "image/svg+xml" },
            { src: png192.path, sizes: "192x192", type: "image/png" },
            { src: png512.path, sizes: "512x512", type: "image/png" },
          ],
        },
        null,
        2,
      ) + "\n",
    ),
  );
  const html = (await Deno.readTextFile(new URL("index.html", APP)))
    .replaceAll("{{app.js}}", js.path)
    .replaceAll("{{app.css}}", css.path)
    .replaceAll("{{icon.svg}}", icon.path)
    .replaceAll("{{icon-192.png}}", png192.path)
    .replaceAll("{{manifest}}", manifest.path)
    .replaceAll("{{theme-color}}", THEME_COLOR);
  const index = await stable("/", "text/html; charset=utf-8", encoder.encode(html));
  const shell = [index, js, css, icon, png192, png512, manifest];
  const version = (await sha256(encoder.encode(shell.map((a) => a.etag).join(" ")))).slice(0, 16);
  const paths = JSON.stringify(shell.map((a) => a.path));
  const worker = await stable(
    "/sw.js",
    "text/javascript; charset=utf-8",
    encoder.encode(
      (await Deno.readTextFile(new URL("sw.js", APP)))
        .replace("{{version}}", version)
        .replace('"{{shell}}"', JSON.stringify(paths)),
    ),
  );
  return [...shell, worker];
}

/** The text of assets.gen.ts for `assets`. */
export function render(assets: Asset[]): string {
  return `// Generated by src/web/build.ts (deno task build:web). Do not edit.
import type { Asset } from "./asset.ts";
import { iconPng } from "./_icon_png.ts";

/** The web client's files, embedded. */
export const ASSETS: readonly Asset[] = ${JSON.stringify(assets, null, 2)};
`;
}

if (import.meta.main) {
  const text = render(await build());
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(OUT).catch(() => "");
    if (current !== text) {
      console.error("src/web/assets.gen.ts is out of date: run deno task build:web");
      Deno.exit(1);
    }
    console.log("src/web/assets.gen.ts is up to date");
  } else {
    await Deno.writeTextFile(OUT, text);
    console.log(`wrote ${OUT.pathname}`);
  }
}
