/**
 * Built-in TCP connect scanner: which host:port pairs accept a connection, with no root and no
 * system tool. Pairs are taken lazily (port by port, every host in turn, so one host is not hit
 * with all its ports at once), a fixed number of sockets is in flight, each attempt has its own
 * timer, and a socket is destroyed as soon as it connects (identification reconnects). A refusal
 * or an unreachable host is "closed"; a timeout is retried, and after the last timeout the pair
 * counts as "filtered". No database, no domain types.
 */
import { connect, isIP, type LookupFunction } from 'node:net';
import { availableParallelism } from 'node:os';

import { type RawConnector, rawConnector } from './raw-connect.ts';
import { cachedLookup, type Cancelers, rateLimiter, throttle } from './scan-pacing.ts';
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

let raw: RawConnector | undefined;

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

type Outcome = 'open' | 'closed' | 'timeout' | 'canceled';

/** One connection attempt; the socket is destroyed whatever happens. */
function attempt(host: string, port: number, timeoutMs: number, lookup: LookupFunction, cancelers: Cancelers): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, lookup });
    const finish = (outcome: Outcome) => {
      clearTimeout(timer);
      cancelers.delete(cancel);
      socket.destroy();
      resolve(outcome);
    };
    const cancel = () => finish('canceled');
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    cancelers.add(cancel);
    socket.once('connect', () => finish('open'));
    // ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ENOTFOUND…: nothing listens there (or nothing is there).
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ETIMEDOUT' ? 'timeout' : 'closed'));
  });
}

function distinctPorts(ports: number[]): number[] {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new RangeError(`not a TCP port: ${port}`);
    }
  }
  return [...new Set(ports)];
}

/** A scan in progress: its settings, counters and the one place that cancels everything in flight. */
interface Scan {
  hosts: string[];
  ports: number[];
  /** Pairs of this scan (its slice of the index space: [end - total, end)). */
  total: number;
  end: number;
  timeoutMs: number;
  retries: number;
  cancelers: Cancelers;
  stopped: AbortController;
  waitTurn: () => Promise<void>;
  lookup: LookupFunction;
  /** Connects IP literals without a net.Socket (undefined: this Node has no usable binding). */
  raw: RawConnector | undefined;
  progress: (done: number, force?: boolean) => void;
  stats: { next: number; probed: number; filtered: number; attempts: number; inFlight: number; maxInFlight: number };
  openIndexes: number[];
}

/** A scan of pairs [from, to), nothing started yet; the raw connector is made once per thread, by the first scan that uses it. */
function createScan(hosts: string[], ports: number[], from: number, to: number, options: ScanOptions): Scan {
  const cancelers: Cancelers = new Set();
  return {
    hosts,
    ports,
    total: to - from,
    end: to,
    timeoutMs: options.timeoutMs ?? 1000,
    retries: options.retries ?? 1,
    cancelers,
    stopped: new AbortController(),
    waitTurn: rateLimiter(options.ratePerSecond, cancelers),
    lookup: cachedLookup(),
    raw: options.socketConnect ? undefined : (raw ??= rawConnector()),
    progress: throttle(options.onProgress, to - from),
    stats: { next: from, probed: 0, filtered: 0, attempts: 0, inFlight: 0, maxInFlight: 0 },
    openIndexes: [],
  };
}

function stopScan(scan: Scan): void {
  scan.stopped.abort();
  scan.cancelers.forEach((cancel) => cancel());
}

/** One host:port pair: an attempt, and more after timeouts. */
async function probePair(scan: Scan, host: string, port: number): Promise<Outcome> {
  const { stats } = scan;
  for (let attempted = 0; ; attempted++) {
    await scan.waitTurn();
    if (scan.stopped.signal.aborted) {
      return 'canceled';
    }
    stats.attempts++;
    stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
    const outcome = scan.raw && isIP(host) ? await scan.raw(host, port, scan.timeoutMs, scan.cancelers) : await attempt(host, port, scan.timeoutMs, scan.lookup, scan.cancelers);
    stats.inFlight--;
    if (outcome !== 'timeout' || attempted >= scan.retries) {
      return outcome;
    }
  }
}

/** Takes pairs until none are left or the scan stops. Pair i is host i mod H on port ⌊i / H⌋: computed, never materialised. */
async function runWorker(scan: Scan): Promise<void> {
  const { stats, hosts, ports } = scan;
  while (!scan.stopped.signal.aborted && stats.next < scan.end) {
    const index = stats.next++;
    const outcome = await probePair(scan, hosts[index % hosts.length] as string, ports[Math.floor(index / hosts.length)] as number);
    if (outcome === 'canceled') {
      return;
    }
    stats.probed++;
    stats.filtered += outcome === 'timeout' ? 1 : 0;
    if (outcome === 'open') {
      scan.openIndexes.push(index);
    }
    scan.progress(stats.probed);
  }
}

/** Open pairs in input order: by host, then by port. */
function openPairs(scan: Scan): OpenPort[] {
  const width = scan.hosts.length;
  return scan.openIndexes
    .map((i) => ({ h: i % width, p: Math.floor(i / width) }))
    .sort((a, b) => a.h - b.h || a.p - b.p)
    .map(({ h, p }) => ({ host: scan.hosts[h] as string, port: scan.ports[p] as number }));
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

/**
 * Scans pairs [from, to) of `hosts` × `ports` (pair i is host i mod H on port ⌊i / H⌋) in this
 * thread; `findOpenPorts` and the scan threads (scan-threads.ts) both use it.
 */
export async function scanSlice(hostList: string[], portList: number[], from: number, to: number, options: ScanOptions = {}): Promise<ScanResult> {
  const scan = createScan(hostList, portList, from, to, options);
  const { signal } = options;
  const stop = () => stopScan(scan);
  signal?.addEventListener('abort', stop, { once: true });
  if (signal?.aborted) {
    stop();
  }
  const workerCount = Math.min(Math.max(1, Math.floor(options.concurrency ?? 512) || 1), scan.total);
  // A worker that throws (onProgress did) stops the others, and the scan rejects once all have let go of their sockets.
  const workers = Array.from({ length: workerCount }, () =>
    runWorker(scan).catch((e: unknown) => {
      stop();
      throw e;
    }),
  );
  const settled = await Promise.allSettled(workers);
  signal?.removeEventListener('abort', stop);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    throw failed.reason;
  }
  scan.progress(scan.stats.probed, true);
  const { probed, filtered, attempts, maxInFlight } = scan.stats;
  return { open: openPairs(scan), probed, total: scan.total, canceled: probed < scan.total && scan.stopped.signal.aborted, filtered, attempts, maxInFlight };
}
