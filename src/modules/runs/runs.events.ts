/**
 * The run event log: events are buffered briefly and written in batches (one statement inserting
 * and notifying per flush, not per event), then delivered to listeners in any process through
 * LISTEN/NOTIFY. Readers replay from the table, so a late client misses nothing.
 */
import type { Database } from '../../db/database.ts';
import type { RunEventRow } from '../../db/schema.ts';
import type { Logger } from '../../logging.ts';
import type { NewEvent, RunsRepo } from './runs.repo.ts';

const CHANNEL = 'oc_run_events';
const FLUSH_MS = 20;

/** Builds the event log. */
export function createRunEvents(deps: { repo: RunsRepo; database: Database; logger: Logger }) {
  const { repo, database, logger } = deps;
  let buffer: NewEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  const watchers = new Map<number, Set<() => void>>();
  let listening: Promise<unknown> | undefined;

  function flush(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    const batch = buffer;
    buffer = [];
    flushing = flushing.then(() => (batch.length > 0 ? repo.insertEvents(batch, CHANNEL) : undefined)).catch((err: unknown) => logger.error({ err }, 'writing run events failed'));
    return flushing;
  }

  function ensureListening(): Promise<unknown> {
    return (listening ??= database.listen(CHANNEL, (payload) => {
      for (const id of payload.split(',').map(Number)) {
        watchers.get(id)?.forEach((wake) => wake());
      }
    }));
  }

  return {
    /** Queues an event; it is written within a few milliseconds. */
    emit(event: NewEvent): void {
      buffer.push(event);
      if (buffer.length >= 500) {
        void flush();
      } else {
        timer ??= setTimeout(() => void flush(), FLUSH_MS);
      }
    },

    /** Writes everything buffered now (call before reporting a run finished). */
    flush,

    /** Events of `runId` after `afterId`. */
    after: (runId: number, afterId: number): Promise<RunEventRow[]> => repo.eventsAfter(runId, afterId),

    /** Calls `wake` whenever new events of `runId` may exist; returns the unsubscribe function. */
    async watch(runId: number, wake: () => void): Promise<() => void> {
      await ensureListening();
      const set = watchers.get(runId) ?? new Set();
      set.add(wake);
      watchers.set(runId, set);
      return () => {
        set.delete(wake);
        if (set.size === 0) {
          watchers.delete(runId);
        }
      };
    },
  };
}

/** The run event log. */
export type RunEvents = ReturnType<typeof createRunEvents>;
