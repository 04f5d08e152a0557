/**
 * The worker loop. Free slots fetch run-target messages in batches the moment work is queued
 * (LISTEN/NOTIFY wake-up, with a slow poll as a safety net), claim them under the run's
 * concurrency, execute, and then keep pulling pending targets of the same run while it has any.
 * Leases are renewed for everything in flight in one statement; canceled or overdue runs are
 * aborted locally, which kills their remote processes.
 */
import type { Database } from '../db/database.ts';
import type { JobRunRow } from '../db/schema.ts';
import type { Logger } from '../logging.ts';
import { CANCEL_CHANNEL, type RunsRepo, WORK_CHANNEL } from '../modules/runs/index.ts';
import type { Clock } from '../shared/clock.ts';
import { QUEUES, type Queue } from './queue.ts';
import type { RunTargetExecutor } from './run-target.ts';

const POLL_MS = 2000;

/** What the dispatcher needs. */
export interface DispatcherDeps {
  queue: Queue;
  database: Database;
  repo: RunsRepo;
  executor: RunTargetExecutor;
  clock: Clock;
  logger: Logger;
  workerId: string;
  concurrency: number;
  leaseS: number;
}

/** Starts the loop; `stop` lets in-flight targets finish, then returns. */
export async function startDispatcher(deps: DispatcherDeps): Promise<{ stop(): Promise<void>; wake(): void }> {
  const { queue, repo, executor, clock, logger, workerId, leaseS } = deps;
  let free = deps.concurrency;
  let stopped = false;
  let pumping = false;
  let again = false;
  const inFlight = new Map<string, { runId: number; controller: AbortController; done: Promise<void> }>();

  const abortRun = (runId: number, reason: 'canceled' | 'timed_out') => {
    for (const entry of inFlight.values()) {
      if (entry.runId === runId && !entry.controller.signal.aborted) {
        entry.controller.abort(reason);
      }
    }
  };

  // The run row only matters for its definition and deadline, fixed once the run has started.
  const runs = new Map<number, Promise<JobRunRow | undefined>>();
  const runRow = (runId: number) => {
    let row = runs.get(runId);
    if (!row) {
      row = repo.findRun(runId);
      runs.set(runId, row);
      if (runs.size > 100) {
        runs.delete(runs.keys().next().value as number);
      }
    }
    return row;
  };

  async function work(runId: number, firstTarget: number | undefined): Promise<void> {
    let targetId = firstTarget;
    for (;;) {
      const claimed = await repo.claim(runId, targetId, workerId, leaseS, clock.now());
      const run = claimed && (await runRow(runId));
      if (!claimed || !run) {
        return;
      }
      const controller = new AbortController();
      const deadline = run.deadline_at ? setTimeout(() => controller.abort('timed_out'), Math.max(0, run.deadline_at.getTime() - clock.now().getTime())) : undefined;
      const key = `${runId}:${claimed.target_id}`;
      const done = executor.execute(claimed, run, workerId, controller.signal).finally(() => {
        clearTimeout(deadline);
        inFlight.delete(key);
      });
      inFlight.set(key, { runId, controller, done });
      await done;
      targetId = undefined; // keep pulling this run's pending targets
      if (stopped) {
        return;
      }
    }
  }

  async function handle(job: { id: string; data: { runId: number; targetId?: number } }): Promise<void> {
    try {
      await work(job.data.runId, job.data.targetId);
    } catch (err) {
      logger.error({ err, run_id: job.data.runId }, 'run-target handling failed');
    } finally {
      await queue.complete(QUEUES.runTarget, job.id).catch((err: unknown) => logger.warn({ err }, 'completing a queue message failed'));
      free++;
      void pump();
    }
  }

  async function pump(): Promise<void> {
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        while (free > 0 && !stopped) {
          const jobs = await queue.fetch<{ runId: number; targetId?: number }>(QUEUES.runTarget, { batchSize: free });
          if (!jobs || jobs.length === 0) {
            break;
          }
          for (const job of jobs) {
            free--;
            void handle(job);
          }
        }
      } while (again && !stopped);
    } catch (err) {
      logger.warn({ err }, 'fetching work failed');
    } finally {
      pumping = false;
    }
  }

  async function renew(): Promise<void> {
    if (inFlight.size === 0) {
      return;
    }
    for (const run of await repo.renewLeases(workerId, leaseS, clock.now())) {
      abortRun(run.id, run.cancel_requested ? 'canceled' : 'timed_out');
    }
  }

  const unlistenWork = await deps.database.listen(WORK_CHANNEL, () => void pump());
  const unlistenCancel = await deps.database.listen(CANCEL_CHANNEL, (payload) => abortRun(Number(payload), 'canceled'));
  const poll = setInterval(() => void pump(), POLL_MS);
  const renewal = setInterval(() => void renew().catch((err: unknown) => logger.warn({ err }, 'lease renewal failed')), (leaseS * 1000) / 3);
  void pump();
  logger.info({ worker_id: workerId, concurrency: deps.concurrency }, 'worker dispatching run-targets');

  return {
    wake: () => void pump(),
    async stop() {
      stopped = true;
      clearInterval(poll);
      await unlistenWork();
      await unlistenCancel();
      await Promise.allSettled([...inFlight.values()].map((e) => e.done));
      clearInterval(renewal);
    },
  };
}
