/**
 * IRC users chatting with JSON and text-mode users in the same rooms, with the same accounts,
 * history and offline delivery; channel commands mapped onto parley's moderation; IRCv3
 * capabilities (server-time, echo-message, labeled-response, batch, chathistory, account-tag,
 * extended-join, multi-prefix) and presence commands.
 */

import assert from "node:assert/strict";
import { RawClient, request, startServer, tempDir } from "./_helpers.ts";
import { addUser, IrcClient } from "./_irc.ts";

const NAME = ["--server-name", "irc.test"];
const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

Deno.test("irc: a room conversation between an IRC user, a JSON client and an nc user", async () => {
  await using server = await startServer(NAME);
  await using irc = await IrcClient.register(server.ircPort, "ivy", { caps: ["server-time"] });
  await using json = await RawClient.json(server.port, "jay");
  await using nc = await RawClient.text(server.port, "nora");
  for (const c of [json]) {
    assert.equal((await request(c, { type: "join", room: "#mix" })).type, "ack");
  }
  nc.send("/join #mix");
  await nc.line((l) => l.startsWith("* You joined #mix"));
  irc.send("JOIN #mix");
  await irc.expect("JOIN", (m) => m.source?.startsWith("ivy!") === true && m.params[0] === "#mix");
  const names = await irc.expect("353", (m) => m.params[2] === "#mix");
  assert.deepEqual(names.params[3]!.split(" ").sort(), ["ivy", "jay", "nora"]);
  await irc.expect("366");
  // IRC to the others.
  irc.send("PRIVMSG #mix :hello from \x02IRC\x02 é");
  const seen = await json.frame((f) => f.type === "message" && f.room === "#mix");
  assert.equal(seen.from, "ivy");
  assert.equal(seen.text, "hello from IRC é");
  await nc.line((l) => l === "[#mix] <ivy> hello from IRC é");
  // The others to IRC, with server-time.
  json.send({ type: "send", room: "#mix", text: "hi ivy\nsecond line" });
  const a = await irc.expect("PRIVMSG", (m) => m.source === "jay!jay@parley");
  assert.deepEqual(a.params, ["#mix", "hi ivy"]);
  assert.match(a.tags.get("time")!, TIME_RE);
  const b = await irc.expect("PRIVMSG", (m) => m.source === "jay!jay@parley");
  assert.deepEqual(b.params, ["#mix", "second line"]);
  nc.send("/me waves");
  const action = await irc.expect("PRIVMSG", (m) => m.source === "nora!nora@parley");
  assert.deepEqual(action.params, ["#mix", "\x01ACTION waves\x01"]);
  irc.send("PRIVMSG #mix :\x01ACTION nods\x01");
  const nod = await json.frame((f) => f.type === "message" && f.from === "ivy");
  assert.equal(nod.action, true);
  assert.equal(nod.text, "nods");
  // Presence: a part, a rename, a quit.
  nc.send("/nick nora2");
  const nick = await irc.expect("NICK");
  assert.equal(nick.source, "nora!nora@parley");
  assert.deepEqual(nick.params, ["nora2"]);
  assert.equal((await request(json, { type: "part", room: "#mix" })).type, "ack");
  const part = await irc.expect("PART");
  assert.equal(part.source, "jay!jay@parley");
  json.send({ type: "join", room: "#mix" });
  assert.equal((await irc.expect("JOIN")).source, "jay!jay@parley");
  nc.send("/quit");
  const quit = await irc.expect("QUIT");
  assert.equal(quit.source, "nora2!nora2@parley");
  // A DM from IRC to the JSON user, and back.
  irc.send("PRIVMSG jay :psst");
  const dm = await json.frame((f) => f.type === "message" && f.to === "jay");
  assert.equal(dm.from, "ivy");
  json.send({ type: "send", to: "ivy", text: "psst back" });
  const back = await irc.expect("PRIVMSG", (m) => m.params[0] === "ivy");
  assert.equal(back.source, "jay!jay@parley");
  assert.equal(back.params[1], "psst back");
});

Deno.test("irc: an offline DM is stored and replayed at SASL login, with server-time or a time prefix", async () => {
  await using data = await tempDir("parley-irc-");
  await using server = await startServer([...NAME, "--data", data.path]);
  await addUser(data.path, "gus", "gus password 1");
  await addUser(data.path, "hal", "hal password 1");
  await using sender = await RawClient.json(server.port);
  assert.equal(
    (await request(sender, { type: "login", name: "hal", password: "hal password 1" })).type,
    "ack",
  );
  const sent = await request(sender, { type: "send", to: "gus", text: "while you were out" });
  assert.equal(sent.waiting, true);
  {
    await using gus = await IrcClient.register(server.ircPort, "gus", {
      caps: ["server-time"],
      sasl: ["gus", "gus password 1"],
    });
    const dm = await gus.expect("PRIVMSG", (m) => m.params[0] === "gus");
    assert.equal(dm.source, "hal!hal@parley");
    assert.equal(dm.params[1], "while you were out");
    assert.equal(new Date(dm.tags.get("time")!).getTime(), sent.ts);
  }
  // Delivered once: the next login does not get it again; a new one without server-time
  // carries its time in the text.
  await request(sender, { type: "send", to: "gus", text: "and again" });
  await new Promise((r) => setTimeout(r, 200));
  await using gus = await IrcClient.register(server.ircPort, "gus", {
    sasl: ["gus", "gus password 1"],
  });
  const dm = await gus.expect("PRIVMSG", (m) => m.params[0] === "gus");
  assert.match(dm.params[1]!, /^\[\d{4}-\d\d-\d\d \d\d:\d\d\] and again$/);
  await gus.none("PRIVMSG", 300, (m) => m.params[1]!.includes("while you were out"));
  // An IRC user's DM to an offline account waits too, and says so; to no account, 401.
  await using ivy = await IrcClient.register(server.ircPort, "ivy2");
  ivy.send("PRIVMSG nobody-at-all :x");
  await ivy.expect("401");
  await gus[Symbol.asyncDispose]();
  await new Promise((r) => setTimeout(r, 300));
  ivy.send("PRIVMSG gus :from irc, for later");
  const waits = await ivy.expect("NOTICE", (m) => m.params[1]!.includes("offline"));
  assert.match(waits.params[1]!, /^gus is offline: it will be delivered when they log in$/);
});

Deno.test("irc: history on join with server-time in a batch, and draft/chathistory", async () => {
  await using server = await startServer(NAME);
  await using json = await RawClient.json(server.port, "writer");
  await request(json, { type: "join", room: "#hist" });
  const ids: number[] = [];
  for (const text of ["one", "two", "three"]) {
    ids.push((await request(json, { type: "send", room: "#hist", text })).id as number);
  }
  await using a = await IrcClient.register(server.ircPort, "reader", {
    caps: ["server-time", "batch", "message-tags"],
  });
  a.send("JOIN #hist");
  await a.expect("366");
  const start = await a.expect("BATCH");
  assert.equal(start.params[1], "chathistory");
  assert.equal(start.params[2], "#hist");
  const id = start.params[0]!.slice(1);
  for (const text of ["one", "two", "three"]) {
    const m = await a.expect("PRIVMSG");
    assert.equal(m.params[1], text);
    assert.equal(m.tags.get("batch"), id);
    assert.match(m.tags.get("time")!, TIME_RE);
    assert.ok(m.tags.has("msgid"));
  }
  assert.deepEqual((await a.expect("BATCH")).params, [`-${id}`]);
  // A client without server-time gets the time in the text.
  await using b = await IrcClient.register(server.ircPort, "plainreader");
  b.send("JOIN #hist");
  const first = await b.expect("PRIVMSG");
  assert.match(first.params[1]!, /^\[\d{4}-\d\d-\d\d \d\d:\d\d\] one$/);
  // With draft/chathistory nothing is replayed on join; the client asks.
  await using c = await IrcClient.register(server.ircPort, "asker", {
    caps: ["server-time", "batch", "draft/chathistory", "message-tags"],
  });
  c.send("JOIN #hist");
  await c.expect("366");
  await c.none("PRIVMSG", 300);
  c.send("CHATHISTORY LATEST #hist * 2");
  await c.expect("BATCH");
  assert.equal((await c.expect("PRIVMSG")).params[1], "two");
  assert.equal((await c.expect("PRIVMSG")).params[1], "three");
  await c.expect("BATCH");
  c.send(`CHATHISTORY BEFORE #hist msgid=${ids[1]} 10`);
  await c.expect("BATCH");
  assert.equal((await c.expect("PRIVMSG")).params[1], "one");
  await c.expect("BATCH");
  c.send("CHATHISTORY AROUND #hist * 10");
  await c.expect("NOTICE", (m) => /LATEST and BEFORE/.test(m.params[1]!));
});

Deno.test("irc: echo-message, labeled-response with batch and ACK, standard-replies, account-tag, extended-join, multi-prefix", async () => {
  await using data = await tempDir("parley-irc-");
  await using server = await startServer([...NAME, "--data", data.path]);
  await addUser(data.path, "kim", "kim password 1");
  await addUser(data.path, "lee", "lee password 1");
  const caps = [
    "echo-message",
    "labeled-response",
    "batch",
    "account-tag",
    "extended-join",
    "multi-prefix",
    "standard-replies",
    "message-tags",
  ];
  await using kim = await IrcClient.register(server.ircPort, "kim", {
    caps,
    sasl: ["kim", "kim password 1"],
  });
  kim.send("@label=j1 JOIN #caps");
  const batch = await kim.expect("BATCH");
  assert.equal(batch.tags.get("label"), "j1");
  assert.equal(batch.params[1], "labeled-response");
  await kim.expect("JOIN");
  // The first account in a new room owns it: ~ and @ with multi-prefix.
  const names = await kim.expect("353", (m) => m.params[2] === "#caps");
  assert.equal(names.params[3], "~@kim");
  await kim.expect("BATCH");
  kim.send("@label=m1 PRIVMSG #caps :echo me");
  const echo = await kim.expect("PRIVMSG");
  assert.equal(echo.tags.get("label"), "m1");
  assert.equal(echo.source, "kim!kim@parley");
  assert.equal(echo.tags.get("account"), "kim");
  kim.send("@label=n1 PONG :x");
  kim.send("@label=a1 AWAY :lunch");
  assert.equal((await kim.expect("306")).tags.get("label"), "a1");
  kim.send("@label=a2 MODE #caps +t");
  const ack = await kim.expect("ACK");
  assert.equal(ack.tags.get("label"), "a2");
  kim.send("CHATHISTORY LATEST");
  const fail = await kim.expect("FAIL");
  assert.deepEqual(fail.params.slice(0, 2), ["CHATHISTORY", "NEED_MORE_PARAMS"]);
  await using lee = await IrcClient.register(server.ircPort, "lee", {
    sasl: ["lee", "lee password 1"],
  });
  lee.send("JOIN #caps");
  const join = await kim.expect("JOIN", (m) => m.params[0] === "#caps");
  assert.deepEqual(join.params, ["#caps", "lee", "lee"]);
  lee.send("PRIVMSG #caps :tagged");
  const tagged = await kim.expect("PRIVMSG");
  assert.equal(tagged.tags.get("account"), "lee");
  assert.ok(tagged.tags.has("msgid"));
});

Deno.test("irc: TOPIC, MODE, KICK, INVITE, NAMES, WHO, LIST mapped onto parley's rooms and moderation", async () => {
  await using data = await tempDir("parley-irc-");
  await using server = await startServer([...NAME, "--data", data.path]);
  await addUser(data.path, "olga", "olga password 1");
  await addUser(data.path, "pete", "pete password 1");
  await using olga = await IrcClient.register(server.ircPort, "olga", {
    sasl: ["olga", "olga password 1"],
  });
  await using pete = await IrcClient.register(server.ircPort, "pete", {
    sasl: ["pete", "pete password 1"],
  });
  await using json = await RawClient.json(server.port, "watcher");
  olga.send("JOIN #mod");
  await olga.expect("366");
  olga.send("TOPIC #mod :the rules");
  const topic = await olga.expect("TOPIC");
  assert.deepEqual(topic.params, ["#mod", "the rules"]);
  pete.send("JOIN #mod");
  assert.deepEqual((await pete.expect("332")).params.slice(1), ["#mod", "the rules"]);
  const names = await pete.expect("353", (x) => x.params[2] === "#mod");
  assert.deepEqual(names.params[3]!.split(" ").sort(), ["pete", "~olga"]);
  pete.send("TOPIC #mod :mine");
  assert.equal((await pete.expect("482")).params[1], "#mod");
  pete.send("TOPIC #mod");
  assert.equal((await pete.expect("332")).params[2], "the rules");
  olga.send("MODE #mod");
  assert.deepEqual((await olga.expect("324")).params.slice(1), ["#mod", "+nt"]);
  olga.send("MODE #mod +m");
  const m = await pete.expect("MODE");
  assert.equal(m.source, "olga!olga@parley");
  assert.deepEqual(m.params, ["#mod", "+m-i"]);
  pete.send("PRIVMSG #mod :can I speak?");
  assert.equal((await pete.expect("404")).params[1], "#mod");
  olga.send("MODE #mod +o pete");
  assert.deepEqual((await pete.expect("MODE")).params, ["#mod", "+o", "pete"]);
  pete.send("PRIVMSG #mod :now I can");
  assert.equal((await olga.expect("PRIVMSG")).params[1], "now I can");
  olga.send("MODE #mod -o pete");
  await pete.expect("MODE", (x) => x.params[1] === "-o");
  pete.send("WHO #mod");
  const who = await pete.expect("352");
  assert.equal(who.params[1], "#mod");
  await pete.expect("315");
  pete.send("LIST");
  await pete.expect("321");
  const list = await pete.expect("322", (x) => x.params[1] === "#mod");
  assert.equal(list.params[2], "2");
  assert.equal(list.params[3], "the rules");
  await pete.expect("323");
  olga.send("KICK #mod pete :out");
  const kick = await pete.expect("KICK");
  assert.deepEqual(kick.params, ["#mod", "pete", "out"]);
  olga.send("MODE #mod +i");
  await olga.expect("MODE", (x) => x.params[1] === "+im");
  pete.send("JOIN #mod");
  assert.equal((await pete.expect("473")).params[1], "#mod");
  olga.send("INVITE pete #mod");
  assert.deepEqual((await olga.expect("341")).params.slice(1), ["pete", "#mod"]);
  const invite = await pete.expect("INVITE");
  assert.deepEqual(invite.params, ["pete", "#mod"]);
  pete.send("JOIN #mod");
  await pete.expect("366");
  olga.send("MODE #mod +b pete!*@*");
  assert.deepEqual((await pete.expect("MODE")).params, ["#mod", "+b", "pete!*@*"]);
  await pete.expect("KICK");
  pete.send("JOIN #mod");
  assert.equal((await pete.expect("474")).params[1], "#mod");
  void json;
});

Deno.test("irc: AWAY, ISON, USERHOST, MONITOR, WHOIS, SETNAME, JOIN 0 and several targets", async () => {
  await using server = await startServer(NAME);
  await using a = await IrcClient.register(server.ircPort, "quinn", { caps: ["setname"] });
  await using b = await IrcClient.register(server.ircPort, "rita");
  b.send("AWAY :out for lunch");
  await b.expect("306");
  a.send("ISON rita nobody quinn");
  assert.equal((await a.expect("303")).params[1], "rita quinn");
  a.send("USERHOST rita quinn");
  assert.equal((await a.expect("302")).params[1], "rita=-rita@parley quinn=+quinn@parley");
  a.send("WHOIS rita");
  await a.expect("311");
  assert.equal((await a.expect("301")).params[2], "out for lunch");
  await a.expect("318");
  b.send("AWAY");
  await b.expect("305");
  a.send("MONITOR + rita,nobody");
  assert.equal((await a.expect("730")).params[1], "rita!rita@parley");
  assert.equal((await a.expect("731")).params[1], "nobody");
  a.send("MONITOR L");
  assert.equal((await a.expect("732")).params[1], "rita,nobody");
  await a.expect("733");
  a.send("SETNAME :Quinn Q");
  assert.deepEqual((await a.expect("SETNAME")).params, ["Quinn Q"]);
  a.send("JOIN #one,#two");
  await a.expect("366", (m) => m.params[1] === "#one");
  await a.expect("366", (m) => m.params[1] === "#two");
  b.send("JOIN #one,#two");
  await b.expect("366", (m) => m.params[1] === "#two");
  a.send("PRIVMSG #one,rita :to both");
  const got = [await b.expect("PRIVMSG"), await b.expect("PRIVMSG")].map((m) => m.params[0]);
  assert.deepEqual(got.sort(), ["#one", "rita"]);
  a.send("JOIN 0");
  const parts = new Set<string>();
  for (let i = 0; i < 3; i++) parts.add((await a.expect("PART")).params[0]!);
  assert.deepEqual([...parts].sort(), ["#general", "#one", "#two"]);
  a.send("NAMES #one");
  assert.deepEqual((await a.expect("353")).params.slice(2), ["#one", "rita"]);
});

Deno.test("irc: a file is a NOTICE with its signed download link; an edit and a deletion are NOTICEs", async () => {
  await using data = await tempDir("parley-irc-");
  await using server = await startServer([...NAME, "--data", data.path]);
  await addUser(data.path, "sam", "sam password 1");
  await using sam = await IrcClient.register(server.ircPort, "sam", {
    sasl: ["sam", "sam password 1"],
  });
  await using web = await RawClient.json(server.port);
  const reg = await request(web, { type: "register", name: "tess", password: "correct horse" });
  assert.equal(reg.type, "ack");
  const body = new TextEncoder().encode("the report\n");
  const up = await fetch(`http://127.0.0.1:${server.httpPort}/files?name=report.txt`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${reg.token}`,
      "content-type": "application/octet-stream",
    },
    body,
  });
  assert.equal(up.status, 201);
  const file = await up.json();
  await request(web, { type: "send", room: "#general", text: "", file: file.id });
  const notice = await sam.expect("NOTICE", (m) => m.params[1]!.startsWith("[file]"));
  assert.equal(notice.source, "tess!tess@parley");
  assert.equal(notice.params[0], "#general");
  assert.match(notice.params[1]!, /^\[file\] report\.txt \(11 bytes, /);
  const link = await sam.expect("NOTICE", (m) => m.params[1]!.startsWith("Download"));
  const url = /(https?:\/\/\S+)/.exec(link.params[1]!)![1]!;
  const download = await fetch(url.replace("0.0.0.0", "127.0.0.1"));
  assert.equal(download.status, 200);
  assert.equal(await download.text(), "the report\n");
  const sent = await request(web, { type: "send", room: "#general", text: "tpyo" });
  await sam.expect("PRIVMSG", (m) => m.params[1] === "tpyo");
  await request(web, { type: "edit", id: sent.id, text: "typo" });
  const edit = await sam.expect("NOTICE");
  assert.deepEqual(edit.params, ["#general", `[edited message ${sent.id}] typo`]);
  await request(web, { type: "delete", id: sent.id });
  const deleted = await sam.expect("NOTICE");
  assert.deepEqual(deleted.params, ["#general", `[deleted message ${sent.id}]`]);
});

Deno.test("irc: MONITOR tells when a name comes online and goes offline; away-notify tells AWAY", async () => {
  await using server = await startServer(NAME);
  await using watcher = await IrcClient.register(server.ircPort, "watcher", {
    caps: ["away-notify"],
  });
  watcher.send("MONITOR + later,someone");
  await watcher.expect("731", (m) => m.params[1] === "later,someone");
  {
    await using later = await IrcClient.register(server.ircPort, "later");
    assert.equal((await watcher.expect("730")).params[1], "later!later@parley");
    // A JSON user renaming into a monitored name counts too.
    await using json = await RawClient.json(server.port);
    assert.equal((await request(json, { type: "nick", name: "someone" })).type, "ack");
    assert.equal((await watcher.expect("730")).params[1], "someone!someone@parley");
    later.send("AWAY :brb");
    const away = await watcher.expect("AWAY");
    assert.equal(away.source, "later!later@parley");
    assert.deepEqual(away.params, ["brb"]);
    later.send("AWAY");
    assert.deepEqual((await watcher.expect("AWAY")).params, []);
    watcher.send("MONITOR - someone");
  }
  assert.equal((await watcher.expect("731")).params[1], "later");
  await watcher.none("731", 300);
});
