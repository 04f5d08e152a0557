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
