import assert from "node:assert/strict";
import type { MessageFrame, ServerFrame } from "../src/protocol/frames.ts";
import type { Outgoing } from "../src/protocol/outgoing.ts";
import { Hub, type Member } from "../src/hub/hub.ts";
import { json } from "../src/dialects/json.ts";
import { throwsChatError } from "./_helpers.ts";

let nextId = 1;

/** A room message as the messages service builds it (the store would give the id). */
function roomMessage(hub: Hub, from: Member, room: string, text: string, action = false) {
  const frame: MessageFrame = {
    type: "message",
    id: nextId++,
    ...hub.roomSender(from, room),
    text,
    ts: 0,
  };
  if (action) frame.action = true;
  return frame;
}

/** A direct message as the direct-message service builds it. */
function directMessage(hub: Hub, from: Member, to: string, text: string): MessageFrame {
  const { from: name, to: target } = hub.directSender(from, to);
  return { type: "message", id: nextId++, to: target, from: name, text, ts: 0 };
}

interface FakeMember extends Member {
  /** The frames delivered, in order. */
  events: ServerFrame[];
  /** The Outgoing objects delivered, in order. */
  outs: Outgoing[];
}

function fake(): FakeMember {
  const events: ServerFrame[] = [];
  const outs: Outgoing[] = [];
  return {
    name: "",
    events,
    outs,
    deliver(e) {
      outs.push(e);
      events.push(e.frame);
    },
  };
}

/** Connects `count` fake members and forgets what they were told while connecting. */
function online(hub: Hub, count: number): FakeMember[] {
  const members = Array.from({ length: count }, () => fake());
  for (const member of members) hub.connect(member);
  clear(...members);
  return members;
}

function clear(...members: FakeMember[]): void {
  for (const member of members) {
    member.events.length = 0;
    member.outs.length = 0;
  }
}

/** Runs `fn` with Math.random returning `values` in turn (the last one repeats). */
function withRandom(values: number[], fn: () => void): void {
  const original = Math.random;
  let i = 0;
  Math.random = () => values[Math.min(i++, values.length - 1)]!;
  try {
    fn();
  } finally {
    Math.random = original;
  }
}

/** Alice and Bob share #general, #a and #b; Carol has left #general and shares nothing. */
function sharedRooms() {
  const hub = new Hub();
  const [alice, bob, carol] = online(hub, 3) as [FakeMember, FakeMember, FakeMember];
  for (const room of ["#a", "#b"]) {
    hub.join(alice, room);
    hub.join(bob, room);
  }
  hub.part(carol, "#general");
  clear(alice, bob, carol);
  return { hub, alice, bob, carol };
}

Deno.test("Hub.connect() gives a guest-NNNN name and puts the member in #general", () => {
  const hub = new Hub();
  const alice = fake();
  const name = hub.connect(alice);
  assert.match(name, /^guest-\d{4}$/);
  assert.equal(alice.name, name);
  assert.equal(hub.isOnline(name), true);
  assert.equal(hub.size, 1);
  assert.deepEqual(hub.roomsOf(alice), ["#general"]);
  assert.deepEqual(hub.who("#general"), { room: "#general", members: [name] });
});

Deno.test("Hub.connect() gives every member a distinct name", () => {
  const hub = new Hub();
  const members = online(hub, 300);
  const keys = new Set(members.map((m) => m.name.toLowerCase()));
  assert.equal(keys.size, 300);
  for (const member of members) assert.match(member.name, /^guest-\d{4,}$/);
  assert.equal(hub.who("#general").members.length, 300);
});

Deno.test("Hub.connect() draws again when a guest name is taken", () => {
  const hub = new Hub();
  const [a, b, c] = [fake(), fake(), fake()];
  withRandom([0.5, 0.5, 0.1], () => {
    hub.connect(a);
    hub.connect(b);
  });
  assert.equal(a.name, "guest-5500");
  assert.equal(b.name, "guest-1900");
  // Every 4-digit draw collides: the name grows a digit instead of looping forever.
  withRandom([0.5], () => hub.connect(c));
  assert.match(c.name, /^guest-\d{5}$/);
  assert.notEqual(c.name, a.name);
});

Deno.test("Hub.connect() avoids a guest name another user took in a different case", () => {
  const hub = new Hub();
  const [a, b] = [fake(), fake()];
  withRandom([0.1], () => hub.connect(a));
  hub.rename(a, "GUEST-5500");
  withRandom([0.5, 0.2], () => hub.connect(b));
  assert.equal(b.name, "guest-2800");
});

Deno.test("Hub.connect() tells the other members of #general who joined", () => {
  const hub = new Hub();
  const [alice] = online(hub, 1);
  const bob = fake();
  hub.connect(bob);
  assert.deepEqual(alice!.events, [
    { type: "presence", room: "#general", name: bob.name, event: "joined" },
  ]);
  assert.deepEqual(bob.events, []);
});

Deno.test("Hub.publish() of a room message reaches every other member once and not the sender", () => {
  const hub = new Hub();
  const [alice, bob, carol] = online(hub, 3) as [FakeMember, FakeMember, FakeMember];
  const frame = roomMessage(hub, alice, "#general", "hi");
  assert.deepEqual([alice.events, bob.events, carol.events], [[], [], []], "built, not delivered");
  hub.publish(alice, frame);
  for (const member of [bob, carol]) {
    assert.equal(member.events.length, 1);
    assert.deepEqual(member.events[0], {
      type: "message",
      id: frame.id,
      room: "#general",
      from: alice.name,
      text: "hi",
      ts: frame.ts,
    });
  }
  assert.deepEqual(alice.events, []);
});

Deno.test("Hub.publish() hands every recipient the same Outgoing instance", () => {
  const hub = new Hub();
  const [alice, ...others] = online(hub, 5) as FakeMember[];
  hub.publish(alice!, roomMessage(hub, alice!, "#general", "once"));
  const first = others[0]!.outs[0];
  assert.ok(first !== undefined);
  for (const other of others) {
    assert.equal(other.outs.length, 1);
    assert.equal(other.outs[0], first);
  }
  assert.equal(others[1]!.outs[0]!.bytes(json), first.bytes(json));
});

Deno.test("Hub.roomSender() marks actions and only actions", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  hub.publish(alice, roomMessage(hub, alice, "#general", "plain"));
  hub.publish(alice, roomMessage(hub, alice, "#general", "waves", true));
  assert.equal("action" in bob.events[0]!, false);
  assert.equal((bob.events[1] as { action?: boolean }).action, true);
});

Deno.test("Hub.roomSender() uses the room's canonical name", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  hub.publish(alice, roomMessage(hub, alice, "#GENERAL", "hi"));
  assert.equal((bob.events[0] as { room?: string }).room, "#general");
});

Deno.test("Hub.publish() of a direct message reaches only the target", () => {
  const hub = new Hub();
  const [alice, bob, carol] = online(hub, 3) as [FakeMember, FakeMember, FakeMember];
  hub.rename(bob, "bob");
  clear(alice, bob, carol);
  const frame = directMessage(hub, alice, "BOB", "psst");
  assert.equal(frame.to, "bob");
  assert.deepEqual(bob.events, [], "built, not delivered");
  hub.publish(alice, frame);
  assert.deepEqual(bob.events, [
    { type: "message", id: frame.id, to: "bob", from: alice.name, text: "psst", ts: frame.ts },
  ]);
  assert.deepEqual(alice.events, []);
  assert.deepEqual(carol.events, []);
});

Deno.test("Hub.rename() refuses a name taken in any case as name_taken", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  hub.rename(alice, "alice");
  throwsChatError(() => hub.rename(bob, "ALICE"), "name_taken");
  throwsChatError(() => hub.rename(bob, "alice"), "name_taken");
  assert.notEqual(bob.name.toLowerCase(), "alice");
  assert.equal(alice.name, "alice");
});

Deno.test("Hub.rename() refuses an invalid name as invalid_name", () => {
  const hub = new Hub();
  const [alice] = online(hub, 1) as [FakeMember];
  const before = alice.name;
  for (const name of ["", "has space", "#room", "x".repeat(33), "naïve", "a\nb"]) {
    throwsChatError(() => hub.rename(alice, name), "invalid_name");
  }
  assert.equal(alice.name, before);
  hub.rename(alice, "x".repeat(32));
  assert.equal(alice.name, "x".repeat(32));
});

Deno.test("Hub.rename() lets a member change only the case of its own name", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  hub.rename(alice, "alice");
  clear(alice, bob);
  hub.rename(alice, "Alice");
  assert.equal(alice.name, "Alice");
  assert.equal(hub.isOnline("alice"), true);
  assert.deepEqual(hub.who("#general").members.includes("Alice"), true);
  assert.deepEqual(bob.events, [
    { type: "presence", name: "alice", event: "renamed", newName: "Alice" },
  ]);
  throwsChatError(() => hub.rename(bob, "ALICE"), "name_taken");
});

Deno.test("Hub.rename() frees the old name", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  const old = alice.name;
  hub.rename(alice, "alice");
  assert.equal(hub.isOnline(old), false);
  hub.rename(bob, old);
  assert.equal(bob.name, old);
});

Deno.test("Hub.join() and Hub.part() tell only the room's other members", () => {
  const hub = new Hub();
  const [alice, bob, carol] = online(hub, 3) as [FakeMember, FakeMember, FakeMember];
  assert.deepEqual(hub.join(alice, "#ops"), {
    room: "#ops",
    members: [alice.name],
    joined: true,
  });
  assert.equal(hub.join(alice, "#ops").joined, false, "joining twice is not a new membership");
  assert.deepEqual(alice.events, []);

  const joined = hub.join(bob, "#OPS");
  assert.equal(joined.room, "#ops");
  assert.deepEqual(joined.members, [alice.name, bob.name].sort((a, b) => a.localeCompare(b)));
  assert.deepEqual(alice.events, [
    { type: "presence", room: "#ops", name: bob.name, event: "joined" },
  ]);
  assert.deepEqual(bob.events, []);
  assert.deepEqual(carol.events, []);

  clear(alice, bob, carol);
  assert.equal(hub.part(bob, "#ops"), "#ops");
  assert.deepEqual(alice.events, [
    { type: "presence", room: "#ops", name: bob.name, event: "left" },
  ]);
  assert.deepEqual(bob.events, []);
  assert.deepEqual(carol.events, []);
  assert.deepEqual(hub.roomsOf(bob), ["#general"]);
});

Deno.test("Hub.join() of a room the member is already in tells no one", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  hub.join(bob, "#general");
  hub.join(bob, "#General");
  assert.deepEqual(alice.events, []);
  assert.equal(hub.who("#general").members.length, 2);
});

Deno.test("Hub.disconnect() delivers quit once to a member sharing several rooms", () => {
  const { hub, alice, bob, carol } = sharedRooms();
  const name = alice.name;
  hub.disconnect(alice);
  assert.deepEqual(bob.events, [{ type: "presence", name, event: "quit" }]);
  assert.deepEqual(carol.events, [], "carol shares no room with alice");
  assert.deepEqual(alice.events, []);
  assert.equal(hub.isOnline(name), false);
  assert.equal(hub.size, 2);
  assert.equal(hub.who("#a").members.includes(name), false);

  hub.disconnect(alice);
  assert.equal(bob.events.length, 1, "disconnect is idempotent");
});

Deno.test("Hub.rename() delivers renamed once to a member sharing several rooms", () => {
  const { hub, alice, bob, carol } = sharedRooms();
  const old = alice.name;
  hub.rename(alice, "alice2");
  assert.deepEqual(bob.events, [
    { type: "presence", name: old, event: "renamed", newName: "alice2" },
  ]);
  assert.deepEqual(carol.events, []);
  assert.deepEqual(alice.events, []);
});

Deno.test("Hub drops an emptied room but keeps #general", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  hub.join(alice, "#tmp");
  hub.join(bob, "#gone");
  assert.deepEqual(hub.rooms(), [
    { name: "#general", members: 2 },
    { name: "#gone", members: 1 },
    { name: "#tmp", members: 1 },
  ]);
  hub.part(alice, "#tmp");
  hub.disconnect(bob);
  hub.part(alice, "#general");
  assert.deepEqual(hub.rooms(), [{ name: "#general", members: 0 }]);
  throwsChatError(() => hub.who("#tmp"), "no_such_room");
  throwsChatError(() => hub.who("#gone"), "no_such_room");
  assert.deepEqual(hub.who("#general"), { room: "#general", members: [] });
});

Deno.test("Hub keeps the permanent rooms it is given", () => {
  const hub = new Hub({ permanentRooms: ["#general", "#lobby"] });
  assert.deepEqual(hub.rooms(), [
    { name: "#general", members: 0 },
    { name: "#lobby", members: 0 },
  ]);
  const [alice] = online(hub, 1) as [FakeMember];
  hub.join(alice, "#LOBBY");
  hub.part(alice, "#lobby");
  assert.deepEqual(hub.rooms().map((r) => r.name), ["#general", "#lobby"]);
});

Deno.test("Hub refuses rooms that do not exist as no_such_room", () => {
  const hub = new Hub();
  const [alice] = online(hub, 1) as [FakeMember];
  throwsChatError(() => roomMessage(hub, alice, "#nowhere", "hi"), "no_such_room");
  throwsChatError(() => hub.part(alice, "#nowhere"), "no_such_room");
  throwsChatError(() => hub.who("#nowhere"), "no_such_room");
});

Deno.test("Hub refuses rooms the member is not in as not_in_room", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  hub.join(bob, "#ops");
  clear(bob);
  throwsChatError(() => roomMessage(hub, alice, "#ops", "hi"), "not_in_room");
  throwsChatError(() => hub.part(alice, "#ops"), "not_in_room");
  assert.deepEqual(bob.events, []);
});

Deno.test("Hub.directSender() refuses an unknown user as no_such_user", () => {
  const hub = new Hub();
  const [alice, bob] = online(hub, 2) as [FakeMember, FakeMember];
  throwsChatError(() => directMessage(hub, alice, "ghost", "boo"), "no_such_user");
  throwsChatError(() => directMessage(hub, alice, "not valid", "boo"), "invalid_name");
  assert.deepEqual(bob.events, []);
});

Deno.test("Hub refuses malformed room names as invalid_room", () => {
  const hub = new Hub();
  const [alice] = online(hub, 1) as [FakeMember];
  for (const room of ["general", "#", "#a b", "##x", "#" + "r".repeat(65), ""]) {
    throwsChatError(() => hub.join(alice, room), "invalid_room");
    throwsChatError(() => roomMessage(hub, alice, room, "hi"), "invalid_room");
    throwsChatError(() => hub.part(alice, room), "invalid_room");
    throwsChatError(() => hub.who(room), "invalid_room");
  }
  assert.deepEqual(hub.roomsOf(alice), ["#general"]);
  const longest = "#" + "r".repeat(64);
  assert.equal(hub.join(alice, longest).room, longest);
});

Deno.test("Hub with presenceLimit: big rooms stop announcing joins, leaves and quits", () => {
  const hub = new Hub({ presenceLimit: 3 });
  const members = Array.from({ length: 5 }, () => fake());
  for (const member of members) hub.connect(member);
  const [first, second, third, fourth, fifth] = members as [
    FakeMember,
    FakeMember,
    FakeMember,
    FakeMember,
    FakeMember,
  ];
  // The 5th join found 4 members (more than 3), so it was not announced.
  const joinedSeen = first.events.flatMap((e) =>
    e.type === "presence" && e.event === "joined" ? [e.name] : []
  );
  assert.deepEqual(joinedSeen, [second.name, third.name, fourth.name]);
  clear(...members);
  hub.disconnect(fifth);
  assert.deepEqual(first.events, [], "a quit in a big room is silent");
  hub.disconnect(fourth);
  assert.deepEqual(first.events, [{ type: "presence", name: fourth.name, event: "quit" }]);
  assert.equal(hub.who("#general").members.length, 3, "who stays exact");
});
