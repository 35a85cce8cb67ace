// What an operator runs into with TLS configured: http:// typed for the HTTPS web port, a
// certificate renewed under a running server, a terminal client on the plain chat port sending
// files, and TLS connections that end cleanly (close_notify).
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/mod.ts";
import { makeCert, startServer, tempDir, tlsServerArgs } from "./_helpers.ts";

const HAVE_OPENSSL = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test("http:// on the HTTPS web port is redirected to https:// on the same port", async () => {
  await using dir = await tempDir("parley-tls-");
  const { pem } = await makeCert(dir.path, "localhost");
  await using server = await startServer(tlsServerArgs(dir.path));
  const port = server.httpPort;
  const plain = await fetch(`http://127.0.0.1:${port}/files/abc?x=1`, { redirect: "manual" });
  await plain.body?.cancel();
  assert.equal(plain.status, 301);
  assert.equal(plain.headers.get("location"), `https://127.0.0.1:${port}/files/abc?x=1`);
  // HTTPS on the same port still works.
  using client = Deno.createHttpClient({ caCerts: [pem] });
  const secure = await fetch(`https://localhost:${port}/healthz`, { client });
  assert.equal((await secure.json()).status, "ok");
});

Deno.test("SIGHUP reloads the certificate of the HTTPS web port too", async () => {
  await using dir = await tempDir("parley-tls-");
  const first = await makeCert(dir.path, "localhost");
  await using server = await startServer(tlsServerArgs(dir.path));
  const second = await makeCert(dir.path, "localhost");
  server.child.kill("SIGHUP");
  const handshake = async (ca: string) => {
    const c = await Deno.connectTls({
      hostname: "localhost",
      port: server.httpPort,
      caCerts: [ca],
    });
    try {
      await c.handshake();
    } finally {
      c.close();
    }
  };
  let ok = false;
  for (let i = 0; i < 50 && !ok; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ok = await handshake(second.pem).then(() => true, () => false);
  }
  assert.ok(ok, "a new HTTPS connection sees the new certificate");
  await assert.rejects(handshake(first.pem));
});

Deno.test("a client on the plain chat port sends and fetches files over the announced HTTPS port", async () => {
  await using dir = await tempDir("parley-tls-");
  const { pem } = await makeCert(dir.path, "localhost");
  await using server = await startServer(tlsServerArgs(dir.path));
  await using alice = await ChatClient.connect("localhost", server.port, { caCerts: [pem] });
  assert.equal(alice.server?.web, `https://127.0.0.1:${server.httpPort}`);
  assert.equal(alice.httpBase, `https://localhost:${server.httpPort}`);
  await alice.register("alice", "correct horse");
  const file = await alice.upload(new Blob(["over https from a plain chat port\n"]).stream(), {
    name: "note.txt",
  });
  const dest = `${dir.path}/note.txt`;
  await alice.download(file.id, dest);
  assert.equal(await Deno.readTextFile(dest), "over https from a plain chat port\n");
});

Deno.test({
  name: "TLS connections end with close_notify (chat and web ports)",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using dir = await tempDir("parley-tls-");
    await makeCert(dir.path, "localhost");
    await using server = await startServer(tlsServerArgs(dir.path));
    for (
      const [port, request] of [
        [server.tlsPort, '{"type":"hello"}\n{"type":"quit"}\n'],
        [server.httpPort, "GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"],
      ] as const
    ) {
      const child = new Deno.Command("openssl", {
        args: ["s_client", "-connect", `127.0.0.1:${port}`, "-quiet", "-msg", "-ign_eof"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(request));
      const [out, err] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
      ]);
      await writer.close().catch(() => {});
      await child.status;
      assert.match(
        out + err,
        /<<< TLS 1\.3, Alert \[length 0002\], warning close_notify/,
        `port ${port}`,
      );
    }
  },
});
