/**
 * How werift's DTLS handshake copes with retransmitted flights. DTLS runs over UDP, so each side
 * sends its last flight again when the answer is late, and a busy machine (or a network) can
 * deliver a copy after the handshake has moved on. werift (pinned in deno.json; 0.25.2 has the
 * same code) handles three such copies wrongly, each of which leaves a participant "connected"
 * whom nobody hears and who hears nobody:
 *
 * - **A copy of the client's flight 5** (Certificate, CertificateVerify, ClientKeyExchange,
 *   Finished), which a browser sends when the server's Finished is late. werift's server treats
 *   each ClientKeyExchange as a new one until the handshake is done and derives the master secret
 *   again from its handshake cache: when the copy arrives after the first Finished was read but
 *   before the server marked itself connected (a few promise hops, which a busy server's UDP reads
 *   fall into), the cache already holds the Finished, so the secret, the SRTP keys and the
 *   server's own Finished all come out wrong; the browser never completes the handshake.
 *   So the server drops a flight-5 message of a type it already holds for this handshake; the
 *   copy's Finished still makes werift send its own flight again, as a retransmission should.
 * - **A copy of the client's first ClientHello** (the one without a cookie), sent when the
 *   server's HelloVerifyRequest is late. werift's server answers every cookieless ClientHello by
 *   drawing a new server random and key pair: if the copy comes after the server sent them in its
 *   flight 4, its keys no longer match what the client was told; once the handshake is done, any
 *   ClientHello makes werift start a new one and drop the keys in use. So the server drops a
 *   ClientHello with this handshake's client random once its flight 4 is out (a cookieless one)
 *   or once it is connected (any); a new handshake comes with a new random and passes.
 * - **A second HelloVerifyRequest**, the server's answer to such a copy. werift's client throws
 *   on it once it sent its second ClientHello, which fails its DTLS transport for good: the
 *   handshake still completes, but SRTP is never set up (werift's peer connection may even report
 *   `connected` after the next negotiation). So the client drops a HelloVerifyRequest that comes
 *   after its first; the cookie of the first is the one in use. (parley's forwarding unit is the
 *   DTLS server for browsers, which answer `active`; its werift client is the test and benchmark
 *   participants', and the server's own should a client answer `passive`.)
 *
 * A new handshake (werift starts one for a new ClientHello after it connected) has an empty
 * cache and a new random, so its messages pass.
 *
 * @module
 */

/** The DTLS handshake message types the guards look at. */
const CLIENT_HELLO = 1;
const HELLO_VERIFY_REQUEST = 3;

/** The messages of the client's flight 5 that werift's server would take twice. */
const FLIGHT_FIVE = new Set([
  11, // certificate
  15, // certificate_verify
  16, // client_key_exchange
]);

/** What parley uses of a werift handshake message. */
interface HandshakeLike {
  msg_type: number;
  /** The message's body. */
  fragment?: Uint8Array;
}

/** What parley uses of werift's `DtlsServer` and `DtlsClient`. */
interface DtlsSocketLike {
  /** The handshake's context: werift replaces it for a new handshake. */
  dtls: {
    flight: number;
    handshakeCache: Record<number, { data: HandshakeLike[] } | undefined>;
  };
  /** Handles the handshake messages of one record. */
  onHandleHandshakes: (assembled: HandshakeLike[]) => Promise<void>;
}

/** What parley uses of werift's `DtlsServer`. */
export interface DtlsServerLike extends DtlsSocketLike {
  connected: boolean;
  /** The handshake's keys: `remoteRandom` is the client's random, once its first hello came. */
  cipher: { remoteRandom?: { serialize(): Uint8Array } };
}

/** What parley uses of werift's `DtlsClient`. */
export type DtlsClientLike = DtlsSocketLike;

/** What parley uses of werift's `RTCDtlsTransport`. */
interface DtlsTransportLike {
  dtls?: object;
}

/** Makes `socket` run its handler on what is left of each record after `keep`. */
function filterHandshakes<T extends DtlsSocketLike>(
  socket: T,
  keep: (message: HandshakeLike, socket: T) => boolean,
): void {
  const handle = socket.onHandleHandshakes;
  socket.onHandleHandshakes = (assembled) => {
    const fresh = assembled.filter((message) => keep(message, socket));
    return fresh.length === 0 ? Promise.resolve() : handle.call(socket, fresh);
  };
}

/**
 * Makes `server` ignore copies that would break its handshake: a flight-5 message it already
 * took, and a copy of this handshake's ClientHello once its flight 4 is out or it is connected.
 */
export function guardDtlsServer(server: DtlsServerLike): void {
  filterHandshakes(server, (message, s) => {
    if (FLIGHT_FIVE.has(message.msg_type)) {
      const held = s.dtls.handshakeCache[5]?.data ?? [];
      return !held.some((h) => h.msg_type === message.msg_type);
    }
    if (message.msg_type !== CLIENT_HELLO || message.fragment === undefined) return true;
    const hello = clientHello(message.fragment);
    const ours = s.cipher.remoteRandom?.serialize();
    if (hello === undefined || ours === undefined || !sameBytes(hello.random, ours)) return true;
    return !(s.connected || (s.dtls.flight >= 4 && !hello.cookie));
  });
}

/** Makes `client` ignore a HelloVerifyRequest after its first. */
export function guardDtlsClient(client: DtlsClientLike): void {
  filterHandshakes(client, (message, c) => {
    return message.msg_type !== HELLO_VERIFY_REQUEST || c.dtls.flight <= 1;
  });
}

/**
 * The client random of a ClientHello's body (version, random, session id, cookie, …), and
 * whether it carries a cookie; `undefined` when the body is too short to hold them.
 */
function clientHello(body: Uint8Array): { random: Uint8Array; cookie: boolean } | undefined {
  const session = 34; // 2 bytes of version, 32 of random
  if (body.length <= session) return undefined;
  const cookieAt = session + 1 + body[session]!;
  if (body.length <= cookieAt) return undefined;
  return { random: body.subarray(2, session), cookie: body[cookieAt]! > 0 };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Guards the DTLS server or client of every werift `RTCDtlsTransport` that starts
 * ({@linkcode guardDtlsServer}, {@linkcode guardDtlsClient}). werift's `start()` makes its
 * `DtlsServer` or `DtlsClient` before its first `await`, so it is there once `start()` returns
 * its promise, before any datagram reaches it.
 *
 * @param werift werift's classes: `RTCDtlsTransport`, `DtlsServer` and `DtlsClient`
 */
export function installRetransmitGuards(werift: {
  RTCDtlsTransport: { prototype: object };
  DtlsServer: abstract new (...args: never[]) => unknown;
  DtlsClient: abstract new (...args: never[]) => unknown;
}): void {
  const prototype = werift.RTCDtlsTransport.prototype as {
    start(this: DtlsTransportLike): Promise<void>;
  };
  const original = prototype.start;
  if (INSTALLED in original) return;
  const start = function (this: DtlsTransportLike) {
    const started = original.call(this);
    if (this.dtls instanceof werift.DtlsServer) {
      guardDtlsServer(this.dtls as unknown as DtlsServerLike);
    } else if (this.dtls instanceof werift.DtlsClient) {
      guardDtlsClient(this.dtls as unknown as DtlsClientLike);
    }
    return started;
  };
  Object.defineProperty(start, INSTALLED, { value: true });
  prototype.start = start;
}

/** Marks the replacement, so that installing twice replaces once. */
const INSTALLED = Symbol("parley DTLS retransmit guards");
