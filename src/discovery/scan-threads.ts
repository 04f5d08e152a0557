/**
 * A large scan shared by worker threads: each scans a contiguous slice of the host × port index
 * space with its share of the sockets and of the rate, reports progress, and stops when told.
 * On a loopback or LAN scan most probes are refused at once, so the CPU spent per probe, not the
 * network, bounds the time; threads put every core to work (bench/README.md, Scan).
 */
import { Worker } from 'node:worker_threads';

import { throttle } from './scan-pacing.ts';
import type { ScanOptions, ScanResult } from './scanner.ts';

/** What a scan thread is given (options without callbacks or signal). */
export interface SliceTask {
  hosts: string[];
  ports: number[];
  from: number;
  to: number;
  options: Omit<ScanOptions, 'signal' | 'onProgress' | 'threads'>;
}

/** What a scan thread says: progress, then its result (or the error that stopped it). */
export type SliceMessage = { type: 'progress'; probed: number } | { type: 'done'; result: ScanResult } | { type: 'error'; message: string };

const WORKER = new URL('./scan-worker.mjs', import.meta.url);

function runSlice(task: SliceTask, onProgress: (probed: number) => void, signal: AbortSignal | undefined): Promise<ScanResult> {
  return new Promise((resolve, reject) => {
    // A clean execArgv: the bootstrap registers tsx itself, whatever flags this process had.
    const worker = new Worker(WORKER, { workerData: task, execArgv: [] });
    const abort = () => worker.postMessage('abort');
    signal?.addEventListener('abort', abort, { once: true });
    if (signal?.aborted) {
      abort();
    }
    let settled = false;
    const finish = (fn: () => void) => {
      if (!settled) {
        settled = true;
        signal?.removeEventListener('abort', abort);
        fn();
      }
    };
    worker.on('message', (message: SliceMessage) => {
      if (message.type === 'progress') {
        onProgress(message.probed);
      } else if (message.type === 'done') {
        finish(() => resolve(message.result));
      } else {
        finish(() => reject(new Error(message.message)));
      }
    });
    worker.on('error', (err) => finish(() => reject(err)));
    worker.on('exit', (code) => finish(() => reject(new Error(`scan thread exited (${code}) without a result`))));
  });
}

/** Splits `amount` over `parts` as evenly as whole numbers allow (the first ones get the remainder). */
function shares(amount: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(amount / parts) + (i < amount % parts ? 1 : 0));
}

/** Open pairs of every slice in input order (host, then port), with index maps rather than a search per comparison. */
function mergeOpen(hosts: string[], ports: number[], results: ScanResult[]): ScanResult['open'] {
  const hostIndex = new Map(hosts.map((h, i) => [h, i]));
  const portIndex = new Map(ports.map((p, i) => [p, i]));
  const at = (map: Map<string | number, number>, key: string | number) => map.get(key) ?? 0;
  return results.flatMap((r) => r.open).sort((a, b) => at(hostIndex, a.host) - at(hostIndex, b.host) || at(portIndex, a.port) - at(portIndex, b.port));
}

/**
 * {@link findOpenPorts} over `threads` worker threads (never more than the concurrency, which they
 * share exactly); the merged result is the same as one thread's. When one thread fails, or
 * `onProgress` throws, every thread is stopped and the scan rejects once all have ended.
 */
export async function findOpenPortsInThreads(hosts: string[], ports: number[], threads: number, options: ScanOptions): Promise<ScanResult> {
  const total = hosts.length * ports.length;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 512) || 1);
  const count = Math.min(threads, concurrency);
  // Stopped by the caller's signal, or by a failure here.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) {
    stop.abort();
  }
  const probed = new Array<number>(count).fill(0);
  const throttled = throttle(options.onProgress, total);
  const report = (force?: boolean) => throttled(probed.reduce((a, b) => a + b, 0), force);
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    failure ??= { error };
    stop.abort();
  };
  const size = Math.ceil(total / count);
  const share = { ...options, signal: undefined, onProgress: undefined, threads: undefined, ratePerSecond: options.ratePerSecond ? options.ratePerSecond / count : undefined };
  const settled = await Promise.allSettled(
    shares(concurrency, count).map((threadConcurrency, i) => {
      const slice = { from: i * size, to: Math.min(total, (i + 1) * size) };
      const onProgress = (n: number) => {
        probed[i] = n;
        attempt(() => report(), fail);
      };
      return runSlice({ hosts, ports, ...slice, options: { ...share, concurrency: threadConcurrency } }, onProgress, stop.signal).catch((e: unknown) => (fail(e), undefined));
    }),
  );
  options.signal?.removeEventListener('abort', onAbort);
  if (!failure) {
    attempt(() => report(true), fail);
  }
  if (failure) {
    throw failure.error;
  }
  return merged(hosts, ports, settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined)).filter((r): r is ScanResult => r !== undefined));
}

/** The threads' results as one scan's. */
function merged(hosts: string[], ports: number[], results: ScanResult[]): ScanResult {
  const sum = (f: (r: ScanResult) => number) => results.reduce((a, r) => a + f(r), 0);
  return {
    open: mergeOpen(hosts, ports, results),
    probed: sum((r) => r.probed),
    total: hosts.length * ports.length,
    canceled: results.some((r) => r.canceled),
    filtered: sum((r) => r.filtered),
    attempts: sum((r) => r.attempts),
    maxInFlight: sum((r) => r.maxInFlight),
  };
}

/** Runs `fn`, handing what it throws to `fail`. */
function attempt(fn: () => void, fail: (error: unknown) => void): void {
  try {
    fn();
  } catch (e) {
    fail(e);
  }
}
