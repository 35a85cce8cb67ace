// werift's DTLS handshake and retransmitted flights (src/voice/dtls_retransmit.ts): a real werift
// DtlsClient and DtlsServer shake hands over two real UDP sockets on loopback. Each side hands
// the datagrams it receives to werift as they arrive and, like a network or a busy machine that
// delivers a retransmission late, hands over a copy of one of them at a chosen moment. Without
// the guards each copy breaks the session in its own way (the "without the guards" tests show it
// on werift itself: when one of them fails, werift has fixed that case); with them, application
// data gets through both ways and neither side reports an error.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import dgram from "node:dgram";
import { guardDtlsClient, guardDtlsServer } from "../src/voice/dtls_retransmit.ts";
import type { DtlsClientLike, DtlsServerLike } from "../src/voice/dtls_retransmit.ts";
import { loadMedia, loadWerift, skipPublicStun } from "../src/voice/peer.ts";

/** A UDP socket bound to a free loopback port. */
function udp(): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    socket.bind(0, "127.0.0.1", () => resolve(socket));
  });
}

/** A datagram's first DTLS record: content type, epoch, handshake type, whether a cookie. */
function firstRecord(datagram: Buffer): { type: number; epoch: number; message: number } {
  return {
    type: datagram[0] ?? -1,
    epoch: datagram.length >= 5 ? datagram.readUInt16BE(3) : -1,
    message: datagram[13] ?? -1,
  };
}

/** Whether the datagram is a plaintext handshake record carrying message `type` first. */
function isHandshake(datagram: Buffer, type: number): boolean {
  const r = firstRecord(datagram);
  return r.type === 22 && r.epoch === 0 && r.message === type;
}

/** A moment in the handshake, seen by the side that receives: hand `copy` over, or not yet. */
type Replay = (
  datagram: Buffer,
  deliver: (copy: Buffer) => void,
  events: { serverConnected: boolean },
) => void;

/** What the two ends got of each other's application data, and the errors they reported. */
interface Outcome {
  serverGot: string[];
  clientGot: string[];
  errors: string[];
  copies: number;
}

/**
 * Shakes hands; `toServer` and `toClient` see each datagram after it was handed over and may
 * hand a copy of an earlier one over too. `guard` applies the fixes to both ends. With `again`,
 * a second client (a new handshake, with its own random) then shakes hands with the same server
 * from the same socket, and its exchange is what the outcome reports.
 */
async function handshake(
  guard: boolean,
  replay: { toServer?: Replay; toClient?: Replay },
  again = false,
): Promise<Outcome> {
  const w = await loadWerift();
  const cert = await w.CipherContext.createSelfSignedCertificateWithKey(
    { signature: w.SignatureAlgorithm.ecdsa_3, hash: w.HashAlgorithm.sha256_4 },
    w.NamedCurveAlgorithm.secp256r1_23,
  );
  const serverSocket = await udp();
  const clientSocket = await udp();
  let closed = false;
  const outcome: Outcome = { serverGot: [], clientGot: [], errors: [], copies: 0 };
  const events = { serverConnected: false };
  const transport = (own: dgram.Socket, peer: dgram.Socket, replay: Replay | undefined) => {
    const port = peer.address().port;
    const ends = {
      type: "udp",
      address: own.address(),
      closed: false,
      onData: (_data: Buffer, _from: readonly [string, number]) => {},
      send: (data: Buffer) =>
        new Promise<void>((resolve) => {
          if (closed) return resolve();
          own.send(data, port, "127.0.0.1", () => resolve());
        }),
      close: () => Promise.resolve(),
    };
    const deliver = (copy: Buffer) => {
      outcome.copies++;
      ends.onData(copy, ["127.0.0.1", port]);
    };
    own.on("message", (datagram: Buffer) => {
      ends.onData(datagram, ["127.0.0.1", port]);
      replay?.(Buffer.from(datagram), deliver, events);
    });
    return ends;
  };
  const options = {
    cert: cert.certPem,
    key: cert.keyPem,
    signatureHash: cert.signatureHash,
    extendedMasterSecret: true,
  };
  const server = new w.DtlsServer({
    ...options,
    transport: transport(serverSocket, clientSocket, replay.toServer),
  });
  const clientEnds = transport(clientSocket, serverSocket, replay.toClient);
  if (guard) guardDtlsServer(server as unknown as DtlsServerLike);
  server.onData.subscribe((data: Buffer) => outcome.serverGot.push(data.toString()));
  server.onError.subscribe((e: unknown) => outcome.errors.push(`server: ${String(e)}`));
  server.onConnect.subscribe(() => (events.serverConnected = true));
  /** A client's handshake and one message each way. */
  const exchange = async () => {
    const client = new w.DtlsClient({ ...options, transport: clientEnds });
    if (guard) guardDtlsClient(client as unknown as DtlsClientLike);
    client.onData.subscribe((data: Buffer) => outcome.clientGot.push(data.toString()));
    client.onError.subscribe((e: unknown) => outcome.errors.push(`client: ${String(e)}`));
    const connected = Promise.all([
      new Promise((resolve) => server.onConnect.once(resolve)),
      new Promise((resolve) => client.onConnect.once(resolve)),
    ]);
    client.connect().catch((e: unknown) => outcome.errors.push(`client connect: ${String(e)}`));
    await Promise.race([connected, new Promise((resolve) => setTimeout(resolve, 3000))]);
    await new Promise((resolve) => setTimeout(resolve, 100)); // any copy has been handled
    await client.send(Buffer.from("from the client")).catch(() => {});
    await server.send(Buffer.from("from the server")).catch(() => {});
    const deadline = Date.now() + 1000;
    while (outcome.serverGot.length + outcome.clientGot.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  try {
    await exchange();
    if (again) {
      assertWorks({ ...outcome, copies: 1 }, "the first handshake");
      outcome.serverGot = [];
      outcome.clientGot = [];
      events.serverConnected = false;
      await exchange();
    }
    return outcome;
  } finally {
    closed = true;
    serverSocket.close();
    clientSocket.close();
  }
}

/** After `hops` promise hops. */
function later(hops: number, fn: () => void): void {
  let p = Promise.resolve();
  for (let i = 0; i < hops; i++) p = p.then(() => {});
  p.then(fn);
}

/** The server is given the client's ClientKeyExchange again, `hops` hops after its Finished. */
function lateFlightFive(hops: number): Replay {
  let keyExchange: Buffer | undefined;
  let done = false;
  return (datagram, deliver) => {
    if (isHandshake(datagram, 16)) keyExchange = datagram;
    const r = firstRecord(datagram);
    if (r.type === 22 && r.epoch === 1 && keyExchange !== undefined && !done) {
      done = true;
      const copy = keyExchange;
      later(hops, () => deliver(copy));
    }
  };
}

/** The server is given the client's `nth` ClientHello (0: no cookie, 1: with one) once connected. */
function helloAfterConnect(nth: number): Replay {
  const hellos: Buffer[] = [];
  let done = false;
  return (datagram, deliver, events) => {
    if (isHandshake(datagram, 1)) hellos.push(datagram);
    const r = firstRecord(datagram);
    if (r.type !== 22 || r.epoch !== 1 || done) return; // not the client's Finished
    done = true;
    const copy = hellos[nth]!;
    const poll = () => events.serverConnected ? deliver(copy) : setTimeout(poll, 2);
    poll();
  };
}

/** The server is given the cookieless ClientHello again right after the second (its flight 4). */
function firstHelloAfterFlightFour(): Replay {
  const hellos: Buffer[] = [];
  return (datagram, deliver) => {
    if (!isHandshake(datagram, 1)) return;
    hellos.push(datagram);
    if (hellos.length === 2) deliver(hellos[0]!);
  };
}

/** The client is given the HelloVerifyRequest again right after it answered the first. */
function secondHelloVerify(): Replay {
  let done = false;
  return (datagram, deliver) => {
    if (isHandshake(datagram, 3) && !done) {
      done = true;
      deliver(datagram);
    }
  };
}

/** The late ClientHello copies, each with what it is (a fresh replay each: they keep state). */
function helloCopies(): [string, Replay][] {
  return [
    ["the second ClientHello after the server connected", helloAfterConnect(1)],
    ["the first ClientHello after the server connected", helloAfterConnect(0)],
    ["the first ClientHello after the server's flight 4", firstHelloAfterFlightFour()],
  ];
}

/** Both ends got the other's message and reported no error, though a copy came. */
function assertWorks(outcome: Outcome, what: string): void {
  assert.ok(outcome.copies >= 1, `${what}: the copy was handed over`);
  assert.deepEqual(outcome.errors, [], `${what}: no errors`);
  assert.deepEqual(outcome.serverGot, ["from the client"], `${what}: ${JSON.stringify(outcome)}`);
  assert.deepEqual(outcome.clientGot, ["from the server"], `${what}: ${JSON.stringify(outcome)}`);
}

/** The copy broke the session: a message was lost, or an end reported an error. */
function assertBroken(outcome: Outcome, what: string): void {
  assert.ok(outcome.copies >= 1, `${what}: the copy was handed over`);
  const delivered = outcome.serverGot.length === 1 && outcome.clientGot.length === 1;
  assert.ok(
    !delivered || outcome.errors.length > 0,
    `${what} broke nothing: has werift fixed it? ${JSON.stringify(outcome)}`,
  );
}

// werift keeps retransmitting a broken handshake's flights on its own timers for seconds after
// the test has closed its sockets: those timers are werift's, not a leak of the code under test.
const unsanitized = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "voice DTLS: without the guards, each late copy breaks werift's session",
  ...unsanitized,
  fn: async () => {
    // What the guards are for, shown on werift itself.
    for (const hops of [0, 1, 2]) {
      const outcome = await handshake(false, { toServer: lateFlightFive(hops) });
      // The handshake "completes" on both sides, yet no application data gets through.
      assert.deepEqual(outcome.serverGot, [], `flight 5, ${hops} hops: ${JSON.stringify(outcome)}`);
      assert.deepEqual(outcome.clientGot, [], `flight 5, ${hops} hops: ${JSON.stringify(outcome)}`);
    }
    for (const [what, replay] of helloCopies()) {
      assertBroken(await handshake(false, { toServer: replay }), what);
    }
    const hvr = await handshake(false, { toClient: secondHelloVerify() });
    // The session works, but werift's client reported an error: its RTCDtlsTransport fails on
    // it and never sets up SRTP.
    assert.ok(hvr.errors.some((e) => e.startsWith("client")), JSON.stringify(hvr));
  },
});

Deno.test("voice DTLS: a retransmitted flight 5 leaves the session's keys as they were", async () => {
  for (const hops of [0, 1, 2, 3, 5, 10]) {
    assertWorks(await handshake(true, { toServer: lateFlightFive(hops) }), `${hops} hops`);
  }
});

Deno.test("voice DTLS: a copy of a ClientHello after the handshake moved on is ignored", async () => {
  for (const [what, replay] of helloCopies()) {
    assertWorks(await handshake(true, { toServer: replay }), what);
  }
});

Deno.test("voice DTLS: a second HelloVerifyRequest does not fail werift's client", async () => {
  assertWorks(
    await handshake(true, { toClient: secondHelloVerify() }),
    "a second HelloVerifyRequest",
  );
});

Deno.test("voice DTLS: a guarded server still takes a new handshake after the first", async () => {
  // A ClientHello with a new random after the server connected is a new handshake, not a copy.
  const outcome = await handshake(true, {}, true);
  assertWorks({ ...outcome, copies: 1 }, "the second handshake");
});

Deno.test("voice DTLS: the forwarding unit's DTLS servers and clients get the guards", async () => {
  assert.ok(await loadMedia());
  const w = await import("werift");
  const start = w.RTCDtlsTransport.prototype.start;
  assert.ok(Object.getOwnPropertySymbols(start).length > 0, "RTCDtlsTransport.start is wrapped");
  // A real peer connection pair: the answering side is the DTLS server (the offer is actpass).
  // Loopback only: checks go to 127.0.0.1 and nowhere else.
  const config = {
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (pair: { remoteCandidate: { host: string } }) =>
      pair.remoteCandidate.host === "127.0.0.1",
  };
  const offerer = new w.RTCPeerConnection(config);
  const answerer = new w.RTCPeerConnection(config);
  try {
    offerer.addTransceiver("audio", { direction: "sendrecv" });
    const offer = await offerer.createOffer();
    skipPublicStun(offerer);
    await offerer.setLocalDescription(offer);
    await waitGathered(offerer);
    await answerer.setRemoteDescription(offerer.localDescription!);
    const answer = await answerer.createAnswer();
    skipPublicStun(answerer);
    await answerer.setLocalDescription(answer);
    await waitGathered(answerer);
    await offerer.setRemoteDescription(answerer.localDescription!);
    const deadline = Date.now() + 10_000;
    while (
      (offerer.connectionState !== "connected" || answerer.connectionState !== "connected") &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(offerer.connectionState, "connected");
    assert.equal(answerer.connectionState, "connected");
    const sockets = [offerer, answerer].flatMap((pc) => pc.dtlsTransports).map((t) => t.dtls);
    const servers = sockets.filter((d) => d instanceof w.DtlsServer);
    const clients = sockets.filter((d) => d instanceof w.DtlsClient);
    assert.equal(servers.length, 1, "one side is the DTLS server");
    assert.equal(clients.length, 1, "the other is the DTLS client");
    for (const socket of [...servers, ...clients]) {
      assert.notEqual(
        socket!.onHandleHandshakes,
        (socket as unknown as { handleHandshakes: unknown }).handleHandshakes,
        "its handshake handler is the guarded one",
      );
    }
  } finally {
    await offerer.close();
    await answerer.close();
  }
});

/** Waits until `pc` gathered its candidates. */
async function waitGathered(pc: { iceGatheringState: string }): Promise<void> {
  const deadline = Date.now() + 5000;
  while (pc.iceGatheringState !== "complete" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
