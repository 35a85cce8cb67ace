// The forwarding unit's DTLS server and a retransmitted flight 5 (src/voice/dtls_retransmit.ts):
// a real werift DtlsClient and DtlsServer shake hands over two real UDP sockets on loopback. The
// server's side hands each datagram to werift as it arrives and, like a client whose flight 5 was
// answered late, hands over the client's ClientKeyExchange datagram once more after its Finished,
// a given number of promise hops later (where a busy server's UDP reads land between werift's
// awaits). Without the guard werift derives its keys again over a cache that holds the Finished:
// the handshake "completes" on both sides, yet no application data gets through either way.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import dgram from "node:dgram";
import { ignoreRetransmittedFlightFive } from "../src/voice/dtls_retransmit.ts";
import type { DtlsServerLike } from "../src/voice/dtls_retransmit.ts";
import { loadMedia, skipPublicStun } from "../src/voice/peer.ts";

/** A UDP socket bound to a free loopback port. */
function udp(): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    socket.bind(0, "127.0.0.1", () => resolve(socket));
  });
}

/** A DTLS record's content type and epoch, and its first handshake message's type. */
function records(datagram: Buffer): { type: number; epoch: number; message: number }[] {
  const found = [];
  for (let at = 0; at + 13 <= datagram.length; at += 13 + datagram.readUInt16BE(at + 11)) {
    found.push({
      type: datagram[at]!,
      epoch: datagram.readUInt16BE(at + 3),
      message: datagram[at + 13] ?? -1,
    });
  }
  return found;
}

/** What the two ends got of each other's application data after a handshake. */
interface Outcome {
  serverGot: string[];
  clientGot: string[];
  copies: number;
}

/**
 * Shakes hands; the server's side is given the client's ClientKeyExchange again `hops` promise
 * hops after the client's Finished (epoch 1) arrived. `guard` applies the fix to the server.
 */
async function handshake(hops: number, guard: boolean): Promise<Outcome> {
  await loadMedia(); // werift, loaded as the server loads it
  const w = await import("werift");
  const cert = await w.CipherContext.createSelfSignedCertificateWithKey(
    { signature: w.SignatureAlgorithm.ecdsa_3, hash: w.HashAlgorithm.sha256_4 },
    w.NamedCurveAlgorithm.secp256r1_23,
  );
  const serverSocket = await udp();
  const clientSocket = await udp();
  let copies = 0;
  const transport = (own: dgram.Socket, peer: dgram.Socket, retransmit: boolean) => {
    const port = peer.address().port;
    const ends = {
      type: "udp",
      address: own.address(),
      closed: false,
      onData: (_data: Buffer, _from: readonly [string, number]) => {},
      send: (data: Buffer) =>
        new Promise<void>((resolve) => own.send(data, port, "127.0.0.1", () => resolve())),
      close: () => Promise.resolve(),
    };
    let keyExchange: Buffer | undefined;
    let copied = false;
    own.on("message", (datagram: Buffer) => {
      ends.onData(datagram, ["127.0.0.1", port]);
      if (!retransmit) return;
      const [first] = records(datagram);
      if (first?.type === 22 && first.epoch === 0 && first.message === 16) {
        keyExchange = Buffer.from(datagram);
      } else if (first?.type === 22 && first.epoch === 1 && keyExchange !== undefined && !copied) {
        const copy = keyExchange;
        copied = true;
        let later = Promise.resolve();
        for (let i = 0; i < hops; i++) later = later.then(() => {});
        later.then(() => {
          copies++;
          ends.onData(copy, ["127.0.0.1", port]);
        });
      }
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
    transport: transport(serverSocket, clientSocket, true),
  });
  if (guard) ignoreRetransmittedFlightFive(server as unknown as DtlsServerLike);
  const client = new w.DtlsClient({
    ...options,
    transport: transport(clientSocket, serverSocket, false),
  });
  const outcome: Outcome = { serverGot: [], clientGot: [], copies: 0 };
  server.onData.subscribe((data: Buffer) => outcome.serverGot.push(data.toString()));
  client.onData.subscribe((data: Buffer) => outcome.clientGot.push(data.toString()));
  try {
    const connected = new Promise((resolve) => server.onConnect.once(resolve));
    await client.connect();
    await connected;
    await new Promise((resolve) => setTimeout(resolve, 50)); // the copy has been handled
    await client.send(Buffer.from("from the client"));
    await server.send(Buffer.from("from the server"));
    const deadline = Date.now() + 1000;
    while (outcome.serverGot.length + outcome.clientGot.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    outcome.copies = copies;
    return outcome;
  } finally {
    serverSocket.close();
    clientSocket.close();
  }
}

Deno.test("voice DTLS: without the guard, a late copy of flight 5 breaks werift's keys", async () => {
  // What the guard is for, shown on werift itself: when this fails, werift has fixed it.
  for (const hops of [0, 1, 2]) {
    const outcome = await handshake(hops, false);
    assert.equal(outcome.copies, 1, `the copy was handed over (${hops} hops)`);
    assert.deepEqual(outcome.serverGot, [], `${hops} hops: ${JSON.stringify(outcome)}`);
    assert.deepEqual(outcome.clientGot, [], `${hops} hops: ${JSON.stringify(outcome)}`);
  }
});

Deno.test("voice DTLS: a retransmitted flight 5 leaves the session's keys as they were", async () => {
  for (const hops of [0, 1, 2, 3, 5, 10]) {
    const outcome = await handshake(hops, true);
    assert.equal(outcome.copies, 1, `the copy was handed over (${hops} hops)`);
    assert.deepEqual(outcome.serverGot, ["from the client"], `${hops} hops`);
    assert.deepEqual(outcome.clientGot, ["from the server"], `${hops} hops`);
  }
});

Deno.test("voice DTLS: the forwarding unit's DTLS servers get the guard", async () => {
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
    const servers = [offerer, answerer].flatMap((pc) => pc.dtlsTransports)
      .map((t) => t.dtls).filter((d) => d instanceof w.DtlsServer);
    assert.equal(servers.length, 1, "one side is the DTLS server");
    assert.notEqual(
      servers[0]!.onHandleHandshakes,
      (servers[0] as unknown as { handleHandshakes: unknown }).handleHandshakes,
      "its handshake handler is the guarded one",
    );
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
