/**
 * `opsconductor worker` and `opsconductor scheduler`: long-running processes on the shared
 * database. They start the queue and the housekeeping that exist today; the executor's task
 * handlers and the scheduler's loop register here as their issues land.
 */
import type { Config } from '../config.ts';
import { startMaintenance } from '../worker/maintenance.ts';
import { startWorker } from '../worker/worker.ts';
import { stopOnSignals } from './lifecycle.ts';
import { bootProcess } from './process.ts';

/** Runs a background role until a signal arrives. */
export async function runBackground(config: Config, role: 'worker' | 'scheduler'): Promise<void> {
  const { deps, logger } = await bootProcess(config, role);
  const stopMaintenance = startMaintenance(deps);
  // Workers execute run-targets; schedulers (and workers) also sweep expired leases and deadlines.
  const worker = await startWorker(deps, { concurrency: config.worker.concurrency, dispatch: role === 'worker' });
  logger.info({ concurrency: config.worker.concurrency }, `${role} running`);
  stopOnSignals(logger, async () => {
    stopMaintenance();
    await worker.stop();
    await deps.release();
  });
}
