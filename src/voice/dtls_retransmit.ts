/**
 * How the forwarding unit's DTLS server copes with a retransmitted flight 5. A browser that hears
 * nothing back soon after its ClientKeyExchange, ChangeCipherSpec and Finished (flight 5) sends them
 * again. werift's server (pinned in deno.json; 0.25.2 has the same code) treats each
 * ClientKeyExchange as a new one until the handshake is done, and derives the master secret again
 * from its handshake cache: when the copy arrives after the first Finished was read but before the
 * server marked itself connected (a few promise hops, which a busy server's UDP reads fall into),
 * that cache already holds the Finished, so the secret, the SRTP keys and the server's own
 * Finished all come out wrong. The browser then never completes the handshake (its connection
 * stays `connecting` over a `connected` ICE pair) and nobody hears that participant.
 *
 * So parley drops a flight-5 message (Certificate, CertificateVerify, ClientKeyExchange) of a type
 * the server already holds for this handshake; the copy's Finished still makes werift send its own
 * flight again, as a retransmission should. A new handshake (werift starts one for a ClientHello
 * after it connected) has an empty cache, so its messages pass.
 *
 * @module
 */

/** The DTLS handshake messages of the client's flight 5 that werift would take twice. */
const FLIGHT_FIVE = new Set([
  11, // certificate
  15, // certificate_verify
  16, // client_key_exchange
]);

/** What parley uses of a werift handshake message. */
interface HandshakeLike {
  msg_type: number;
}

/** What parley uses of werift's `DtlsServer`. */
export interface DtlsServerLike {
  /** The handshake's context: werift replaces it for a new handshake. */
  dtls: { handshakeCache: Record<number, { data: HandshakeLike[] } | undefined> };
  /** Handles the handshake messages of one record. */
  onHandleHandshakes: (assembled: HandshakeLike[]) => Promise<void>;
}

/** What parley uses of werift's `RTCDtlsTransport`. */
interface DtlsTransportLike {
  dtls?: object;
}

/** Makes `server` ignore a copy of a flight-5 message it already took in this handshake. */
export function ignoreRetransmittedFlightFive(server: DtlsServerLike): void {
  const handle = server.onHandleHandshakes;
  server.onHandleHandshakes = (assembled) => {
    const held = server.dtls.handshakeCache[5]?.data ?? [];
    const fresh = assembled.filter((message) =>
      !FLIGHT_FIVE.has(message.msg_type) || !held.some((h) => h.msg_type === message.msg_type)
    );
    return handle.call(server, fresh);
  };
}

/**
 * Makes the DTLS server of every werift `RTCDtlsTransport` that starts as one
 * {@linkcode ignoreRetransmittedFlightFive}. werift's `start()` makes its `DtlsServer` before
 * its first `await`, so it is there once `start()` returns its promise.
 *
 * @param dtlsTransport werift's `RTCDtlsTransport` class
 * @param dtlsServer werift's `DtlsServer` class
 */
export function installFlightFiveGuard(
  dtlsTransport: { prototype: object },
  dtlsServer: abstract new (...args: never[]) => unknown,
): void {
  const prototype = dtlsTransport.prototype as { start(this: DtlsTransportLike): Promise<void> };
  const original = prototype.start;
  if (INSTALLED in original) return;
  const start = function (this: DtlsTransportLike) {
    const started = original.call(this);
    if (this.dtls instanceof dtlsServer) {
      ignoreRetransmittedFlightFive(this.dtls as unknown as DtlsServerLike);
    }
    return started;
  };
  Object.defineProperty(start, INSTALLED, { value: true });
  prototype.start = start;
}

/** Marks the replacement, so that installing twice replaces once. */
const INSTALLED = Symbol("parley flight five guard");
