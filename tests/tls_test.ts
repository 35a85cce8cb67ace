// End to end: TLS with certificates made by `main.ts cert`, against the real server.
import assert from "node:assert/strict";
import { makeCert, RawClient, startServer, tempDir, tlsServerArgs } from "./_helpers.ts";

/** The real server with a TLS listener on any port, given the cert.pem and key.pem in `dir`. */
async function tlsServer(dir: string, ...extra: string[]) {
  return await startServer([...tlsServerArgs(dir), ...extra]);
}

async function readLine(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  while (!text.includes("\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text.split("\n")[0]!;
}

Deno.test("cert writes a certificate and a 0600 key and prints the SHA-256 fingerprint", async () => {
  await using dir = await tempDir("parley-tls-");
  const { pem: cert, stdout: out } = await makeCert(dir.path, "localhost", "127.0.0.1");
  assert.equal((await Deno.stat(`${dir.path}/key.pem`)).mode! & 0o777, 0o600);
  assert.match(await Deno.readTextFile(`${dir.path}/key.pem`), /^-----BEGIN PRIVATE KEY-----/);
  const der = Uint8Array.from(
    atob(cert.replace(/-----[^-]+-----/g, "").replace(/\s/g, "")),
    (c) => c.charCodeAt(0),
  );
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  const expected = [...digest].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
  assert.ok(out.includes(`SHA-256 fingerprint: ${expected}`), out);
});

Deno.test("TLS: a client trusting the certificate chats with a plain-TCP client", async () => {
  await using dir = await tempDir("parley-tls-");
  const { pem: cert } = await makeCert(dir.path, "localhost");
  await using server = await tlsServer(dir.path);
  assert.match(
    server.stdout.join("\n"),
    /listening on tcp:\/\/127\.0\.0\.1:\d+\nlistening on tls:\/\/127\.0\.0\.1:\d+/,
  );
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: server.tlsPort,
    caCerts: [cert],
  });
  try {
    assert.match(await readLine(conn), /^\* Welcome to parley/);
    await using plain = await RawClient.text(server.port, "plain");
    await conn.write(new TextEncoder().encode("over tls\n"));
    assert.match(await plain.line((l) => l.startsWith("[")), /^\[#general\] <guest-\d+> over tls$/);
  } finally {
    conn.close();
  }
});

Deno.test("TLS: an unknown CA and a wrong host name are refused by the client", async () => {
  await using dir = await tempDir("parley-tls-");
  const { pem: cert } = await makeCert(dir.path, "otherhost");
  await using server = await tlsServer(dir.path);
  const port = server.tlsPort;
  await assert.rejects(async () => {
    const c = await Deno.connectTls({ hostname: "localhost", port });
    try {
      await c.handshake();
    } finally {
      c.close();
    }
  }, /UnknownIssuer/);
  await assert.rejects(async () => {
    const c = await Deno.connectTls({ hostname: "localhost", port, caCerts: [cert] });
    try {
      await c.handshake();
    } finally {
      c.close();
    }
  }, /not valid for name/);
});

Deno.test("TLS: 1,000 garbage handshakes cost only their connections", async () => {
  await using dir = await tempDir("parley-tls-");
  const { pem: cert } = await makeCert(dir.path, "localhost");
  await using server = await tlsServer(dir.path, "--handshake-timeout", "2");
  const port = server.tlsPort;
  const garbage = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4));
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        if (i % 2 === 0) await c.write(garbage);
        else await c.write(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
        await c.read(new Uint8Array(64)).catch(() => null);
      } finally {
        c.close();
      }
    }));
  }
  const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts: [cert] });
  try {
    assert.match(await readLine(conn), /^\* Welcome/);
  } finally {
    conn.close();
  }
});

Deno.test("TLS: a connection that never starts its handshake is closed at the deadline", async () => {
  await using dir = await tempDir("parley-tls-");
  await makeCert(dir.path, "localhost");
  await using server = await tlsServer(dir.path, "--handshake-timeout", "1");
  const c = await Deno.connect({ hostname: "127.0.0.1", port: server.tlsPort });
  try {
    const start = Date.now();
    const n = await c.read(new Uint8Array(16)).catch(() => null);
    assert.equal(n, null, "closed without a byte");
    assert.ok(Date.now() - start >= 900, "not before the deadline");
  } finally {
    c.close();
  }
});

Deno.test("TLS: --no-plain listens on TLS only; SIGHUP reloads the certificate", async () => {
  await using dir = await tempDir("parley-tls-");
  const first = await makeCert(dir.path, "localhost");
  await using server = await tlsServer(dir.path, "--no-plain");
  assert.equal(server.stdout.filter((l) => l.startsWith("listening on tcp://")).length, 0);
  const port = server.tlsPort;
  const second = await makeCert(dir.path, "localhost");
  assert.notEqual(first.pem, second.pem);
  server.child.kill("SIGHUP");
  let ok = false;
  for (let i = 0; i < 50 && !ok; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      const c = await Deno.connectTls({ hostname: "localhost", port, caCerts: [second.pem] });
      await c.handshake();
      c.close();
      ok = true;
    } catch {
      // not yet reloaded
    }
  }
  assert.ok(ok, "the new certificate is served after SIGHUP");
  await assert.rejects(async () => {
    const c = await Deno.connectTls({ hostname: "localhost", port, caCerts: [first.pem] });
    try {
      await c.handshake();
    } finally {
      c.close();
    }
  });
});

Deno.test("TLS: SIGTERM tells TLS clients and exits promptly while they are connected", async () => {
  await using dir = await tempDir("parley-tls-");
  const { pem: cert } = await makeCert(dir.path, "localhost");
  await using server = await tlsServer(dir.path);
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: server.tlsPort,
    caCerts: [cert],
  });
  try {
    await readLine(conn);
    await conn.write(new TextEncoder().encode('{"type":"hello"}\n'));
    await readLine(conn);
    const start = Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      server.stop("SIGTERM"),
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 5000)),
    ]);
    clearTimeout(timer);
    assert.ok(status !== undefined, "the server exits without waiting for TLS clients to leave");
    assert.equal(status.code, 0);
    assert.ok(Date.now() - start < 3000, `shutdown took ${Date.now() - start} ms`);
    let rest = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      rest += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.match(rest, /"type":"shutdown"/);
  } finally {
    conn.close();
  }
});
