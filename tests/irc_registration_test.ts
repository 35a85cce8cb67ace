/**
 * The IRC listener end to end, with a raw-line client: registration in its orders, CAP, SASL,
 * PASS, the server password, the welcome numerics and the errors of refused commands.
 */

import assert from "node:assert/strict";
import { makeCert, RawClient, startServer, tempDir, tlsServerArgs } from "./_helpers.ts";
import { addUser, IrcClient, plain } from "./_irc.ts";

const NAME = ["--server-name", "irc.test"];

Deno.test("irc: registration without CAP gets 001-005 with an honest ISUPPORT, LUSERS and 422", async () => {
  await using server = await startServer(NAME);
  await using c = await IrcClient.connect(server.ircPort);
  c.send("NICK alice");
  c.send("USER alice 0 * :Alice Liddell");
  const welcome = await c.expect("001");
  assert.equal(welcome.source, "irc.test");
  assert.equal(welcome.params[0], "alice");
  assert.match(welcome.params[1]!, /alice!alice@/);
  await c.expect("002");
  await c.expect("003");
  const myinfo = await c.expect("004");
  assert.equal(myinfo.params[1], "irc.test");
  const tokens = new Map<string, string>();
  for (let i = 0; i < 2; i++) {
    const isupport = await c.expect("005");
    for (const t of isupport.params.slice(1, -1)) {
      const [k, v = ""] = t.split("=");
      tokens.set(k!, v);
    }
  }
  assert.equal(tokens.get("CHANTYPES"), "#");
  assert.equal(tokens.get("PREFIX"), "(qo)~@");
  assert.equal(tokens.get("CHANMODES"), "b,,,imnt");
  assert.equal(tokens.get("NICKLEN"), "32");
  assert.equal(tokens.get("CHANNELLEN"), "65");
  assert.equal(tokens.get("TOPICLEN"), "300");
  assert.equal(tokens.get("CASEMAPPING"), "ascii");
  assert.equal(tokens.get("NETWORK"), "parley");
  for (const numeric of ["251", "252", "253", "254", "255", "265", "266", "422"]) {
    await c.expect(numeric);
  }
  // A guest starts in #general, as in every dialect.
  const join = await c.expect("JOIN");
  assert.equal(join.source, "alice!alice@parley");
  assert.deepEqual(join.params, ["#general"]);
  const names = await c.expect("353");
  assert.deepEqual(names.params.slice(1), ["=", "#general", "alice"]);
  await c.expect("366");
  c.send("PING :abc 123");
  const pong = await c.expect("PONG");
  assert.deepEqual(pong.params, ["irc.test", "abc 123"]);
  c.send("QUIT :bye");
  await c.expect("ERROR");
  await c.raw.closed();
});

Deno.test("irc: USER before NICK, and CAP LS 302 / REQ / END hold registration until END", async () => {
  await using server = await startServer(NAME);
  await using a = await IrcClient.connect(server.ircPort);
  a.send("USER bo 0 * :Bo");
  a.send("NICK bo");
  assert.equal((await a.expect("001")).params[0], "bo");

  await using b = await IrcClient.connect(server.ircPort);
  b.send("CAP LS 302");
  const ls = await b.expect("CAP", (m) => m.params[1] === "LS");
  const offered = ls.params[2]!.split(" ");
  for (
    const cap of [
      "sasl=PLAIN",
      "server-time",
      "message-tags",
      "echo-message",
      "account-tag",
      "account-notify",
      "extended-join",
      "multi-prefix",
      "batch",
      "labeled-response",
      "draft/chathistory",
      "standard-replies",
    ]
  ) assert.ok(offered.includes(cap), `${cap} in ${ls.params[2]}`);
  b.send("NICK cy");
  b.send("USER cy 0 * :Cy");
  await b.none("001", 300);
  b.send("CAP REQ :server-time bogus-cap");
  const nak = await b.expect("CAP");
  assert.deepEqual(nak.params.slice(1), ["NAK", "server-time bogus-cap"]);
  b.send("CAP REQ :server-time echo-message");
  assert.deepEqual((await b.expect("CAP")).params.slice(1), ["ACK", "server-time echo-message"]);
  b.send("CAP LIST");
  const list = await b.expect("CAP");
  assert.equal(list.params[1], "LIST");
  assert.ok(list.params[2]!.includes("server-time"));
  b.send("CAP END");
  assert.equal((await b.expect("001")).params[0], "cy");
  // CAP LS without 302 lists no values.
  await using d = await IrcClient.connect(server.ircPort);
  d.send("CAP LS");
  const old = await d.expect("CAP");
  assert.ok(old.params[2]!.split(" ").includes("sasl"));
});

Deno.test("irc: the error numerics of refused commands", async () => {
  await using server = await startServer(NAME);
  await using c = await IrcClient.connect(server.ircPort);
  c.send("JOIN #early");
  assert.equal((await c.expect("451")).params[0], "*");
  c.send("NICK bad!nick");
  assert.equal((await c.expect("432")).params[1], "bad!nick");
  c.send("NICK");
  await c.expect("431");
  c.send("USER onlyone");
  assert.equal((await c.expect("461")).params[1], "USER");
  c.send("NICK dee");
  c.send("USER dee 0 * :Dee");
  await c.expect("001");
  c.send("FROBNICATE now");
  assert.equal((await c.expect("421")).params[1], "FROBNICATE");
  c.send("USER again 0 * :x");
  await c.expect("462");
  c.send("PRIVMSG nobody-here :hi");
  assert.equal((await c.expect("401")).params[1], "nobody-here");
  c.send("PRIVMSG #nowhere :hi");
  assert.equal((await c.expect("401")).params[1], "#nowhere");
  c.send("PART #nowhere");
  assert.equal((await c.expect("403")).params[1], "#nowhere");
  c.send("PART #general");
  await c.expect("PART");
  c.send("PRIVMSG #general :hi");
  assert.equal((await c.expect("404")).params[1], "#general");
  c.send("PART #general");
  assert.equal((await c.expect("442")).params[1], "#general");
  c.send("JOIN #general");
  await c.expect("366");
  c.send("JOIN &local");
  assert.equal((await c.expect("476")).params[1], "&local");
  c.send("PRIVMSG #general");
  await c.expect("412");
  c.send("PRIVMSG");
  await c.expect("411");
  c.send("TOPIC");
  assert.equal((await c.expect("461")).params[1], "TOPIC");
  c.send("MODE #general +z");
  assert.equal((await c.expect("472")).params[1], "z");
  c.send("MODE someone-else");
  await c.expect("502");
  // #general belongs to no one: a guest changing its topic is refused.
  c.send("TOPIC #general :mine now");
  assert.equal((await c.expect("482")).params[1], "#general");
  c.send("NOTICE nobody-here :no reply to a notice");
  c.send("PING :after");
  const next = await c.line((l) => !l.includes(" 4"));
  assert.match(next, /PONG irc\.test :?after/);
  // A nick in use, online or a registered account's.
  await using e = await IrcClient.connect(server.ircPort);
  e.send("NICK dee");
  assert.equal((await e.expect("433")).params[1], "dee");
});

Deno.test("irc: a registered account's name is refused to a guest, and SASL PLAIN logs in as it", async () => {
  await using data = await tempDir("parley-irc-");
  await using server = await startServer([...NAME, "--data", data.path]);
  await addUser(data.path, "erin", "correct horse 1");
  await using guest = await IrcClient.connect(server.ircPort);
  guest.send("NICK erin");
  guest.send("USER erin 0 * :Erin");
  const taken = await guest.expect("433");
  assert.match(taken.params[2]!, /registered account/);
  guest.send("NICK erin-guest");
  assert.equal((await guest.expect("001")).params[0], "erin-guest");

  // SASL failure, then success, on one connection.
  await using c = await IrcClient.connect(server.ircPort);
  c.send("CAP LS 302");
  c.send("NICK whoever");
  c.send("USER x 0 * :x");
  c.send("CAP REQ sasl");
  await c.expect("CAP", (m) => m.params[1] === "ACK");
  c.send("AUTHENTICATE SCRAM-SHA-256");
  assert.equal((await c.expect("908")).params[1], "PLAIN");
  await c.expect("904");
  c.send("AUTHENTICATE PLAIN");
  assert.deepEqual((await c.expect("AUTHENTICATE")).params, ["+"]);
  c.send(`AUTHENTICATE ${plain("erin", "wrong password")}`);
  await c.expect("904");
  c.send("AUTHENTICATE PLAIN");
  await c.expect("AUTHENTICATE");
  c.send("AUTHENTICATE !!!not-base64");
  await c.expect("904");
  c.send("AUTHENTICATE PLAIN");
  await c.expect("AUTHENTICATE");
  c.send(`AUTHENTICATE ${plain("erin", "correct horse 1")}`);
  const loggedIn = await c.expect("900");
  assert.equal(loggedIn.params[2], "erin");
  await c.expect("903");
  c.send("AUTHENTICATE PLAIN");
  await c.expect("907");
  c.send("CAP END");
  // The account's name is the nick, whatever NICK said.
  assert.equal((await c.expect("001")).params[0], "erin");
  c.send("WHOIS erin");
  const account = await c.expect("330");
  assert.deepEqual(account.params.slice(1, 3), ["erin", "erin"]);
  await c.expect("318");
  // Accounts keep their name.
  c.send("NICK other");
  await c.expect("902");
});

Deno.test("irc: PASS name:password logs in; a wrong one stays a guest", async () => {
  await using data = await tempDir("parley-irc-");
  await using server = await startServer([...NAME, "--data", data.path]);
  await addUser(data.path, "fay", "fay password 9");
  await using ok = await IrcClient.connect(server.ircPort);
  ok.send("PASS :fay:fay password 9");
  ok.send("NICK fay");
  ok.send("USER fay 0 * :Fay");
  await ok.expect("900");
  assert.equal((await ok.expect("001")).params[0], "fay");
  const join = await ok.expect("JOIN");
  assert.deepEqual(join.params, ["#general"]);
  await using bad = await IrcClient.connect(server.ircPort);
  bad.send("PASS fay:nope");
  bad.send("NICK fay2");
  bad.send("USER fay2 0 * :Fay");
  const welcome = await bad.expect("001");
  assert.match(welcome.params[0]!, /^guest-/);
  await bad.expect("464");
});

Deno.test("irc: --server-password: IRC PASS, JSON hello's serverPassword, text mode's /pass", async () => {
  await using server = await startServer([...NAME, "--server-password", "letmein"]);
  await using none = await IrcClient.connect(server.ircPort);
  none.send("NICK nopass");
  none.send("USER nopass 0 * :x");
  await none.expect("464");
  await none.expect("ERROR");
  await none.raw.closed();
  await using good = await IrcClient.register(server.ircPort, "withpass", { pass: "letmein" });
  assert.ok(good);

  await using j = await RawClient.connect(server.port);
  j.send({ type: "hello", proto: 1, ref: "h" });
  const refused = await j.frame((f) => f.type === "error");
  assert.equal(refused.code, "auth_failed");
  await j.closed();
  await using k = await RawClient.connect(server.port);
  k.send({ type: "hello", proto: 1, ref: "h", serverPassword: "letmein" });
  assert.equal((await k.frame((f) => f.ref === "h")).type, "welcome");

  await using t = await RawClient.connect(server.port);
  t.send("hello everyone");
  await t.line((l) => l.startsWith("! This server needs its password"));
  await t.closed();
  await using u = await RawClient.connect(server.port);
  u.send("/pass letmein");
  await u.line((l) => l === "* Server password accepted");
  u.send("/rooms");
  await u.line((l) => l.startsWith("* Rooms:"));
});

Deno.test("irc: the chat port hands IRC registration to the IRC dialect; --no-irc turns it away", async () => {
  await using server = await startServer(NAME);
  await using c = await IrcClient.register(server.port, "viaChat");
  c.send("JOIN #handoff");
  await c.expect("366", (m) => m.params[1] === "#handoff");
  await using off = await startServer([...NAME, "--no-irc"]);
  assert.equal(off.ircPort, 0);
  await using t = await IrcClient.connect(off.port);
  t.send("NICK x");
  const error = await t.expect("ERROR");
  assert.match(error.params[0]!, /does not speak IRC/);
});

Deno.test("irc: IRC over TLS on --irc-tls-port, with the server's certificate", async () => {
  await using dir = await tempDir("parley-irc-tls-");
  const { pem } = await makeCert(dir.path, "localhost");
  await using server = await startServer([...NAME, ...tlsServerArgs(dir.path)]);
  assert.ok(server.ircTlsPort > 0);
  assert.ok(server.stdout.some((l) => /^listening on ircs:\/\/127\.0\.0\.1:\d+$/.test(l)));
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: server.ircTlsPort,
    caCerts: [pem],
  });
  try {
    await conn.write(new TextEncoder().encode("NICK secure\r\nUSER secure 0 * :S\r\n"));
    let text = "";
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + 5000;
    while (!text.includes(" 001 ") && Date.now() < deadline) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.match(text, /^:irc\.test 001 secure :Welcome/m);
  } finally {
    conn.close();
  }
});

Deno.test("irc: with --require-login a guest is told to log in and refused; SASL gets in", async () => {
  await using data = await tempDir("parley-irc-");
  await using server = await startServer([...NAME, "--data", data.path, "--require-login"]);
  await addUser(data.path, "uma", "uma password 1");
  await using guest = await IrcClient.register(server.ircPort, "nobody");
  await guest.expect("NOTICE", (m) => /requires an account/.test(m.params[1]!));
  guest.send("JOIN #in");
  await guest.expect("451");
  await using uma = await IrcClient.register(server.ircPort, "uma", {
    sasl: ["uma", "uma password 1"],
  });
  uma.send("JOIN #in");
  assert.deepEqual((await uma.expect("366")).params.slice(1, 2), ["#general"]);
  await uma.expect("366", (m) => m.params[1] === "#in");
});
