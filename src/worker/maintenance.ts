/** Periodic housekeeping in long-running processes: drop expired token bookkeeping. */
import type { Deps } from '../deps.ts';

const INTERVAL_MS = 60 * 60 * 1000;

/** Starts the housekeeping timer; returns its stop function. */
export function startMaintenance(deps: Pick<Deps, 'auth' | 'logger'>): () => void {
  const run = () => {
    deps.auth.pruneExpired().catch((err: unknown) => deps.logger.warn({ err }, 'token pruning failed'));
  };
  run();
  const timer = setInterval(run, INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
