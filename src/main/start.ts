/** `opsconductor start` (everything in one process) and `opsconductor serve --services …`. */
import type { Config } from '../config.ts';
import { SERVICE_NAMES, type ServiceName } from '../services.ts';
import { startMaintenance } from '../worker/maintenance.ts';
import { startWorker } from '../worker/worker.ts';
import { bootstrapAdmin } from './bootstrap.ts';
import { stopOnSignals } from './lifecycle.ts';
import { planListeners, startListeners } from './listen.ts';
import { bootProcess } from './process.ts';

/** Starts the API listeners for `services` (plus maintenance) and stops them on a signal. */
export async function runApi(config: Config, role: 'start' | 'serve', services: readonly ServiceName[] = SERVICE_NAMES): Promise<void> {
  const { deps, logger } = await bootProcess(config, role);
  try {
    await bootstrapAdmin(deps, (text) => process.stdout.write(text));
    const listeners = await startListeners(deps, planListeners(config.http.port, services, role === 'start' && config.http.servicePorts));
    const stopMaintenance = startMaintenance(deps);
    // `start` is the all-in-one process: it also executes runs.
    const worker = role === 'start' ? await startWorker(deps, { concurrency: config.worker.concurrency, dispatch: true }) : undefined;
    const stopScheduler = role === 'start' ? await deps.schedulerLoop.start() : undefined;
    stopOnSignals(logger, async () => {
      stopMaintenance();
      await stopScheduler?.();
      await listeners.close();
      await worker?.stop();
      await deps.release();
    });
  } catch (e) {
    await deps.release();
    throw e;
  }
}
