/**
 * A large scan shared by worker threads: each scans a contiguous slice of the host × port index
 * space with its share of the sockets and of the rate, reports progress, and stops when told.
 * On a loopback or LAN scan most probes are refused at once, so the CPU spent per probe, not the
 * network, bounds the time; threads put every core to work (bench/README.md, Scan).
 */
import { Worker } from 'node:worker_threads';

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

/** {@link findOpenPorts} over `threads` worker threads; the merged result is the same as one thread's. */
export async function findOpenPortsInThreads(hosts: string[], ports: number[], threads: number, options: ScanOptions): Promise<ScanResult> {
  const total = hosts.length * ports.length;
  const size = Math.ceil(total / threads);
  const probed = new Array<number>(threads).fill(0);
  let last = 0;
  const report = (force = false) => {
    const now = performance.now();
    if (options.onProgress && (force || now - last >= 100)) {
      last = now;
      options.onProgress(probed.reduce((a, b) => a + b, 0), total);
    }
  };
  const share = { ...options, signal: undefined, onProgress: undefined, threads: undefined };
  const concurrency = Math.max(1, Math.ceil((options.concurrency ?? 512) / threads));
  const ratePerSecond = options.ratePerSecond ? options.ratePerSecond / threads : undefined;
  const slices = Array.from({ length: threads }, (_, i) => ({ from: i * size, to: Math.min(total, (i + 1) * size) })).filter((s) => s.from < s.to);
  const results = await Promise.all(
    slices.map((slice, i) =>
      runSlice({ hosts, ports, ...slice, options: { ...share, concurrency, ratePerSecond } }, (n) => ((probed[i] = n), report()), options.signal),
    ),
  );
  report(true);
  const open = results.flatMap((r) => r.open);
  const order = (h: string) => hosts.indexOf(h);
  open.sort((a, b) => order(a.host) - order(b.host) || ports.indexOf(a.port) - ports.indexOf(b.port));
  const sum = (f: (r: ScanResult) => number) => results.reduce((a, r) => a + f(r), 0);
  return {
    open,
    probed: sum((r) => r.probed),
    total,
    canceled: results.some((r) => r.canceled),
    filtered: sum((r) => r.filtered),
    attempts: sum((r) => r.attempts),
    maxInFlight: sum((r) => r.maxInFlight),
  };
}
