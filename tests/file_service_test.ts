// The file service in process, over a real SQLite store: what an upload leaves on disk when
// recording its file fails after its blob was moved into place.
import assert from "node:assert/strict";
import { Accounts } from "../src/auth/accounts.ts";
import { FileService } from "../src/files/files.ts";
import { openSqliteStore } from "../src/store/worker_store.ts";
import { tempDir } from "./_helpers.ts";

const IP = "127.0.0.1";

/** The SHA-256 names of the blobs under `dir`, sorted. */
async function blobs(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const sub of Deno.readDir(`${dir}/blobs`)) {
    for await (const blob of Deno.readDir(`${dir}/blobs/${sub.name}`)) found.push(blob.name);
  }
  return found.sort();
}

/** A POST /files with `text` as a streamed body; `beforeEnd` runs once it was all read. */
function uploadRequest(
  token: string,
  text: string,
  beforeEnd: () => Promise<void> = async () => {},
): Request {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode(text));
        return;
      }
      await beforeEnd();
      controller.close();
    },
  });
  return new Request("http://127.0.0.1/files?name=notes.txt", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" },
    body,
  });
}

Deno.test("FileService: a file that cannot be recorded leaves no blob, unless another file has the same content", async () => {
  await using data = await tempDir("parley-file-service-");
  await using store = await openSqliteStore(`${data.path}/parley.db`);
  const accounts = new Accounts(store.accounts, {
    registration: true,
    loginBurst: 5,
    loginIntervalMs: 1000,
    registerBurst: 10,
    registerIntervalMs: 1000,
    sessionTtlMs: 3600_000,
    hashConcurrency: 1,
    exemptLoopback: true,
    params: { memory: 1024, passes: 1, parallelism: 1 },
    lowPriorityHashing: false,
  });
  try {
    const dir = `${data.path}/files`;
    const files = new FileService(store, accounts, {
      dir,
      maxFileSize: 1024 * 1024,
      quota: 1024 * 1024,
      uploadBurst: 10,
      uploadIntervalMs: 1000,
      retentionMs: 0,
    });
    const [alice, bob, carol] = [
      await accounts.register("alice", "correct horse", IP),
      await accounts.register("bob", "correct horse", IP),
      await accounts.register("carol", "correct horse", IP),
    ];

    // The uploader's account is deleted while the body arrives: the blob is moved into place,
    // then the insert into `files` fails on its foreign key to `users`.
    const lost = await files.upload(
      uploadRequest(alice.token, "alice's notes", () => store.accounts.deleteUser(alice.user.id)),
      IP,
    );
    assert.equal(lost.status, 500);
    await lost.body?.cancel();
    assert.deepEqual(await blobs(dir), [], "no blob without a record");
    assert.deepEqual([...Deno.readDirSync(`${dir}/tmp`)], [], "no partial upload either");

    // The same content as a file bob keeps: the blob is bob's too, so it stays.
    const kept = await files.upload(uploadRequest(bob.token, "shared notes"), IP);
    assert.equal(kept.status, 201);
    const { id, sha256 } = await kept.json();
    const failed = await files.upload(
      uploadRequest(carol.token, "shared notes", () => store.accounts.deleteUser(carol.user.id)),
      IP,
    );
    assert.equal(failed.status, 500);
    await failed.body?.cancel();
    assert.deepEqual(await blobs(dir), [sha256]);
    const download = await files.download(
      new Request(`http://127.0.0.1/files/${id}`, {
        headers: { authorization: `Bearer ${bob.token}` },
      }),
      IP,
      id,
    );
    assert.equal(download.status, 200);
    assert.equal(await download.text(), "shared notes");
  } finally {
    accounts.close();
  }
});
