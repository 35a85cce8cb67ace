/**
 * The terminal client at a real terminal (a tmux pane): what it shows while a draft is typed,
 * tab completion, mentions.
 *
 * @module
 */

import assert from "node:assert/strict";
import { clientPermissions, MAIN, RawClient, startServer } from "./_helpers.ts";
import { TmuxClient, tmuxTest } from "./_tmux.ts";

/** A draft of 140+ columns: ASCII, East Asian wide characters, emoji and a combining mark. */
const DRAFT = "draft " + "abcdefghij".repeat(9) + " 漢字テスト🎉👍 cafe\u0301 " + "xyz".repeat(12) +
  " END";

for (const columns of [40, 80, 200]) {
  tmuxTest(
    `client pty: messages arrive above a long unsent draft at ${columns} columns`,
    async () => {
      await using server = await startServer();
      await using bob = await RawClient.json(server.port, "bob");
      bob.send({ type: "join", room: "#lobby", ref: "j" });
      await bob.frame((f) => f.ref === "j");
      await using tty = await TmuxClient.start(
        server.port,
        ["--name", "alice", "--room", "#lobby"],
        {
          columns,
        },
      );
      await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
      await tty.type(DRAFT);
      await tty.waitFor((s) => s.includes("xyz END"), "the draft");
      for (const n of ["one", "two", "three"]) {
        bob.send({ type: "send", room: "#lobby", text: `message ${n}`, ref: n });
        await bob.frame((f) => f.ref === n);
      }
      // The draft is drawn again after each message: a capture can fall in between.
      const screen = await tty.waitFor(
        (s) => s.includes("<bob> message three") && s.includes("xyz END"),
        "the third message, and the draft below it",
      ).catch(async () => await tty.joined());
      const shown = ["one", "two", "three"].filter((n) => screen.includes(`<bob> message ${n}`));
      assert.deepEqual(shown, ["one", "two", "three"], screen);
      const lines = screen.split("\n");
      const draftAt = lines.findIndex((l) => l.includes("#lobby> draft "));
      assert.ok(draftAt >= 0, `the draft is on screen:\n${screen}`);
      assert.equal(
        lines[draftAt]!.replace(/^.*#lobby> /, "").trimEnd().normalize("NFC"),
        DRAFT.normalize("NFC"),
      );
      const third = lines.findIndex((l) => l.includes("<bob> message three"));
      assert.ok(third < draftAt, `the messages are above the draft:\n${screen}`);
    },
  );
}

/** A client `alice` at a terminal in #lobby with `bob` (a raw client), and bob. */
async function lobby(
  server: { port: number },
  options: { env?: Record<string, string>; args?: string[] } = {},
) {
  const bob = await RawClient.json(server.port, "bob");
  bob.send({ type: "join", room: "#lobby", ref: "j" });
  await bob.frame((f) => f.ref === "j");
  const tty = await TmuxClient.start(
    server.port,
    ["--name", "alice", "--room", "#lobby", ...options.args ?? []],
    options.env === undefined ? {} : { env: options.env },
  );
  await tty.waitFor((s) => s.includes("You joined #lobby"), "the join");
  return { bob, tty };
}

tmuxTest("client pty: Tab completes commands, rooms and the current room's members", async () => {
  await using server = await startServer();
  const { bob, tty } = await lobby(server);
  await using _bob = bob;
  await using _tty = tty;
  await tty.type("/jo");
  await tty.keys("Tab");
  await tty.waitFor((s) => /#lobby> \/join $/m.test(s), "/join completed");
  await tty.type("#lo");
  await tty.keys("Tab");
  await tty.waitFor((s) => /#lobby> \/join #lobby $/m.test(s), "#lobby completed");
  await tty.keys("C-u");
  await tty.type("hi b");
  await tty.keys("Tab");
  await tty.waitFor((s) => /#lobby> hi bob $/m.test(s), "bob completed");
  await tty.keys("C-u");
  await tty.type("bo");
  await tty.keys("Tab");
  await tty.waitFor((s) => /#lobby> bob: $/m.test(s), "bob: at the start of the line");
});

tmuxTest("client pty: a message naming you is highlighted, names keep their colour", async () => {
  await using server = await startServer();
  const { bob, tty } = await lobby(server, { env: { NO_COLOR: "" } });
  await using _bob = bob;
  await using _tty = tty;
  bob.send({ type: "send", room: "#lobby", text: "hello there", ref: "a" });
  bob.send({ type: "send", room: "#lobby", text: "hey alice, look", ref: "b" });
  await tty.waitFor((s) => s.includes("hey alice, look"), "the mention");
  const styled = (await tty.styled()).split("\n");
  const plain = styled.find((l) => l.includes("hello there"))!;
  const mention = styled.find((l) => l.includes("hey alice, look"))!;
  // The body of a mention is bold yellow; an ordinary message's body is not styled.
  assert.match(
    mention,
    // deno-lint-ignore no-control-regex
    /\x1b\[[0-9;]*(1;33|33;1|33)[0-9;]*m(\x1b\[[0-9;]*m)*hey alice, look/,
    JSON.stringify(mention),
  );
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(plain, /\x1b\[[0-9;]*m(\x1b\[[0-9;]*m)*hello there/, JSON.stringify(plain));
  // bob's name is drawn in the same colour on both lines.
  // deno-lint-ignore no-control-regex
  const nameStyle = (l: string) => /((?:\x1b\[[0-9;]*m)+)<bob>/.exec(l)?.[1];
  assert.ok(nameStyle(plain) !== undefined, JSON.stringify(plain));
  assert.equal(nameStyle(mention), nameStyle(plain));
});

tmuxTest(
  "client pty: history replayed on a re-join shows only messages not shown yet",
  async () => {
    await using server = await startServer();
    const { bob, tty } = await lobby(server);
    await using _bob = bob;
    await using _tty = tty;
    bob.send({ type: "send", room: "#lobby", text: "seen before", ref: "a" });
    await tty.waitFor((s) => s.includes("<bob> seen before"), "the first message");
    await tty.type("/part #lobby");
    await tty.keys("Enter");
    await tty.waitFor((s) => s.includes("You left #lobby"), "the part");
    bob.send({ type: "send", room: "#lobby", text: "while away", ref: "b" });
    await bob.frame((f) => f.ref === "b");
    await tty.type("/join #lobby");
    await tty.keys("Enter");
    const screen = await tty.waitFor((s) => s.includes("<bob> while away"), "the replayed message");
    assert.equal(screen.split("<bob> seen before").length - 1, 1, screen);
    assert.equal(screen.split("<bob> while away").length - 1, 1, screen);
  },
);

tmuxTest(
  "client pty: a server's password is asked for with echo off, again when wrong",
  async () => {
    await using server = await startServer(["--server-password", "hush hush"]);
    await using watcher = await RawClient.connect(server.port);
    watcher.send({ type: "hello", proto: 1, ref: "h", serverPassword: "hush hush" });
    await watcher.frame((f) => f.ref === "h" && f.type === "welcome");
    const config = await Deno.makeTempDir({ prefix: "parley-tmux-" });
    await using tty = await TmuxClient.run(
      [Deno.execPath(), "run", ...clientPermissions(config), MAIN, "client", "127.0.0.1"].concat(
        String(server.port),
        "--name",
        "quiet",
      ),
      { config, env: { NO_COLOR: "1", XDG_CONFIG_HOME: config } },
    );
    await tty.waitFor((s) => /^Server password: $/m.test(s), "the question");
    await tty.type("not it");
    await tty.keys("Enter");
    await tty.waitFor((s) => s.includes("Wrong server password. Server password:"), "again");
    await tty.type("hush hush");
    await tty.keys("Enter");
    await tty.waitFor((s) => /> $/m.test(s), "the prompt");
    await tty.type("made it");
    await tty.keys("Enter");
    const heard = await watcher.frame((f) => f.type === "message" && f.from === "quiet");
    assert.equal(heard.text, "made it");
    const screen = await tty.screen();
    assert.doesNotMatch(screen, /hush|not it/, "never echoed");
  },
);
