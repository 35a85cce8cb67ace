/**
 * The terminal client at a real terminal (a tmux pane), for the conversation features: who is
 * typing (shown and sent), the mention bell, edits, deletions, replies with their quoted line,
 * reactions, search and `/context`, read markers and `/unread`, multi-line text, and logging in
 * with the first hello.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient } from "../src/client/chat_client.ts";
import { TokenStore } from "../src/client/token_store.ts";
import { RawClient, request, startServer, tcpProxy } from "./_helpers.ts";
import { TmuxClient, tmuxTest } from "./_tmux.ts";

const PASSWORD = "correct horse battery";

/** A raw JSON client registered (and logged in) as `name`. */
async function account(port: number, name: string): Promise<RawClient & { token: string }> {
  const c = await RawClient.json(port);
  const ack = await request(c, { type: "register", name, password: PASSWORD });
  assert.equal(ack.type, "ack", JSON.stringify(ack));
  return Object.assign(c, { token: ack.token as string });
}

/** Logs `name` in on a new raw JSON connection (another device of the account). */
async function device(port: number, name: string): Promise<RawClient> {
  const c = await RawClient.json(port);
  const ack = await request(c, { type: "login", name, password: PASSWORD });
  assert.equal(ack.type, "ack", JSON.stringify(ack));
  return c;
}

/** Starts the terminal client as the account `name` with its session token saved. */
function asAccount(
  port: number,
  name: string,
  token: string,
  args: string[] = [],
  options: { record?: string; columns?: number; env?: Record<string, string> } = {},
): Promise<TmuxClient> {
  return TmuxClient.start(port, ["--name", name, ...args], {
    ...options,
    setup: (config) => new TokenStore(`${config}/parley`).set(`127.0.0.1:${port}`, name, token),
  });
}

/** Joins `room` on a raw JSON client. */
async function join(c: RawClient, room: string): Promise<void> {
  const ack = await request(c, { type: "join", room });
  assert.equal(ack.type, "ack", JSON.stringify(ack));
}

/** Sends a message from a raw client; its id. */
async function say(c: RawClient, frame: Record<string, unknown>): Promise<number> {
  const ack = await request(c, { type: "send", ...frame });
  assert.equal(ack.type, "ack", JSON.stringify(ack));
  return ack.id as number;
}

/** The screen's rows. */
const rows = (screen: string) => screen.split("\n");

tmuxTest(
  "client pty: who is typing shows above the prompt, the draft untouched; a message or 5 s ends it",
  async () => {
    await using server = await startServer();
    await using bob = await RawClient.json(server.port, "bob");
    await using carol = await RawClient.json(server.port, "carol");
    await using dave = await RawClient.json(server.port, "dave");
    for (const c of [bob, carol]) await join(c, "#lobby");
    await using tty = await TmuxClient.start(server.port, ["--name", "alice", "--room", "#lobby"]);
    await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    await tty.type("half a thought");
    // The screen is read between writes too: wait for the draft to be back on it each time.
    const drafted = (s: string) => /^#lobby> half a thought$/m.test(s);
    await tty.waitFor(drafted, "the draft");
    await request(bob, { type: "typing", room: "#lobby" });
    let screen = await tty.waitFor((s) => s.includes("bob is typing…") && drafted(s), "bob typing");
    const at = rows(screen).findIndex((r) => r.includes("bob is typing…"));
    assert.match(rows(screen)[at + 1]!, /^#lobby> half a thought$/, screen);
    // His message ends it at once; the message is shown above, the draft stays.
    await say(bob, { room: "#lobby", text: "there it is" });
    screen = await tty.waitFor(
      (s) => s.includes("<bob> there it is") && !s.includes("bob is typing") && drafted(s),
      "bob's message, and no more typing",
    );
    assert.ok(rows(screen).some((r) => /^#lobby> half a thought$/.test(r)), screen);
    // Without a message, it goes 5 s after the last typing event.
    await request(carol, { type: "typing", room: "#lobby" });
    await tty.waitFor((s) => s.includes("carol is typing…"), "carol typing");
    const since = Date.now();
    await tty.waitFor((s) => !s.includes("carol is typing"), "carol's typing to expire", 9000);
    const shown = Date.now() - since;
    assert.ok(shown > 3500 && shown < 8000, `shown for ${shown} ms`);
    // Typing in another room is not shown; a direct message being typed is.
    await join(dave, "#elsewhere");
    await request(dave, { type: "typing", room: "#elsewhere" });
    await request(dave, { type: "typing", to: "alice" });
    screen = await tty.waitFor(
      (s) => s.includes("dave is typing to you…") && drafted(s),
      "dave typing to alice",
    );
    assert.ok(!screen.includes("dave is typing…"), screen);
    assert.ok(rows(screen).some((r) => /^#lobby> half a thought$/.test(r)), screen);
  },
);

tmuxTest(
  "client pty: typing a message sends typing, at most once per 3 s per conversation; commands do not",
  async () => {
    await using server = await startServer();
    await using proxy = tcpProxy(server.port);
    await using bob = await RawClient.json(server.port, "bob");
    await join(bob, "#lobby");
    await using tty = await TmuxClient.start(proxy.port, ["--name", "alice", "--room", "#lobby"]);
    await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    await tty.type("/who #lob");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(proxy.frames("typing").length, 0, "a command is not a message being typed");
    await tty.keys("C-u");
    // Keys for 4 s: typing goes out at the first and again after 3 s.
    const start = Date.now();
    while (Date.now() - start < 4000) {
      await tty.type("a");
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.deepEqual(await bob.frame((f) => f.type === "typing"), {
      type: "typing",
      room: "#lobby",
      name: "alice",
    });
    const inRoom = proxy.frames("typing");
    assert.equal(inRoom.length, 2, JSON.stringify(inRoom));
    assert.deepEqual(Object.keys(inRoom[0]!).sort(), ["ref", "room", "type"]);
    await tty.keys("C-u");
    await tty.type("/msg bob hel");
    assert.deepEqual(await bob.frame((f) => f.type === "typing" && f.to !== undefined), {
      type: "typing",
      to: "bob",
      name: "alice",
    });
    assert.equal(proxy.frames("typing").filter((f) => f.to === "bob").length, 1);
  },
);

tmuxTest(
  "client pty: --bell rings the terminal bell for a message naming you, and only then",
  async () => {
    await using server = await startServer();
    await using bob = await RawClient.json(server.port, "bob");
    await join(bob, "#lobby");
    await using dir = await Deno.makeTempDir({ prefix: "parley-bell-" }).then((path) => ({
      path,
      [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
    }));
    const rang = `${dir.path}/alice.out`;
    const quiet = `${dir.path}/carol.out`;
    await using alice = await TmuxClient.start(
      server.port,
      ["--name", "alice", "--room", "#lobby", "--bell"],
      { record: rang },
    );
    await using carol = await TmuxClient.start(
      server.port,
      ["--name", "carol", "--room", "#lobby"],
      { record: quiet },
    );
    for (const tty of [alice, carol]) {
      await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    }
    await say(bob, { room: "#lobby", text: "hello there" });
    await say(bob, { room: "#lobby", text: "hey alice, carol: look" });
    for (const tty of [alice, carol]) {
      await tty.waitFor((s) => s.includes("hey alice, carol: look"), "the mention");
    }
    const out = await Deno.readTextFile(rang);
    assert.equal(out.split("\x07").length - 1, 1, "one bell, for the one mention");
    const bell = out.indexOf("\x07");
    assert.ok(bell > out.indexOf("hello there"), "not for the message that does not name alice");
    assert.ok(bell < out.indexOf("hey alice"), "right before the line that names her");
    const other = await Deno.readTextFile(quiet);
    assert.ok(other.includes("hey alice, carol: look"), "carol's pane was recorded");
    assert.ok(!other.includes("\x07"), "no bell without --bell");
  },
);

tmuxTest(
  "client pty: edits, deletions, replies with the line they quote, reactions counted, code blocks on their own rows",
  async () => {
    await using server = await startServer();
    const alice = await account(server.port, "alice");
    alice.conn.close();
    await using bob = await account(server.port, "bob");
    await join(bob, "#lobby");
    await using tty = await asAccount(server.port, "alice", alice.token, ["--room", "#lobby"], {
      columns: 100,
    });
    await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    const lunch = await say(bob, { room: "#lobby", text: "lunch?" });
    await tty.waitFor((s) => s.includes("<bob> lunch?"), "bob's question");
    await tty.type(`/reply ${lunch} at noon`);
    await tty.keys("Enter");
    await tty.waitFor(
      (s) => s.includes("[#lobby] <alice> (re bob: lunch?) at noon"),
      "alice's reply",
    );
    const answer = await bob.frame((f) => f.type === "message" && f.text === "at noon");
    assert.equal(answer.replyTo, lunch);
    assert.equal(answer.room, "#lobby");
    await request(bob, { type: "edit", id: lunch, text: "lunch at 12?" });
    await tty.waitFor(
      (s) => s.includes("* bob edited a message in #lobby: lunch at 12?"),
      "the edit",
    );
    await say(bob, { replyTo: answer.id, text: "great" });
    await tty.waitFor((s) => s.includes("<bob> (re alice: at noon) great"), "bob's reply");
    await request(bob, { type: "react", id: answer.id, emoji: "🎉" });
    await tty.waitFor(
      (s) => s.includes(`* Reactions to message ${answer.id} in #lobby: 🎉1`),
      "bob's reaction",
    );
    await tty.type(`/react ${answer.id} 👍`);
    await tty.keys("Enter");
    await tty.waitFor(
      (s) => s.includes(`* Reactions to message ${answer.id} in #lobby: 🎉1 👍1`),
      "both reactions, counted",
    );
    await request(bob, { type: "delete", id: lunch });
    await tty.waitFor((s) => s.includes("* bob deleted a message in #lobby"), "the deletion");
    await say(bob, { room: "#lobby", text: "look:\n```\nconst a = 1;\n```" });
    let screen = await tty.waitFor((s) => s.includes("const a = 1;"), "the code block");
    const code = rows(screen).findIndex((r) => r.includes("<bob> look:"));
    assert.deepEqual(rows(screen).slice(code + 1, code + 4), [
      "         ```",
      "         const a = 1;",
      "         ```",
    ]);
    await tty.type("/history #lobby 4");
    await tty.keys("Enter");
    screen = await tty.waitFor(
      (s) => /History of #lobby \(4 messages[^]*<bob> look:[^]*```[^]*```/.test(s),
      "the history",
    );
    const page = rows(screen).slice(rows(screen).findIndex((r) => r.includes("History of #lobby")));
    assert.ok(page.some((r) => /<bob> \(message deleted\)$/.test(r)), screen);
    assert.ok(
      page.some((r) => /<alice> \(re bob: message deleted\) at noon 🎉1 👍1$/.test(r)),
      screen,
    );
  },
);

tmuxTest(
  "client pty: search results carry ids, and /context shows one among its neighbours",
  async () => {
    await using server = await startServer();
    const alice = await account(server.port, "alice");
    alice.conn.close();
    await using bob = await account(server.port, "bob");
    await join(bob, "#lobby");
    const ids: number[] = [];
    for (const text of ["first", "the needle is here", "third", "fourth"]) {
      ids.push(await say(bob, { room: "#lobby", text }));
    }
    await using tty = await asAccount(server.port, "alice", alice.token, ["--room", "#lobby"], {
      columns: 120,
      env: { NO_COLOR: "" },
    });
    await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    await tty.type("/search needle");
    await tty.keys("Enter");
    let screen = await tty.waitFor(
      (s) => /Search results for "needle" \(1[^]*the needle is here \(id/.test(s),
      "results",
    );
    assert.ok(screen.includes(`<bob> the needle is here (id ${ids[1]})`), screen);
    await tty.type(`/context ${ids[1]} 1`);
    await tty.keys("Enter");
    screen = await tty.waitFor(
      (s) => s.includes(`Around message ${ids[1]} in #lobby`) && s.includes(`(id ${ids[2]})`),
      "context",
    );
    const from = rows(screen).findIndex((r) => r.includes(`Around message ${ids[1]}`));
    const page = rows(screen).slice(from + 1, from + 4);
    assert.match(page[0]!, new RegExp(`<bob> first \\(id ${ids[0]}\\)$`), screen);
    assert.match(page[1]!, new RegExp(`<bob> the needle is here \\(id ${ids[1]}\\)$`), screen);
    assert.match(page[2]!, new RegExp(`<bob> third \\(id ${ids[2]}\\)$`), screen);
    // The message asked for stands out: not dimmed, unlike its neighbours.
    const styled = (await tty.styled()).split("\n");
    const line = (text: string) => styled.findLast((r) => r.includes(text))!;
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(line("the needle is here (id"), /\x1b\[2m\[#lobby\]/);
    // deno-lint-ignore no-control-regex
    assert.match(line("first (id"), /\x1b\[2m\[#lobby\] <bob> first/);
    await tty.type("/context 999999");
    await tty.keys("Enter");
    await tty.waitFor((s) => s.includes("! Cannot show history around it"), "a refusal");
  },
);

tmuxTest(
  "client pty: what the terminal shows is marked read on the server; /unread agrees with another device",
  async () => {
    await using server = await startServer();
    const alice = await account(server.port, "alice");
    alice.conn.close();
    await using bob = await account(server.port, "bob");
    await join(bob, "#lobby");
    await using phone = await device(server.port, "alice");
    await join(phone, "#lobby");
    await say(bob, { room: "#lobby", text: "one" });
    const two = await say(bob, { room: "#lobby", text: "two" });
    const before = await request(phone, { type: "unread" });
    assert.deepEqual(
      (before.rooms as { room: string; unread: number }[]).find((r) => r.room === "#lobby")?.unread,
      2,
    );
    await using tty = await asAccount(server.port, "alice", alice.token, ["--room", "#lobby"]);
    await tty.waitFor((s) => s.includes("<bob> two"), "the history replayed");
    assert.deepEqual(
      await phone.frame((f) => f.type === "read" && f.room === "#lobby"),
      { type: "read", id: two, room: "#lobby" },
    );
    const dm = await say(bob, { to: "alice", text: "psst" });
    await tty.waitFor((s) => s.includes("[dm] <bob> psst"), "the direct message");
    assert.deepEqual(await phone.frame((f) => f.type === "read" && f.with !== undefined), {
      type: "read",
      id: dm,
      with: "bob",
    });
    const after = await request(phone, { type: "unread" });
    assert.deepEqual(
      (after.rooms as { room: string; unread: number }[]).find((r) => r.room === "#lobby")?.unread,
      0,
    );
    assert.equal((after.conversations as { unread: number }[])[0]?.unread, 0);
    await tty.type("/unread");
    await tty.keys("Enter");
    await tty.waitFor((s) => s.includes("* Nothing unread"), "/unread");
  },
);

tmuxTest(
  "client pty: with a saved token the first hello logs in: nobody sees a guest arrive",
  async () => {
    await using server = await startServer();
    const alice = await account(server.port, "alice");
    alice.conn.close();
    await using bob = await RawClient.json(server.port, "bob");
    await using tty = await asAccount(server.port, "alice", alice.token);
    await tty.waitFor((s) => s.includes("Logged in as alice"), "the login");
    const screen = await tty.joined();
    assert.match(screen, /Connected to 127\.0\.0\.1:\d+ \(parley [^)]*\) as alice, in #general/);
    // bob sees alice arrive, and nothing of a guest before (or after) her.
    const seen: Record<string, unknown>[] = [];
    await bob.frame((f) => {
      seen.push(f);
      return f.type === "presence" && f.name === "alice" && f.event === "joined";
    });
    await tty.type("hello bob");
    await tty.keys("Enter");
    await bob.frame((f) => {
      seen.push(f);
      return f.type === "message" && f.text === "hello bob";
    });
    const guests = seen.filter((f) => f.type === "presence" && String(f.name).startsWith("guest-"));
    assert.deepEqual(guests, [], JSON.stringify(seen));
  },
);

tmuxTest(
  "client pty: after a reconnect the history replayed shows only what was missed",
  async () => {
    await using server = await startServer();
    const alice = await account(server.port, "alice");
    alice.conn.close();
    await using bob = await account(server.port, "bob");
    await join(bob, "#lobby");
    await using proxy = tcpProxy(server.port);
    await using tty = await asAccount(proxy.port, "alice", alice.token, ["--room", "#lobby"]);
    await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    await say(bob, { room: "#lobby", text: "before the drop" });
    await tty.waitFor((s) => s.includes("<bob> before the drop"), "the first message");
    proxy.drop();
    await tty.waitFor((s) => s.includes("Disconnected"), "the drop");
    await say(bob, { room: "#lobby", text: "while away" });
    const screen = await tty.waitFor(
      (s) => s.includes("Reconnected as alice") && s.includes("<bob> while away"),
      "the reconnect and the missed message",
    );
    assert.equal(screen.split("<bob> before the drop").length - 1, 1, screen);
    assert.equal(screen.split("<bob> while away").length - 1, 1, screen);
    // The token went in the hello again: no guest appeared meanwhile.
    assert.equal(proxy.frames("login").length, 0);
    assert.ok(proxy.frames("hello").every((h) => h.token === alice.token));
  },
);

tmuxTest(
  "client pty: /get ID PATH saves a file sent to the room, its SHA-256 checked, while the status line is in use",
  async () => {
    await using server = await startServer();
    const alice = await account(server.port, "alice");
    alice.conn.close();
    await using bob = await ChatClient.connect("127.0.0.1", server.port, { reconnect: false });
    await bob.login("bob", PASSWORD).catch(() => bob.register("bob", PASSWORD));
    await bob.join("#lobby");
    let folder = "";
    await using tty = await TmuxClient.start(server.port, ["--name", "alice", "--room", "#lobby"], {
      setup: async (config) => {
        folder = `${config}/parley`;
        await new TokenStore(folder).set(`127.0.0.1:${server.port}`, "alice", alice.token);
      },
    });
    await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    const bytes = new Uint8Array(256 * 1024).map((_, i) => i % 251);
    const file = await bob.upload(ReadableStream.from([bytes]), {
      name: "notes.bin",
      size: bytes.length,
    });
    await bob.sendFile("#lobby", file, "the notes");
    await tty.waitFor((s) => s.includes(`/get ${file.id}]`), "the file message");
    await tty.type("a draft");
    await request(await device(server.port, "bob"), { type: "typing", room: "#lobby" });
    await tty.waitFor((s) => s.includes("bob is typing…"), "bob typing");
    await tty.keys("C-u");
    await tty.type(`/get ${file.id} ${folder}/`);
    await tty.keys("Enter");
    const screen = await tty.waitFor((s) => s.includes("* Saved "), "the download");
    assert.match(screen, /\* Saved \S*\/notes\.bin \(256\.0 KiB, SHA-256 checked\)/);
    assert.deepEqual(await Deno.readFile(`${folder}/notes.bin`), bytes);
    // The status line is gone once the typing expires and the transfer is done.
    await tty.waitFor((s) => !s.includes("typing") && /#lobby> $/m.test(s), "a clean prompt", 9000);
  },
);

tmuxTest(
  "client pty: the typing line comes and goes above a draft that wraps, at 40 columns",
  async () => {
    await using server = await startServer();
    await using bob = await RawClient.json(server.port, "bob");
    await join(bob, "#lobby");
    await using tty = await TmuxClient.start(server.port, ["--name", "alice", "--room", "#lobby"], {
      columns: 40,
    });
    await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
    const draft = "a draft " + "0123456789".repeat(8) + " 漢字🎉 END";
    await tty.type(draft);
    await tty.waitFor((s) => s.includes("漢字🎉 END"), "the draft");
    await request(bob, { type: "typing", room: "#lobby" });
    let screen = await tty.waitFor(
      (s) => s.includes("bob is typing…") && s.includes("漢字🎉 END"),
      "bob typing",
    );
    const below = screen.split("\n").slice(
      screen.split("\n").findIndex((r) => r.includes("typing")),
    );
    assert.equal(
      below[1]!.replace(/^#lobby> /, "").normalize("NFC"),
      draft.normalize("NFC"),
      screen,
    );
    await say(bob, { room: "#lobby", text: "said it" });
    screen = await tty.waitFor(
      (s) => s.includes("<bob> said it") && !s.includes("typing") && s.includes("漢字🎉 END"),
      "done",
    );
    const rowsNow = screen.split("\n");
    const at = rowsNow.findIndex((r) => r.includes("#lobby> a draft"));
    assert.equal(rowsNow[at]!.replace(/^#lobby> /, "").normalize("NFC"), draft.normalize("NFC"));
    assert.ok(rowsNow.findIndex((r) => r.includes("<bob> said it")) < at, screen);
    assert.equal(screen.split("a draft").length - 1, 1, `the draft is on screen once:\n${screen}`);
  },
);
