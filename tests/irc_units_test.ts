/**
 * The IRC dialect's pure parts: the shared encoders (one per set of capabilities that changes an
 * event's lines, so a fan-out is encoded once per variant) and how events look.
 */

import assert from "node:assert/strict";
import type { Services } from "../src/commands/command.ts";
import { Hub } from "../src/hub/hub.ts";
import { modeChange } from "../src/irc/render.ts";
import { IrcWorld } from "../src/irc/world.ts";
import { Outgoing } from "../src/protocol/outgoing.ts";

function world(): IrcWorld {
  const services = { hub: new Hub(), config: { maxText: 4096 } } as unknown as Services;
  return new IrcWorld(services, { serverName: "irc.test" });
}

const decode = (bytes: Uint8Array | null) => new TextDecoder().decode(bytes ?? new Uint8Array());

Deno.test("IrcWorld.encoder(): one shared encoder per set of capabilities that change events", () => {
  const w = world();
  const a = w.encoder(new Set(["server-time", "echo-message", "cap-notify"]));
  const b = w.encoder(new Set(["labeled-response", "server-time", "batch"]));
  const plain = w.encoder(new Set(["echo-message"]));
  assert.equal(a, b, "caps that do not change events share the encoder");
  assert.notEqual(a, plain);
  assert.equal(plain, w.encoder(new Set()));
  const out = new Outgoing({ type: "message", id: 7, room: "#r", from: "ann", text: "hi", ts: 0 });
  let calls = 0;
  const event = a.event.bind(a);
  a.event = (frame) => (calls++, event(frame));
  const first = out.bytes(a);
  assert.equal(out.bytes(b), first, "the same bytes for every session with the set");
  assert.equal(calls, 1, "encoded once");
  assert.equal(decode(first), "@time=1970-01-01T00:00:00.000Z :ann!ann@parley PRIVMSG #r :hi\r\n");
  assert.equal(decode(out.bytes(plain)), ":ann!ann@parley PRIVMSG #r :hi\r\n");
});

Deno.test("IrcEncoder: presence, topics, moderation and shutdown as IRC lines", () => {
  const enc = world().encoder(new Set());
  const line = (frame: ConstructorParameters<typeof Outgoing>[0]) =>
    decode(new Outgoing(frame).bytes(enc));
  assert.equal(
    line({ type: "presence", room: "#r", name: "bo", event: "joined" }),
    ":bo!bo@parley JOIN #r\r\n",
  );
  assert.equal(
    line({ type: "presence", name: "bo", event: "quit" }),
    ":bo!bo@parley QUIT :Quit\r\n",
  );
  assert.equal(
    line({ type: "presence", name: "bo", event: "renamed", newName: "bob" }),
    ":bo!bo@parley NICK bob\r\n",
  );
  assert.equal(
    line({ type: "topic", room: "#r", topic: "new one", by: "op" }),
    ":op!op@parley TOPIC #r :new one\r\n",
  );
  assert.equal(
    line({ type: "moderation", room: "#r", action: "ban", by: "op", name: "bo" }),
    ":op!op@parley MODE #r +b bo!*@*\r\n:op!op@parley KICK #r bo :Banned\r\n",
  );
  assert.equal(
    line({ type: "moderation", room: "#r", action: "mode", by: "op", modes: "+i" }),
    ":op!op@parley MODE #r +i-m\r\n",
  );
  assert.equal(line({ type: "typing", name: "bo", room: "#r" }), "");
  assert.equal(
    line({ type: "shutdown", reason: "restart", permanent: false }),
    "ERROR :Closing link: restart\r\n",
  );
  assert.equal(modeChange(""), "-im");
  assert.equal(modeChange("+im"), "+im");
});
