/**
 * A TCP connect attempt on Node's own TCP handle (the `tcp_wrap` binding that `net.Socket` is built
 * on), without a `net.Socket`: no stream state to build and tear down, and no Error object per
 * refused port. A port scan is mostly refusals, and on a 2-CPU machine that work, not the
 * network, bounds how fast Node can scan (bench/README.md, Scan). The binding is internal: when
 * it is missing or its shape changed, {@link rawConnector} returns undefined and the scanner uses
 * `net.connect` instead. IP literals only (host names go through `net.connect` and its lookup).
 */
import { isIP } from 'node:net';

/** What an attempt came to. */
export type RawOutcome = 'open' | 'closed' | 'timeout' | 'canceled';

interface TcpHandle {
  connect(req: ConnectRequest, address: string, port: number): number;
  connect6(req: ConnectRequest, address: string, port: number): number;
  close(callback?: () => void): void;
}
interface ConnectRequest {
  oncomplete: (status: number) => void;
  address: string;
  port: number;
}
interface TcpWrap {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectRequest;
  constants: { SOCKET: number };
}

function loadBinding(): TcpWrap | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<TcpWrap> }).binding('tcp_wrap');
    const ok = typeof binding.TCP === 'function' && typeof binding.TCPConnectWrap === 'function' && typeof binding.constants?.SOCKET === 'number';
    return ok ? (binding as TcpWrap) : undefined;
  } catch {
    return undefined;
  }
}

/** One attempt: resolves once, closes the handle whatever happens. */
export type RawConnector = (address: string, port: number, timeoutMs: number, cancelers: Set<() => void>) => Promise<RawOutcome>;

/** The raw connector, or undefined when this Node has no usable `tcp_wrap` binding. */
export function rawConnector(): RawConnector | undefined {
  const binding = loadBinding();
  if (!binding) {
    return undefined;
  }
  const { TCP, TCPConnectWrap, constants } = binding;
  return (address, port, timeoutMs, cancelers) =>
    new Promise((resolve) => {
      const family = isIP(address);
      if (family === 0) {
        resolve('closed');
        return;
      }
      const handle = new TCP(constants.SOCKET);
      const req = new TCPConnectWrap();
      let settled = false;
      const finish = (outcome: RawOutcome) => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(timer);
        cancelers.delete(cancel);
        // The slot is free once the socket is closed, so the kernel never sees more than `concurrency` of ours.
        handle.close(() => resolve(outcome));
      };
      const cancel = () => finish('canceled');
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      cancelers.add(cancel);
      req.oncomplete = (status) => finish(status === 0 ? 'open' : status === -110 ? 'timeout' : 'closed'); // -110: ETIMEDOUT
      req.address = address;
      req.port = port;
      const err = family === 6 ? handle.connect6(req, address, port) : handle.connect(req, address, port);
      if (err !== 0) {
        finish('closed');
      }
    });
}
