// The store conformance suite: what every Store backend must do, through the Store interface
// only. A backend's test file calls storeConformance() with a way to open a fresh, empty store.
import assert from "node:assert/strict";
import type { MessageFrame } from "../src/protocol/frames.ts";
import type {
  FileRecord,
  NewMessage,
  Placed,
  Restriction,
  RoomRecord,
  Store,
} from "../src/store/store.ts";

/** A store implementation under test. */
export interface Backend {
  /** Names the tests. */
  name: string;
  /** Opens a fresh, empty store. */
  open(): Promise<Store>;
}

const DAY = 24 * 3600 * 1000;

/** Registers the conformance tests for `backend`. */
export function storeConformance(backend: Backend): void {
  const test = (name: string, fn: (store: Store) => Promise<void>) =>
    Deno.test(`${backend.name}: ${name}`, async () => {
      await using store = await backend.open();
      await fn(store);
    });
  const token = (n: number) => new Uint8Array(32).fill(n);

  test("accounts: names are unique case-insensitively and keep their case", async (store) => {
    const alice = await store.accounts.createUser("Alice", "hash-a", 1000);
    assert.ok(alice);
    assert.deepEqual(alice, {
      id: alice.id,
      name: "Alice",
      passwordHash: "hash-a",
      created: 1000,
      disabled: false,
      admin: false,
    });
    assert.equal(await store.accounts.createUser("ALICE", "hash-b", 2000), undefined);
    assert.deepEqual(await store.accounts.getUser("aLiCe"), alice);
    assert.deepEqual(await store.accounts.getUserById(alice.id), alice);
    assert.equal(await store.accounts.getUser("nobody"), undefined);
    assert.equal(await store.accounts.getUserById(alice.id + 1000), undefined);
    const bob = (await store.accounts.createUser("bob", "hash-b", 3000))!;
    const carol = (await store.accounts.createUser("Carol", "hash-c", 4000))!;
    assert.notEqual(bob.id, alice.id);
    assert.deepEqual((await store.accounts.listUsers()).map((u) => u.name), [
      "Alice",
      "bob",
      "Carol",
    ]);
    await store.accounts.setPasswordHash(carol.id, "hash-c2");
    assert.equal((await store.accounts.getUser("carol"))?.passwordHash, "hash-c2");
  });

  test("accounts: disabling revokes tokens; enabling does not bring them back", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    await store.accounts.createSession(alice.id, token(1), 10, 10 * DAY);
    assert.equal((await store.accounts.useSession(token(1), 20, 10 * DAY))?.id, alice.id);
    await store.accounts.setDisabled(alice.id, true);
    assert.equal((await store.accounts.getUser("alice"))?.disabled, true);
    assert.equal(await store.accounts.useSession(token(1), 30, 10 * DAY), undefined);
    await store.accounts.setDisabled(alice.id, false);
    assert.equal((await store.accounts.getUser("alice"))?.disabled, false);
    assert.equal(await store.accounts.useSession(token(1), 40, 10 * DAY), undefined);
    // A new token works again.
    await store.accounts.createSession(alice.id, token(2), 50, 10 * DAY);
    assert.equal((await store.accounts.useSession(token(2), 60, 10 * DAY))?.name, "alice");
  });

  test("accounts: deleting one cascades to its tokens, memberships and pending DMs", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    await store.accounts.createSession(alice.id, token(1), 0, 10 * DAY);
    await store.memberships.add(alice.id, "#ops");
    await store.memberships.add(bob.id, "#ops");
    const dm = await store.messages.append({
      from: "bob",
      to: "alice",
      text: "hi",
      ts: 1,
      pendingFor: [alice.id],
    });
    await store.accounts.deleteUser(alice.id);
    assert.equal(await store.accounts.getUser("alice"), undefined);
    assert.equal(await store.accounts.getUserById(alice.id), undefined);
    assert.equal(await store.accounts.useSession(token(1), 1, 10 * DAY), undefined);
    assert.deepEqual(await store.memberships.of(alice.id), []);
    assert.deepEqual(await store.messages.pendingFor(alice.id), []);
    assert.deepEqual(await store.memberships.of(bob.id), ["#ops"], "others keep theirs");
    // Its messages stay, and the name can be registered again.
    const history = await store.messages.history({ between: ["alice", "bob"] }, undefined, 10);
    assert.deepEqual(history.map((m) => m.id), [dm.id]);
    assert.ok(await store.accounts.createUser("ALICE", "h2", 2));
  });

  test("session tokens: live until expiry, extended at most once a day", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const expires = 30 * DAY;
    await store.accounts.createSession(alice.id, token(1), 0, expires);
    assert.equal(await store.accounts.useSession(token(9), 1, expires), undefined, "unknown");
    assert.equal((await store.accounts.useSession(token(1), expires - 1, expires))?.id, alice.id);
    assert.equal(await store.accounts.useSession(token(1), expires, expires), undefined, "expired");
    // Less than a day later: the expiry does not move (logging in stays a read).
    await store.accounts.createSession(alice.id, token(2), 0, expires);
    assert.ok(await store.accounts.useSession(token(2), DAY, expires + DAY - 1));
    assert.equal(
      await store.accounts.useSession(token(2), expires + 1, expires + 2 * DAY),
      undefined,
      "not extended by less than a day",
    );
    // More than a day later: it moves.
    await store.accounts.createSession(alice.id, token(3), 0, expires);
    assert.ok(await store.accounts.useSession(token(3), DAY, expires + DAY + 1));
    assert.ok(await store.accounts.useSession(token(3), expires + DAY, expires + DAY + 1));
    assert.equal(await store.accounts.useSession(token(3), expires + DAY + 1, 0), undefined);
  });

  test("session tokens: deleteSession and deleteSessionsOf (with keep)", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    for (const n of [1, 2, 3]) await store.accounts.createSession(alice.id, token(n), 0, DAY);
    await store.accounts.createSession(bob.id, token(4), 0, DAY);
    await store.accounts.deleteSession(token(1));
    assert.equal(await store.accounts.useSession(token(1), 1, DAY), undefined);
    await store.accounts.deleteSessionsOf(alice.id, token(3));
    assert.equal(await store.accounts.useSession(token(2), 1, DAY), undefined);
    assert.equal((await store.accounts.useSession(token(3), 1, DAY))?.id, alice.id, "kept");
    await store.accounts.deleteSessionsOf(alice.id);
    assert.equal(await store.accounts.useSession(token(3), 1, DAY), undefined);
    assert.equal((await store.accounts.useSession(token(4), 1, DAY))?.id, bob.id, "others kept");
  });

  test("memberships: add is idempotent, names compare case-insensitively, sorted", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    assert.deepEqual(await store.memberships.of(alice.id), []);
    await store.memberships.add(alice.id, "#Zoo");
    await store.memberships.add(alice.id, "#ops");
    await store.memberships.add(alice.id, "#OPS");
    await store.memberships.add(alice.id, "#Alpha");
    await store.memberships.add(bob.id, "#ops");
    assert.deepEqual(await store.memberships.of(alice.id), ["#Alpha", "#ops", "#Zoo"]);
    await store.memberships.remove(alice.id, "#zoo");
    await store.memberships.remove(alice.id, "#never-joined");
    assert.deepEqual(await store.memberships.of(alice.id), ["#Alpha", "#ops"]);
    assert.deepEqual(await store.memberships.of(bob.id), ["#ops"]);
    // By session token: the token's account's rooms, read in the same turn as using it.
    await store.accounts.createSession(alice.id, token(7), 0, DAY);
    const [user, rooms] = await Promise.all([
      store.accounts.useSession(token(7), 1, DAY),
      store.memberships.ofSession(token(7)),
    ]);
    assert.equal(user?.id, alice.id);
    assert.deepEqual(rooms, ["#Alpha", "#ops"]);
    assert.deepEqual(await store.memberships.ofSession(token(8)), [], "an unknown token has none");
  });

  test("append: the store assigns ids in call order and per-room, per-pair seq", async (store) => {
    const targets: Pick<NewMessage, "room" | "to" | "from">[] = [
      { room: "#a", from: "alice" },
      { room: "#b", from: "alice" },
      { room: "#A", from: "bob" },
      { to: "bob", from: "alice" },
      { to: "Alice", from: "BOB" },
      { to: "carol", from: "alice" },
    ];
    const placed: Placed[] = [];
    for (let i = 0; i < 24; i++) {
      placed.push(
        await store.messages.append({ ...targets[i % targets.length]!, text: `m${i}`, ts: i }),
      );
    }
    assertIncreasing(placed.map((p) => p.id));
    // #a and #A are one room; alice→bob and BOB→Alice one pair.
    const key = (i: number) => {
      const t = targets[i % targets.length]!;
      return t.room !== undefined
        ? `room ${t.room.toLowerCase()}`
        : `dm ${[t.from.toLowerCase(), t.to!.toLowerCase()].sort().join(" ")}`;
    };
    assertContiguousSeq(placed, key);
    assert.deepEqual(placed.slice(0, 6).map((p) => p.seq), [1, 1, 2, 1, 2, 1]);
  });

  test("append: concurrent appends in one turn keep call order and contiguous seq", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const rooms = ["#one", "#two", "#three"];
    const messages: NewMessage[] = Array.from(
      { length: 300 },
      (_, i) =>
        i % 4 === 3
          ? {
            from: i % 8 === 3 ? "bob" : "alice",
            to: i % 8 === 3 ? "alice" : "bob",
            text: `${i}`,
            ts: i,
            pendingFor: [alice.id],
          }
          : { room: rooms[i % 3]!, from: "alice", text: `${i}`, ts: i },
    );
    const placed = await Promise.all(messages.map((m) => store.messages.append(m)));
    assertIncreasing(placed.map((p) => p.id));
    assertContiguousSeq(placed, (i) => messages[i]!.room ?? "dm");
    // More in the next turns continue the numbering.
    const next = await store.messages.append({ room: "#one", from: "alice", text: "later", ts: 0 });
    const roomOne = placed.filter((_, i) => messages[i]!.room === "#one");
    assert.equal(next.seq, roomOne.length + 1);
    assert.ok(next.id > placed.at(-1)!.id);
    // Every stored message reads back as it was appended.
    const history = await store.messages.history({ room: "#one" }, undefined, 1000);
    assert.deepEqual(history.map((m) => m.id), [...roomOne.map((p) => p.id), next.id]);
    assert.deepEqual(history[0], {
      type: "message",
      id: roomOne[0]!.id,
      room: "#one",
      from: "alice",
      text: "0",
      ts: 0,
    });
    const pending = await store.messages.pendingFor(alice.id);
    assert.equal(pending.length, messages.filter((m) => m.to !== undefined).length);
  });

  test("append: a message goes to a room or to a name, not both, not neither", async (store) => {
    await assert.rejects(store.messages.append({ from: "alice", text: "x", ts: 0 }));
    await assert.rejects(
      store.messages.append({ room: "#r", to: "bob", from: "a", text: "x", ts: 0 }),
    );
    const placed = await store.messages.append({ room: "#r", from: "a", text: "x", ts: 0 });
    assert.equal(placed.seq, 1, "the refused ones took no number");
    assert.deepEqual(
      (await store.messages.history({ room: "#r" }, undefined, 9)).map((m) => m.id),
      [
        placed.id,
      ],
    );
  });

  test("history: pages backwards through a room and a DM pair, oldest first", async (store) => {
    const file = { id: "f1", name: "a.txt", size: 3, type: "text/plain", sha256: "ab" };
    const sent: { message: NewMessage; id: number }[] = [];
    for (let i = 0; i < 30; i++) {
      const message: NewMessage = {
        ts: 1000 + i,
        from: i % 2 ? "alice" : "bob",
        text: `m${i}`,
        ...(i % 3 === 0 ? { to: i % 2 ? "Bob" : "alice" } : { room: "#Ops" }),
        ...(i === 4 ? { action: true } : {}),
        ...(i === 5 ? { file } : {}),
      };
      sent.push({ message, id: (await store.messages.append(message)).id });
    }
    const room = sent.filter((s) => s.message.room !== undefined).map((s) => s.id);
    const page1 = await store.messages.history({ room: "#OPS" }, undefined, 5);
    assert.deepEqual(page1.map((m) => m.id), room.slice(-5));
    const page2 = await store.messages.history({ room: "#ops" }, page1[0]!.id, 5);
    assert.deepEqual(page2.map((m) => m.id), room.slice(-10, -5));
    const all = await store.messages.history({ room: "#ops" }, undefined, 100);
    assert.deepEqual(all.map((m) => m.id), room);
    assert.deepEqual(await store.messages.history({ room: "#ops" }, room[0], 5), []);
    const expected = (s: { message: NewMessage; id: number }): MessageFrame => {
      const { pendingFor: _, ...rest } = s.message;
      return { type: "message", id: s.id, ...rest, ...(rest.room ? { room: "#Ops" } : {}) };
    };
    assert.deepEqual(all, sent.filter((s) => s.message.room !== undefined).map(expected));
    const dms = sent.filter((s) => s.message.to !== undefined);
    const between = await store.messages.history({ between: ["BOB", "alice"] }, undefined, 100);
    assert.deepEqual(between, dms.map(expected));
    const dmPage = await store.messages.history({ between: ["alice", "bob"] }, dms[5]!.id, 2);
    assert.deepEqual(dmPage.map((m) => m.id), [dms[3]!.id, dms[4]!.id]);
    assert.deepEqual(await store.messages.history({ room: "#nowhere" }, undefined, 5), []);
    assert.deepEqual(await store.messages.history({ between: ["x", "y"] }, undefined, 5), []);
  });

  test("history: reads forwards after an id, oldest first, in a room and a DM pair", async (store) => {
    const ids: { id: number; room: boolean }[] = [];
    for (let i = 0; i < 12; i++) {
      const message: NewMessage = i % 3 === 0
        ? { ts: i, from: "alice", to: "Bob", text: `d${i}` }
        : { ts: i, from: "bob", room: "#Ops", text: `r${i}` };
      ids.push({ id: (await store.messages.append(message)).id, room: i % 3 !== 0 });
    }
    const room = ids.filter((m) => m.room).map((m) => m.id);
    const dms = ids.filter((m) => !m.room).map((m) => m.id);
    const after = await store.messages.historyAfter({ room: "#OPS" }, room[2]!, 3);
    assert.deepEqual(after.map((m) => m.id), room.slice(3, 6));
    assert.equal(after[0]!.room, "#Ops");
    assert.equal(after[0]!.text, "r5");
    assert.deepEqual(
      (await store.messages.historyAfter({ room: "#ops" }, 0, 100)).map((m) => m.id),
      room,
    );
    assert.deepEqual(await store.messages.historyAfter({ room: "#ops" }, room.at(-1)!, 5), []);
    assert.deepEqual(
      (await store.messages.historyAfter({ between: ["bob", "ALICE"] }, dms[0]!, 2)).map((m) =>
        m.id
      ),
      dms.slice(1, 3),
    );
    assert.deepEqual(await store.messages.historyAfter({ room: "#nowhere" }, 0, 5), []);
    // Read back like history: reactions, edits and tombstones included.
    await store.messages.edit(room[4]!, "changed", 99);
    await store.messages.remove(room[5]!);
    const page = await store.messages.historyAfter({ room: "#ops" }, room[3]!, 2);
    assert.equal(page[0]!.text, "changed");
    assert.equal(page[0]!.edited, 99);
    assert.equal(page[1]!.deleted, true);
  });

  test("messages: a reply is read with the quote of the message it answers, as it is now", async (store) => {
    const first = await store.messages.append({
      room: "#ops",
      from: "alice",
      text: "\n  lunch?  \nor later",
      ts: 1,
    });
    const reply = await store.messages.append({
      room: "#ops",
      from: "bob",
      text: "yes",
      ts: 2,
      replyTo: first.id,
      quote: { from: "stale", text: "not stored" },
    });
    const orphan = await store.messages.append({
      room: "#ops",
      from: "bob",
      text: "to nothing",
      ts: 3,
      replyTo: 999_999,
    });
    const read = async () => {
      const page = await store.messages.history({ room: "#ops" }, undefined, 10);
      assert.equal(page.find((m) => m.id === orphan.id)!.quote, undefined);
      assert.equal(page.find((m) => m.id === first.id)!.quote, undefined);
      return page.find((m) => m.id === reply.id)!.quote;
    };
    assert.deepEqual(await read(), { from: "alice", text: "lunch?" });
    assert.deepEqual((await store.messages.get(reply.id))!.quote, {
      from: "alice",
      text: "lunch?",
    });
    await store.messages.edit(first.id, "x".repeat(100), 5);
    assert.deepEqual(await read(), { from: "alice", text: `${"x".repeat(79)}…` });
    await store.messages.remove(first.id);
    assert.deepEqual(await read(), { from: "alice", text: "", deleted: true });
  });

  test("pending DMs: kept until removed, taken exactly once, added back", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    const one = await store.messages.append({
      from: "bob",
      to: "alice",
      text: "one",
      ts: 1,
      pendingFor: [alice.id],
    });
    const two = await store.messages.append({
      from: "carol",
      to: "alice",
      text: "two",
      ts: 2,
      pendingFor: [alice.id],
    });
    const three = await store.messages.append({
      from: "alice",
      to: "bob",
      text: "three",
      ts: 3,
      pendingFor: [bob.id],
    });
    const texts = async (id: number) => (await store.messages.pendingFor(id)).map((m) => m.text);
    assert.deepEqual(await texts(alice.id), ["one", "two"]);
    assert.deepEqual(await texts(alice.id), ["one", "two"], "reading does not remove");
    assert.deepEqual((await store.messages.pendingFor(alice.id))[0], {
      type: "message",
      id: one.id,
      from: "bob",
      to: "alice",
      text: "one",
      ts: 1,
    });
    await store.messages.removePending(alice.id, [one.id]);
    assert.deepEqual(await texts(alice.id), ["two"]);
    const takes = await Promise.all([
      store.messages.takePending(alice.id, two.id),
      store.messages.takePending(alice.id, two.id),
    ]);
    assert.deepEqual(takes, [true, false], "exactly once, even in one turn");
    assert.equal(await store.messages.takePending(bob.id, two.id), false, "not bob's");
    assert.deepEqual(await texts(alice.id), []);
    await store.messages.addPending(alice.id, one.id);
    assert.deepEqual(await texts(alice.id), ["one"]);
    await store.messages.removePending(alice.id, []);
    assert.deepEqual(await texts(bob.id), ["three"]);
    await store.messages.removePending(bob.id, [three.id, one.id]);
    assert.deepEqual(await texts(bob.id), []);
  });

  test("messages: replyTo and fromAccount round-trip; get reads one message", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    const first = await store.messages.append({
      room: "#Ops",
      from: "alice",
      text: "first",
      ts: 1,
      fromAccount: alice.id,
    });
    const reply = await store.messages.append({
      room: "#ops",
      from: "guest",
      text: "re",
      ts: 2,
      replyTo: first.id,
    });
    const dm = await store.messages.append({
      from: "alice",
      to: "bob",
      text: "psst",
      ts: 3,
      replyTo: first.id,
      fromAccount: alice.id,
      pendingFor: [bob.id],
    });
    assert.deepEqual(await store.messages.get(first.id), {
      type: "message",
      id: first.id,
      room: "#Ops",
      from: "alice",
      text: "first",
      ts: 1,
      fromAccount: alice.id,
    });
    assert.deepEqual(await store.messages.get(reply.id), {
      type: "message",
      id: reply.id,
      room: "#Ops",
      from: "guest",
      text: "re",
      ts: 2,
      replyTo: first.id,
      quote: { from: "alice", text: "first" },
    }, "a guest's message has no account");
    assert.deepEqual(await store.messages.get(dm.id), {
      type: "message",
      id: dm.id,
      from: "alice",
      to: "bob",
      text: "psst",
      ts: 3,
      replyTo: first.id,
      quote: { from: "alice", text: "first" },
      fromAccount: alice.id,
    });
    assert.equal(await store.messages.get(dm.id + 1000), undefined);
    // History and pending deliveries carry the reply, not the account.
    assert.deepEqual(
      (await store.messages.history({ room: "#ops" }, undefined, 10)).map((m) => [
        m.id,
        m.replyTo,
        "fromAccount" in m,
      ]),
      [[first.id, undefined, false], [reply.id, first.id, false]],
    );
    const [pending] = await store.messages.pendingFor(bob.id);
    assert.equal(pending?.replyTo, first.id);
    assert.equal("fromAccount" in pending!, false);
    // Deleting the account keeps its messages, without their account.
    await store.accounts.deleteUser(alice.id);
    const kept = await store.messages.get(first.id);
    assert.equal(kept?.text, "first");
    assert.equal(kept?.fromAccount, undefined);
  });

  test("messages: edit replaces the text and stamps it; every read and search follow", async (store) => {
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    const m = await store.messages.append({ room: "#a", from: "alice", text: "colour", ts: 1 });
    const dm = await store.messages.append({
      from: "alice",
      to: "bob",
      text: "teh typo",
      ts: 2,
      pendingFor: [bob.id],
    });
    await store.messages.edit(m.id, "color scheme", 10);
    await store.messages.edit(dm.id, "the typo", 11);
    const [edited] = await store.messages.history({ room: "#a" }, undefined, 10);
    assert.deepEqual(edited, {
      type: "message",
      id: m.id,
      room: "#a",
      from: "alice",
      text: "color scheme",
      ts: 1,
      edited: 10,
    });
    assert.deepEqual(await store.messages.get(m.id), edited);
    assert.deepEqual(
      (await store.messages.pendingFor(bob.id)).map((p) => [p.text, p.edited]),
      [["the typo", 11]],
    );
    assert.deepEqual(
      (await store.messages.history({ between: ["bob", "alice"] }, undefined, 10))
        .map((p) => [p.text, p.edited]),
      [["the typo", 11]],
    );
    const scope = { rooms: ["#a"], dmsOf: "bob" };
    const ids = async (words: string[]) =>
      (await store.messages.search(words, scope, 10)).map((r) => r.id);
    assert.deepEqual(await ids(["colour"]), [], "the old text is no longer found");
    assert.deepEqual(await ids(["teh"]), []);
    assert.deepEqual(await ids(["scheme"]), [m.id]);
    assert.deepEqual(await ids(["the"]), [dm.id]);
    // Again: the latest text and stamp win.
    await store.messages.edit(m.id, "palette", 12);
    assert.deepEqual(await ids(["color"]), []);
    assert.deepEqual(await ids(["pal"]), [m.id]);
    assert.equal((await store.messages.get(m.id))?.edited, 12);
    // An empty text is allowed (a file's caption removed): nothing to find.
    await store.messages.edit(m.id, "", 13);
    assert.deepEqual(await ids(["pal"]), []);
    await store.messages.edit(m.id, "back again", 14);
    assert.deepEqual(await ids(["back"]), [m.id]);
  });

  test("messages: remove leaves a tombstone (no text, file or reactions), out of search", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const file = { id: "f1", name: "cat.png", size: 3, type: "image/png", sha256: "ab" };
    await store.files.create({ ...file, ownerId: alice.id, created: 0 });
    const doomed = await store.messages.append({
      room: "#a",
      from: "alice",
      text: "secret plans",
      ts: 1,
      file,
      fromAccount: alice.id,
    });
    const reply = await store.messages.append({
      room: "#a",
      from: "bob",
      text: "secret reply",
      ts: 2,
      replyTo: doomed.id,
    });
    await store.messages.react(doomed.id, "👍", "u:1", true);
    await store.messages.edit(doomed.id, "secret plans v2", 5);
    assert.deepEqual((await store.files.uses("f1")).rooms, ["#a"]);
    await store.messages.remove(doomed.id);
    const tombstone: MessageFrame = {
      type: "message",
      id: doomed.id,
      room: "#a",
      from: "alice",
      text: "",
      ts: 1,
      edited: 5,
      deleted: true,
    };
    const history = await store.messages.history({ room: "#a" }, undefined, 10);
    assert.deepEqual(history, [tombstone, {
      type: "message",
      id: reply.id,
      room: "#a",
      from: "bob",
      text: "secret reply",
      ts: 2,
      replyTo: doomed.id,
      quote: { from: "alice", text: "", deleted: true },
    }]);
    assert.deepEqual(await store.messages.get(doomed.id), { ...tombstone, fromAccount: alice.id });
    assert.deepEqual((await store.files.uses("f1")).rooms, [], "the file is no longer sent");
    assert.deepEqual(
      (await store.messages.search(["secret"], { rooms: ["#a"] }, 10)).map((m) => m.id),
      [reply.id],
    );
    // A tombstone stays one: no edit, no reaction brings it back; removing again is harmless.
    await store.messages.edit(doomed.id, "secret resurrected", 9);
    assert.deepEqual(await store.messages.react(doomed.id, "🎉", "u:2", true), {});
    await store.messages.remove(doomed.id);
    assert.deepEqual(await store.messages.get(doomed.id), { ...tombstone, fromAccount: alice.id });
    assert.deepEqual(
      (await store.messages.search(["secret"], { rooms: ["#a"] }, 10)).map((m) => m.id),
      [reply.id],
    );
    // Numbering goes on as before.
    assert.equal((await store.messages.append({ room: "#a", from: "x", text: "", ts: 3 })).seq, 3);
  });

  test("messages: reactions are one per person and emoji, counted, read with every message", async (store) => {
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    const a = await store.messages.append({ room: "#r", from: "x", text: "alpha", ts: 1 });
    const b = await store.messages.append({ room: "#r", from: "x", text: "beta", ts: 2 });
    const react = store.messages.react;
    assert.deepEqual(await react(a.id, "👍", "u:1", true), { "👍": 1 });
    assert.deepEqual(await react(a.id, "👍", "u:1", true), { "👍": 1 }, "idempotent");
    assert.deepEqual(await react(a.id, "👍", "u:2", true), { "👍": 2 });
    assert.deepEqual(await react(a.id, "🎉", "u:1", true), { "👍": 2, "🎉": 1 });
    assert.deepEqual(await react(a.id, "👍", "u:1", false), { "👍": 1, "🎉": 1 });
    assert.deepEqual(await react(a.id, "👍", "u:1", false), { "👍": 1, "🎉": 1 }, "idempotent");
    assert.deepEqual(await react(a.id, "🎉", "u:1", false), { "👍": 1 }, "no zero counts");
    assert.deepEqual(await react(b.id, "👍", "u:3", false), {}, "never reacted");
    // Any text is just a key.
    const odd = await react(b.id, "__proto__", "u:1", true);
    assert.equal(Object.getPrototypeOf(odd), Object.prototype);
    assert.deepEqual(Object.entries(odd), [["__proto__", 1]]);
    assert.deepEqual(
      Object.entries((await store.messages.get(b.id))?.reactions ?? {}),
      [["__proto__", 1]],
    );
    assert.deepEqual(await react(b.id, "__proto__", "u:1", false), {});
    // In one turn, in order.
    assert.deepEqual(
      await Promise.all([
        react(b.id, "❤️", "u:1", true),
        react(b.id, "❤️", "u:2", true),
        react(b.id, "❤️", "u:1", true),
        react(b.id, "❤️", "u:2", false),
      ]),
      [{ "❤️": 1 }, { "❤️": 2 }, { "❤️": 2 }, { "❤️": 1 }],
    );
    assert.deepEqual(
      (await store.messages.history({ room: "#r" }, undefined, 10)).map((m) => m.reactions),
      [{ "👍": 1 }, { "❤️": 1 }],
    );
    assert.deepEqual((await store.messages.get(a.id))?.reactions, { "👍": 1 });
    await react(b.id, "❤️", "u:1", false);
    const page = await store.messages.history({ room: "#r" }, undefined, 10);
    assert.equal("reactions" in page[1]!, false, "none: no field");
    assert.deepEqual(
      (await store.messages.search(["alpha"], { rooms: ["#r"] }, 10))[0]?.reactions,
      { "👍": 1 },
    );
    const dm = await store.messages.append({
      from: "x",
      to: "bob",
      text: "dm",
      ts: 3,
      pendingFor: [bob.id],
    });
    await react(dm.id, "👀", "u:7", true);
    assert.deepEqual((await store.messages.pendingFor(bob.id))[0]?.reactions, { "👀": 1 });
    // A page of many: each message gets its own counts.
    const many: number[] = [];
    for (let i = 0; i < 40; i++) {
      many.push(
        (await store.messages.append({ room: "#many", from: "x", text: `${i}`, ts: i })).id,
      );
    }
    await Promise.all(
      many.flatMap((id, i) =>
        Array.from({ length: i % 4 }, (_, who) => react(id, i % 2 ? "a" : "b", `u:${who}`, true))
      ),
    );
    const counts = (await store.messages.history({ room: "#many" }, undefined, 100))
      .map((m) => m.reactions);
    assert.deepEqual(
      counts,
      many.map((_, i) => i % 4 === 0 ? undefined : { [i % 2 ? "a" : "b"]: i % 4 }),
    );
  });

  test("search: every word as a prefix, in any order, case-insensitively; newest first; limit", async (store) => {
    const texts = [
      "Deploying the release tonight",
      "release notes are ready",
      "the deploy failed",
      "tonight we celebrate the RELEASE",
      "nothing to see",
    ];
    const ids: number[] = [];
    for (const [i, text] of texts.entries()) {
      ids.push((await store.messages.append({ room: "#dev", from: "a", text, ts: i })).id);
    }
    const scope = { rooms: ["#dev"] };
    const found = async (words: string[], limit = 10) =>
      (await store.messages.search(words, scope, limit)).map((m) => ids.indexOf(m.id));
    assert.deepEqual(await found(["release"]), [3, 1, 0], "newest first");
    assert.deepEqual(await found(["RELEASE", "tonight"]), [3, 0], "all words, any order");
    assert.deepEqual(await found(["tonight", "release"]), [3, 0]);
    assert.deepEqual(await found(["depl"]), [2, 0], "prefixes");
    assert.deepEqual(await found(["depl", "fail"]), [2]);
    assert.deepEqual(await found(["eploy"]), [], "a prefix, not any substring");
    assert.deepEqual(await found(["release"], 2), [3, 1], "limit");
    assert.deepEqual(await found([]), [], "no words, nothing");
    assert.deepEqual(await found(["absent"]), []);
    const [hit] = await store.messages.search(["notes"], scope, 1);
    assert.deepEqual(hit, {
      type: "message",
      id: ids[1],
      room: "#dev",
      from: "a",
      text: "release notes are ready",
      ts: 1,
    });
    // Many matches, a small limit: the newest ones.
    const more: number[] = [];
    for (let i = 0; i < 60; i++) {
      more.push(
        (await store.messages.append({ room: "#dev", from: "a", text: `item ${i}`, ts: i })).id,
      );
    }
    assert.deepEqual(
      (await store.messages.search(["item"], scope, 7)).map((m) => m.id),
      more.slice(-7).reverse(),
    );
  });

  test("search: only rooms in scope and the direct messages of dmsOf, both ways", async (store) => {
    const say = async (m: Omit<NewMessage, "from" | "text" | "ts">, from: string) =>
      (await store.messages.append({ ...m, from, text: `needle from ${from}`, ts: 0 })).id;
    const inA = await say({ room: "#A" }, "x");
    const inB = await say({ room: "#b" }, "x");
    await say({ room: "#c" }, "x");
    const toBob = await say({ to: "Bob" }, "alice");
    const fromBob = await say({ to: "carol" }, "BOB");
    await say({ to: "carol" }, "alice"); // neither is bob
    await say({ to: "bobby" }, "alice"); // a name that starts like bob
    await say({ to: "ob" }, "alice");
    await say({ to: "al" }, "xbob");
    const found = async (rooms: string[], dmsOf?: string) =>
      (await store.messages.search(["needle"], { rooms, ...(dmsOf ? { dmsOf } : {}) }, 100))
        .map((m) => m.id).sort((p, q) => p - q);
    assert.deepEqual(await found(["#a", "#B"]), [inA, inB], "rooms by name, any case");
    assert.deepEqual(await found(["#a", "#nowhere"]), [inA]);
    assert.deepEqual(await found(["#A"], "bob"), [inA, toBob, fromBob], "sent and received");
    assert.deepEqual(await found([], "BOB"), [toBob, fromBob]);
    assert.deepEqual(await found([], "bo"), [], "the whole name, not a part of it");
    assert.deepEqual(await found([], "b"), []);
    assert.deepEqual(await found([]), [], "an empty scope finds nothing");
    assert.deepEqual(await found(["#nowhere"]), []);
    // A DM in the results reads as history does: to, no room.
    const [dm] = await store.messages.search(["needle"], { rooms: [], dmsOf: "carol" }, 1);
    assert.equal(dm?.to, "carol");
    assert.equal(dm?.room, undefined);
  });

  test("search: the user's words are never query syntax", async (store) => {
    const texts = [
      'she said a"b to me',
      "hello there",
      "world peace",
      "hello or else nearby",
      "hello not there",
      "text: colons (and parens) * stars ^carets -dashes",
    ];
    const ids: number[] = [];
    for (const [i, text] of texts.entries()) {
      ids.push((await store.messages.append({ room: "#q", from: "a", text, ts: i })).id);
    }
    const found = async (...words: string[]) =>
      (await store.messages.search(words, { rooms: ["#q"] }, 10)).map((m) => ids.indexOf(m.id));
    assert.deepEqual(await found('a"b'), [0]);
    assert.deepEqual(await found("hello", "OR", "world"), [], "OR is a word, not an operator");
    assert.deepEqual(await found("hello", "OR"), [3], "…found as a word");
    assert.deepEqual(await found("hello", "NOT", "there"), [4], "NOT too");
    assert.deepEqual(await found("hello", "AND"), []);
    assert.deepEqual(await found("NEAR("), [3]);
    assert.deepEqual(await found("NEAR(hello", "there)"), [], "not a NEAR group");
    assert.deepEqual(await found("text:", "colons"), [5], "not a column filter");
    assert.deepEqual(await found("text:colons"), [5]);
    assert.deepEqual(await found("{text}:"), [5], "not a column set: the word text");
    assert.deepEqual(await found("(and", "parens)"), [5]);
    assert.deepEqual(await found("^carets"), [5]);
    assert.deepEqual(await found("-dashes"), [5]);
    assert.deepEqual(await found("hello", "*"), [4, 3, 1], "a word of no letters is ignored");
    for (
      const words of [["*"], ['"'], ['"""'], [""], ["   "], ["(", ")"], ["{}:"], ["-"], ["^"], [
        "\0",
      ]]
    ) {
      assert.deepEqual(await found(...words), [], JSON.stringify(words));
    }
  });

  test("files: create, get, uses, bytesOwnedBy, blobInUse, expire", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    const record = (id: string, sha256: string, created: number, size = 1): FileRecord => ({
      id,
      sha256,
      size,
      name: `${id}.bin`,
      type: "application/octet-stream",
      ownerId: alice.id,
      created,
    });
    const files = [
      record("sent-old", "aa", 100),
      record("sent-new", "bb", 5000),
      record("orphan-old", "cc", 100),
      record("orphan-new", "dd", 5000),
      record("dup-of-new", "bb", 100),
    ];
    for (const f of files) await store.files.create(f);
    await store.files.create({ ...record("bobs", "ee", 100, 40), ownerId: bob.id });
    assert.deepEqual(await store.files.get("sent-old"), files[0]);
    assert.equal(await store.files.get("nope"), undefined);
    const ref = ({ id, name, size, type, sha256 }: FileRecord) => ({
      id,
      name,
      size,
      type,
      sha256,
    });
    await store.messages.append({
      room: "#R",
      from: "alice",
      text: "",
      ts: 1,
      file: ref(files[0]!),
    });
    await store.messages.append({
      room: "#r",
      from: "alice",
      text: "",
      ts: 1,
      file: ref(files[1]!),
    });
    await store.messages.append({
      from: "alice",
      to: "Bob",
      text: "",
      ts: 1,
      file: ref(files[1]!),
    });
    await store.messages.append({
      room: "#s",
      from: "alice",
      text: "",
      ts: 1,
      file: ref(files[4]!),
    });
    assert.deepEqual(await store.files.uses("sent-new"), { rooms: ["#R"], dmKeys: ["alice bob"] });
    assert.deepEqual(await store.files.uses("orphan-old"), { rooms: [], dmKeys: [] });
    assert.equal(await store.files.bytesOwnedBy(alice.id), 5);
    assert.equal(await store.files.bytesOwnedBy(bob.id), 40);
    assert.equal(await store.files.bytesOwnedBy(bob.id + 100), 0);
    assert.equal(await store.files.blobInUse("bb"), true);
    assert.equal(await store.files.blobInUse("zz"), false);
    // Keep sent files; forget orphans older than 1000.
    assert.deepEqual((await store.files.expire(-Infinity, 1000)).sort(), ["cc", "ee"]);
    assert.equal(await store.files.get("orphan-old"), undefined);
    assert.equal((await store.files.get("orphan-new"))?.id, "orphan-new");
    assert.equal(await store.files.bytesOwnedBy(alice.id), 4);
    // Retention: everything older than 1000 goes; "bb" is still used by sent-new.
    assert.deepEqual(await store.files.expire(1000, 1000), ["aa"]);
    assert.equal(await store.files.get("dup-of-new"), undefined);
    assert.equal(await store.files.blobInUse("bb"), true);
    assert.deepEqual(await store.files.expire(1000, 1000), []);
    await assert.rejects(store.files.create(files[1]!), "a file id is unique");
  });

  test("accounts: setAdmin shows in every UserRecord, and survives disabling", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    assert.equal(alice.admin, false);
    await store.accounts.setAdmin(alice.id, true);
    assert.equal((await store.accounts.getUser("ALICE"))?.admin, true);
    assert.equal((await store.accounts.getUserById(alice.id))?.admin, true);
    assert.deepEqual((await store.accounts.listUsers()).map((u) => [u.name, u.admin]), [
      ["alice", true],
      ["bob", false],
    ]);
    await store.accounts.createSession(alice.id, token(1), 0, DAY);
    assert.equal((await store.accounts.useSession(token(1), 1, DAY))?.admin, true);
    await store.accounts.setDisabled(alice.id, true);
    assert.deepEqual(await store.accounts.getUser("alice"), {
      ...alice,
      disabled: true,
      admin: true,
    });
    await store.accounts.setAdmin(alice.id, false);
    assert.equal((await store.accounts.getUser("alice"))?.admin, false);
    assert.equal((await store.accounts.getUser("bob"))?.admin, false, "others untouched");
    await store.accounts.setAdmin(bob.id + 1000, true); // no such account: nothing happens
  });

  test("rooms: claimRoom creates once, case-insensitively; an existing room keeps its owner", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    const fresh: RoomRecord = {
      name: "#Ops",
      ownerId: alice.id,
      inviteOnly: false,
      moderated: false,
    };
    assert.deepEqual(await store.moderation.claimRoom("#Ops", alice.id), {
      room: fresh,
      created: true,
    });
    assert.deepEqual(await store.moderation.claimRoom("#OPS", bob.id), {
      room: fresh,
      created: false,
    }, "the first name's case and owner stay");
    // Two claims in one turn: exactly one creates.
    const both = await Promise.all([
      store.moderation.claimRoom("#race", bob.id),
      store.moderation.claimRoom("#RACE", alice.id),
    ]);
    assert.deepEqual(both.map((c) => [c.created, c.room.ownerId, c.room.name]), [
      [true, bob.id, "#race"],
      [false, bob.id, "#race"],
    ]);
    // Rooms made by a message, a membership or a guest have no owner, and keep none.
    await store.messages.append({ room: "#Chat", from: "guest1", text: "hi", ts: 0 });
    await store.memberships.add(bob.id, "#Lobby");
    const { ownerId: _, ...unowned } = fresh;
    assert.deepEqual(await store.moderation.claimRoom("#guests", undefined), {
      room: { ...unowned, name: "#guests" },
      created: true,
    });
    const existing: [string, string][] = [
      ["#chat", "#Chat"],
      ["#LOBBY", "#Lobby"],
      ["#Guests", "#guests"],
    ];
    for (const [name, stored] of existing) {
      const claim = await store.moderation.claimRoom(name, alice.id);
      assert.equal(claim.created, false, name);
      assert.equal(claim.room.name, stored, name);
      assert.equal(claim.room.ownerId, undefined, `${name} has no owner`);
    }
    // A claimed room is the same room messages and memberships use.
    await store.messages.append({ room: "#ops", from: "alice", text: "in ops", ts: 1 });
    await store.memberships.add(bob.id, "#oPs");
    assert.deepEqual(
      (await store.messages.history({ room: "#OPS" }, undefined, 5)).map((m) => m.room),
      ["#Ops"],
    );
    assert.deepEqual(await store.memberships.of(bob.id), ["#Lobby", "#Ops"]);
    await assert.rejects(
      store.moderation.claimRoom("#orphan", bob.id + 1000),
      "the owner must be an account",
    );
    assert.equal((await store.moderation.claimRoom("#orphan", undefined)).created, true);
  });

  test("rooms: topic and modes are stored; clearing the topic clears who set it", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    await store.moderation.claimRoom("#Ops", alice.id);
    await store.moderation.setTopic("#ops", "Release on Friday", "alice");
    await store.moderation.setModes("#OPS", { inviteOnly: true, moderated: false });
    const room = async (name: string) => (await store.moderation.claimRoom(name, undefined)).room;
    assert.deepEqual(await room("#ops"), {
      name: "#Ops",
      ownerId: alice.id,
      topic: "Release on Friday",
      topicBy: "alice",
      inviteOnly: true,
      moderated: false,
    });
    await store.moderation.setModes("#ops", { inviteOnly: false, moderated: true });
    await store.moderation.setTopic("#ops", undefined, "bob");
    assert.deepEqual(await room("#ops"), {
      name: "#Ops",
      ownerId: alice.id,
      inviteOnly: false,
      moderated: true,
    });
    // Settings of a room nobody claimed yet are kept too (the room then has no owner).
    await store.moderation.setTopic("#new", "hello", "server");
    const made = await store.moderation.claimRoom("#NEW", alice.id);
    assert.equal(made.created, false);
    assert.equal(made.room.topic, "hello");
    assert.equal(made.room.ownerId, undefined);
  });

  test("rooms: operators are added once and removed, per room, case-insensitively", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    assert.deepEqual(await store.moderation.operators("#ops"), []);
    await store.moderation.setOperator("#Ops", bob.id, true);
    await store.moderation.setOperator("#ops", bob.id, true);
    await store.moderation.setOperator("#OPS", alice.id, true);
    await store.moderation.setOperator("#other", alice.id, true);
    assert.deepEqual(
      await store.moderation.operators("#ops"),
      [alice.id, bob.id].sort((a, b) => a - b),
    );
    await store.moderation.setOperator("#oPs", alice.id, false);
    await store.moderation.setOperator("#ops", alice.id, false); // not one any more: no-op
    await store.moderation.setOperator("#nowhere", alice.id, false);
    assert.deepEqual(await store.moderation.operators("#ops"), [bob.id]);
    assert.deepEqual(await store.moderation.operators("#Other"), [alice.id]);
    assert.deepEqual(await store.moderation.operators("#nowhere"), []);
    await assert.rejects(store.moderation.setOperator("#ops", bob.id + 1000, true));
  });

  test("bans and mutes: one per kind and target, replaced, lifted by account or name", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    const ban = (target: Restriction["target"], ts: number, reason?: string): Restriction => ({
      kind: "ban",
      target,
      by: "alice",
      ...(reason === undefined ? {} : { reason }),
      ts,
    });
    assert.deepEqual(await store.moderation.restrictions("#ops"), []);
    await store.moderation.restrict("#ops", ban({ userId: bob.id }, 1, "spam"));
    await store.moderation.restrict("#ops", ban({ name: "Guest7", ip: "10.0.0.7" }, 2));
    await store.moderation.restrict("#OPS", { ...ban({ userId: bob.id }, 3), kind: "mute" });
    await store.moderation.restrict("#ops", { ...ban({ name: "quiet" }, 4), kind: "mute" });
    await store.moderation.restrict("#elsewhere", ban({ userId: bob.id }, 5));
    assert.deepEqual(await store.moderation.restrictions("#Ops"), [
      ban({ userId: bob.id }, 1, "spam"),
      ban({ name: "guest7", ip: "10.0.0.7" }, 2),
      { ...ban({ userId: bob.id }, 3), kind: "mute" },
      { ...ban({ name: "quiet" }, 4), kind: "mute" },
    ]);
    // The same kind for the same account or name replaces; the other kind stays.
    await store.moderation.restrict("#ops", { ...ban({ userId: bob.id }, 6, "again"), by: "root" });
    await store.moderation.restrict("#ops", ban({ name: "GUEST7", ip: "10.0.0.8" }, 7, "evading"));
    const now = await store.moderation.restrictions("#ops");
    assert.equal(now.length, 4);
    assert.deepEqual(now.filter((r) => r.kind === "ban"), [
      { ...ban({ userId: bob.id }, 6, "again"), by: "root" },
      ban({ name: "guest7", ip: "10.0.0.8" }, 7, "evading"),
    ]);
    // Lifting: by account, or by name whatever its case; whether there was one.
    assert.equal(await store.moderation.unrestrict("#OPS", "ban", { userId: bob.id }), true);
    assert.equal(await store.moderation.unrestrict("#ops", "ban", { userId: bob.id }), false);
    assert.equal(await store.moderation.unrestrict("#ops", "ban", { userId: alice.id }), false);
    assert.equal(await store.moderation.unrestrict("#ops", "mute", { name: "Guest7" }), false);
    assert.equal(await store.moderation.unrestrict("#ops", "ban", { name: "gUeSt7" }), true);
    assert.equal(await store.moderation.unrestrict("#nowhere", "ban", { name: "x" }), false);
    assert.deepEqual(await store.moderation.restrictions("#ops"), [
      { ...ban({ userId: bob.id }, 3), kind: "mute" },
      { ...ban({ name: "quiet" }, 4), kind: "mute" },
    ]);
    assert.deepEqual(await store.moderation.restrictions("#elsewhere"), [
      ban({ userId: bob.id }, 5),
    ]);
    assert.deepEqual(await store.moderation.restrictions("#nowhere"), []);
  });

  test("invitations: by account or guest name, taken exactly once", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    await store.moderation.invite("#Club", { userId: bob.id });
    await store.moderation.invite("#club", { userId: bob.id }); // once
    await store.moderation.invite("#club", { name: "Visitor", ip: "10.1.1.1" });
    assert.equal(await store.moderation.takeInvite("#club", { userId: alice.id }), false);
    assert.equal(await store.moderation.takeInvite("#other", { userId: bob.id }), false);
    const takes = await Promise.all([
      store.moderation.takeInvite("#CLUB", { userId: bob.id }),
      store.moderation.takeInvite("#club", { userId: bob.id }),
    ]);
    assert.deepEqual(takes, [true, false], "exactly once, even in one turn");
    assert.equal(await store.moderation.takeInvite("#club", { name: "visitor" }), true);
    assert.equal(await store.moderation.takeInvite("#club", { name: "VISITOR" }), false);
    await store.moderation.invite("#club", { userId: bob.id });
    assert.equal(await store.moderation.takeInvite("#club", { userId: bob.id }), true, "again");
  });

  test("deleting an account drops its roles, bans, mutes and invitations; its rooms lose their owner", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const bob = (await store.accounts.createUser("bob", "h", 0))!;
    await store.moderation.claimRoom("#mine", alice.id);
    await store.moderation.claimRoom("#bobs", bob.id);
    for (const room of ["#mine", "#bobs"]) {
      await store.moderation.setOperator(room, alice.id, true);
      await store.moderation.setOperator(room, bob.id, true);
      for (const userId of [alice.id, bob.id]) {
        await store.moderation.restrict(room, {
          kind: "mute",
          target: { userId },
          by: "x",
          reason: undefined,
          ts: 0,
        });
        await store.moderation.invite(room, { userId });
      }
    }
    await store.moderation.restrict("#mine", {
      kind: "ban",
      target: { name: "alice" },
      by: "x",
      reason: undefined,
      ts: 0,
    });
    await store.accounts.deleteUser(alice.id);
    const mine = await store.moderation.claimRoom("#mine", bob.id);
    assert.deepEqual([mine.created, mine.room.ownerId], [false, undefined]);
    assert.equal((await store.moderation.claimRoom("#bobs", undefined)).room.ownerId, bob.id);
    for (const room of ["#mine", "#bobs"]) {
      assert.deepEqual(await store.moderation.operators(room), [bob.id], room);
      assert.deepEqual(
        (await store.moderation.restrictions(room)).map((r) => r.target),
        room === "#mine" ? [{ userId: bob.id }, { name: "alice" }] : [{ userId: bob.id }],
        `${room}: a guest-name ban is not the account's`,
      );
      assert.equal(await store.moderation.takeInvite(room, { userId: alice.id }), false, room);
      assert.equal(await store.moderation.takeInvite(room, { userId: bob.id }), true, room);
    }
    // A new account of the same name inherits nothing.
    const again = (await store.accounts.createUser("alice", "h", 1))!;
    assert.deepEqual(await store.moderation.operators("#mine"), [bob.id]);
    assert.equal(await store.moderation.takeInvite("#mine", { userId: again.id }), false);
  });

  test("audit log: newest first, paged with before", async (store) => {
    assert.deepEqual(await store.moderation.auditLog(10), []);
    for (let i = 0; i < 7; i++) {
      await store.moderation.audit({
        ts: 1000 + i,
        actor: i % 2 ? "admin" : "alice",
        action: ["kick", "ban", "topic", "passwd"][i % 4]!,
        room: i % 4 === 3 ? undefined : "#ops",
        target: i % 4 === 2 ? undefined : `user${i}`,
        detail: i === 2 ? "a new topic" : undefined,
      });
    }
    const all = await store.moderation.auditLog(100);
    assert.deepEqual(all.map((e) => e.ts), [1006, 1005, 1004, 1003, 1002, 1001, 1000]);
    assertIncreasing(all.map((e) => e.id).reverse());
    assert.deepEqual(all.at(-1), {
      id: all.at(-1)!.id,
      ts: 1000,
      actor: "alice",
      action: "kick",
      room: "#ops",
      target: "user0",
    });
    assert.deepEqual(all.find((e) => e.ts === 1002), {
      id: all.find((e) => e.ts === 1002)!.id,
      ts: 1002,
      actor: "alice",
      action: "topic",
      room: "#ops",
      detail: "a new topic",
    });
    assert.equal(all.find((e) => e.ts === 1003)!.room, undefined);
    const page1 = await store.moderation.auditLog(3);
    assert.deepEqual(page1, all.slice(0, 3));
    const page2 = await store.moderation.auditLog(3, page1.at(-1)!.id);
    assert.deepEqual(page2, all.slice(3, 6));
    const page3 = await store.moderation.auditLog(3, page2.at(-1)!.id);
    assert.deepEqual(page3, all.slice(6));
    assert.deepEqual(await store.moderation.auditLog(3, page3.at(-1)!.id), []);
  });

  test("administrators' events: ids increase, read oldest first after an id", async (store) => {
    assert.equal(await store.moderation.lastAdminEvent(), 0);
    assert.deepEqual(await store.moderation.adminEventsAfter(0), []);
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const ids: number[] = [];
    ids.push(
      await store.moderation.postAdminEvent({
        ts: 5,
        kind: "role",
        userId: alice.id,
        name: "alice",
      }),
    );
    ids.push(
      await store.moderation.postAdminEvent({
        ts: 6,
        kind: "revoke",
        userId: alice.id,
        name: "alice",
      }),
    );
    // Events outlive the account they name.
    await store.accounts.deleteUser(alice.id);
    ids.push(
      await store.moderation.postAdminEvent({
        ts: 7,
        kind: "revoke",
        userId: alice.id,
        name: "alice",
      }),
    );
    assertIncreasing(ids);
    assert.ok(ids[0]! > 0);
    assert.equal(await store.moderation.lastAdminEvent(), ids[2]);
    assert.deepEqual(await store.moderation.adminEventsAfter(0), [
      { id: ids[0], ts: 5, kind: "role", userId: alice.id, name: "alice" },
      { id: ids[1], ts: 6, kind: "revoke", userId: alice.id, name: "alice" },
      { id: ids[2], ts: 7, kind: "revoke", userId: alice.id, name: "alice" },
    ]);
    assert.deepEqual(
      (await store.moderation.adminEventsAfter(ids[0]!)).map((e) => e.id),
      ids.slice(1),
    );
    assert.deepEqual(await store.moderation.adminEventsAfter(ids[2]!), []);
  });

  test("a failing operation rejects alone; the rest of its turn commits", async (store) => {
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    const results = await Promise.allSettled([
      store.messages.append({ room: "#a", from: "alice", text: "before", ts: 0 }),
      store.memberships.add(alice.id, "#a"),
      store.memberships.add(alice.id + 1000, "#brand-new"), // no such account: a foreign key
      store.accounts.createSession(alice.id, token(1), 0, DAY),
      store.accounts.createSession(alice.id, token(1), 0, DAY), // the same token again
      store.messages.append({ room: "#a", from: "alice", text: "after", ts: 1 }),
      store.memberships.of(alice.id), // a read after the writes sees them
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    const reason = (results[2] as PromiseRejectedResult).reason;
    assert.ok(reason instanceof Error, "an Error");
    assert.match(reason.message, /foreign key/i);
    assert.deepEqual((results[6] as PromiseFulfilledResult<string[]>).value, ["#a"]);
    const placed = [results[0], results[5]].map((r) => (r as PromiseFulfilledResult<Placed>).value);
    assert.deepEqual(placed.map((p) => p.seq), [1, 2], "no gap");
    assert.deepEqual(await store.memberships.of(alice.id), ["#a"]);
    assert.equal((await store.accounts.useSession(token(1), 1, DAY))?.id, alice.id);
    assert.deepEqual(
      (await store.messages.history({ room: "#a" }, undefined, 10)).map((m) => m.text),
      ["before", "after"],
    );
    // The room the failed membership named was not left behind half-made.
    await store.memberships.add(alice.id, "#Brand-New");
    assert.deepEqual(await store.memberships.of(alice.id), ["#a", "#Brand-New"]);
  });

  test("a read issued after a write in the same turn sees it", async (store) => {
    const created = store.accounts.createUser("dora", "h", 0);
    const found = store.accounts.getUser("DORA");
    const appended = store.messages.append({ room: "#x", from: "dora", text: "hi", ts: 0 });
    const history = store.messages.history({ room: "#x" }, undefined, 10);
    assert.deepEqual(await found, await created);
    assert.deepEqual((await history).map((m) => m.id), [(await appended).id]);
  });

  test("index: indexes what was stored since, then says it is up to date; search needs no call", async (store) => {
    for (let i = 0; i < 5; i++) {
      await store.messages.append({ room: "#idx", from: "a", text: `needle ${i}`, ts: i });
    }
    // A search right after the appends finds them, whether or not the indexer ran.
    const found = await store.messages.search(["needle"], { rooms: ["#idx"] }, 10);
    assert.equal(found.length, 5);
    await store.messages.append({ room: "#idx", from: "a", text: "needle 5", ts: 5 });
    assert.ok(await store.messages.index(100) >= 1);
    assert.equal(await store.messages.index(100), 0);
    assert.equal((await store.messages.search(["needle"], { rooms: ["#idx"] }, 10)).length, 6);
  });

  test("read markers only move forward; unread counts rooms and direct conversations, newest first", async (store) => {
    const alice = (await store.accounts.createUser("Alice", "h", 0))!;
    const r1 = await store.messages.append({ room: "#ops", from: "bob", text: "one", ts: 1 });
    await store.messages.append({ room: "#ops", from: "bob", text: "two", ts: 2 });
    await store.messages.append({ room: "#ops", from: "bob", text: "three", ts: 3 });
    await store.messages.append({ to: "alice", from: "carol", text: "hi", ts: 4 });
    const mine = await store.messages.append({ to: "carol", from: "Alice", text: "yo", ts: 5 });
    await store.messages.append({ to: "alice", from: "bob", text: "psst", ts: 6 });
    assert.equal(await store.messages.markRead(alice.id, { room: "#OPS" }, r1.id), r1.id);
    assert.equal(await store.messages.markRead(alice.id, { room: "#ops" }, 0), r1.id, "not back");
    const state = await store.messages.unread(alice.id, "Alice", ["#ops", "#quiet"], 10);
    assert.deepEqual(state.rooms, [
      { room: "#ops", read: r1.id, unread: 2 },
      { room: "#quiet", read: 0, unread: 0 },
    ]);
    assert.deepEqual(state.conversations.map((c) => [c.with, c.unread, c.last.text]), [
      ["bob", 1, "psst"],
      ["carol", 1, "yo"], // carol's "hi" is unread; alice's own "yo" is not counted
    ]);
    await store.messages.markRead(alice.id, { with: "CAROL" }, mine.id);
    const after = await store.messages.unread(alice.id, "alice", [], 1);
    assert.deepEqual(after.conversations.map((c) => [c.with, c.unread]), [["bob", 1]], "limit 1");
  });

  test("calls resolve in the order they were made, across batches and large answers", async (store) => {
    // The direct-message service relies on it: a login's read of its waiting messages and a
    // sender's take of one are seen in the order the store ran them.
    const alice = (await store.accounts.createUser("alice", "h", 0))!;
    for (let i = 0; i < 30; i++) {
      await store.messages.append({ room: "#big", from: "bob", text: `${i}`, ts: i });
    }
    const order: number[] = [];
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 5000; i++) {
      const call = i % 3 === 0
        ? store.messages.history({ room: "#big" }, undefined, 30) // 30 rows: answers come in parts
        : i % 3 === 1
        ? store.memberships.add(alice.id, `#r${i % 50}`)
        : store.accounts.getUserById(alice.id);
      calls.push(call.then(() => void order.push(i)));
    }
    await Promise.all(calls);
    assert.deepEqual(order, Array.from({ length: 5000 }, (_, i) => i));
  });

  Deno.test(`${backend.name}: dispose finishes queued writes; later calls reject`, async () => {
    const store = await backend.open();
    const appended = store.messages.append({ room: "#a", from: "a", text: "x", ts: 0 });
    const created = store.accounts.createUser("eve", "h", 0);
    await store[Symbol.asyncDispose]();
    assert.deepEqual((await appended).seq, 1);
    assert.equal((await created)?.name, "eve");
    await assert.rejects(store.accounts.getUser("eve"));
    await assert.rejects(store.messages.append({ room: "#a", from: "a", text: "y", ts: 1 }));
    await store[Symbol.asyncDispose](); // twice is fine
  });
}

function assertIncreasing(ids: number[]): void {
  for (let i = 1; i < ids.length; i++) {
    assert.ok(ids[i]! > ids[i - 1]!, `id ${ids[i]} after ${ids[i - 1]} (call ${i})`);
  }
}

/** Per key (a room or a pair), the seqs in call order are 1, 2, 3… */
function assertContiguousSeq(placed: Placed[], key: (i: number) => string): void {
  const next = new Map<string, number>();
  placed.forEach((p, i) => {
    const k = key(i);
    const expected = next.get(k) ?? 1;
    assert.equal(p.seq, expected, `seq of call ${i} in ${k}`);
    next.set(k, expected + 1);
  });
}
