/** Starts executor work in a process: the dispatcher (if it has a queue) and the reaper. */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import type { Deps } from '../deps.ts';
import { startDiscoveryRunner } from '../modules/discovery/index.ts';
import { startNotificationSender } from '../modules/notifications/index.ts';
import { startDispatcher } from './dispatcher.ts';
import { startReaper } from './reaper.ts';
import { createRunTargetExecutor } from './run-target.ts';
import { createRunWriter, type RunWriter } from './run-writer.ts';

/** The run-target executor, wired from the process's dependencies. */
function runTargetExecutor(deps: Deps, writer: RunWriter) {
  return createRunTargetExecutor({
    notifications: deps.notifications,
    repo: deps.runsRepo,
    writer,
    runs: deps.runs,
    events: deps.runEvents,
    targets: deps.targets,
    connector: deps.targetConnector,
    credentials: deps.credentials,
    templates: deps.templates,
    clock: deps.clock,
    logger: deps.logger,
    filesRoot: deps.files.root,
    maxOutputBytes: deps.config.worker.maxOutputBytes,
  });
}

/** Runs run-targets with `concurrency` slots until stopped. */
export async function startWorker(deps: Deps, options: { concurrency: number; dispatch: boolean }): Promise<{ stop(): Promise<void>; wake(): void }> {
  const { queue, config, logger, clock } = deps;
  if (!queue) {
    throw new Error('the worker needs the queue');
  }
  const stopReaper = startReaper({ repo: deps.runsRepo, runs: deps.runs, events: deps.runEvents, queue, clock, logger, intervalMs: (config.worker.leaseS * 1000) / 2 });
  if (!options.dispatch) {
    return { stop: async () => stopReaper(), wake: () => {} };
  }
  const writer = createRunWriter({ repo: deps.runsRepo, logger });
  const executor = runTargetExecutor(deps, writer);
  const stopSender = await startNotificationSender({ queue, notifications: deps.notifications, logger, options: config.notify });
  const stopDiscovery = await startDiscoveryRunner({ queue, database: deps.database, repo: deps.discoveryRepo, clock, logger, settings: config.discovery });
  const dispatcher = await startDispatcher({
    queue,
    database: deps.database,
    repo: deps.runsRepo,
    executor,
    writer,
    clock,
    logger,
    workerId: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    concurrency: options.concurrency,
    leaseS: config.worker.leaseS,
  });
  return {
    wake: dispatcher.wake,
    stop: async () => {
      stopReaper();
      await stopSender();
      await stopDiscovery();
      await dispatcher.stop();
    },
  };
}
