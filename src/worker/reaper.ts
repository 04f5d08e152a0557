/**
 * Keeps runs moving when workers do not: run-targets whose lease expired (a dead worker) become
 * `failed` with `worker_lost` and are never re-run; pending targets of overdue runs become
 * `timed_out`; runs whose wake-up was lost are re-queued. Safe to run in many processes at once.
 */
import type { Logger } from '../logging.ts';
import type { RunEvents, RunsRepo, RunsService } from '../modules/runs/index.ts';
import type { Clock } from '../shared/clock.ts';
import { QUEUES, type Queue } from './queue.ts';

/** Stall age before a run with pending targets and nothing running is re-queued. */
const STALL_MS = 10_000;

/** One sweep; returns how many targets it settled. */
export async function reap(deps: { repo: RunsRepo; runs: RunsService; events: RunEvents; queue: Queue; clock: Clock }): Promise<number> {
  const { repo, runs, events, queue, clock } = deps;
  const now = clock.now();
  let settled = 0;
  const lost = await repo.expireLeases(now);
  for (const { run_id, target_id } of lost) {
    events.emit({ runId: run_id, type: 'target_finished', targetId: target_id, data: { status: 'failed', error: 'worker_lost' } });
  }
  for (const runId of new Set(lost.map((l) => l.run_id))) {
    await runs.finalize(runId);
  }
  settled += lost.length;
  for (const runId of await repo.overdueRuns(now)) {
    settled += (await repo.closePendingTargets(runId, 'timed_out', now)).length;
    await runs.finalize(runId);
  }
  for (const stalled of await repo.stalledRuns(new Date(now.getTime() - STALL_MS))) {
    await queue.insert([{ name: QUEUES.runTarget, data: { runId: stalled.id } }]);
  }
  return settled;
}

/** Sweeps every `intervalMs`; returns the stop function. */
export function startReaper(deps: Parameters<typeof reap>[0] & { logger: Logger; intervalMs: number }): () => void {
  const timer = setInterval(() => {
    reap(deps).catch((err: unknown) => deps.logger.warn({ err }, 'reaper sweep failed'));
  }, deps.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
