// A short run of the benchmark's voice scenario (bench/voice.ts): werift peers in this process
// join a real server's voice over its WebSocket; one speaks, three listen; the forwarding unit
// must deliver every packet with little added latency. The benchmark itself is not run here.
import assert from "node:assert/strict";
import { runVoice } from "../bench/voice.ts";
import { startServer } from "./_helpers.ts";

Deno.test("bench voice scenario: one speaker heard by three listeners, no loss, low latency", async () => {
  await using server = await startServer(["--voice-ports", "43000-43100"]);
  const result = await runVoice(`ws://127.0.0.1:${server.httpPort}/ws`, {
    speakers: 1,
    listeners: 3,
    ms: 2000,
  });
  console.log(`voice smoke: ${JSON.stringify(result)}`);
  assert.equal(result.streams, 3);
  // 3 streams × 50 packets a second × 2 s.
  assert.ok(result.received >= 250, JSON.stringify(result));
  // Under 2 %: in these runs every listener missed the same one packet of about 100 (the 88th),
  // so it was lost before the forwarding unit, between werift's sender and receiver; Chromium
  // senders (voice_browser_test) lost none. The benchmark's goal (under 1 %) is for long runs.
  assert.ok(result.lost / (result.received + result.lost) < 0.02, JSON.stringify(result));
  assert.ok(result.p99Ms < 200, JSON.stringify(result));
});
