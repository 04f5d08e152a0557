/**
 * Built-in TCP connect scanner: which host:port pairs accept a connection, with no root and no
 * system tool. Pairs are taken lazily (port by port, every host in turn, so one host is not hit
 * with all its ports at once), a fixed number of sockets is in flight, each attempt has a
 * deadline, and a socket is destroyed as soon as it connects (identification reconnects). A refusal
 * or an unreachable host is "closed"; a timeout is retried, and after the last timeout the pair
 * counts as "filtered". No database, no domain types.
 */
import { availableParallelism } from 'node:os';

import { scanSlice } from './scan-slice.ts';
import { findOpenPortsInThreads } from './scan-threads.ts';

/** How a scan runs. */
export interface ScanOptions {
  /** Sockets in flight at once. @defaultValue 512 */
  concurrency?: number;
  /** Connect timeout per attempt, in ms. @defaultValue 1000 */
  timeoutMs?: number;
  /** Extra attempts after a timeout (never after a refusal). @defaultValue 1 */
  retries?: number;
  /** Connection attempts (retries included) started per second; 0 or undefined = unlimited. */
  ratePerSecond?: number;
  /** Stops starting connections, destroys open sockets; the scan resolves with what it found, marked canceled. */
  signal?: AbortSignal;
  /** Told how many host:port pairs are finished, at most every 100 ms and once at the end. */
  onProgress?(done: number, total: number): void;
  /** Connect through `net.Socket` even where the lighter raw TCP handle is available (for comparison). */
  socketConnect?: boolean;
  /** Worker threads sharing the scan. @defaultValue one per CPU (at most 4) from 20,000 pairs, else 1 */
  threads?: number;
}

/** Below this many pairs one thread is as fast (threads cost ~50 ms to start). */
const PARALLEL_MIN_PAIRS = 20_000;
const MAX_THREADS = 4;

/** A host:port pair that accepted a connection. */
export interface OpenPort {
  host: string;
  port: number;
}

/** What a scan found. */
export interface ScanResult {
  /** Open pairs, in input order (host, then port). */
  open: OpenPort[];
  /** Pairs finished (open, closed or filtered); less than `total` when canceled. */
  probed: number;
  /** Pairs to probe: distinct hosts × distinct ports. */
  total: number;
  /** The signal stopped the scan before every pair was probed. */
  canceled: boolean;
  /** Pairs that timed out on every attempt (a firewall dropping, or nobody there). */
  filtered: number;
  /** Connection attempts started, retries included. */
  attempts: number;
  /** Most sockets that were open at the same time (never more than `concurrency`). */
  maxInFlight: number;
}

function distinctPorts(ports: number[]): number[] {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new RangeError(`not a TCP port: ${port}`);
    }
  }
  return [...new Set(ports)];
}

/**
 * Finds the open TCP ports among `hosts` × `ports` with plain connects. Resolves (never rejects on
 * network errors) with the open pairs in input order; when `signal` aborts, with what was found so
 * far and `canceled: true`. Throws RangeError for a port outside 1–65535, and whatever `onProgress` throws.
 */
export async function findOpenPorts(hosts: string[], ports: number[], options: ScanOptions = {}): Promise<ScanResult> {
  const [hostList, portList] = [[...new Set(hosts)], distinctPorts(ports)];
  const total = hostList.length * portList.length;
  const threads = scanThreads(total, options);
  return threads > 1 ? findOpenPortsInThreads(hostList, portList, threads, options) : scanSlice(hostList, portList, 0, total, options);
}

/** Threads for a scan: one per CPU (at most 4) for large IP-literal scans, where the CPU spent per probe is what bounds the time. */
function scanThreads(total: number, options: ScanOptions): number {
  if (options.threads !== undefined) {
    return Math.max(1, Math.floor(options.threads));
  }
  return total >= PARALLEL_MIN_PAIRS ? Math.min(availableParallelism(), MAX_THREADS) : 1;
}
