/**
 * The worker loop. Free slots take work the moment it is queued (LISTEN/NOTIFY wake-up, with a
 * slow poll as a safety net): run-target messages are fetched in batches and their targets
 * claimed with one statement per run, under the run's concurrency. A finished target frees its
 * slot, and its worker pulls the same run's next pending targets while there are any (this is also
 * how targets a claim had to leave for the run's concurrency get their turn). Leases are renewed
 * for everything in flight in one statement; canceled or overdue runs are aborted locally, which
 * kills their remote processes.
 */
import type { Database } from '../db/database.ts';
import type { JobRunRow, JobRunTargetRow } from '../db/schema.ts';
import type { Logger } from '../logging.ts';
import { CANCEL_CHANNEL, type RunsRepo, WORK_CHANNEL } from '../modules/runs/index.ts';
import type { Clock } from '../shared/clock.ts';
import { QUEUES, type Queue, runTargetMessageId } from './queue.ts';
import type { RunTargetExecutor } from './run-target.ts';
import type { RunWriter } from './run-writer.ts';

const POLL_MS = 2000;

/** What the dispatcher needs. */
export interface DispatcherDeps {
  queue: Queue;
  database: Database;
  repo: RunsRepo;
  executor: RunTargetExecutor;
  writer: RunWriter;
  clock: Clock;
  logger: Logger;
  workerId: string;
  concurrency: number;
  leaseS: number;
}

/** A run-target message: the reaper's nudges for a stalled run name no target. */
type RunTargetMessage = { id: string; data: { runId: number; targetId?: number } };

/** Starts the loop; `stop` lets in-flight targets finish, then returns. */
export async function startDispatcher(deps: DispatcherDeps): Promise<{ stop(): Promise<void>; wake(): void }> {
  const { queue, repo, executor, writer, clock, logger, workerId, leaseS } = deps;
  let stopped = false;
  let pumping = false;
  let again = false;
  const inFlight = new Map<string, { runId: number; controller: AbortController; done: Promise<void> }>();
  /** Runs that had pending targets when one of ours finished: claim from them first. */
  const pull = new Set<number>();
  /** Targets this worker claimed by pulling, whose messages may still come: those need no claim. */
  const pulled = new Set<string>();
  const MAX_PULLED = 10_000;
  /** Messages of pulled targets, cancelled in batches so no worker fetches them for nothing. */
  let toCancel: string[] = [];
  let cancelling: Promise<void> | undefined;

  async function cancelLoop(): Promise<void> {
    while (toCancel.length > 0) {
      const ids = toCancel;
      toCancel = [];
      await queue.cancel(QUEUES.runTarget, ids).catch((err: unknown) => logger.warn({ err }, 'cancelling queue messages failed'));
    }
    cancelling = undefined;
  }
  const free = () => (stopped ? 0 : deps.concurrency - inFlight.size);

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
      row.catch(() => runs.delete(runId));
      if (runs.size > 100) {
        runs.delete(runs.keys().next().value as number);
      }
    }
    return row;
  };

  function start(claimed: JobRunTargetRow, run: JobRunRow): void {
    const controller = new AbortController();
    const deadline = run.deadline_at ? setTimeout(() => controller.abort('timed_out'), Math.max(0, run.deadline_at.getTime() - clock.now().getTime())) : undefined;
    const key = `${run.id}:${claimed.target_id}`;
    const done = executor
      .execute(claimed, run, workerId, controller.signal)
      .then((result) => {
        if (result.pending) {
          pull.add(run.id);
        }
      })
      .catch((err: unknown) => logger.error({ err, run_id: run.id, target_id: claimed.target_id }, 'run-target handling failed'))
      .finally(() => {
        clearTimeout(deadline);
        inFlight.delete(key);
        schedulePump();
      });
    inFlight.set(key, { runId: run.id, controller, done });
  }

  /** Claims up to `limit` of the run's pending targets (only `targetIds` if given) and starts them; returns how many. */
  async function claim(runId: number, targetIds: number[] | null, limit: number): Promise<number> {
    const claimed = limit > 0 ? await repo.claimTargets(runId, targetIds, limit, workerId, leaseS, clock.now()) : [];
    if (claimed.length === 0) {
      return 0;
    }
    let run = await runRow(runId);
    if (run && !run.deadline_at) {
      // Cached before the run's first claim, which sets the deadline.
      runs.delete(runId);
      run = await runRow(runId);
    }
    for (const row of claimed) {
      if (targetIds === null) {
        pulled.add(`${runId}:${row.target_id}`);
        toCancel.push(runTargetMessageId(runId, row.target_id));
      }
      if (run) {
        start(row, run);
      }
    }
    if (toCancel.length > 0) {
      cancelling ??= cancelLoop();
    }
    while (pulled.size > MAX_PULLED) {
      pulled.delete(pulled.values().next().value as string);
    }
    return claimed.length;
  }

  async function pullRuns(): Promise<void> {
    for (const runId of [...pull]) {
      const want = free();
      if (want <= 0) {
        return;
      }
      if ((await claim(runId, null, want)) < want) {
        pull.delete(runId); // nothing more to take there now (or the run is at its concurrency)
      }
    }
  }

  /** Fetches up to the free slots' worth of messages and claims their targets; false when none were queued. */
  async function takeMessages(): Promise<boolean> {
    const jobs = (await queue.fetch<RunTargetMessage['data']>(QUEUES.runTarget, { batchSize: free() })) ?? [];
    if (jobs.length === 0) {
      return false;
    }
    try {
      const byRun = new Map<number, { targets: number[]; nudges: number }>();
      for (const { data } of jobs) {
        const entry = byRun.get(data.runId) ?? { targets: [], nudges: 0 };
        if (data.targetId !== undefined && pulled.delete(`${data.runId}:${data.targetId}`)) {
          continue; // claimed already, when this worker pulled the run
        }
        if (data.targetId === undefined) {
          entry.nudges++;
        } else {
          entry.targets.push(data.targetId);
        }
        byRun.set(data.runId, entry);
      }
      for (const [runId, { targets, nudges }] of byRun) {
        if (nudges > 0) {
          pull.add(runId);
          await claim(runId, null, Math.min(free(), nudges + targets.length));
        } else {
          await claim(runId, targets, Math.min(free(), targets.length));
        }
      }
    } finally {
      await queue.complete(
        QUEUES.runTarget,
        jobs.map((j) => j.id),
      ).catch((err: unknown) => logger.warn({ err }, 'completing queue messages failed'));
    }
    return true;
  }

  /** Pumps once after the current burst of finishes, so their freed slots are claimed together. */
  let pumpScheduled = false;
  function schedulePump(): void {
    if (!pumpScheduled) {
      pumpScheduled = true;
      setImmediate(() => {
        pumpScheduled = false;
        void pump();
      });
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
        await pullRuns();
        while (free() > 0 && (await takeMessages())) {
          await pullRuns();
        }
      } while (again && !stopped);
    } catch (err) {
      logger.warn({ err }, 'taking work failed');
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
      await writer.flush();
      await cancelling;
      clearInterval(renewal);
    },
  };
}
