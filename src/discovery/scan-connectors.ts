/**
 * The two ways a scan makes a connection attempt, behind one callback interface so that a scan
 * of a quarter of a million pairs allocates no Promise, closure or timer per attempt: the
 * connector reports each end through one `end(slot, outcome)` function given once per scan.
 *
 * - The raw connector uses Node's own TCP handle (the `tcp_wrap` binding that `net.Socket` is
 *   built on): no stream state, no Error object per refused port, and shared callbacks that find
 *   their slot on the handle. A port scan is mostly refusals, and on a 2-CPU machine that work,
 *   not the network, bounds how fast Node can scan (bench/README.md, Scan). The binding is
 *   internal: when it is missing or its shape changed, {@link rawConnector} returns undefined.
 * - The socket connector is `net.connect`: host names (with the scan's cached lookup), and every
 *   pair when there is no usable binding or the caller asks for it.
 */
import { connect, type LookupFunction, type Socket } from 'node:net';

/** What an attempt came to. */
export type Outcome = 'open' | 'closed' | 'timeout' | 'canceled';

/** One of a scan's `concurrency` places for an attempt in flight, reused from attempt to attempt. */
export interface Slot {
  /** The pair being probed (index into the scan's host × port space), -1 when the slot is free. */
  index: number;
  /** Attempts made on that pair so far. */
  tries: number;
  /** `performance.now()` past which the attempt in flight has timed out. */
  deadline: number;
  /** The connector's handle or socket for the attempt in flight. */
  attempt: unknown;
}

/** Told, exactly once per started attempt, how it ended — once its socket is closed (raw) or destroyed. */
export type EndAttempt = (slot: Slot, outcome: Outcome) => void;

/** Starts attempts and stops them early. */
export interface Connector {
  /** Connects `slot` to host:port (`family` 4 or 6 for an IP literal, 0 for a host name). */
  start(slot: Slot, host: string, family: number, port: number): void;
  /** Ends the attempt in flight on `slot` with `outcome` (a timeout or a cancel); a no-op when it is already ending. */
  stop(slot: Slot, outcome: Outcome): void;
}

interface TcpHandle {
  connect(req: ConnectRequest, address: string, port: number): number;
  connect6(req: ConnectRequest, address: string, port: number): number;
  close(callback?: () => void): void;
  /** Ours: the slot the handle works for, and how its attempt ended (set once it is closing). */
  slot: Slot;
  outcome: Outcome | undefined;
}
interface ConnectRequest {
  oncomplete: (status: number, handle: TcpHandle) => void;
  address: string;
  port: number;
}
interface TcpWrap {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectRequest;
  constants: { SOCKET: number };
}

/** The binding, looked up once per thread (null: none usable). */
let cached: TcpWrap | null | undefined;

function loadBinding(): TcpWrap | null {
  cached ??= findBinding();
  return cached;
}

function findBinding(): TcpWrap | null {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<TcpWrap> }).binding('tcp_wrap');
    const ok = typeof binding.TCP === 'function' && typeof binding.TCPConnectWrap === 'function' && typeof binding.constants?.SOCKET === 'number';
    return ok ? (binding as TcpWrap) : null;
  } catch {
    return null;
  }
}

const ETIMEDOUT = -110;

/**
 * The raw connector, or undefined when this Node has no usable `tcp_wrap` binding. An attempt
 * ends when its handle is closed, so the kernel never holds more sockets than there are slots.
 */
export function rawConnector(end: EndAttempt): Connector | undefined {
  const binding = loadBinding();
  if (!binding) {
    return undefined;
  }
  const { TCP, TCPConnectWrap, constants } = binding;
  // Called by the handle's close, with the handle as `this`.
  function closed(this: TcpHandle): void {
    end(this.slot, this.outcome as Outcome);
  }
  const close = (handle: TcpHandle, outcome: Outcome) => {
    if (handle.outcome === undefined) {
      handle.outcome = outcome;
      handle.close(closed);
    }
  };
  // A close during the connect completes it with ECANCELED: `close` ignores that second ending.
  const completed = (status: number, handle: TcpHandle) => close(handle, status === 0 ? 'open' : status === ETIMEDOUT ? 'timeout' : 'closed');
  return {
    start(slot, host, family, port) {
      const handle = new TCP(constants.SOCKET);
      handle.slot = slot;
      handle.outcome = undefined;
      slot.attempt = handle;
      const req = new TCPConnectWrap();
      req.oncomplete = completed;
      req.address = host;
      req.port = port;
      if ((family === 6 ? handle.connect6(req, host, port) : handle.connect(req, host, port)) !== 0) {
        close(handle, 'closed');
      }
    },
    stop: (slot, outcome) => close(slot.attempt as TcpHandle, outcome),
  };
}

/** The `net.connect` connector; the socket is destroyed as soon as the attempt ends. */
export function socketConnector(end: EndAttempt, lookup: LookupFunction): Connector {
  const finish = (slot: Slot, socket: Socket, outcome: Outcome) => {
    if (slot.attempt === socket) {
      slot.attempt = undefined;
      socket.destroy();
      end(slot, outcome);
    }
  };
  return {
    start(slot, host, _family, port) {
      const socket = connect({ host, port, lookup });
      slot.attempt = socket;
      socket.once('connect', () => finish(slot, socket, 'open'));
      // ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ENOTFOUND…: nothing listens there (or nothing is there).
      socket.on('error', (e: NodeJS.ErrnoException) => finish(slot, socket, e.code === 'ETIMEDOUT' ? 'timeout' : 'closed'));
    },
    stop(slot, outcome) {
      if (slot.attempt) {
        finish(slot, slot.attempt as Socket, outcome);
      }
    },
  };
}
