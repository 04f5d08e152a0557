/** Shared by the benchmarks: clean up on a watchdog timeout (exit 3) or on SIGINT/SIGTERM (exit 130). */

/** Arms the watchdog and the signal handlers; returns the watchdog timer (clear it when done). */
export function guardCleanup(name: string, timeoutMs: number, cleanup: () => Promise<unknown>, log: (line: string) => void): NodeJS.Timeout {
  const watchdog = setTimeout(() => {
    log(`${name}: gave up after ${timeoutMs / 1000} s (--timeout-s); cleaning up`);
    void cleanup().finally(() => process.exit(3));
  }, timeoutMs);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${name}: ${signal}; cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  return watchdog;
}

/** Clean-up steps run last registered first; `cleanup` runs them once (later calls share the run). */
export interface CleanupStack {
  /** Registers `fn` to run at the end, whatever happens. */
  onCleanup(what: string, fn: () => Promise<void> | void): void;
  /** Runs every registered step; a failing step is logged and the others still run. */
  cleanup(): Promise<void>;
}

/** An empty clean-up stack that logs failing steps with `log`. */
export function cleanupStack(log: (line: string) => void): CleanupStack {
  const cleanups: Array<{ what: string; fn: () => Promise<void> | void }> = [];
  let cleaning: Promise<void> | undefined;
  return {
    onCleanup(what, fn) {
      cleanups.push({ what, fn });
    },
    cleanup() {
      return (cleaning ??= (async () => {
        while (cleanups.length > 0) {
          const { what, fn } = cleanups.pop() as (typeof cleanups)[number];
          try {
            await fn();
          } catch (err) {
            log(`cleanup: ${what} failed: ${(err as Error).message}`);
          }
        }
      })());
    },
  };
}
