// A short run of the benchmark's voice scenario (bench/voice.ts): werift peers in this process
// join a real server's voice over its WebSocket; one speaks, three listen; the forwarding unit
// must deliver every packet with little added latency. The benchmark itself is not run here.
// Like tests/voice_browser_test.ts, the file re-runs itself inside a network namespace with only
// loopback (`unshare -n`, as root): no media can leave the machine, ICE sees loopback alone, and
// the peers share no state with the test files before it. Where `unshare` is not allowed the test is
// skipped with a notice, unless PARLEY_REQUIRE_VOICE=1.
import assert from "node:assert/strict";
import { runVoice } from "../bench/voice.ts";
import { rerunInLoopbackNamespace, startServer } from "./_helpers.ts";

const IN_NAMESPACE = Deno.env.get("PARLEY_VOICE_NETNS") === "1";
const THIS_FILE = new URL(import.meta.url).pathname;

if (!IN_NAMESPACE) {
  Deno.test(
    "bench voice scenario (in a network namespace with only loopback)",
    () => rerunInLoopbackNamespace(THIS_FILE, "the voice bench smoke test"),
  );
} else {
  Deno.test("bench voice scenario: one speaker heard by three listeners, no loss, low latency", async () => {
    await using server = await startServer(["--voice-ports", "43000-43100"]);
    // The benchmark's own werift peers sometimes never get media flowing (about one run in three,
    // in and out of a namespace; werift to werift only: Chromium peers always do, see
    // voice_browser_test). That is the driver's flaw, not the forwarding unit's: a run that
    // received nothing at all is tried again, at most twice, and said so.
    let result = await runVoice(`ws://127.0.0.1:${server.httpPort}/ws`, {
      speakers: 1,
      listeners: 3,
      ms: 2000,
    });
    for (let retry = 0; retry < 2 && result.received === 0; retry++) {
      console.log(
        `voice smoke: the driver's peers got no media (${JSON.stringify(result)}); again`,
      );
      result = await runVoice(`ws://127.0.0.1:${server.httpPort}/ws`, {
        speakers: 1,
        listeners: 3,
        ms: 2000,
      });
    }
    console.log(`voice smoke: ${JSON.stringify(result)}`);
    assert.equal(result.streams, 3);
    // 3 streams × 50 packets a second × 2 s.
    assert.ok(result.received >= 250, JSON.stringify(result));
    // Under 2 %: in these runs every listener missed the same one packet of about 100 (the
    // 88th), so it was lost before the forwarding unit, between werift's sender and receiver;
    // Chromium senders (voice_browser_test) lost none. The benchmark's goal (under 1 %) is for
    // long runs.
    assert.ok(result.lost / (result.received + result.lost) < 0.02, JSON.stringify(result));
    assert.ok(result.p99Ms < 200, JSON.stringify(result));
  });
}
