/**
 * The terminal client at a real terminal (a tmux pane): what it shows while a draft is typed,
 * tab completion, mentions.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RawClient, startServer } from "./_helpers.ts";
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
      const screen = await tty.waitFor(
        (s) => s.includes("<bob> message three"),
        "the third message",
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
