/**
 * `parley cert`: a self-signed certificate and key for development TLS.
 *
 * @module
 */

import { parseArgs } from "node:util";
import * as x509 from "@peculiar/x509";
import { DEFAULT_CONFIG } from "../server/config.ts";
import { intFlag, quote, UsageError } from "./args.ts";

/** `cert --help`. */
export const CERT_USAGE = `Usage: parley cert --host NAME [--host NAME…] [options]

Creates a self-signed ECDSA P-256 certificate and its key for development, writes them as
cert.pem and key.pem (the key with mode 0600), and prints the certificate's SHA-256
fingerprint. Clients trust it with 'parley client --tls --ca cert.pem'.

Options:
  --host NAME     a DNS name or IP address the certificate is for (repeatable; default localhost)
  --out DIR       where to write (default ${DEFAULT_CONFIG.data}/tls)
  --days N        validity in days (default 365)
  --force         replace a cert.pem or key.pem already in DIR (refused without it)
  -h, --help      show this help`;

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const IP_RE = /^(\d{1,3}\.){3}\d{1,3}$|:/;

/** A certificate and key in PEM, and the certificate's SHA-256 fingerprint. */
export interface SelfSigned {
  cert: string;
  key: string;
  fingerprint: string;
}

/** Creates a self-signed leaf certificate for `hosts`, valid for `days`. */
export async function selfSigned(hosts: readonly string[], days: number): Promise<SelfSigned> {
  x509.cryptoProvider.set(crypto);
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: [...crypto.getRandomValues(new Uint8Array(16))]
      .map((b) => b.toString(16).padStart(2, "0")).join("").replace(/^[89a-f]/, "1"),
    name: `CN=${hosts[0]}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 86_400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => ({ type: IP_RE.test(h) ? "ip" as const : "dns" as const, value: h })),
      ),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${
    pkcs8.toBase64().match(/.{1,64}/g)!.join("\n")
  }\n-----END PRIVATE KEY-----\n`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", cert.rawData));
  const fingerprint = [...digest].map((b) => b.toString(16).padStart(2, "0").toUpperCase())
    .join(":");
  return { cert: cert.toString("pem") + "\n", key, fingerprint };
}

/** Runs `parley cert`; resolves to the exit code. */
export async function certMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      host: { type: "string", multiple: true },
      out: { type: "string" },
      days: { type: "string" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(CERT_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${quote(positionals[0]!)}`);
  const hosts = values.host ?? ["localhost"];
  for (const h of hosts) {
    if (!/^[A-Za-z0-9.*:-]{1,253}$/.test(h)) {
      throw new UsageError(`--host must be a DNS name or an IP address, got ${quote(h)}`);
    }
  }
  const days = intFlag(values.days, "days", 365, 1, 3650);
  const out = values.out ?? `${DEFAULT_CONFIG.data}/tls`;
  if (!values.force) {
    for (const file of [`${out}/key.pem`, `${out}/cert.pem`]) {
      if (await exists(file)) {
        throw new UsageError(
          `${quote(file)} exists: pass --force to replace it (clients that trust the old ` +
            `certificate will need the new one)`,
        );
      }
    }
  }
  const made = await selfSigned(hosts, days);
  await Deno.mkdir(out, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(`${out}/cert.pem`, made.cert, { mode: 0o644 });
  await Deno.writeTextFile(`${out}/key.pem`, made.key, { mode: 0o600 });
  await Deno.chmod(`${out}/key.pem`, 0o600);
  console.log(`wrote ${out}/cert.pem and ${out}/key.pem (for ${hosts.join(", ")}, ${days} days)`);
  console.log(`SHA-256 fingerprint: ${made.fingerprint}`);
  console.log(`start: parley server --tls-cert ${out}/cert.pem --tls-key ${out}/key.pem`);
  return 0;
}

/** Whether `path` exists (a dangling link counts). */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
