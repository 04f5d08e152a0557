/**
 * `opsconductor worker` and `opsconductor scheduler`: long-running processes on the shared
 * database: a worker executes run-targets; a scheduler fires due schedules (any number of
 * schedulers may run: each schedule time fires once). Both sweep expired leases and deadlines.
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
  const stopScheduler = role === 'scheduler' ? await deps.schedulerLoop.start() : undefined;
  logger.info({ concurrency: config.worker.concurrency }, `${role} running`);
  stopOnSignals(logger, async () => {
    stopMaintenance();
    await stopScheduler?.();
    await worker.stop();
    await deps.release();
  });
}
