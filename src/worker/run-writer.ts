/**
 * Group commit for a worker's result writes. Step results and target finishes are queued; one
 * statement at a time applies everything queued since the previous one, so at fan-out the
 * database sees a few batched statements instead of several round trips per target, and a target
 * never waits behind other targets' writes for a pool connection. Writes of one step row queued
 * before a flush are merged. A worker that dies with writes queued leaves its targets `running`
 * under an expiring lease: the reaper then marks them `worker_lost`, as for any lost worker.
 */
import { retryTransient } from '../db/errors.ts';
import type { Logger } from '../logging.ts';
import type { FinishResult, RunsRepo, StepWrite, TargetFinish } from '../modules/runs/index.ts';

/** Flush at most this much step output per statement; the rest goes in the next one. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

interface QueuedFinish {
  finish: TargetFinish;
  resolve(result: FinishResult | undefined): void;
  reject(err: unknown): void;
}

/** Builds the writer over `repo`. */
export function createRunWriter(deps: { repo: RunsRepo; logger: Logger }) {
  const steps = new Map<string, StepWrite>();
  let finishes: QueuedFinish[] = [];
  let flushing: Promise<void> | undefined;

  function takeSteps(): StepWrite[] {
    const batch: StepWrite[] = [];
    let bytes = 0;
    for (const [key, write] of steps) {
      bytes += (write.stdout?.length ?? 0) + (write.stderr?.length ?? 0);
      if (batch.length > 0 && bytes > MAX_BATCH_BYTES) {
        break;
      }
      batch.push(write);
      steps.delete(key);
    }
    return batch;
  }

  async function flushLoop(): Promise<void> {
    // Let writes made in the same tick join the first batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (steps.size > 0 || finishes.length > 0) {
      const stepBatch = takeSteps();
      // A finish goes out only with (or after) every step write queued before it.
      const finishBatch = steps.size === 0 ? finishes : [];
      finishes = steps.size === 0 ? [] : finishes;
      try {
        // A deadlock with another worker's batch rolls the whole statement back: apply it again.
        const results = await retryTransient(() => deps.repo.applyBatch(stepBatch, finishBatch.map((f) => f.finish)));
        const byTarget = new Map(results.map((r) => [`${r.run_id}:${r.target_id}`, r]));
        for (const f of finishBatch) {
          f.resolve(byTarget.get(`${f.finish.run_id}:${f.finish.target_id}`));
        }
      } catch (err) {
        deps.logger.error({ err, steps: stepBatch.length, finishes: finishBatch.length }, 'writing run results failed');
        for (const f of finishBatch) {
          f.reject(err);
        }
      }
    }
    flushing = undefined;
  }

  function schedule(): void {
    flushing ??= flushLoop();
  }

  return {
    /** Queues new values for one step row (merged with values queued earlier for it). */
    step(write: StepWrite): void {
      const key = `${write.run_id}:${write.target_id}:${write.step_index}`;
      const queued = steps.get(key);
      steps.set(key, queued ? { ...queued, ...write } : write);
      schedule();
    },

    /**
     * Queues a target's finish after its step writes; resolves once written, with what it left on
     * the run, or undefined when this worker no longer held the target.
     */
    finishTarget(finish: TargetFinish): Promise<FinishResult | undefined> {
      return new Promise((resolve, reject) => {
        finishes.push({ finish, resolve, reject });
        schedule();
      });
    },

    /** Resolves when everything queued so far is written. */
    async flush(): Promise<void> {
      while (flushing) {
        await flushing;
      }
    },
  };
}

/** The worker's result writer. */
export type RunWriter = ReturnType<typeof createRunWriter>;
