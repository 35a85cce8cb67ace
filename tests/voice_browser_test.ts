// Voice end to end: the real server as a subprocess (its forwarding unit on werift) and one
// headless Chromium per person, each with a fake microphone playing a sine of its own frequency.
// It all runs inside a network namespace with only loopback (`unshare -n`, as root), so no media
// leaves the machine: this file re-runs itself in one. Chromium takes loopback candidates with
// --allow-loopback-in-peer-connection; the server offers 127.0.0.1 because it listens there.
// Where `unshare` is not allowed the tests are skipped with a notice, unless
// PARLEY_REQUIRE_VOICE=1, which makes that a failure.
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { browserTest, HAVE_CHROMIUM, launchChromium, startServer } from "./_helpers.ts";
import type { ServerProcess } from "./_helpers.ts";

const IN_NAMESPACE = Deno.env.get("PARLEY_VOICE_NETNS") === "1";
const THIS_FILE = new URL(import.meta.url).pathname;

if (!IN_NAMESPACE) {
  Deno.test({
    name: "voice (browsers): every test, in a network namespace with only loopback",
    ignore: !HAVE_CHROMIUM,
    async fn() {
      const probe = await new Deno.Command("unshare", {
        args: ["-n", "true"],
        stdout: "null",
        stderr: "null",
      }).output().catch(() => ({ success: false }));
      if (!probe.success) {
        if (Deno.env.get("PARLEY_REQUIRE_VOICE") === "1") {
          assert.fail("Cannot create a network namespace (unshare -n): run as root");
        }
        console.log("voice browser tests skipped: unshare -n is not permitted (run as root)");
        return;
      }
      const filter = Deno.env.get("PARLEY_VOICE_FILTER");
      const child = new Deno.Command("unshare", {
        args: [
          "-n",
          "sh",
          "-c",
          'ip link set lo up && exec "$0" "$@"',
          Deno.execPath(),
          "test",
          "-P=test",
          ...filter === undefined ? [] : ["--filter", filter],
          THIS_FILE,
        ],
        env: { PARLEY_VOICE_NETNS: "1", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      });
      const out = await child.output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      console.log(text.split("\n").filter((l) => !l.includes("experimental")).join("\n"));
      assert.equal(out.code, 0, "the voice tests in the namespace failed (above)");
    },
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

async function person(
  server: ServerProcess,
  dir: string,
  name: string,
  hz: number,
  room = "#ops",
): Promise<Person> {
  const wav = await sineWav(dir, hz);
  const pw = await launchChromium([
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    `--use-file-for-fake-audio-capture=${wav}`,
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
  ]);
  const context = await pw.browser.newContext({ viewport: { width: 1100, height: 700 } });
  await context.addInitScript({ content: RECORD_PEERS });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  await page.goto(`http://127.0.0.1:${server.httpPort}/`);
  await page.getByLabel("Name").fill(name);
  await page.getByTestId("guest").click();
  await page.locator("[data-testid=connection-status][data-state=online]").waitFor();
  await page.getByLabel("Join or create a room").fill(room);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator(`[data-testid=conv-title]`, { hasText: room }).waitFor();
  return {
    name,
    hz,
    page,
    browser: pw.browser,
    problems,
    [Symbol.asyncDispose]: () => pw[Symbol.asyncDispose](),
  };
}

async function joinVoice(p: Person): Promise<void> {
  await p.page.getByTestId("voice-join").click();
  await p.page.getByTestId("voice-leave").waitFor();
}

/** The strongest frequency (Hz) and its level (dB) in each stream the page hears, by name. */
async function heard(page: Page): Promise<Record<string, { hz: number; db: number }>> {
  return await page.evaluate(async () => {
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
      await new Promise((r) => setTimeout(r, 300));
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
    return out;
  });
}

/** Waits until `listener` hears each of `speakers` at its own frequency. */
async function hearsEach(listener: Person, speakers: Person[], timeoutMs = 20_000): Promise<void> {
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
  assert.fail(
    `${listener.name} should hear ${speakers.map((s) => `${s.name} at ${s.hz} Hz`).join(", ")}; ` +
      `heard ${JSON.stringify(last)}`,
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

if (IN_NAMESPACE) {
  browserTest("voice: two, then three people in a room's voice each hear the others", async () => {
    await using server = await voiceServer();
    const dir = await Deno.makeTempDir({ prefix: "parley-voice-" });
    try {
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
      // Everyone sees who is in voice.
      await alice.page.locator("[data-testid=voice-person][data-name=carol]").waitFor();
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
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
