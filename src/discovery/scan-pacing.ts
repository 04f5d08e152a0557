/** Pacing of a port scan: one DNS lookup per host name, progress reports at most every 100 ms. */
import type { LookupAddress } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';

const PROGRESS_INTERVAL_MS = 100;

/** Resolves each host name once per scan (not once per port); Node skips it for IP literals. */
export function cachedLookup(): LookupFunction {
  const cache = new Map<string, Promise<LookupAddress[]>>();
  return (hostname, options, callback) => {
    let found = cache.get(hostname);
    if (!found) {
      found = dnsLookup(hostname, { all: true });
      cache.set(hostname, found);
    }
    found.then(
      (all) => {
        const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
        const matching = family ? all.filter((a) => a.family === family) : all;
        const first = matching[0];
        if (options.all) {
          callback(null, matching);
        } else if (first) {
          callback(null, first.address, first.family);
        } else {
          callback(Object.assign(new Error(`no IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

/** Calls `onProgress` at most every 100 ms; `force` for the final call. */
export function throttle(onProgress: ((done: number, total: number) => void) | undefined, total: number): (done: number, force?: boolean) => void {
  let last = 0;
  return (done, force = false) => {
    const now = performance.now();
    if (onProgress && (force || now - last >= PROGRESS_INTERVAL_MS)) {
      last = now;
      onProgress(done, total);
    }
  };
}
