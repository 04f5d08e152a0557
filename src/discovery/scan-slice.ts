/**
 * The scan loop of one thread: `concurrency` slots, each taking the next host:port pair as soon
 * as its last attempt has ended. It is driven by the connectors' callbacks, not by async
 * functions: per attempt there is no Promise, closure or timer (one timer per scan checks the
 * deadlines, one paces the starts when a rate is set), which on a loopback or LAN scan of mostly
 * refused ports is a quarter of the CPU a probe costs (bench/README.md, Scan).
 */
import { isIP } from 'node:net';

import { type Connector, type Outcome, rawConnector, type Slot, socketConnector } from './scan-connectors.ts';
import { cachedLookup, throttle } from './scan-pacing.ts';
import type { ScanOptions, ScanResult } from './scanner.ts';

/** Starts held back to an even rate: who waits, and when the next may start. */
interface Pacer {
  gapMs: number;
  next: number;
  waiting: Slot[];
  timer: NodeJS.Timeout | undefined;
}

/** A scan of pairs [next, end) in progress: settings, connectors, slots and counters. */
interface Scan {
  hosts: string[];
  /** `isIP` of each host: 4 or 6 for a literal (raw connector), 0 for a name (net.connect). */
  families: number[];
  ports: number[];
  total: number;
  next: number;
  end: number;
  timeoutMs: number;
  retries: number;
  raw: Connector | undefined;
  socket: Connector;
  slots: Slot[];
  /** Slots with a pair (in flight or waiting for the pacer); the scan is over at zero. */
  busy: number;
  stopped: boolean;
  pacer: Pacer | undefined;
  sweeper: NodeJS.Timeout | undefined;
  progress: (done: number, force?: boolean) => void;
  stats: { probed: number; filtered: number; attempts: number; inFlight: number; maxInFlight: number };
  openIndexes: number[];
  /** What onProgress threw: the scan stops and rejects with it. */
  failure: { error: unknown } | undefined;
  finish: () => void;
}

const hostOf = (scan: Scan, index: number) => index % scan.hosts.length;
const connectorOf = (scan: Scan, index: number) => ((scan.families[hostOf(scan, index)] ?? 0) !== 0 && scan.raw) || scan.socket;

function launch(scan: Scan, slot: Slot): void {
  const { stats } = scan;
  stats.attempts++;
  stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
  slot.deadline = performance.now() + scan.timeoutMs;
  const h = hostOf(scan, slot.index);
  connectorOf(scan, slot.index).start(slot, scan.hosts[h] as string, scan.families[h] as number, scan.ports[Math.floor(slot.index / scan.hosts.length)] as number);
}

/** Starts slots held back by the rate as their turns come, one timer at a time. */
function pace(scan: Scan, pacer: Pacer): void {
  while (pacer.waiting.length > 0 && !scan.stopped) {
    const now = performance.now();
    const at = Math.max(now, pacer.next);
    if (at - now >= 1) {
      pacer.timer ??= setTimeout(() => {
        pacer.timer = undefined;
        pace(scan, pacer);
      }, at - now);
      return;
    }
    pacer.next = at + pacer.gapMs;
    launch(scan, pacer.waiting.shift() as Slot);
  }
}

function begin(scan: Scan, slot: Slot): void {
  slot.deadline = Infinity;
  if (!scan.pacer) {
    launch(scan, slot);
    return;
  }
  scan.pacer.waiting.push(slot);
  pace(scan, scan.pacer);
}

function release(scan: Scan, slot: Slot): void {
  slot.index = -1;
  slot.deadline = Infinity;
  if (--scan.busy === 0) {
    scan.finish();
  }
}

/** Gives `slot` the next pair, or frees it when there is none (or the scan stopped). Pair i is host i mod H on port ⌊i / H⌋. */
function fill(scan: Scan, slot: Slot): void {
  if (scan.stopped || scan.next >= scan.end) {
    release(scan, slot);
    return;
  }
  slot.index = scan.next++;
  slot.tries = 0;
  begin(scan, slot);
}

/** An attempt ended: retry after a timeout while retries are left, else count the pair and take the next. */
function ended(scan: Scan, slot: Slot, outcome: Outcome): void {
  const { stats } = scan;
  stats.inFlight--;
  if (outcome === 'canceled') {
    release(scan, slot);
    return;
  }
  if (outcome === 'timeout' && slot.tries < scan.retries) {
    // A pair stopped before its last attempt is not probed, like a canceled one.
    if (scan.stopped) {
      release(scan, slot);
    } else {
      slot.tries++;
      begin(scan, slot);
    }
    return;
  }
  stats.probed++;
  stats.filtered += outcome === 'timeout' ? 1 : 0;
  if (outcome === 'open') {
    scan.openIndexes.push(slot.index);
  }
  try {
    scan.progress(stats.probed);
  } catch (error) {
    scan.failure ??= { error };
    stopScan(scan);
  }
  fill(scan, slot);
}

/** Ends the attempts past their deadline. */
function sweep(scan: Scan): void {
  const now = performance.now();
  for (const slot of scan.slots) {
    if (slot.deadline <= now) {
      slot.deadline = Infinity;
      connectorOf(scan, slot.index).stop(slot, 'timeout');
    }
  }
}

function stopScan(scan: Scan): void {
  if (scan.stopped) {
    return;
  }
  scan.stopped = true;
  const waiting = scan.pacer?.waiting.splice(0) ?? [];
  waiting.forEach((slot) => release(scan, slot));
  for (const slot of scan.slots) {
    if (slot.deadline !== Infinity) {
      slot.deadline = Infinity;
      connectorOf(scan, slot.index).stop(slot, 'canceled');
    }
  }
}

function createScan(hosts: string[], ports: number[], from: number, to: number, options: ScanOptions, finish: () => void): Scan {
  const timeoutMs = options.timeoutMs ?? 1000;
  const scan: Scan = {
    hosts,
    families: hosts.map((h) => isIP(h)),
    ports,
    total: to - from,
    next: from,
    end: to,
    timeoutMs,
    retries: options.retries ?? 1,
    raw: undefined,
    socket: socketConnector((slot, outcome) => ended(scan, slot, outcome), cachedLookup()),
    slots: [],
    busy: 0,
    stopped: false,
    pacer: options.ratePerSecond && options.ratePerSecond > 0 ? { gapMs: 1000 / options.ratePerSecond, next: performance.now(), waiting: [], timer: undefined } : undefined,
    sweeper: undefined,
    progress: throttle(options.onProgress, to - from),
    stats: { probed: 0, filtered: 0, attempts: 0, inFlight: 0, maxInFlight: 0 },
    openIndexes: [],
    failure: undefined,
    finish,
  };
  scan.raw = options.socketConnect ? undefined : rawConnector((slot, outcome) => ended(scan, slot, outcome));
  const slotCount = Math.min(Math.max(1, Math.floor(options.concurrency ?? 512) || 1), scan.total);
  scan.slots = Array.from({ length: slotCount }, () => ({ index: -1, tries: 0, deadline: Infinity, attempt: undefined }));
  return scan;
}

/** Open pairs in input order: by host, then by port. */
function openPairs(scan: Scan): ScanResult['open'] {
  const width = scan.hosts.length;
  return scan.openIndexes
    .map((i) => ({ h: i % width, p: Math.floor(i / width) }))
    .sort((a, b) => a.h - b.h || a.p - b.p)
    .map(({ h, p }) => ({ host: scan.hosts[h] as string, port: scan.ports[p] as number }));
}

function resultOf(scan: Scan): ScanResult {
  const { probed, filtered, attempts, maxInFlight } = scan.stats;
  return { open: openPairs(scan), probed, total: scan.total, canceled: probed < scan.total && scan.stopped, filtered, attempts, maxInFlight };
}

/**
 * Scans pairs [from, to) of `hosts` × `ports` (pair i is host i mod H on port ⌊i / H⌋) in this
 * thread; `findOpenPorts` and the scan threads (scan-threads.ts) both use it. Rejects only with
 * what `onProgress` threw, once every socket is let go of.
 */
export function scanSlice(hosts: string[], ports: number[], from: number, to: number, options: ScanOptions = {}): Promise<ScanResult> {
  return new Promise((resolve, reject) => {
    const { signal } = options;
    const stop = () => stopScan(scan);
    const scan = createScan(hosts, ports, from, to, options, () => {
      clearInterval(scan.sweeper);
      clearTimeout(scan.pacer?.timer);
      signal?.removeEventListener('abort', stop);
      try {
        if (scan.failure) {
          throw scan.failure.error;
        }
        scan.progress(scan.stats.probed, true);
        resolve(resultOf(scan));
      } catch (e) {
        reject(e);
      }
    });
    if (scan.slots.length === 0) {
      scan.finish();
      return;
    }
    signal?.addEventListener('abort', stop, { once: true });
    scan.stopped = signal?.aborted ?? false;
    scan.sweeper = setInterval(() => sweep(scan), Math.min(100, Math.max(5, scan.timeoutMs / 10)));
    scan.busy = scan.slots.length;
    scan.slots.forEach((slot) => fill(scan, slot));
  });
}
