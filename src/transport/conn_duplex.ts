/**
 * A `Deno.Conn` as a node `Duplex`, so that `node:tls` can run server-side TLS over a
 * connection parley accepted itself: `Deno.listenTls` keeps a socket closed during its
 * handshake open until the peer acts, and a `node:tls` server stops accepting for good once the
 * process runs out of descriptors, while parley's own accept loop recovers from that.
 *
 * @module
 */

import { Duplex } from "node:stream";

/** Reads start small (an idle TLS connection holds one pending read) and grow while they fill. */
const MIN_READ = 1024;
const MAX_READ = 32 * 1024;

/**
 * Wraps `conn`. Reads happen only when the stream wants data (backpressure); writes resolve
 * once the socket took all the bytes; ending the stream half-closes the socket; destroying it
 * closes the socket.
 *
 * @param conn the accepted connection
 * @param first bytes already read from `conn` (sniffed), delivered before the rest
 * @returns the stream, to hand to `new tls.TLSSocket(stream, { isServer: true, … })`
 */
export function connDuplex(conn: Deno.Conn, first?: Uint8Array): Duplex {
  let size = MIN_READ;
  let pending = first !== undefined && first.length > 0 ? first : undefined;
  return new Duplex({
    read() {
      if (pending !== undefined) {
        this.push(pending);
        pending = undefined;
        return;
      }
      const buf = new Uint8Array(size);
      conn.read(buf).then(
        (n) => {
          if (n === buf.length) size = Math.min(MAX_READ, size * 2);
          else if (n !== null && n < size / 8) size = Math.max(MIN_READ, size / 2);
          this.push(n === null ? null : buf.subarray(0, n));
        },
        (error) => this.destroy(error),
      );
    },
    write(chunk: Uint8Array, _encoding, done) {
      writeAll(conn, chunk).then(() => done(), (error) => done(error));
    },
    final(done) {
      conn.closeWrite().then(() => done(), () => done());
    },
    destroy(error, done) {
      try {
        conn.close();
      } catch {
        // closed already
      }
      done(error);
    },
  });
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}
