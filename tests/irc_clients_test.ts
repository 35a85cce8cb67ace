/**
 * Real IRC clients no one here wrote, from Debian, in a real terminal (tmux): weechat and irssi
 * connect to parley's IRC port, log in with SASL, join a room, see its history, and chat both
 * ways with a JSON (web protocol) user. Skipped with a notice when a client is not installed,
 * unless PARLEY_REQUIRE_IRC_CLIENTS=1 (CI sets it: .ci/run installs them).
 */

import assert from "node:assert/strict";
import { RawClient, request, startServer, tempDir } from "./_helpers.ts";
import { addUser } from "./_irc.ts";
import { HAVE_TMUX, TmuxClient } from "./_tmux.ts";

const REQUIRED = Deno.env.get("PARLEY_REQUIRE_IRC_CLIENTS") === "1";

function installed(program: string): boolean {
  try {
    return new Deno.Command(program, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** A test that needs `program` and tmux: skipped with a notice without them (unless required). */
function clientTest(program: string, name: string, fn: () => Promise<void>): void {
  const missing = !HAVE_TMUX || !installed(program);
  if (missing && !REQUIRED) {
    console.warn(`notice: ${program} or tmux is not installed: skipping "${name}"`);
  }
  Deno.test({
    name,
    ignore: missing && !REQUIRED,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: missing
      ? () => {
        throw new Error(`${program} and tmux are required (PARLEY_REQUIRE_IRC_CLIENTS=1)`);
      }
      : fn,
  });
}

/** A server with an account for the IRC client, and a JSON user in #room with some history. */
async function scene(account: string, password: string) {
  const data = await tempDir("parley-irc-client-");
  const server = await startServer(["--server-name", "irc.test", "--data", data.path]);
  await addUser(data.path, account, password);
  const web = await RawClient.json(server.port, "webby");
  assert.equal((await request(web, { type: "join", room: "#room" })).type, "ack");
  await request(web, { type: "send", room: "#room", text: "said before you came" });
  return {
    server,
    web,
    async [Symbol.asyncDispose]() {
      await web[Symbol.asyncDispose]();
      await server[Symbol.asyncDispose]();
      await data[Symbol.asyncDispose]();
    },
  };
}

/** The chat both ways, once the client shows #room with its history. */
async function chat(client: TmuxClient, web: RawClient, account: string): Promise<void> {
  await client.waitFor((s) => s.includes("said before you came"), "the room's history", 20_000);
  const joined = await web.frame((f) => f.type === "presence" && f.name === account);
  assert.equal(joined.event, "joined");
  web.send({ type: "send", room: "#room", text: "hello from the web" });
  await client.waitFor((s) => s.includes("hello from the web"), "the web user's message");
  await client.type(`hello from ${account}`);
  await client.keys("Enter");
  const got = await web.frame((f) => f.type === "message" && f.from === account, 10_000);
  assert.equal(got.room, "#room");
  assert.equal(got.text, `hello from ${account}`);
}

clientTest(
  "weechat",
  "irc clients: weechat logs in with SASL, joins, sees history, chats with a web user",
  async () => {
    await using s = await scene("weeuser", "weepassword1");
    const home = await Deno.makeTempDir({ prefix: "parley-weechat-" });
    const setup = [
      `/server add parley 127.0.0.1/${s.server.ircPort} -notls -sasl_mechanism=plain`,
      "-sasl_username=weeuser -sasl_password=weepassword1 -nicks=weeuser -autojoin=#room",
    ].join(" ");
    await using wee = await TmuxClient.run(
      ["weechat", "-d", home, "-r", `${setup};/connect parley`],
      { columns: 120, rows: 30, config: home, env: { TERM: "screen-256color" } },
    );
    await wee.waitFor((s) => s.includes("#general") && s.includes("#room"), "the buffers", 20_000);
    // An account is in #general too (every new account is), and weechat may show that one:
    // show #room.
    await wee.type("/buffer irc.parley.#room");
    await wee.keys("Enter");
    await chat(wee, s.web, "weeuser");
  },
);

clientTest(
  "irssi",
  "irc clients: irssi logs in with SASL, joins, sees history, chats with a web user",
  async () => {
    await using s = await scene("irsuser", "irspassword1");
    const home = await Deno.makeTempDir({ prefix: "parley-irssi-" });
    await Deno.writeTextFile(
      `${home}/config`,
      `servers = (
  { address = "127.0.0.1"; chatnet = "parley"; port = "${s.server.ircPort}"; use_tls = "no";
    autoconnect = "yes"; }
);
chatnets = {
  parley = { type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "irsuser";
    sasl_password = "irspassword1"; };
};
channels = ( { name = "#room"; chatnet = "parley"; autojoin = "yes"; } );
settings = { core = { real_name = "Irs User"; user_name = "irsuser"; nick = "irsuser"; }; };
`,
    );
    await using irssi = await TmuxClient.run(["irssi", `--home=${home}`], {
      columns: 120,
      rows: 30,
      config: home,
      env: { TERM: "screen-256color" },
    });
    await irssi.waitFor(
      (s) => s.includes("SASL authentication succeeded"),
      "the SASL login",
      20_000,
    );
    await irssi.waitFor((s) => /Act: .*3/.test(s), "the windows of #general and #room", 10_000);
    // The channel's window: irssi opens one per channel; make it the active one.
    await irssi.type("/window goto #room");
    await irssi.keys("Enter");
    await chat(irssi, s.web, "irsuser");
  },
);
