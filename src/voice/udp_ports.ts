/**
 * How the forwarding unit's peers take a UDP port of `--voice-ports`. werift finds
 * one by binding a probe socket to each port in turn, closing it, and binding the real socket to
 * the port the probe got. Under Deno the probe's port is not always free again by then: the real
 * bind fails with `EADDRINUSE` while nothing else holds the port, and because werift waits for a
 * `listening` event that never comes, that peer's gathering never ends (and so neither did every
 * gathering after it, which parley ran one at a time). So parley replaces that one step: the real
 * socket binds each port of the range itself, from where the last bind stopped, and keeps the
 * first that works; with none free the gathering fails instead of hanging.
 *
 * It changes `UdpTransport.prototype.init` of the werift version pinned in deno.json (the class
 * werift exports is the one its ICE agent uses), and only for sockets given a port range: a fixed
 * port or port 0 binds as before.
 *
 * @module
 */

/** What parley uses of werift's UDP transport. */
interface UdpTransportLike {
  socketType: "udp4" | "udp6";
  options: {
    port?: number;
    portRange?: [number, number];
    interfaceAddresses?: Record<string, string>;
  };
  socket: {
    bind(options: { port: number; address?: string | undefined }): void;
    once(event: "error", fn: (error: Error) => void): void;
    once(event: "listening", fn: () => void): void;
    off(event: string, fn: (...args: never[]) => void): void;
  };
}

/** Where the next search starts, as an offset into the range. */
let cursor = 0;

/** Binds `socket` to `port`: undefined when bound, else the error. */
function bindOnce(
  socket: UdpTransportLike["socket"],
  port: number,
  address: string | undefined,
): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const failed = (error: Error) => {
      socket.off("listening", bound);
      resolve(error);
    };
    const bound = () => {
      socket.off("error", failed);
      resolve(undefined);
    };
    socket.once("error", failed);
    socket.once("listening", bound);
    socket.bind({ port, address });
  });
}

/**
 * Binds the transport's socket to a free port of its range, trying each port once, starting after
 * the port the previous bind took.
 *
 * @throws {Error} when every port of the range is taken, or a bind fails otherwise
 */
export async function bindInRange(transport: UdpTransportLike): Promise<number> {
  const [first, last] = transport.options.portRange!;
  const address = transport.options.interfaceAddresses?.[transport.socketType];
  const span = last - first + 1;
  for (let i = 0; i < span; i++) {
    const port = first + (cursor + i) % span;
    const error = await bindOnce(transport.socket, port, address);
    if (error === undefined) {
      cursor = (port - first + 1) % span;
      return port;
    }
    if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
  }
  throw new Error(`No free UDP port in the voice range ${first}-${last}`);
}

/**
 * Makes werift's UDP transports with a port range bind through {@linkcode bindInRange}.
 *
 * @param udpTransport werift's `UdpTransport` class (its `init` is private in its types)
 */
export function installPortSearch(udpTransport: { prototype: object }): void {
  const prototype = udpTransport.prototype as { init(this: UdpTransportLike): Promise<void> };
  const original = prototype.init;
  if (INSTALLED in original) return;
  const init = async function (this: UdpTransportLike) {
    if (this.options.port || this.options.portRange === undefined) {
      return await original.call(this);
    }
    await bindInRange(this);
  };
  Object.defineProperty(init, INSTALLED, { value: true });
  prototype.init = init;
}

/** Marks the replacement, so that installing twice replaces once. */
const INSTALLED = Symbol("parley port search");
